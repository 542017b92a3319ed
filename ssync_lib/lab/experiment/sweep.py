"""The sweep: its runs (``Sweep``: objectives x seeds x slot counts), the branch from the baseline at SSync's warm-up
end, the refusal of runs made with another config, and ``run_sweep``, which trains what is missing (and scores it on
the held-out test split) and summarises."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ssync_lib.checkpoint import ConfigChangeError, config_changes
from ssync_lib.config import Config, apply_overrides, get_config, resolve_path
from ssync_lib.data import build_dataset, check_data_root
from ssync_lib.errors import ConfigError, MissingInputError
from ssync_lib.lab.experiment.held_out import score_test
from ssync_lib.lab.experiment.summary import summarise

BRANCHABLE = ("ssync", "dense")  # objectives that may branch from the baseline (--branch)


@dataclass
class Sweep:
    profile: str
    objectives: list[str]
    seeds: list[int]
    slots: list[int]
    name: str
    overrides: list[str]
    branch: list[str]  # objectives that branch from the baseline at their warm-up end

    def folder(self) -> Path:
        return resolve_path(get_config(self.profile, self.overrides).train.run_root) / "experiments" / self.name

    def config(self, objective: str, seed: int, slots: int) -> Config:
        cfg = get_config(self.profile, self.overrides)
        apply_overrides(cfg, {"objective.name": objective, "train.seed": seed, "model.num_slots": slots,
                              "train.run_root": str(self.folder()), "train.name": f"{objective}-s{slots}-seed{seed}"})
        return cfg


def branch_step(cfg: Config) -> int:
    """The last step at which SSync still equals the baseline (§4.6: off for the first 30% of the steps)."""
    return math.ceil(cfg.objective.ssync_warmup_frac * cfg.train.max_steps)


def _base_config(sweep: Sweep, seed: int, slots: int) -> Config:
    """The baseline run, keeping a checkpoint at the branch step for the objectives that branch from it."""
    cfg = sweep.config("baseline", seed, slots)
    step = branch_step(cfg)
    if sweep.branch and step > 0:
        cfg.train.keep_every = step
        cfg.train.ckpt_every = math.gcd(cfg.train.ckpt_every, step)
    return cfg


def run_configs(sweep: Sweep) -> list[Config]:
    """The config of every run of the sweep (the baselines with their branch checkpoint kept)."""
    return [_base_config(sweep, seed, slots) if objective == "baseline" else sweep.config(objective, seed, slots)
            for seed in sweep.seeds for slots in sweep.slots for objective in sweep.objectives]


def changed_runs(sweep: Sweep) -> dict[Path, list[str]]:
    """The run folders of ``sweep`` that exist (finished or interrupted) with a config that differs from the
    requested one in a value that changes what the run computes (``checkpoint.config_changes``, as resume
    compares: of the objective, only the values the run's objective reads, so baselines copied from another sweep
    fit a sweep that changes SSync's values only): folder -> the differences (run -> requested)."""
    changed = {}
    for cfg in run_configs(sweep):
        run_dir = Path(cfg.train.run_root) / cfg.run_name
        if (run_dir / "config.json").exists():
            diffs = config_changes(json.loads((run_dir / "config.json").read_text()), cfg)
            if diffs:
                changed[run_dir] = diffs
    return changed


def check_changes(sweep: Sweep, on_change: str = "refuse") -> None:
    """Before anything trains: existing runs made with another config are refused (``ConfigChangeError`` listing
    each), or with ``on_change="rerun"`` moved to ``<sweep>/replaced/<run>-<n>/`` (kept, out of the summary) so
    that they train again."""
    changed = changed_runs(sweep)
    if not changed:
        return
    if on_change == "rerun":
        for run_dir in changed:
            aside = run_dir.parent / "replaced"
            aside.mkdir(exist_ok=True)
            n = sum(1 for _ in aside.glob(f"{run_dir.name}-*"))
            run_dir.rename(aside / f"{run_dir.name}-{n}")
            print(f"config changed, trained again: {run_dir.name} (the old run moved to replaced/{run_dir.name}-{n})")
        return
    listing = "\n".join(f"  {run.name}: " + "; ".join(diffs) for run, diffs in changed.items())
    raise ConfigChangeError(f"{len(changed)} run(s) of the sweep {sweep.folder()} were made with another config "
                            f"(run -> requested):\n{listing}\nnothing was trained",
                            fix="use the sweep's config (drop or restore the changed --set values), give the new "
                                "config its own sweep (--name NEW), or pass --on-change rerun to train these runs "
                                "again (the old ones move to <sweep>/replaced/)")


def check_test_split(sweep: Sweep) -> None:
    """Before anything trains or is scored (``--test-split``): the sweep's data has a held-out test split (a
    ``test/`` folder of shards: movi-mini), else one message naming the data folder and the fix."""
    cfg = sweep.config(sweep.objectives[0], sweep.seeds[0], sweep.slots[0])
    root = check_data_root(cfg)
    try:
        build_dataset(cfg, "test")
    except (MissingInputError, ConfigError) as err:
        raise MissingInputError(
            f"--test-split: the sweep {sweep.folder()} is to score every run on the held-out test split, but its "
            f"data {root} has none ({err.message})",
            fix="leave --test-split out (the synthetic levels have train and val splits only), or give the sweep "
                "a level with a test/ split, e.g. --set data.root=data/movi-mini-v1 (make data PROFILE=cpu_movi)"
        ) from None


def run_sweep(sweep: Sweep, progress: bool = True, on_change: str = "refuse",
              test_split: bool = False) -> pd.DataFrame:
    """Train and evaluate every missing combination, then summarise. Returns the summary table. Runs that exist
    with another config are refused or trained again (``check_changes``, ``on_change``). ``test_split``: every run,
    once trained (or found finished), is also scored on the held-out test split (``score_test``), and the summary
    has its ``test/`` columns."""
    from ssync_lib.train import train

    unknown = set(sweep.branch) - set(BRANCHABLE)
    if unknown:
        raise ConfigError(f"--branch takes objectives among {', '.join(BRANCHABLE)}; got {sorted(unknown)}")
    if test_split:
        check_test_split(sweep)
    check_changes(sweep, on_change)
    order = sorted(sweep.objectives, key=lambda o: o != "baseline")  # the baseline first: others branch from it
    for seed in sweep.seeds:
        for slots in sweep.slots:
            for objective in order:
                cfg = _base_config(sweep, seed, slots) if objective == "baseline" else sweep.config(objective, seed, slots)
                run_dir = Path(cfg.train.run_root) / cfg.run_name
                if (run_dir / "metrics.json").exists():
                    print(f"done already: {run_dir.name}")
                    if test_split:
                        score_test(run_dir, progress)
                    continue
                init_from = None
                if objective in sweep.branch and not (run_dir / "last.pt").exists():
                    base = _base_config(sweep, seed, slots)
                    base_dir = Path(base.train.run_root) / base.run_name
                    if not (base_dir / "metrics.json").exists():
                        train(base, resume="auto", progress=progress)
                    init_from = base_dir / f"step-{branch_step(base):07d}.pt"
                train(cfg, resume="auto", progress=progress, init_from=init_from)
                if test_split:
                    score_test(run_dir, progress)
    return summarise(sweep.folder(), test_split)
