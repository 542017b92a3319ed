"""Command line: ``python -m ssync_lib <command> ...`` (also installed as ``ssync``).

    python -m ssync_lib train --profile cpu --objective ssync --set max_steps=500 model.num_slots=7
    python -m ssync_lib train --profile cpu --objective ssync --resume
    python -m ssync_lib evaluate --run runs/cpu-ssync-s5-seed0
    torchrun --nproc_per_node 2 -m ssync_lib train --profile movi_c --objective ssync

Each command is a pair ``add_<command>_parser(subparsers)`` / ``run_<command>(args)``; a new
command adds its pair and one entry in ``COMMANDS``.

Bad input (``errors.UserInputError``: config, data, checkpoint, weights) prints one message and its fix to
stderr and exits with status 2; ``--traceback`` or ``SSYNC_DEBUG=1`` shows the traceback instead
(``docs/bad-input.md``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys

from ssync_lib.cli_args import add_data_root, add_overrides, add_profile
from ssync_lib.config import get_config
from ssync_lib.errors import Interrupted, UserInputError
from ssync_lib.objectives.objective import OBJECTIVES


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (one loop for the CLI and the notebooks)")
    add_profile(p)
    p.add_argument("--objective", choices=OBJECTIVES, help="sets objective.name")
    add_overrides(p)
    add_data_root(p)
    p.add_argument("--name", help="run folder name under train.run_root (sets train.name)")
    p.add_argument("--resume", action="store_true", help="continue from <run>/last.pt")
    p.add_argument("--init-from", metavar="CKPT", help="start from another run's checkpoint (train.init_mode)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume / branch even if the config changes the model, objective, data or schedule "
                        "(refused otherwise)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from ssync_lib.run_log import json_safe
    from ssync_lib.train import train

    overrides = list(args.overrides)
    if args.objective:
        overrides.append(f"objective.name={args.objective}")
    if args.name:
        overrides.append(f"train.name={args.name}")
    cfg = get_config(args.profile, overrides)
    result = train(cfg, resume=args.resume, progress=not args.no_progress, init_from=args.init_from,
                   allow_config_change=args.allow_config_change)
    if result.metrics:
        print(f"run folder: {result.run_dir}")
        print(json.dumps(json_safe(result.metrics), indent=2))
    return 0


def add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="FG-ARI / mBO / mIoU of a checkpoint on whole validation videos")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="run folder (evaluates its last.pt, writes metrics.json there; see --out)")
    which.add_argument("--checkpoint", help="a checkpoint file (the JSON goes beside it; see --out)")
    which.add_argument("--official", metavar="PATH", help="a public SSync / SlotContrast checkpoint (Lightning .ckpt "
                       "or state dict), converted by ssync_lib.official; with --profile")
    add_profile(p, default="movi_c", what="with --official: the profile it was trained with")
    p.add_argument("--split", default="val", choices=("val", "test"),
                   help="data split (whole videos); test: MOVi-layout data with a test/ folder (movi-mini)")
    p.add_argument("--max-videos", type=int, help="evaluate the first N videos only")
    add_overrides(p, example="train.device=cpu data.root=...", what="overrides of the checkpoint's config")
    add_data_root(p)
    p.add_argument("--out", metavar="PATH",
                   help="write the metrics JSON here (default: beside the checkpoint; metrics-data-<name>.json for "
                        "other data; under runs/evaluate/ for a checkpoint in checkpoints/, never over a file there)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from ssync_lib.evaluate import evaluate_checkpoint, evaluate_official, evaluate_run
    from ssync_lib.run_log import json_safe

    kwargs = dict(split=args.split, max_videos=args.max_videos, overrides=args.overrides,
                  progress=not args.no_progress, out=args.out)
    if args.official:
        metrics = evaluate_official(args.official, args.profile, **kwargs)
    else:
        metrics = evaluate_run(args.run, **kwargs) if args.run else evaluate_checkpoint(args.checkpoint, **kwargs)
    print(json.dumps(json_safe(metrics), indent=2))
    return 0


def add_experiment_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="objectives x seeds x slot counts, trained, evaluated, summarised")
    add_profile(p)
    p.add_argument("--objectives", default=",".join(OBJECTIVES), help="comma-separated objective names")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--slots", default="", help="comma-separated slot counts (default: the profile's)")
    p.add_argument("--branch", default="ssync",
                   help="objectives that start from the baseline's checkpoint at the end of SSync's warm-up "
                        "('' = none)")
    p.add_argument("--name", help="sweep folder under <run_root>/experiments (default: the profile)")
    add_overrides(p, example="train.eval_every=2000")
    add_data_root(p)
    p.add_argument("--results", help="copy the summary, plots and per-run metrics to this folder, with claims.md: "
                                     "the paper's claims 1-2 restated from the summary (validation; also the test "
                                     "split with --test-split)")
    p.add_argument("--summary-only", action="store_true", help="summarise the finished runs, train nothing")
    p.add_argument("--test-split", action="store_true",
                   help="also score every finished run on the held-out test split (metrics-test.json, when missing "
                        "or older than last.pt; levels with a test/ split: movi-mini) and add test/ columns to the "
                        "summary; with --summary-only: score the finished runs that lack it, then summarise")
    p.add_argument("--on-change", choices=("refuse", "rerun"), default="refuse",
                   help="runs of the sweep that exist with another config: refuse (default), or train them again "
                        "(the old ones move to <sweep>/replaced/)")
    p.add_argument("--columns", default="",
                   help="comma-separated summary.csv columns to print, or a named set (metrics, premises, and "
                        "metrics-test, premises-test with --test-split; experiment.COLUMN_SETS); default: all; "
                        "table.md keeps all")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_experiment)


def run_experiment(args: argparse.Namespace) -> int:
    from ssync_lib.config import resolve_path
    from ssync_lib.lab.experiment import (check_test_split, command_line, markdown_table, parse_list, publish,
                                          run_sweep, score_finished, summarise, sweep_from_args)

    sweep = sweep_from_args(args)
    if args.summary_only:
        if args.test_split:
            check_test_split(sweep)
            score_finished(sweep.folder(), progress=not args.no_progress)
        summary = summarise(sweep.folder(), args.test_split)
    else:
        summary = run_sweep(sweep, progress=not args.no_progress, on_change=args.on_change,
                            test_split=args.test_split)
    print(markdown_table(summary, parse_list(args.columns) or None))
    if args.results:
        from ssync_lib.lab.claims import claims_document
        from ssync_lib.lab.experiment.columns import TEST

        results = resolve_path(args.results)
        publish(sweep.folder(), results, command_line(sys.argv[1:]))
        (results / "claims.md").write_text(claims_document(summary, sweep.name, test_prefix=TEST))
    return 0 if len(summary) else 1


def add_pretrain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised DINO + iBOT pretraining of the encoder's ViT")
    p.add_argument("--profile", default="cpu", help="recipe and data of this profile (smoke, cpu, cpu_tex, "
                   "cpu_tex_mild; default cpu)")
    add_overrides(p, example="dino.mix=data/synth-easy,data/movi-mini train.max_steps=2000",
                  what="overrides (sections data, vit, dino, train: ssync_lib/pretrain/config.py)")
    add_data_root(p)
    p.add_argument("--name", help="run folder name under train.run_root (sets train.name)")
    p.add_argument("--resume", action="store_true", help="continue from <run>/last.pt")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume even if the config changes what the run computes (refused otherwise)")
    p.add_argument("--export", nargs="?", const="", metavar="OUT",
                   help="train nothing: write the teacher ViT of <run>/last.pt as safetensors (default "
                        "<run>/vit.safetensors, or OUT) with its JSON beside it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    from ssync_lib.config import resolve_path
    from ssync_lib.pretrain import export_weights, get_pretrain_config, pretrain

    overrides = list(args.overrides) + ([f"train.name={args.name}"] if args.name else [])
    cfg = get_pretrain_config(args.profile, overrides)
    run_dir = resolve_path(cfg.train.run_root) / cfg.run_name
    if args.export is not None:
        from ssync_lib.pretrain.features import curves_figure
        from ssync_lib.pretrain.loop import WEIGHTS
        from ssync_lib.run_lock import check_not_busy

        out = resolve_path(args.export) if args.export else run_dir / WEIGHTS
        if out.resolve().is_relative_to(run_dir.resolve()):  # not into a folder that a pretraining is writing
            check_not_busy(run_dir, out, writes_own=WEIGHTS, elsewhere="--export OUT")
        weights = export_weights(run_dir, out=out)
        curves = curves_figure(run_dir / "log.csv", weights.with_name(weights.stem + "-curves.png"))
        print(f"wrote {weights}, {weights.with_suffix('.json')} and {curves}")
        return 0
    result = pretrain(cfg, resume=args.resume, progress=not args.no_progress,
                      allow_config_change=args.allow_config_change)
    print(f"run folder: {result.run_dir}")
    return 0


def add_features_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="k-means video FG-ARI of frozen features (pixels, random, a pretrained "
                                        "ViT per block) on the validation videos of each level, and figures")
    p.add_argument("--weights", help="a pretrained ViT (.safetensors with its .json beside it, from `pretrain`); "
                                     "without it only the pixel and random baselines")
    p.add_argument("--profile", default="cpu", help="the profile whose encoder is the random baseline (default cpu)")
    p.add_argument("--levels", default="data/synth-easy,data/synth-tex",
                   help="comma-separated data folders ('source:folder' for a reader other than movi)")
    p.add_argument("--max-videos", type=int, default=50, help="validation videos per level (default 50)")
    p.add_argument("--out", default="results/pretrain", help="folder for the table (CSV, markdown) and figures")
    p.add_argument("--no-figures", action="store_true", help="the table only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_features)


def run_features(args: argparse.Namespace) -> int:
    from ssync_lib.pretrain.features import feature_table_command

    print(feature_table_command(args, sys.argv[1:]))
    return 0


COMMANDS = (add_train_parser, add_evaluate_parser, add_experiment_parser, add_pretrain_parser, add_features_parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ssync_lib", description=__doc__.split("\n")[0])
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error (also SSYNC_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    debug = args.traceback or os.environ.get("SSYNC_DEBUG", "") not in ("", "0")
    try:
        return args.func(args)
    except UserInputError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C: what is safe on disk and how to continue, no traceback
        if debug:
            raise
        print(f"interrupted: {interrupted_message(err, args, argv)}", file=sys.stderr)
        return 130


def interrupted_message(err: KeyboardInterrupt, args: argparse.Namespace, argv: list[str]) -> str:
    """The message of Ctrl-C: training's note (``errors.Interrupted``: the last checkpoint) and the command that
    continues (train, pretrain: the same with --resume when a checkpoint was written; experiment: the same, finished
    runs are kept)."""
    message = err.message if isinstance(err, Interrupted) else "stopped by Ctrl-C"
    again = ["python", "-m", "ssync_lib", *argv]
    if args.command in ("train", "pretrain"):
        resumable = isinstance(err, Interrupted) and "--resume" in err.fix  # a checkpoint was written
        if resumable and "--resume" not in argv:
            again.append("--resume")
        how = "resume with" if resumable else "run it again:"
    elif args.command == "experiment":
        how = "continue the sweep with the same command (finished runs are kept, an interrupted one resumes):"
    else:
        how = "run it again:"
    return f"{message}\nfix: {how} {shlex.join(again)}"


def _log_to_stderr() -> None:
    """The library's notes (``logging.getLogger("ssync_lib")``, e.g. where evaluate wrote) on stderr."""
    logger = logging.getLogger("ssync_lib")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr())
        logger.setLevel(logging.INFO)


class _Stderr(logging.Handler):
    """Plain messages to the current ``sys.stderr`` (looked up per message, as pytest swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(record.getMessage(), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
