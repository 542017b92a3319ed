"""Two run folders compared file by file: is a re-run the same run?

    python scripts/compare_runs.py runs/experiments/movimini-v1-s0branch/ssync-s11-seed0 \
        results/movi-mini/runs/ssync-s11-seed0

For ``log.csv`` and ``eval.csv``: the steps both runs logged and the largest |difference| over their shared numeric
columns at those steps (timing columns, ``sec_*``, left out: they measure the machine, not the run). For
``metrics.json`` and ``metrics-test.json`` (records of ``run_log.write_metrics``, read with ``run_log.read_metrics``,
so a null metric is NaN): the shared metrics and their largest |difference|. A file that only one folder has is named.
Exit status 0 when every shared value agrees within ``--atol`` (default 0: bit for bit), 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from ssync_lib.lab.experiment.held_out import TEST_METRICS
from ssync_lib.run_log import read_metrics

TABLES = ("log.csv", "eval.csv")
METRICS = ("metrics.json", TEST_METRICS)


def compare_tables(a: pd.DataFrame, b: pd.DataFrame) -> tuple[int, float]:
    """(steps both tables hold, largest |a - b| over their shared numeric columns at those steps; 0 if none; a NaN
    on one side only counts as infinitely far)."""
    both = a.merge(b, on="step", suffixes=("_a", "_b"))
    columns = [c for c in a.columns if c != "step" and not c.startswith("sec") and f"{c}_b" in both
               and pd.api.types.is_numeric_dtype(both[f"{c}_a"]) and pd.api.types.is_numeric_dtype(both[f"{c}_b"])]
    def diff(x: pd.Series, y: pd.Series) -> float:
        if (x.isna() ^ y.isna()).any():  # a NaN on one side only: as far apart as can be
            return math.inf
        return float((x - y).abs().max()) if (x.notna()).any() else 0.0
    diffs = [diff(both[f"{c}_a"], both[f"{c}_b"]) for c in columns if len(both)]
    return len(both), max(diffs, default=0.0)


def numeric_metrics(path: Path) -> dict[str, float]:
    """The numeric metrics of a ``metrics.json`` record (its nulls as NaN)."""
    return {k: float(v) for k, v in read_metrics(path)["metrics"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def compare_metrics(a: dict[str, float], b: dict[str, float]) -> tuple[int, float]:
    """(keys both hold, largest |a - b| over them; a NaN on one side only counts as infinitely far)."""
    keys = sorted(set(a) & set(b))
    def diff(k):
        if math.isnan(a[k]) or math.isnan(b[k]):
            return 0.0 if math.isnan(a[k]) and math.isnan(b[k]) else math.inf
        return abs(a[k] - b[k])
    return len(keys), max((diff(k) for k in keys), default=0.0)


def compare_runs(run_a: Path, run_b: Path, atol: float = 0.0) -> tuple[list[str], bool]:
    """One line per file and whether every shared value of the two run folders agrees within ``atol``."""
    lines, same = [], True
    for name in TABLES + METRICS:
        fa, fb = run_a / name, run_b / name
        if not (fa.exists() and fb.exists()):
            if fa.exists() or fb.exists():
                lines.append(f"{name}: only in {fa.parent if fa.exists() else fb.parent}")
            continue
        if name in TABLES:
            a, b = pd.read_csv(fa), pd.read_csv(fb)
            shared, worst = compare_tables(a, b)
            lines.append(f"{name}: {shared} shared steps ({len(a)} and {len(b)} rows), largest |difference| {worst:.3g}")
        else:
            a, b = numeric_metrics(fa), numeric_metrics(fb)
            shared, worst = compare_metrics(a, b)
            fg_ari = "decoder/video/fg_ari"
            tail = f", decoder FG-ARI {a[fg_ari]:.4f} and {b[fg_ari]:.4f}" if fg_ari in a and fg_ari in b else ""
            lines.append(f"{name}: {shared} shared metrics, largest |difference| {worst:.3g}{tail}")
        same &= worst <= atol
    return lines, same


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", type=Path, help="a run folder (log.csv, eval.csv, metrics.json, ...)")
    p.add_argument("run_b", type=Path, help="the run folder to compare it with")
    p.add_argument("--atol", type=float, default=0.0, help="largest |difference| still counted as equal (default 0)")
    args = p.parse_args(argv)
    for run in (args.run_a, args.run_b):
        if not run.is_dir():
            p.error(f"{run} is not a folder; fix: pass a run folder, e.g. runs/experiments/<sweep>/<run>")
    lines, same = compare_runs(args.run_a, args.run_b, args.atol)
    if not lines:
        p.error(f"neither {args.run_a} nor {args.run_b} holds any of {', '.join(TABLES + METRICS)}; "
                "fix: pass run folders written by train or experiment")
    print(f"{args.run_a} against {args.run_b}:")
    print("\n".join(f"  {line}" for line in lines))
    print(f"  {'the same run' if same else 'different'} (tolerance {args.atol:g})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
