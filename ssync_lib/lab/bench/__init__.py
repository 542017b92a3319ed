"""Benchmarks, one module each, one command line (``cli.py``): the cost of alignment, dense against selective
(``alignment``), the speed of SSync's pseudo-labels (``labels``), the parts of a training step (``step``) and the
metrics (``metric_speed``); docs/method.md §3 cost, §4.7. Their figures are in ``ssync_lib.lab.viz.bench``.

    python -m ssync_lib.lab.bench alignment | labels | step | metrics     # see cli.py

The notebooks call the plain functions:

    df = run_alignment(sizes=(64, 256), batch=1); viz.plot_alignment(df, "alignment.png")
    run_labels(shapes={"tiny": LabelShape(2, 4, 5, (6, 6), 0.7)}); run_step("smoke"); run_metrics(batch=2)
    compare_step("smoke", {"profile": [], "wider": ["model.slot_dim=32"]})   # one table, column variant
"""
from ssync_lib.lab.bench.alignment import (ALIGNMENT_METHODS, ALIGNMENT_SIZES, alignment_summary, alignment_targets,
                                       growth_exponents, run_alignment)
from ssync_lib.lab.bench.cli import main
from ssync_lib.lab.bench.labels import LABEL_SHAPES, LabelShape, clip_logits, run_labels
from ssync_lib.lab.bench.metric_speed import run_metrics
from ssync_lib.lab.bench.step import DENSE_STEP, SSYNC_STEP, compare_step, run_step, step_ratios

__all__ = ["ALIGNMENT_METHODS", "ALIGNMENT_SIZES", "alignment_summary", "alignment_targets", "growth_exponents",
           "run_alignment", "main", "LABEL_SHAPES", "LabelShape", "clip_logits", "run_labels", "run_metrics",
           "DENSE_STEP", "SSYNC_STEP", "compare_step", "run_step", "step_ratios"]
