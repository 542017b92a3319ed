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
Modules, one job each: ``sweep`` (the runs, branching, ``run_sweep``), ``held_out`` (the test split's scores),
``summary`` (``summarise`` and the summaries' rows), ``tables`` (markdown), ``columns`` (keys, sets, plain names),
``publish`` (a results folder), ``arguments`` (the command's arguments). The names below are importable from
``ssync_lib.lab.experiment`` as before.
"""
from ssync_lib.lab.experiment.arguments import command_line, parse_list, sweep_from_args
from ssync_lib.lab.experiment.columns import (COLUMN_SETS, COLUMNS, LABEL_KEYS, METRIC_KEYS, PLAIN_NAMES,
                                              PREMISE_FRACTIONS, PREMISE_KEYS, SHARING_KEYS, SUMMARY_KEYS, TEST,
                                              TEST_COLUMNS, TEST_KEYS, plain_name)
from ssync_lib.lab.experiment.held_out import TEST_METRICS, row_on_test, score_finished, score_test, scored_on_test
from ssync_lib.lab.experiment.publish import publish
from ssync_lib.lab.experiment.summary import (branch_points, premise_rows, summarise, summary_row, sweep_curves,
                                              variant_rows)
from ssync_lib.lab.experiment.sweep import (BRANCHABLE, Sweep, branch_step, changed_runs, check_changes,
                                            check_test_split, run_configs, run_sweep)
from ssync_lib.lab.experiment.tables import compare_runs, markdown_table

__all__ = ["command_line", "parse_list", "sweep_from_args", "COLUMN_SETS", "COLUMNS", "LABEL_KEYS", "METRIC_KEYS",
           "PLAIN_NAMES", "PREMISE_FRACTIONS", "PREMISE_KEYS", "SHARING_KEYS", "SUMMARY_KEYS", "TEST", "TEST_COLUMNS",
           "TEST_KEYS", "plain_name", "TEST_METRICS", "row_on_test", "score_finished", "score_test", "scored_on_test",
           "publish", "branch_points", "premise_rows", "summarise", "summary_row", "sweep_curves", "variant_rows",
           "BRANCHABLE", "Sweep", "branch_step", "changed_runs", "check_changes", "check_test_split", "run_configs",
           "run_sweep", "compare_runs", "markdown_table"]
