"""The results sweep: objectives x seeds x slot counts, trained and evaluated, resumable.

    python -m ssync_lib experiment --profile cpu --objectives baseline,dense,ssync --seeds 0,1,2 \
        --slots 4,7,10 --name synth-hard --set data.level=synth-hard data.root=data/synth-hard

Folder ``<run_root>/experiments/<name>/``: one run folder per combination (``<objective>-s<S>-seed<k>``,
the usual ``config.json``, ``log.csv``, ``last.pt``, ``metrics.json``), plus ``summary.csv`` (one row per
finished run), ``table.md`` (mean +- std over seeds) and the plots. ``--results DIR`` copies those small
files (and every run's metrics.json and log.csv) to DIR, with the command, commit and machine.

Held-out test split (``--test-split``, levels that have one: movi-mini): every finished run is also evaluated on
the test split (``<run>/metrics-test.json``, as ``evaluate --split test`` writes it; again when older than its
``last.pt``), and the summary gains the same columns prefixed ``test/`` (``test/decoder/video/fg_ari``, ...).
With ``--summary-only`` it scores the finished runs that lack test metrics, then summarises.

Branching (``--branch ssync``, the default): the baseline and SSync are identical for the first 30% of the
steps (SSync's warm-up, docs/method.md §4.6), so the SSync run starts from the baseline run's checkpoint at
that step (model, Adam state, lr schedule, data order and RNG) instead of repeating it. Dense alignment is
not branched by default: its redundancy regulariser acts during the first 10% of the steps (§3).

Resuming: a finished run (``metrics.json`` present) is not redone; an interrupted one resumes from its
``last.pt``; a killed sweep continues with what is missing.
"""
from __future__ import annotations

import difflib
import json
import math
import platform
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
import torch

from ssync_lib.checkpoint import LAST, ConfigChangeError, config_changes
from ssync_lib.config import Config, apply_overrides, get_config, resolve_path
from ssync_lib.config_checks import validate
from ssync_lib.data import build_dataset, check_data_root
from ssync_lib.diagnostics import PREMISE_KEYS
from ssync_lib.errors import ConfigError, ConfigKeyError, MissingInputError
from ssync_lib.lab import viz
from ssync_lib.objectives.objective import OBJECTIVES
from ssync_lib.run_log import read_metrics
from ssync_lib.runtime import commit_hash

METRIC_KEYS = [f"{maps}/video/{m}" for maps in ("decoder", "attention") for m in ("fg_ari", "mbo", "miou")]
LABEL_KEYS = [f"pseudo_labels/{name}" for name in ("merged_slots", "boundary_pct", "interior_pct", "agreement_pct")]
SHARING_KEYS = [f"{maps}/video/objects_{what}" for maps in ("decoder", "attention") for what in ("lost", "shared")]
# SSync's premises against ground truth (diagnostics.py): FG-ARI and accuracy (fractions, shown in %), set shares
# and teaching precision (already in %), merged pairs per clip
PREMISE_FRACTIONS = [k for k in PREMISE_KEYS if k.endswith(("_fg_ari", "_acc"))]
SUMMARY_KEYS = METRIC_KEYS + LABEL_KEYS + SHARING_KEYS + PREMISE_KEYS
COLUMNS = METRIC_KEYS + ["sec_per_step"] + SHARING_KEYS + LABEL_KEYS + PREMISE_KEYS  # of the table (--columns)
TEST = "test/"  # prefix of the held-out test split's columns (--test-split): test/decoder/video/fg_ari, ...
TEST_METRICS = "metrics-test.json"  # a run's evaluation on the test split (evaluate.metrics_destination's name)
TEST_KEYS = [TEST + k for k in SUMMARY_KEYS]
TEST_COLUMNS = [TEST + c for c in COLUMNS if c != "sec_per_step"]
BRANCHABLE = ("ssync", "dense")  # objectives that may branch from the baseline (--branch)
# Named column sets of markdown_table / --columns: the README's tables.
COLUMN_SETS = {
    "metrics": ["decoder/video/fg_ari", "decoder/video/mbo", "attention/video/fg_ari", "attention/video/mbo",
                "decoder/video/objects_lost", "decoder/video/objects_shared"],
    # who is right where (accuracy against each patch's object), what merged, who is right where they disagree
    "premises": [f"premises/{where}/{maps}_acc" for where in ("interior", "boundary")
                 for maps in ("encoder_merged", "decoder_merged")]
                + ["merge_audit/pairs", "merge_audit/object_split", "merge_audit/object_background",
                   "merge_audit/two_objects"]
                + [f"teaching/{where}/{who}_right_pct" for where in ("boundary", "interior")
                   for who in ("teacher", "student")],
}
COLUMN_SETS.update({f"{name}-test": [TEST + c for c in columns] for name, columns in list(COLUMN_SETS.items())})


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
    compares): folder -> the differences (run -> requested)."""
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


def scored_on_test(run_dir: Path) -> bool:
    """Whether a run's evaluation on the test split (``metrics-test.json``) exists and is not older than its
    ``last.pt``."""
    scored, last = run_dir / TEST_METRICS, run_dir / LAST
    return scored.exists() and (not last.exists() or scored.stat().st_mtime_ns >= last.stat().st_mtime_ns)


def score_test(run_dir: Path, progress: bool = True) -> bool:
    """Evaluate a finished run's ``last.pt`` on the test split into ``<run_dir>/metrics-test.json`` unless it is
    scored already (``scored_on_test``); the checkpoint's own config, as ``evaluate --run DIR --split test``. Returns
    whether it evaluated."""
    from ssync_lib.evaluate import evaluate_run

    if scored_on_test(run_dir):
        return False
    print(f"test split: scoring {run_dir.name}")
    evaluate_run(run_dir, split="test", progress=progress)
    return True


def score_finished(folder: Path, progress: bool = True) -> list[str]:
    """``score_test`` on every finished run (``metrics.json`` present) of a sweep folder (``--summary-only
    --test-split``). Returns the names of the runs it evaluated."""
    return [run.name for run in sorted(p.parent for p in folder.glob("*/metrics.json")) if score_test(run, progress)]


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


def summary_row(objective: str, slots: int, seed: int, metrics: Mapping[str, float]) -> dict:
    """One run as a row of the summary: objective, slots, seed and every ``SUMMARY_KEYS`` metric of the flat
    dict ``evaluate`` returns (NaN where it lacks one). The notebooks use it for runs they evaluate live."""
    return {"objective": objective, "slots": slots, "seed": seed,
            **{k: metrics.get(k, float("nan")) for k in SUMMARY_KEYS}}


def row_on_test(run_dir: Path) -> dict:
    """A run's ``TEST_KEYS`` from its ``metrics-test.json`` (NaN where it has none, or one older than its
    ``last.pt``, with a warning)."""
    metrics = {}
    if scored_on_test(run_dir):
        metrics = read_metrics(run_dir / TEST_METRICS)["metrics"]
    else:
        warnings.warn(f"{run_dir}: no evaluation on the test split ({TEST_METRICS} missing or older than {LAST}): "
                      f"its test columns are empty; score it with --summary-only --test-split")
    return {TEST + k: metrics.get(k, float("nan")) for k in SUMMARY_KEYS}


def summarise(folder: Path, test_split: bool = False) -> pd.DataFrame:
    """summary.csv (a row per finished run), table.md (mean +- std over seeds) and the plots (slot robustness,
    training curves). ``test_split``: with the ``test/`` columns of each run's ``metrics-test.json``
    (``row_on_test``) and the slot robustness on the test split (``slot_robustness-test.png``)."""
    rows = []
    for metrics_file in sorted(folder.glob("*/metrics.json")):
        record = read_metrics(metrics_file)
        cfg = record["config"]
        final = pd.read_csv(metrics_file.with_name("eval.csv")).iloc[-1]  # the training's final evaluation
        videos = record["metrics"].get("num_videos")
        if "num_videos" in final and videos != final["num_videos"]:
            warnings.warn(f"{metrics_file}: {videos} videos, but its training's final evaluation (eval.csv) scored "
                          f"{final['num_videos']:g}: a partial evaluation, left out of the summary; evaluate the "
                          f"run again in full (python -m ssync_lib evaluate --run {metrics_file.parent})")
            continue
        log = pd.read_csv(metrics_file.with_name("log.csv"))
        rows.append({"run": metrics_file.parent.name,
                     **summary_row(cfg["objective"]["name"], cfg["model"]["num_slots"], cfg["train"]["seed"],
                                   record["metrics"]),
                     "step": record["step"],
                     "sec_per_step": float(log["sec_per_step"].median()),
                     "branched_from": cfg["train"]["init_from"] or "",
                     **(row_on_test(metrics_file.parent) if test_split else {})})
    summary = pd.DataFrame(rows)
    if summary.empty:
        raise MissingInputError(f"no finished run (metrics.json) under {folder}")
    summary.to_csv(folder / "summary.csv", index=False)
    (folder / "table.md").write_text(markdown_table(summary))
    viz.save_figure(viz.plot_slot_sweep(summary), folder / "slot_robustness.png")
    if test_split:
        viz.save_figure(viz.plot_slot_sweep(summary, [TEST + m for m in viz.SWEEP_METRICS],
                                            title="the held-out test split (decoder maps)"),
                        folder / "slot_robustness-test.png")
    viz.save_figure(viz.plot_sweep_curves(*sweep_curves(summary, folder)), folder / "curves.png", dpi=110)
    return summary


# Plain words for the summary's columns in tables a reader sees (markdown_table(..., plain=True)); the raw key
# otherwise. Metrics and shares in %.
PLAIN_NAMES = {
    "decoder/video/fg_ari": "decoder FG-ARI", "decoder/video/mbo": "decoder mBO", "decoder/video/miou": "decoder mIoU",
    "attention/video/fg_ari": "attention FG-ARI", "attention/video/mbo": "attention mBO",
    "attention/video/miou": "attention mIoU",
    "decoder/video/objects_lost": "objects lost to the background slot",
    "decoder/video/objects_shared": "objects sharing a slot",
    "pseudo_labels/agreement_pct": "maps agree", "pseudo_labels/merged_slots": "merged slots per clip",
    "merge_audit/pairs": "merged pairs per window", "merge_audit/object_split": "merges within one object",
    "merge_audit/object_background": "merges of an object with a background slot",
    "merge_audit/two_objects": "merges of two objects",
    **{f"premises/{where}/{maps}_merged_{score}": f"{where}: {maps} {name}" for where in ("interior", "boundary")
       for maps in ("encoder", "decoder") for score, name in (("acc", "accuracy"), ("fg_ari", "FG-ARI"))},
    **{f"teaching/{where}/{who}_right_pct": f"{where}: {who} right" for where in ("interior", "boundary")
       for who in ("teacher", "student")},
}


def plain_name(column: str) -> str:
    """A summary column in words (``PLAIN_NAMES``, ``(test)`` after a test split's), else the short form
    markdown_table always used."""
    if column.startswith(TEST):
        return f"{plain_name(column.removeprefix(TEST))} (test)"
    return PLAIN_NAMES.get(column, column.replace("/video/", " ").replace("pseudo_labels/", ""))


def branch_points(summary: pd.DataFrame) -> pd.Series:
    """SSync run name -> the step it branched from its baseline at (from ``branched_from``, a checkpoint named
    ``step-NNNNNNN.pt``), or None for a run trained from scratch."""
    runs = summary[summary["objective"] == "ssync"].set_index("run")["branched_from"]
    steps = runs.astype("string").str.extract(r"step-(\d+)\.pt$", expand=False)
    return pd.Series([int(s) if pd.notna(s) else None for s in steps], index=runs.index, dtype=object)


def compare_runs(live: pd.DataFrame, summary: pd.DataFrame, seed: int) -> str:
    """Markdown: each live run (``summary_row``s evaluated in a notebook) beside the committed run of ``summary``
    with the same objective, slot count and seed (decoder FG-ARI and mBO, video level, %), or a line saying that
    none matches."""
    committed = summary[summary["seed"] == seed].set_index(["objective", "slots"])
    lines = ["| objective | slots | decoder FG-ARI: here | committed | decoder mBO: here | committed |",
             "|---|---|---|---|---|---|"]
    for row in live.itertuples():
        key = (row.objective, int(row.slots))
        if key not in committed.index:
            continue
        ours, theirs = live.loc[row.Index], committed.loc[key]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(
            f"{100 * src[f'decoder/video/{m}']:.1f}" for m in ("fg_ari", "mbo") for src in (ours, theirs)) + " |")
    if len(lines) == 2:
        return f"No committed run has the objective, slot count and seed ({seed}) of a live model."
    return "\n".join(lines) + "\n"

def premise_rows(folders: Iterable[str | Path]) -> pd.DataFrame:
    """The baseline runs that carry the premise diagnostics, from the ``summary.csv`` of each sweep folder that
    has one (e.g. ``results/synth-easy`` and ``results/synth-easy-premises``), with a ``sweep`` column naming the
    folder. Rows of one (slots, seed) from two folders are different trainings and are both kept."""
    tables = [pd.read_csv(Path(f) / "summary.csv").assign(sweep=Path(f).name) for f in folders
              if (Path(f) / "summary.csv").exists()]
    if not tables:
        return pd.DataFrame(columns=["objective", "slots", "seed", "sweep", *COLUMN_SETS["premises"]])
    rows = pd.concat(tables, ignore_index=True)
    scored = rows.reindex(columns=COLUMN_SETS["premises"]).notna().all(axis=1)  # a missing column counts as NaN
    return rows[(rows["objective"] == "baseline") & scored].sort_values(["slots", "sweep", "seed"], ignore_index=True)


def variant_rows(variants: Mapping[str, str | Path], slots: int, objective: str = "ssync") -> pd.DataFrame:
    """One summary for an ablation table: the baseline runs at ``slots`` of the first folder, then the
    ``objective`` runs at ``slots`` of every folder, each relabelled with its variant's name (e.g. ``{"ssync":
    "results/synth-easy", "ssync, only interiors": "results/synth-easy-interior-only"}``). The folders' sweeps
    must differ only in the ablated setting and branch from the same baselines."""
    tables = []
    for i, (name, folder) in enumerate(variants.items()):
        path = Path(folder) / "summary.csv"
        if not path.exists():
            raise MissingInputError(f"variant {name!r}: no sweep summary {path}")
        runs = pd.read_csv(path)
        runs = runs[runs["slots"] == slots]
        if i == 0:
            tables.append(runs[runs["objective"] == "baseline"])
        tables.append(runs[runs["objective"] == objective].assign(objective=name))
    return pd.concat(tables, ignore_index=True)


def markdown_table(summary: pd.DataFrame, columns: list[str] | None = None, plain: bool = False) -> str:
    """Mean +- std over seeds per objective and slot count (the mean alone for one seed). `columns` picks and
    orders summary columns (default: all of them): metrics and the object-sharing diagnostic (% of objects lost
    to the background slot / sharing a slot) in percent, as the field reports them; seconds per step; the
    pseudo-label statistics as they are (merged slots per clip, shares already in %). A cell averages the runs
    that have a value (runs evaluated before a diagnostic existed have none): ``(n=k)`` follows it when that is
    fewer than the cell's seeds, ``–`` stands for none. ``plain``: column headers in words (``plain_name``).
    The default columns include the test split's (``TEST_COLUMNS``) when the summary has them."""
    columns = columns or COLUMNS + [c for c in TEST_COLUMNS if c in summary.columns]
    columns = [c for name in columns for c in COLUMN_SETS.get(name, [name])]  # a set's name stands for its columns
    unknown = [c for c in columns if c not in summary.columns]
    if unknown:
        raise ConfigKeyError(f"markdown_table: no column {unknown} in the summary; it has {list(summary.columns)}")
    grouped = summary.groupby(["objective", "slots"])
    mean, std, count = grouped[columns].mean(), grouped[columns].std(ddof=0), grouped.size()
    present = grouped[columns].count()  # runs with a value, per cell
    head = ["objective", "slots", "seeds"] + [plain_name(c) if plain else c.replace("/video/", " ").replace(
        "pseudo_labels/", "") for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(key, column: str) -> str:
        n = present.loc[key, column]
        if n == 0:
            return "–"
        if column == "sec_per_step":
            return f"{mean.loc[key, column]:.3f}"
        scale = 100 if column.removeprefix(TEST) in METRIC_KEYS + SHARING_KEYS + PREMISE_FRACTIONS else 1
        text = f"{scale * mean.loc[key, column]:.1f}" + (f" ± {scale * std.loc[key, column]:.1f}" if n > 1 else "")
        return text + (f" (n={n})" if n < count[key] else "")

    for key in mean.index:
        lines.append("| " + " | ".join([key[0], str(key[1]), str(count[key])] + [cell(key, c) for c in columns]) + " |")
    return "\n".join(lines) + "\n"


def sweep_curves(summary: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training log (reconstruction loss as a running mean of 10 log rows) and the evaluations of every run
    of ``summary``, tagged with objective, slots and seed: the input of ``viz.plot_sweep_curves``. A branched run's
    rows start at its branch step."""
    logs, evals = [], []
    for run in summary.itertuples():
        tags = {"objective": run.objective, "slots": run.slots, "seed": run.seed}
        log = pd.read_csv(folder / run.run / "log.csv")
        logs.append(log.assign(recon=log["recon"].rolling(10, min_periods=1).mean(), **tags))
        evals.append(pd.read_csv(folder / run.run / "eval.csv").assign(**tags))
    return pd.concat(logs), pd.concat(evals)


def publish(folder: Path, results: Path, command: str) -> None:
    """Copy the small files of a sweep to a results folder (a run's ``metrics-test.json`` and the test split's
    plot where they exist), with the command, commit and machine."""
    results.mkdir(parents=True, exist_ok=True)
    tested = TEST_KEYS[0] in pd.read_csv(folder / "summary.csv", nrows=0).columns  # summarised with --test-split
    names = ["summary.csv", "table.md", "slot_robustness.png", "curves.png"] + ["slot_robustness-test.png"] * tested
    for name in names:
        shutil.copy2(folder / name, results / name)
    for run in sorted(p.parent for p in folder.glob("*/metrics.json")):
        (results / "runs" / run.name).mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "log.csv", "eval.csv", "config.json", TEST_METRICS):
            if name == TEST_METRICS and not (run / name).exists():
                continue
            shutil.copy2(run / name, results / "runs" / run.name / name)
    provenance = results / "provenance.json"
    commands = json.loads(provenance.read_text()).get("commands", []) if provenance.exists() else []
    provenance.write_text(json.dumps({
        "commands": commands + [command] * (command not in commands),  # every invocation that fed this folder
        "commit": commit_hash(), "python": sys.version.split()[0], "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_threads": torch.get_num_threads(),
    }, indent=2))


def parse_list(text: str, kind=str, name: str = "list", allowed=None, minimum: int | None = None) -> list:
    """Comma-separated values of one command-line argument, each checked; errors name the argument
    (``--seeds: 'x' is not an integer``)."""
    values = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        try:
            value = kind(item)
        except ValueError:
            raise ConfigError(f"{name}: '{item}' is not {'an integer' if kind is int else 'a ' + kind.__name__}",
                              fix=f"give {name} as comma-separated values, e.g. {name} 0,1,2") from None
        if allowed is not None and value not in allowed:
            close = difflib.get_close_matches(item, allowed, n=3, cutoff=0.5)
            few = len(allowed) <= 8
            raise ConfigError(f"{name}: '{item}' is not one of {', '.join(allowed) if few else 'its names'}"
                              + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""),
                              fix=f"choose among {list(allowed)}" if few else
                              f"{name} takes names of summary.csv's columns, e.g. {','.join(allowed[:2])}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name}: {value} is below {minimum}", fix=f"give values >= {minimum}")
        values.append(value)
    if len(set(values)) != len(values):
        raise ConfigError(f"{name}: '{text}' repeats a value", fix="give each value once")
    return values


def sweep_from_args(args) -> Sweep:
    """The sweep of ``python -m ssync_lib experiment``, every argument checked (with its name) before anything
    trains, and every run's config validated."""
    objectives = parse_list(args.objectives, name="--objectives", allowed=OBJECTIVES)
    if not objectives:
        raise ConfigError("--objectives: no objective given", fix=f"e.g. --objectives {','.join(OBJECTIVES)}")
    seeds = parse_list(args.seeds, int, name="--seeds", minimum=0)
    if not seeds:
        raise ConfigError("--seeds: no seed given", fix="e.g. --seeds 0,1,2")
    slots = parse_list(args.slots, int, name="--slots", minimum=1)
    parse_list(args.columns, name="--columns", allowed=COLUMNS + TEST_COLUMNS + list(COLUMN_SETS))
    name = args.name or args.profile
    if Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"--name: '{name}' is not a plain folder name", fix="give a name without '/' (e.g. easy)")
    sweep = Sweep(profile=args.profile, objectives=objectives, seeds=seeds,
                  slots=slots or [get_config(args.profile, args.overrides).model.num_slots], name=name,
                  overrides=list(args.overrides), branch=parse_list(args.branch, name="--branch", allowed=BRANCHABLE))
    for objective in objectives:
        for count in sweep.slots:
            validate(sweep.config(objective, seeds[0], count))
    return sweep


def command_line(argv: Iterable[str]) -> str:
    return "python -m ssync_lib " + " ".join(argv)
