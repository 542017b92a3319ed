"""The benchmarks' command line: ``python -m ssync_lib.lab.bench <alignment | labels | step | metrics>``.

    python -m ssync_lib.lab.bench alignment [--sizes 64 256 576 1024 2304 5476] [--batch 1] [--chunk 256]
    python -m ssync_lib.lab.bench labels [--batch 64]      # MOVi-C and YouTube-VIS shapes against the loop reference
    python -m ssync_lib.lab.bench step --profile movi_c --batch 1   # random weights, on the CPU too
    python -m ssync_lib.lab.bench step --profile cpu --against model.feature_layer=last --tag last --rounds 3
    python -m ssync_lib.lab.bench metrics
    python -m ssync_lib.lab.bench gradients --checkpoint checkpoints/cpu/cpu-baseline-s5-seed0/last.pt [--clips 8]

Every subcommand prints a table, writes runs/bench/<name>.csv and a seaborn plot runs/bench/<name>.png (<name>:
alignment (+ alignment_summary.csv), labels, step_<profile> (step_<profile>_<tag> with --against: both
configurations in one table), metrics, gradients_<checkpoint>; --out for another folder), on the CPU or a GPU
(--device). Times are the best of --repeats runs after a warm-up; the thread count (--threads, else torch's
default, which follows OMP_NUM_THREADS) is recorded in every table. Peak memory is torch's own
(bench.memory.peak_memory: profiler allocation events on the CPU, torch.cuda.max_memory_allocated on a GPU), above
what was allocated before the run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from ssync_lib.cli_args import add_overrides, add_profile
from ssync_lib.errors import ConfigError, UserInputError
from ssync_lib.lab import viz
from ssync_lib.lab.bench.alignment import (ALIGNMENT_SIZES, alignment_summary, alignment_targets, check_alignment_sizes,
                                          growth_exponents, run_alignment)
from ssync_lib.lab.bench.labels import run_labels
from ssync_lib.lab.bench.metric_speed import run_metrics
from ssync_lib.lab.bench.step import compare_step, run_step, step_ratios
from ssync_lib.lab.bench.timing import CLOCKS, DEFAULT_OUT, MB, save_table
from ssync_lib.lab.gradients import gradient_report_checkpoint
from ssync_lib.run_lock import check_writable


def _print(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


def _cmd_alignment(args) -> list[tuple[pd.DataFrame, object, str]]:
    df = run_alignment(args.sizes, args.batch, args.frames, args.chunk, args.slots, args.topk, args.merge_iou,
                       args.repeats, args.budget_gb, args.max_seconds, args.device, rss=not args.no_rss)
    columns = ["method", "tokens", "peak_mb", "rss_mb", "time_ms", "bytes_per_pair", "extrapolated", "max_diff"]
    if "rss_bytes" in df:
        df["rss_mb"] = df["rss_bytes"] / MB
    _print("alignment: forward + backward per batch", df[[c for c in columns if c in df]])
    summary = alignment_summary(df)
    _print("dense / SSync", summary)
    _print("growth exponents (log-log slope over measured sizes >= 256)", growth_exponents(df))
    print("\n" + "\n".join(alignment_targets(df)))
    return [(df, viz.plot_alignment(df), "alignment"), (summary, None, "alignment_summary")]


def _cmd_labels(args):
    df = run_labels(batch=args.batch, repeats=args.repeats, device=args.device)
    _print("SSync pseudo-labels: vectorised against the loop reference (outputs checked equal)", df)
    return [(df, viz.plot_labels(df), "labels")]


def _cmd_step(args):
    if args.against:
        return _cmd_step_against(args)
    df = run_step(args.profile, args.batch, args.overrides, args.repeats, args.device, clock=args.clock)
    _print(f"training step parts at profile '{args.profile}'", df[["part", "time_ms", "ssync_step_pct",
                                                                    "dense_step_pct"]])
    ssync = df.set_index("part").loc[["SSync pseudo-labels", "SSync losses"], "ssync_step_pct"].sum()
    print(f"\nSSync (labels + losses): {ssync:.2f}% of the SSync training step (target <= 3% at MOVi-C on a GPU)")
    return [(df, viz.plot_step(df), f"step_{args.profile}")]


def _cmd_step_against(args):
    """--against: the profile's step and the step with the --against overrides, one CSV step_<profile>_<tag>."""
    variants = {"profile": [], args.tag: args.against}
    df = compare_step(args.profile, variants, args.batch, args.overrides, args.repeats, args.rounds, args.device,
                      clock=args.clock)
    ratios = step_ratios(df, "profile", args.tag)
    _print(f"training step parts at profile '{args.profile}' against '{args.tag}' ({' '.join(args.against)}); "
           f"best of {args.rounds} x {args.repeats} runs, {args.clock} clock", ratios)
    for objective in ("baseline", "ssync", "dense"):
        ratio = ratios.set_index("part").loc[f"measured step, {objective} objective", "ratio"]
        print(f"measured {objective} step: {args.tag} / profile = {ratio:.3f}x")
    return [(df, viz.plot_step_comparison(df, "profile", args.tag), f"step_{args.profile}_{args.tag}")]


def _cmd_metrics(args):
    df = run_metrics(64 if args.batch is None else args.batch, 24 if args.frames is None else args.frames,
                     repeats=args.repeats, device=args.device)
    _print("metrics", df[["function", "time_ms"]])
    return [(df, viz.plot_metrics(df), "metrics")]


def _cmd_gradients(args):
    df = gradient_report_checkpoint(args.checkpoint, args.overrides, args.clips, device=args.device)
    cosines = [c for c in df.columns if c.startswith("cos_")]
    _print(f"per-term gradients at {args.checkpoint} (step {df['step'].iloc[0]}, {df['clips'].iloc[0]} clips)",
           df[["group", "term", "loss", "norm", *cosines]])
    name = Path(args.checkpoint).parent.name if Path(args.checkpoint).name == "last.pt" else Path(args.checkpoint).stem
    return [(df, viz.plot_gradients(df), f"gradients_{name}")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ssync_lib.lab.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    common.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up; the best is kept")
    common.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's, from OMP_NUM_THREADS)")
    common.add_argument("--out", default=DEFAULT_OUT, help=f"folder of the CSV and PNG (default {DEFAULT_OUT})")
    p = sub.add_parser("alignment", parents=[common], help="dense alignment (direct, chunked) against SSync")
    p.add_argument("--sizes", type=int, nargs="+", default=list(ALIGNMENT_SIZES), help="T*N values")
    p.add_argument("--batch", type=int, default=1, help="clips per batch (default 1)")
    p.add_argument("--frames", type=int, default=4, help="T: frames per group (default 4)")
    p.add_argument("--chunk", type=int, default=256, help="anchor rows per chunk of the chunked dense loss")
    p.add_argument("--slots", type=int, default=11)
    p.add_argument("--topk", type=int, default=8, help="dense top-k positives per frame (k = topk * T)")
    p.add_argument("--merge-iou", type=float, default=0.7)
    p.add_argument("--budget-gb", type=float, default=8.0, help="larger predicted peaks are extrapolated")
    p.add_argument("--max-seconds", type=float, default=60.0, help="longer predicted runs are extrapolated")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS cross-check (CPU, Linux)")
    p.set_defaults(run=_cmd_alignment)
    p = sub.add_parser("labels", parents=[common], help="pseudo_labels against the loop reference")
    p.add_argument("--batch", type=int, help="batch of both shapes (default 64)")
    p.set_defaults(run=_cmd_labels)
    p = sub.add_parser("step", parents=[common], help="share of each part of a training step")
    add_profile(p)
    p.add_argument("--batch", type=int, help="batch size (default: the profile's)")
    add_overrides(p, example="objective.dense_chunk=256")
    p.add_argument("--against", nargs="+", metavar="KEY=VALUE",
                   help="also time the step with these overrides on top of --set (another encoder, say): both in one "
                        "CSV, step_<profile>_<tag> (column variant: profile / <tag>), and the ratio of each part")
    p.add_argument("--tag", default="against", help="with --against: the name of its variant and of the CSV "
                                                    "(default against)")
    p.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                   help="wall: elapsed time (default) | cpu: this process's CPU time, which other jobs on a shared "
                        "machine do not inflate (CPU only; with one thread, --threads 1)")
    p.add_argument("--rounds", type=int, default=1, help="with --against: the variants take turns this many times, "
                                                        "each part keeps its best (default 1)")
    p.set_defaults(run=_cmd_step)
    p = sub.add_parser("metrics", parents=[common], help="time of the metrics on a MOVi-sized evaluation batch")
    p.add_argument("--batch", type=int, help="videos (default 64)")
    p.add_argument("--frames", type=int, help="frames per video (default 24)")
    p.set_defaults(run=_cmd_metrics)
    p = sub.add_parser("gradients", parents=[common],
                       help="per-term gradient norms and cosines at a checkpoint (lab.gradients.gradient_report)")
    p.add_argument("--checkpoint", required=True, help="a checkpoint, e.g. runs/<run>/last.pt")
    p.add_argument("--clips", type=int, default=8, help="training clips in the batch (default 8: the cpu batch)")
    add_overrides(p, example="data.root=data/synth-easy", what="overrides of the checkpoint's config")
    p.set_defaults(run=_cmd_gradients)
    return parser


# (option, smallest value) of the integer options, checked before any work (None: the option was not given)
AT_LEAST = (("repeats", 1), ("threads", 1), ("batch", 1), ("frames", 1), ("chunk", 1), ("slots", 1), ("topk", 1),
            ("clips", 1), ("rounds", 1))


def check_args(args: argparse.Namespace) -> None:
    """Refuse, before any work, values that would crash a benchmark or be replaced silently (a zero batch became the
    default, zero repeats were accepted), with the option's name; an --out that is a file or cannot be written;
    alignment sizes below one group of --frames tokens or whose inputs alone exceed --budget-gb."""
    problems = []
    for name, low in AT_LEAST:
        value = getattr(args, name, None)
        if value is not None and value < low:
            problems.append(f"--{name} {value}: must be an integer >= {low}")
    for name in ("budget_gb", "max_seconds"):
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            problems.append(f"--{name.replace('_', '-')} {value}: must be a number > 0")
    if getattr(args, "merge_iou", None) is not None and not 0 < args.merge_iou <= 1:
        problems.append(f"--merge-iou {args.merge_iou}: must be in (0, 1]")
    if getattr(args, "clock", "wall") == "cpu" and args.device != "cpu":
        problems.append(f"--clock cpu with --device {args.device}: the CPU time does not see the GPU's work; use "
                        f"--clock wall")
    tag = getattr(args, "tag", None)
    if tag is not None and (tag == "profile" or not tag.replace("-", "").replace("_", "").isalnum()):
        problems.append(f"--tag {tag!r}: must be a plain name (letters, digits, - and _), other than 'profile'")
    if problems:
        raise ConfigError(f"python -m ssync_lib.lab.bench {args.command}:\n  " + "\n  ".join(problems),
                          fix="change these values (python -m ssync_lib.lab.bench " + args.command + " --help)")
    if args.command == "alignment":  # --sizes, --budget-gb
        check_alignment_sizes(args.sizes, args.frames, args.batch, args.chunk, args.slots, args.budget_gb)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; it takes a folder", fix="give a folder (created if missing)")
    check_writable(out / "x.csv", elsewhere="--out FOLDER")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one benchmark. Bad input (``errors.UserInputError``: arguments, a missing checkpoint, ...) prints one
    message with its fix and returns 2 (``--traceback``: raise it); Ctrl-C returns 130."""
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        print(f"{args.command} on {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
        for df, fig, name in args.run(args):
            for path in save_table(df, name, fig, args.out):
                print(f"wrote {path}")
    except UserInputError as err:
        if args.traceback:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.traceback:
            raise
        print("interrupted: stopped by Ctrl-C; the tables of this command were not written\nfix: run it again",
              file=sys.stderr)
        return 130
    return 0

