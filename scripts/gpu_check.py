"""The published configurations on a GPU: one prepared check (issue 22), offline, in at most 8 minutes.

    python scripts/gpu_check.py                      # on a GPU machine: results/gpu/gpu_check.{json,md}
    python scripts/gpu_check.py --out $OUT           # somewhere else
    python scripts/gpu_check.py --dry-run            # the same code on the CPU at tiny sizes (tests/test_gpu_check.py)

Stages, each with its own time budget (``--budget STAGE=SECONDS``); a stage that fails or runs out of time is
recorded with its error in the JSON and the next stage runs:

1. ``data``: a MOVi-layout shard set (``{work}/shards/{train,val}/shard-*.tar``) written by the project's synthetic
   generator: 24-frame videos at 128 px (the MOVi release; the model resizes them to the profile's input size),
   ``--steps x batch`` training clips (one epoch covers a run) and ``--val-clips`` validation clips.
2. ``train``: ``ssync_lib.train.train`` on the ``movi_c`` profile (random ViT-S/14 weights, batch 64 of 4-frame
   chunks) for each objective (baseline, dense alignment, SSync) and each variant (``fp32``, ``bf16`` =
   ``train.amp_bf16``, ``+compile`` = ``train.compile``): seconds per step after ``--timing-warmup`` steps (log.csv,
   ``log_every=1``), the data-loader wait per step (the loop's ``epoch_loader`` wrapped while it runs), peak GPU
   memory, finite losses, first against last reconstruction loss. The objectives' losses are on from step 0
   (``ssync_warmup_frac``, ``dense_from_frac``, ``redundancy_until_frac`` = 0): the steps timed are those of their
   main phase.
3. ``bench_step``, ``bench_labels``, ``bench_alignment``: ``python -m ssync_lib.lab.bench {step,labels,alignment}`` as
   subprocesses on the device; their CSV tables go into the JSON.
4. ``evaluate``: ``ssync_lib.evaluate.evaluate`` of a fresh model over the validation shards, timed.
5. ``profiles``: ``movi_e`` and ``ytvis`` trained for ``--profile-steps`` steps each (shapes, memory); both read the
   MOVi-layout shards (the model's shapes and memory are under test, not the YouTube-VIS reader).

Every size is a flag, and ``--set key=value`` overrides every config (``ssync_lib/config.py``); ``--dry-run``
chooses the CPU, a one-block ViT, tiny frames and a few steps. Big files (shards, runs, bench CSVs) go to ``--work``;
``--out`` gets only the JSON and the Markdown table.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # the working tree, installed or not

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ssync_lib.config import Config, apply_overrides, get_config  # noqa: E402
from ssync_lib.data.synthetic import generate  # noqa: E402
from ssync_lib.evaluate import evaluate  # noqa: E402
from ssync_lib.models import create_model  # noqa: E402
from ssync_lib.train import train  # noqa: E402

try:
    from ssync_lib.runtime import commit_hash  # noqa: E402
except ImportError:  # before the runtime helpers move out of evaluate.py
    from ssync_lib.evaluate import commit_hash  # noqa: E402

STAGES = ("data", "train", "bench_step", "bench_labels", "bench_alignment", "evaluate", "profiles")
# Seconds per stage: 455 s in all, plus start-up, inside the 8 minutes.
BUDGETS = {"data": 25, "train": 230, "bench_step": 40, "bench_labels": 45, "bench_alignment": 45, "evaluate": 25,
           "profiles": 45}
VARIANT_PARTS = ("fp32", "bf16", "compile")
MB = 2 ** 20

# Sizes of the full check and of the dry run; flags override both.
FULL = dict(out="results/gpu", work="runs/gpu_check", device="cuda", steps=30, timing_warmup=10, lr_warmup=5,
            frames=24, resolution=128, val_clips=64, batch=None, workers=None, data_workers=None, train_eval_videos=4,
            bench_batch=64, bench_repeats=2, alignment_sizes=None, profile_steps=4, variants="fp32,bf16,bf16+compile")
DRY_RUN = dict(out="runs/gpu_check/dry-run", work="runs/gpu_check/dry-run/work", device="cpu", steps=3,
               timing_warmup=1, lr_warmup=1, frames=8, resolution=32, val_clips=2, batch=2, workers=0, data_workers=1,
               train_eval_videos=1, bench_batch=1, bench_repeats=1, alignment_sizes=[64, 256], profile_steps=2,
               variants="bf16+compile")
# A one-block ViT on 56 px frames (a 4x4 grid) and a small decoder: seconds on a CPU, the code of the full check.
DRY_RUN_OVERRIDES = ['model.backbone_kwargs={"depth": 1, "embed_dim": 48, "num_heads": 1}', "data.input_size=56",
                     "model.decoder_hidden=64", "model.decoder_layers=2", "train.eval_batch_size=2"]


# ----------------------------------------------------------------------------- settings

@dataclass
class Settings:
    """Everything the check runs with (recorded in the JSON)."""

    out: Path
    work: Path
    device: str
    dry_run: bool
    profile: str
    objectives: list[str]
    variants: list[str]
    steps: int  # training steps per run
    timing_warmup: int  # steps left out of the timing (compilation, allocator warm-up)
    lr_warmup: int  # train.warmup_steps
    frames: int  # frames per generated video
    resolution: int  # pixels of the generated videos (the model resizes to data.input_size)
    train_clips: int
    val_clips: int
    batch: int | None  # train.batch_size (None: the profile's)
    workers: int | None  # data.num_workers (None: the profile's)
    data_workers: int  # processes generating the shards
    train_eval_videos: int  # validation videos of the evaluation at the end of each train()
    eval_videos: int
    eval_variant: str
    bench_batch: int
    bench_repeats: int
    alignment_sizes: list[int] | None
    alignment_budget_gb: float
    alignment_max_seconds: float
    profiles: list[str]
    profile_steps: int
    profile_variant: str
    profile_objective: str
    run_budget: float  # seconds per training run (within its stage's budget)
    budgets: dict[str, float]
    stages: list[str]
    overrides: list[str] = field(default_factory=list)  # --set, after the check's own settings
    progress: bool = True

    @property
    def shards(self) -> Path:
        return self.work / "shards"


def parse_variant(variant: str) -> tuple[bool, bool]:
    """'fp32' | 'bf16' | 'compile' | 'bf16+compile' -> (train.amp_bf16, train.compile)."""
    parts = variant.split("+")
    unknown = [p for p in parts if p not in VARIANT_PARTS]
    if unknown or not parts:
        raise ValueError(f"variant '{variant}': expected parts of {VARIANT_PARTS} joined by '+', e.g. bf16+compile")
    return "bf16" in parts, "compile" in parts


class _ShownDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default where it has one (the sizes say theirs: full check / dry run)."""

    def _get_help_string(self, action):
        return action.help if action.default in (None, [], False) else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Stages: " + ", ".join(STAGES),
                                formatter_class=_ShownDefaults)
    p.add_argument("--out", help=f"folder of gpu_check.json and .md (default {FULL['out']}; dry run {DRY_RUN['out']}, "
                                 f"in the project)")
    p.add_argument("--work", help=f"shards, runs and bench tables (default {FULL['work']}; dry run {DRY_RUN['work']})")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny ViT, tiny frames, a few steps")
    p.add_argument("--device", help=f"cuda | cuda:<i> | cpu (default {FULL['device']}; dry run cpu)")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides for every run, the benchmark step and the evaluation")
    p.add_argument("--profile", default="movi_c", help="profile of the training stage and the step benchmark")
    p.add_argument("--objectives", default="baseline,dense,ssync", help="comma-separated objectives trained")
    p.add_argument("--variants", help=f"comma-separated of fp32, bf16, compile, bf16+compile "
                                      f"(default {FULL['variants']}; dry run {DRY_RUN['variants']})")
    sizes = p.add_argument_group("sizes (default: full check / dry run)")
    for name, kind, what in (("steps", int, "training steps per run"),
                             ("timing-warmup", int, "steps left out of the timing"),
                             ("lr-warmup", int, "train.warmup_steps"),
                             ("frames", int, "frames per generated video"),
                             ("resolution", int, "pixels of the generated videos"),
                             ("val-clips", int, "validation videos generated"),
                             ("batch", int, "train.batch_size (full: the profile's)"),
                             ("workers", int, "data.num_workers (full: the profile's)"),
                             ("data-workers", int, "processes generating the shards (full: the CPUs, at most 16)"),
                             ("train-eval-videos", int, "videos of the evaluation at the end of each run"),
                             ("bench-batch", int, "--batch of the step, labels and alignment benchmarks"),
                             ("bench-repeats", int, "--repeats of the benchmarks"),
                             ("profile-steps", int, "training steps of each extra profile")):
        key = name.replace("-", "_")
        sizes.add_argument(f"--{name}", type=kind, help=f"{what} ({FULL[key]} / {DRY_RUN[key]})")
    sizes.add_argument("--train-clips", type=int, help="training videos generated (default steps x batch)")
    sizes.add_argument("--alignment-sizes", type=int, nargs="+", help="T*N of the alignment benchmark "
                       f"(full: the benchmark's own; dry run {DRY_RUN['alignment_sizes']})")
    p.add_argument("--eval-videos", type=int, help="videos of the evaluation stage (default all generated)")
    p.add_argument("--eval-variant", default="fp32", help="fp32 or bf16 for the evaluation stage")
    p.add_argument("--alignment-budget-gb", type=float, default=100.0, help="larger predicted peaks are extrapolated")
    p.add_argument("--alignment-max-seconds", type=float, default=10.0, help="longer runs are extrapolated")
    p.add_argument("--profiles", default="movi_e,ytvis", help="profiles trained for a few steps ('' = none)")
    p.add_argument("--profile-variant", default="bf16", help="variant of the extra profiles' runs")
    p.add_argument("--profile-objective", default="ssync", help="objective of the extra profiles' runs")
    p.add_argument("--run-budget", type=float, default=75.0, help="seconds per training run")
    p.add_argument("--budget", action="append", default=[], metavar="STAGE=SECONDS",
                   help=f"a stage's time budget (defaults {BUDGETS})")
    p.add_argument("--stages", default=",".join(STAGES), help="the stages to run (the others are 'skipped')")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The flags, the dry run's sizes where a flag is not given, else the full check's."""
    base = DRY_RUN if args.dry_run else FULL
    given = {k: getattr(args, k) for k in base if getattr(args, k, None) is not None}
    values = {**base, **given}
    profile_batch = get_config(args.profile).train.batch_size
    batch = values["batch"] or profile_batch
    budgets = dict(BUDGETS)
    for item in args.budget:
        stage, _, seconds = item.partition("=")
        if stage not in BUDGETS or not seconds:
            raise ValueError(f"--budget '{item}': expected STAGE=SECONDS with STAGE one of {STAGES}")
        budgets[stage] = float(seconds)
    stages = _names(args.stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"--stages: unknown {unknown}; choose from {STAGES}")
    variants = _names(values["variants"])
    for variant in [*variants, args.eval_variant, args.profile_variant]:
        parse_variant(variant)
    if values["timing_warmup"] >= values["steps"] or values["profile_steps"] < 2:
        raise ValueError(f"--timing-warmup ({values['timing_warmup']}) must be below --steps ({values['steps']}) "
                         f"and --profile-steps ({values['profile_steps']}) at least 2: nothing would be timed")
    return Settings(
        out=_folder(args.out, base["out"]), work=_folder(args.work, base["work"]), device=values["device"],
        dry_run=args.dry_run, profile=args.profile, objectives=_names(args.objectives), variants=variants,
        steps=values["steps"], timing_warmup=values["timing_warmup"], lr_warmup=values["lr_warmup"],
        frames=values["frames"], resolution=values["resolution"], train_clips=args.train_clips or batch * values["steps"],
        val_clips=values["val_clips"], batch=values["batch"], workers=values["workers"],
        data_workers=values["data_workers"] or max(1, min((os.cpu_count() or 2) - 1, 16)),
        train_eval_videos=values["train_eval_videos"], eval_videos=args.eval_videos or values["val_clips"],
        eval_variant=args.eval_variant, bench_batch=values["bench_batch"], bench_repeats=values["bench_repeats"],
        alignment_sizes=values["alignment_sizes"], alignment_budget_gb=args.alignment_budget_gb,
        alignment_max_seconds=args.alignment_max_seconds, profiles=_names(args.profiles),
        profile_steps=values["profile_steps"], profile_variant=args.profile_variant,
        profile_objective=args.profile_objective, run_budget=args.run_budget, budgets=budgets, stages=stages,
        overrides=(DRY_RUN_OVERRIDES if args.dry_run else []) + list(args.overrides),
        progress=not args.no_progress)


def _folder(given: str | None, default: str) -> Path:
    """A folder given on the command line (relative to the working directory), else the default (in the project)."""
    return Path(given).resolve() if given else PROJECT_ROOT / default


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run_config(s: Settings, profile: str, objective: str, variant: str, name: str, steps: int) -> Config:
    """A training run of `profile` on the generated shards: random weights, losses on from step 0, log.csv every
    step, one checkpoint at the end; then the --set overrides."""
    amp_bf16, compile_ = parse_variant(variant)
    own = {"data.source": "movi", "data.root": str(s.shards), "data.max_val_videos": s.train_eval_videos,
           "model.weights": "random", "objective.name": objective, "objective.ssync_warmup_frac": 0.0,
           "objective.dense_from_frac": 0.0, "objective.redundancy_until_frac": 0.0, "train.device": s.device,
           "train.max_steps": steps, "train.warmup_steps": s.lr_warmup, "train.log_every": 1,
           "train.ckpt_every": steps, "train.eval_every": 0, "train.amp_bf16": amp_bf16, "train.compile": compile_,
           "train.run_root": str(s.work / "runs"), "train.name": name}
    if s.batch:
        own["train.batch_size"] = s.batch
    if s.workers is not None:
        own["data.num_workers"] = s.workers
    return apply_overrides(get_config(profile, own), s.overrides)


# ----------------------------------------------------------------------------- time budgets

class BudgetExceeded(Exception):
    """A stage or a run went over its time budget."""


class NoTimeLeft(BudgetExceeded):
    """The enclosing budget was spent before this part started."""


_DEADLINES: list[float] = []  # time.monotonic() deadlines of the active time limits, innermost last


def _on_alarm(signum, frame):
    raise BudgetExceeded("over its time budget")


@contextmanager
def time_limit(seconds: float):
    """Raise BudgetExceeded inside the block after `seconds`, or at the enclosing limit's deadline if that comes
    first; yields the seconds granted. SIGALRM: the main thread of a Unix process. A long C++ call (one CUDA sync)
    finishes before the exception is raised."""
    deadline = time.monotonic() + seconds
    if _DEADLINES:
        deadline = min(deadline, _DEADLINES[-1])
    granted = deadline - time.monotonic()
    if granted <= 0:
        raise NoTimeLeft("not started: its stage's time budget was spent")
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _DEADLINES.append(deadline)
    signal.setitimer(signal.ITIMER_REAL, granted)
    try:
        yield granted
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _DEADLINES.pop()
        signal.signal(signal.SIGALRM, previous)
        left = _DEADLINES[-1] - time.monotonic() if _DEADLINES else 0.0
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)


def attempt(record: dict, budget: float, fn: Callable[[dict], None]) -> dict:
    """fn(record) under a time limit; its status ('ok', 'failed', 'timeout', 'skipped'), seconds and error go into
    `record` (which fn fills as it goes, so a failure keeps the figures gathered before it) instead of raising."""
    record.update(status="running", budget_s=budget)
    start = time.perf_counter()
    granted = budget
    try:
        with time_limit(budget) as granted:
            fn(record)
        record["status"] = "ok"
    except NoTimeLeft as err:
        record.update(status="skipped", error=str(err))
    except BudgetExceeded:
        record.update(status="timeout", error=f"stopped at its time limit of {granted:.0f} s (its budget or what "
                                              f"was left of its stage's)")
    except Exception as err:  # a broken part is a finding of the check, not the end of it
        record.update(status="failed", error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc().strip().splitlines()[-12:])
    finally:
        record["seconds"] = round(time.perf_counter() - start, 2)
    return record


def require_all_ok(units: list[dict], what: str) -> None:
    bad = [f"{u['name']} ({u['status']})" for u in units if u["status"] != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(units)} {what} did not succeed: {', '.join(bad)}")


# ----------------------------------------------------------------------------- measuring

def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def reset_peak(device: str) -> None:
    if is_cuda(device):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(device: str) -> float | None:
    """torch's peak GPU memory since reset_peak; None on the CPU."""
    return torch.cuda.max_memory_allocated() / MB if is_cuda(device) else None


def release(device: str) -> None:
    """Hand cached GPU memory back (the benchmarks run in other processes) and drop compiled graphs."""
    gc.collect()
    torch._dynamo.reset()
    if is_cuda(device):
        torch.cuda.empty_cache()


class LoaderWaits:
    """While active, wraps the training loop's ``epoch_loader`` (a global of the module that defines ``train``):
    `waits[i]` is how long the loop waited for the batch of step i + 1, `peaks[i]` torch's peak GPU memory (MB)
    when it asked, i.e. over steps 1..i."""

    def __init__(self, device: str):
        self.device, self.waits, self.peaks = device, [], []
        self.module = sys.modules[train.__module__]

    def __enter__(self) -> "LoaderWaits":
        self.original = getattr(self.module, "epoch_loader", None)
        if self.original is not None:
            self.module.epoch_loader = lambda *a, **k: self._timed(self.original(*a, **k))
        return self

    def __exit__(self, *exc) -> None:
        if self.original is not None:
            self.module.epoch_loader = self.original

    def _timed(self, loader):
        batches = iter(loader)
        while True:
            if is_cuda(self.device):
                self.peaks.append(torch.cuda.max_memory_allocated() / MB)
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            self.waits.append(time.perf_counter() - start)
            yield batch


def first_last(values: pd.Series) -> tuple[float, float]:
    """Means of the first and the last few values (a third of them, at most 5)."""
    k = max(1, min(5, len(values) // 3))
    return float(values.iloc[:k].mean()), float(values.iloc[-k:].mean())


def step_figures(history: pd.DataFrame, waits: LoaderWaits, warmup: int, batch: int) -> dict:
    """Timing and loss figures of a run from its log.csv rows (one per step) and its loader waits."""
    if history.empty or "sec_per_step" not in history:
        raise ValueError(f"log.csv has no per-step rows (columns {list(history.columns)})")
    timed = history[history["step"] > warmup]["sec_per_step"]
    loss_first, loss_last = first_last(history["loss"])
    recon_first, recon_last = first_last(history["recon"])
    numeric = history.select_dtypes("number").to_numpy(dtype=float)
    figures = {"steps": int(history["step"].max()), "timed_steps": len(timed),
               "first_step_s": float(history["sec_per_step"].iloc[0]), "sec_per_step": float(timed.median()),
               "sec_per_step_mean": float(timed.mean()), "clips_per_s": batch / float(timed.median()),
               "loss_first": loss_first, "loss_last": loss_last, "recon_first": recon_first,
               "recon_last": recon_last, "recon_falling": recon_last < recon_first,
               "all_finite": bool(np.isfinite(numeric).all()),
               "loss_terms": [c for c in history.columns if c not in ("step", "epoch", "lr", "sec_per_step")]}
    timed_waits = waits.waits[warmup:]
    if timed_waits:
        mean_wait = float(np.mean(timed_waits))
        figures.update(data_wait_ms=1e3 * mean_wait, data_wait_max_ms=1e3 * max(timed_waits),
                       data_wait_share=mean_wait / figures["sec_per_step_mean"])
    else:
        figures.update(data_wait_ms=None, data_wait_note=f"not measured: the loop did not call "
                                                         f"{waits.module.__name__}.epoch_loader")
    if waits.peaks:
        figures["peak_gpu_train_mb"] = waits.peaks[-1]
    return figures


def train_run(s: Settings, cfg: Config, record: dict, warmup: int) -> None:
    """One ssync_lib.train.train call, its figures into `record`."""
    record.update(profile=cfg.profile, objective=cfg.objective.name, amp_bf16=cfg.train.amp_bf16,
                  compile=cfg.train.compile, batch=cfg.train.batch_size, chunk_len=cfg.data.chunk_len,
                  input_size=cfg.data.input_size, backbone=cfg.model.backbone)
    shutil.rmtree(s.work / "runs" / cfg.run_name, ignore_errors=True)  # train() refuses a folder with a checkpoint
    reset_peak(s.device)
    with LoaderWaits(s.device) as waits:
        result = train(cfg, progress=s.progress)
    record["peak_gpu_mb"] = peak_mb(s.device)  # training and the final evaluation of train_eval_videos videos
    model = result.model
    record.update(grid=list(model.grid), tokens_per_clip=cfg.data.chunk_len * model.grid[0] * model.grid[1],
                  feature_dim=model.feature_dim, num_slots=cfg.model.num_slots, slot_dim=cfg.model.slot_dim,
                  video_shape=[cfg.train.batch_size, cfg.data.chunk_len, 3, cfg.data.input_size,
                               cfg.data.input_size])
    record.update(step_figures(result.history, waits, warmup, cfg.train.batch_size))
    record["run_dir"] = str(result.run_dir)


# ----------------------------------------------------------------------------- stages

def stage_data(s: Settings, record: dict) -> None:
    """The MOVi-layout shard set (reused when its meta.json matches)."""
    record.update(root=str(s.shards), train_clips=s.train_clips, val_clips=s.val_clips, frames=s.frames,
                  resolution=s.resolution, generator="ssync_lib.data.synthetic (synth-easy)")
    if not (s.shards / "meta.json").exists():
        shutil.rmtree(s.shards, ignore_errors=True)  # an interrupted generation: the folder is the check's own
    start = time.perf_counter()
    record["reused"] = generate(s.shards, "synth-easy", 0, s.train_clips, s.val_clips, s.resolution, s.frames,
                                workers=s.data_workers, progress=s.progress)
    record["write_seconds"] = time.perf_counter() - start
    record["bytes"] = sum(p.stat().st_size for p in s.shards.rglob("*.tar"))


def train_runs(s: Settings, record: dict, jobs: list[tuple[str, str, str, int, int]], what: str) -> None:
    """Each (profile, objective, variant, steps, timing warm-up) job as one train() run within s.run_budget."""
    runs = record["runs"] = []
    for profile, objective, variant, steps, warmup in tqdm(jobs, desc=what, disable=not s.progress):
        name = f"{profile}-{objective}-{variant}"
        run = {"name": name, "variant": variant}
        runs.append(run)
        attempt(run, s.run_budget,
                lambda r: train_run(s, run_config(s, profile, objective, variant, name, steps), r, warmup))
        release(s.device)
    require_all_ok(runs, what)


def stage_train(s: Settings, record: dict) -> None:
    """Every objective in every variant, variant by variant (compiled runs last by default)."""
    train_runs(s, record, [(s.profile, objective, variant, s.steps, s.timing_warmup)
                           for variant in s.variants for objective in s.objectives], "training runs")


def stage_profiles(s: Settings, record: dict) -> None:
    train_runs(s, record, [(profile, s.profile_objective, s.profile_variant, s.profile_steps, 1)
                           for profile in s.profiles], "profile runs")


def stage_evaluate(s: Settings, record: dict) -> None:
    """One timed evaluate() of a fresh (random) model over the validation shards."""
    cfg = run_config(s, s.profile, "baseline", s.eval_variant, "evaluate", 1)
    cfg.data.max_val_videos = s.eval_videos
    model = create_model(cfg.model, input_size=cfg.data.input_size).to(s.device)
    reset_peak(s.device)
    start = time.perf_counter()
    metrics = evaluate(model, cfg, "val", max_videos=s.eval_videos, progress=s.progress)
    if is_cuda(s.device):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    videos = metrics["num_videos"]
    record.update(videos=videos, frames=videos * s.frames, input_size=cfg.data.input_size,
                  eval_batch_size=cfg.train.eval_batch_size, amp_bf16=cfg.train.amp_bf16, eval_seconds=seconds,
                  videos_per_s=videos / seconds, frames_per_s=videos * s.frames / seconds,
                  peak_gpu_mb=peak_mb(s.device),
                  metrics={k: v for k, v in metrics.items() if not k.endswith(("_valid", "_skipped"))})


def bench_stage(command: str, extra: Callable[[Settings], list[str]], figures: Callable[[dict], dict]):
    """A stage running ``python -m ssync_lib.lab.bench <command>`` in a subprocess (its output shown and kept), then
    reading every CSV it wrote into the record and `figures(tables)` from them."""

    def run(s: Settings, record: dict) -> None:
        folder = s.work / "bench" / command
        shutil.rmtree(folder, ignore_errors=True)
        argv = [sys.executable, "-m", "ssync_lib.lab.bench", command, "--device", s.device, "--repeats",
                str(s.bench_repeats), "--out", str(folder), *extra(s)]
        record["command"] = " ".join(["python", *argv[1:]])
        record["output_tail"] = output = []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                         os.environ.get("PYTHONPATH")]))}
        with subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as proc:
            try:
                for line in proc.stdout:
                    output.append(line.rstrip())
                    del output[:-40]
                    if s.progress:
                        tqdm.write(line.rstrip())
            except BaseException:
                proc.kill()  # over the budget (or interrupted): the benchmark goes too
                raise
        if proc.returncode:
            raise RuntimeError(f"{record['command']} exited with {proc.returncode}: {output[-1] if output else ''}")
        tables = {path.stem: pd.read_csv(path) for path in sorted(folder.glob("*.csv"))}
        record["tables"] = {name: df.to_dict("records") for name, df in tables.items()}
        record["figures"] = figures(tables)

    return run


def _table(tables: dict, prefix: str) -> pd.DataFrame:
    names = [n for n in tables if n.startswith(prefix)]
    if not names:
        raise KeyError(f"the benchmark wrote no table '{prefix}*.csv' (it wrote {sorted(tables)})")
    return tables[names[0]]


def step_highlights(tables: dict) -> dict:
    """SSync's and dense alignment's share of their training step, and the two measured steps."""
    df = _table(tables, "step").set_index("part")
    return {"ssync_share_pct": float(df.loc[["SSync pseudo-labels", "SSync losses"], "ssync_step_pct"].sum()),
            "dense_share_pct": float(df.loc["dense alignment", "dense_step_pct"]),
            "ssync_step_ms": float(df.loc["measured step, ssync objective", "time_ms"]),
            "dense_step_ms": float(df.loc["measured step, dense objective", "time_ms"])}


def labels_highlights(tables: dict) -> dict:
    df = _table(tables, "labels")
    return {row["shape"]: {"speedup": float(row["speedup"]), "equal": bool(row["equal"]),
                           "vectorised_ms": float(row["vectorised_ms"])} for _, row in df.iterrows()}


def alignment_highlights(tables: dict) -> dict:
    """Per method, the largest T*N measured (not extrapolated) and its peak memory."""
    df = _table(tables, "alignment")
    measured = df[~df["extrapolated"].astype(bool)]
    return {"rows": len(df), "extrapolated": int(df["extrapolated"].astype(bool).sum()),
            "largest_measured": {m: {"tokens": int(g["tokens"].max()),
                                     "peak_mb": float(g.loc[g["tokens"].idxmax(), "peak_mb"])}
                                 for m, g in measured.groupby("method")}}


def _step_args(s: Settings) -> list[str]:
    return ["--profile", s.profile, "--batch", str(s.bench_batch)] + (["--set", *s.overrides] if s.overrides else [])


def _alignment_args(s: Settings) -> list[str]:
    sizes = ["--sizes", *map(str, s.alignment_sizes)] if s.alignment_sizes else []
    return ["--batch", str(s.bench_batch), "--budget-gb", str(s.alignment_budget_gb), "--max-seconds",
            str(s.alignment_max_seconds), "--no-rss", *sizes]


STAGE_FUNCTIONS = {
    "data": stage_data,
    "train": stage_train,
    "bench_step": bench_stage("step", _step_args, step_highlights),
    "bench_labels": bench_stage("labels", lambda s: ["--batch", str(s.bench_batch)], labels_highlights),
    "bench_alignment": bench_stage("alignment", _alignment_args, alignment_highlights),
    "evaluate": stage_evaluate,
    "profiles": stage_profiles,
}


# ----------------------------------------------------------------------------- report

def environment(device: str) -> dict:
    import timm

    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "timm": timm.__version__, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "float32_matmul_precision": torch.get_float32_matmul_precision(), "commit": commit_hash()}
    if is_cuda(device):
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update(gpu=props.name, gpu_memory_gb=props.total_memory / 2 ** 30,
                   compute_capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version())
    return env


def plain(value):
    """JSON-ready: numpy scalars to Python, NaN and infinities to None, paths to strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value) if isinstance(value, Path) else value


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "x".join(map(str, value))
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    """A Markdown table of `rows` with (key, header) columns; columns no row has are left out."""
    columns = [(k, h) for k, h in columns if any(k in r for r in rows)]
    if not rows or not columns:
        return ["(nothing recorded)", ""]
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return lines + [""]


RUN_COLUMNS = [("name", "run"), ("status", "status"), ("video_shape", "video B,T,3,H,W"), ("grid", "grid"),
               ("sec_per_step", "s/step (median)"), ("clips_per_s", "clips/s"), ("first_step_s", "first step s"),
               ("data_wait_ms", "data wait ms/step"), ("data_wait_share", "wait share"),
               ("peak_gpu_train_mb", "peak GPU MB (train)"), ("peak_gpu_mb", "peak GPU MB (with eval)"),
               ("recon_first", "recon first"), ("recon_last", "recon last"), ("all_finite", "finite"),
               ("seconds", "run s"), ("error", "error")]


BENCH_SECTIONS = (  # stage, CSV name (prefix), title, columns
    ("bench_step", "step", "Step breakdown (`bench step`)",
     [("part", "part"), ("time_ms", "ms"), ("ssync_step_pct", "% of SSync step"),
      ("dense_step_pct", "% of dense step")]),
    ("bench_labels", "labels", "Pseudo-label speed (`bench labels`)",
     [("shape", "shape"), ("batch", "batch"), ("loop_ms", "loop ms"), ("vectorised_ms", "pseudo_labels ms"),
      ("speedup", "speed-up"), ("equal", "equal")]),
    ("bench_alignment", "alignment", "Alignment cost (`bench alignment`)",
     [("method", "method"), ("tokens", "T*N"), ("batch", "batch"), ("peak_mb", "peak MB"), ("time_ms", "ms"),
      ("extrapolated", "extrapolated")]),
)


def render_markdown(report: dict) -> str:
    stages, env = report["stages"], report["environment"]
    lines = [f"# GPU check ({'dry run, CPU' if report['settings']['dry_run'] else env.get('gpu', 'CPU')})", "",
             f"`{report['command']}`, started {report['started']}, {report.get('seconds', 0):.0f} s, commit "
             f"`{env.get('commit')}`, torch {env['torch']} (CUDA {env['cuda']}), float32 matmul precision "
             f"'{env['float32_matmul_precision']}'.", "", "## Stages", ""]
    lines += md_table([{"stage": k, **v} for k, v in stages.items()],
                      [("stage", "stage"), ("status", "status"), ("seconds", "seconds"), ("budget_s", "budget s"),
                       ("error", "error")])
    lines += ["## Training (`ssync_lib.train.train`)", ""]
    lines += md_table(stages.get("train", {}).get("runs", []), RUN_COLUMNS)
    for name, table, title, columns in BENCH_SECTIONS:
        record = stages.get(name, {})
        tables = record.get("tables", {})
        lines += [f"## {title}", "", f"`{record.get('command', '')}`", ""]
        figures = record.get("figures", {})
        if name == "bench_step" and "ssync_share_pct" in figures:
            lines += [f"SSync (labels + losses): {figures['ssync_share_pct']:.2f}% of the SSync step; dense "
                      f"alignment: {figures['dense_share_pct']:.1f}% of the dense step.", ""]
        lines += md_table(next((rows for key, rows in tables.items() if key.startswith(table)), []), columns)
    lines += ["## Evaluation (`ssync_lib.evaluate.evaluate`, random model)", ""]
    lines += md_table([stages.get("evaluate", {})], [("status", "status"), ("videos", "videos"), ("frames", "frames"),
                                                     ("input_size", "input px"), ("eval_seconds", "seconds"),
                                                     ("videos_per_s", "videos/s"), ("frames_per_s", "frames/s"),
                                                     ("peak_gpu_mb", "peak GPU MB"), ("error", "error")])
    lines += ["## Other profiles (a few steps each)", ""]
    lines += md_table(stages.get("profiles", {}).get("runs", []),
                      [("name", "run"), ("status", "status"), ("backbone", "backbone"),
                       ("video_shape", "video B,T,3,H,W"), ("grid", "grid"), ("feature_dim", "D"),
                       ("num_slots", "S"), ("slot_dim", "d"), ("sec_per_step", "s/step"),
                       ("peak_gpu_train_mb", "peak GPU MB (train)"), ("error", "error")])
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report = plain(report)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    (out / "gpu_check.md").write_text(render_markdown(report))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        s = settings_from_args(args)
    except (ValueError, KeyError) as err:
        parser.error(str(err))
    if is_cuda(s.device) and not torch.cuda.is_available():
        parser.error(f"--device {s.device} but torch.cuda.is_available() is False: on a machine without a GPU "
                     f"run the CPU dry run (--dry-run)")
    started = time.perf_counter()
    report = {"command": " ".join(["python scripts/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
              "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "environment": environment(s.device), "settings": asdict(s), "stages": {}}
    try:
        for name, stage in STAGE_FUNCTIONS.items():
            record = report["stages"][name] = {}
            if name not in s.stages:
                record.update(status="skipped", error="not in --stages")
                continue
            tqdm.write(f"== gpu_check: {name} (budget {s.budgets[name]:.0f} s)")
            attempt(record, s.budgets[name], lambda r: stage(s, r))
            release(s.device)
            report["seconds"] = time.perf_counter() - started
            write_report(report, s.out)
    finally:
        report["seconds"] = time.perf_counter() - started
        write_report(report, s.out)
    for name, record in report["stages"].items():
        print(f"{name:16s} {record['status']:8s} {record.get('seconds', 0):7.1f} s  {record.get('error', '')}")
    print(f"wrote {s.out / 'gpu_check.json'} and {s.out / 'gpu_check.md'} in {report['seconds']:.0f} s")
    return 0 if all(r["status"] == "ok" for n, r in report["stages"].items() if n in s.stages) else 1


if __name__ == "__main__":
    raise SystemExit(main())
