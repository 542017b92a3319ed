"""The GPU check's settings: the sizes of the full check and of the dry run, the flags, each run's config."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from ssync_lib.config import Config, apply_overrides, get_config, project_root

PROJECT_ROOT = project_root()

STAGES = ("data", "train", "bench_step", "bench_labels", "bench_alignment", "evaluate", "profiles")
# Seconds per stage: 455 s in all, plus start-up, inside the 8 minutes.
BUDGETS = {"data": 25, "train": 230, "bench_step": 40, "bench_labels": 45, "bench_alignment": 45, "evaluate": 25,
           "profiles": 45}
VARIANT_PARTS = ("fp32", "bf16", "compile")

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


def build_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, epilog="Stages: " + ", ".join(STAGES),
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
