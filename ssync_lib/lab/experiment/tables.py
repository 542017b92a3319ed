"""Markdown tables of a sweep summary: mean +- std over seeds per objective and slot count (``markdown_table``), and
live runs beside the committed ones (``compare_runs``)."""
from __future__ import annotations

import pandas as pd

from ssync_lib.errors import ConfigKeyError
from ssync_lib.lab.experiment.columns import (COLUMN_SETS, COLUMNS, METRIC_KEYS, PREMISE_FRACTIONS, SHARING_KEYS,
                                              TEST, TEST_COLUMNS, plain_name)


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
