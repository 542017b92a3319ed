"""The held-out test split of a sweep's runs (``--test-split``): whether a run is scored on it (``metrics-test.json``
not older than its ``last.pt``), scoring it with ``evaluate.evaluate_run`` (the sweep is one of those that evaluate),
and its ``test/`` columns of the summary."""
from __future__ import annotations

import warnings
from pathlib import Path

from ssync_lib.checkpoint import LAST
from ssync_lib.lab.experiment.columns import SUMMARY_KEYS, TEST
from ssync_lib.run_log import read_metrics

TEST_METRICS = "metrics-test.json"  # a run's evaluation on the test split (evaluate.metrics_destination's name)


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
