"""Results as plots: training curves, metric bars, the slot-count sweep (with the paper's numbers), the per-run
curves of a sweep and the data set's object statistics.

One vocabulary everywhere: ``objective`` (baseline | dense | ssync), ``slots``, ``seed``; metric columns as
``evaluate`` names them (``decoder/video/fg_ari``) or their short names (``fg_ari``) in per-map tables.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from ssync_lib.objectives.objective import OBJECTIVES

# Method notes section 4.8: video FG-ARI / mBO on MOVi-C against the slot count, as reported.
PAPER_SLOT_ROBUSTNESS = pd.DataFrame(
    [(7, "baseline", 74.9, 27.9), (7, "dense", 76.5, 31.6), (7, "ssync", 76.9, 39.8),
     (11, "baseline", 69.3, 32.7), (11, "dense", 74.3, 34.5), (11, "ssync", 79.4, 39.5),
     (15, "baseline", 61.8, 31.2), (15, "dense", 72.8, 31.1), (15, "ssync", 78.8, 41.0)],
    columns=["slots", "objective", "fg_ari", "mbo"],
)
NOT_LOSSES = ("epoch", "lr", "grad_norm", "sec_per_step")  # columns of the training log that are not loss terms
SWEEP_METRICS = ("decoder/video/fg_ari", "decoder/video/mbo")


def objective_order(present) -> list[str]:
    """The objectives in ``present`` in the order of every legend (baseline, dense, ssync), unknown ones last."""
    present = set(present)
    return [o for o in OBJECTIVES if o in present] + sorted(present - set(OBJECTIVES))


# ----------------------------------------------------------------------------- curves and tables

def plot_loss_curves(history: pd.DataFrame, columns: Sequence[str] | None = None, x: str = "step",
                     logy: bool = True, title: str | None = "training losses") -> Figure:
    """Training curves from a history table (one row per logged step, as ``train`` logs them).
    ``columns`` default to every numeric column that is not bookkeeping (``NOT_LOSSES``): the total
    loss and each weighted term. One panel per column; log scale where a curve stays positive."""
    if x not in history.columns:
        raise KeyError(f"history has no column '{x}'; columns: {list(history.columns)}")
    cols = list(columns) if columns is not None else [
        c for c in history.columns if c not in (x, *NOT_LOSSES) and pd.api.types.is_numeric_dtype(history[c])]
    if not cols:
        raise ValueError(f"no loss columns to plot in history columns {list(history.columns)}")
    long = history.melt(id_vars=[x], value_vars=cols, var_name="term", value_name="value").dropna()
    grid = sns.relplot(data=long, x=x, y="value", col="term", kind="line", col_wrap=min(len(cols), 4),
                       height=2.4, aspect=1.2, facet_kws={"sharey": False})
    grid.set_titles("{col_name}")
    if logy:
        for ax, col in zip(grid.axes.flat, cols):
            if (history[col].dropna() > 0).all():
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(NullFormatter())  # minor labels crowd narrow panels
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


def plot_metric_bars(table: pd.DataFrame, x: str = "objective", hue: str = "maps",
                     metrics: Sequence[str] = ("fg_ari", "mbo", "miou"), title: str | None = None) -> Figure:
    """Bar plots of metrics, one panel per metric. ``table`` is wide (one column per metric plus
    ``x`` and ``hue`` columns); several rows per (x, hue) give error bars (e.g. seeds)."""
    missing = [c for c in (x, hue, *metrics) if c not in table.columns]
    if missing:
        raise KeyError(f"metric table lacks columns {missing}; columns: {list(table.columns)}")
    long = table.melt(id_vars=[x, hue], value_vars=list(metrics), var_name="metric", value_name="value")
    grid = sns.catplot(data=long, x=x, y="value", hue=hue, col="metric", kind="bar", height=2.8, aspect=1.0,
                       sharey=True, errorbar="sd")
    grid.set(ylim=(0, 1))
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        for container in ax.containers:
            ax.bar_label(container, fmt="%.2f", fontsize=7)
    if title:
        grid.figure.suptitle(title, y=1.04)
    return grid.figure


def plot_slot_sweep(summary: pd.DataFrame, metrics: Sequence[str] = SWEEP_METRICS,
                    paper: pd.DataFrame | None = None, title: str | None = None) -> Figure:
    """Metrics against the slot count, in %, one line per objective, mean and sd over seeds (the sweep's
    ``summary.csv``: one row per run, columns ``objective``, ``slots``, ``seed`` and the metric keys in [0, 1]).
    With ``paper`` (e.g. ``PAPER_SLOT_ROBUSTNESS``) a second row of panels shows the published MOVi-C numbers
    (docs/method.md §4.8, in %) of the same metric (matched by its last name: fg_ari, mbo) on the same slot axis,
    with its own legend."""
    missing = [c for c in ("objective", "slots", *metrics) if c not in summary.columns]
    if missing:
        raise KeyError(f"sweep summary lacks columns {missing}; columns: {list(summary.columns)}")
    rows = 1 if paper is None else 2
    fig, axes = plt.subplots(rows, len(metrics), figsize=(4.6 * len(metrics), 3.2 * rows), squeeze=False,
                             sharex=True, layout="constrained")
    order = objective_order(summary["objective"])
    data = summary.assign(**{m: 100 * summary[m] for m in metrics})  # fractions -> % as the paper reports them
    counts = sorted(set(summary["slots"]) | (set(paper["slots"]) if paper is not None else set()))
    seeds = summary.groupby(["objective", "slots"]).size()
    seeds_text = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    plural = "" if seeds.max() == 1 else "s, mean ± sd"
    for j, metric in enumerate(metrics):
        short = metric.rsplit("/", 1)[-1]
        words = {"fg_ari": "FG-ARI", "mbo": "mBO", "miou": "mIoU"}.get(short, short)
        sns.lineplot(data=data, x="slots", y=metric, hue="objective", hue_order=order, marker="o",
                     errorbar="sd", ax=axes[0, j], legend=j == 0)
        axes[0, j].set(title=f"{metric.split('/')[0]} {words} here: {seeds_text} seed{plural}", xticks=counts,
                       ylabel=f"{words} (%)")
        if paper is not None and short in paper.columns:
            sns.lineplot(data=paper, x="slots", y=short, hue="objective", hue_order=objective_order(paper["objective"]),
                         marker="s", ls="--", ax=axes[1, j], legend=j == 0)
            axes[1, j].set(title=f"{words} in the paper (MOVi-C)", xticks=counts, ylabel=f"{words} (%)")
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path, dpi: int = 120) -> None:
    """Write ``fig`` to ``path`` and close it (a figure saved by library code is not left open in pyplot)."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def plot_sweep_curves(logs: pd.DataFrame, evals: pd.DataFrame) -> Figure:
    """One column per slot count, a line per run (colour: objective): the reconstruction loss (``logs``:
    the runs' log.csv rows with objective, slots and seed columns) and the decoder video FG-ARI of every
    evaluation (``evals``: their eval.csv rows, same columns) against the step. One legend at the right names
    every objective of the sweep (a slot count may lack some: each keeps its colour in every panel)."""
    slot_counts = sorted(logs["slots"].unique())
    palette = dict(zip(objective_order(logs["objective"]), sns.color_palette()))
    fig, axes = plt.subplots(2, len(slot_counts), figsize=(4.2 * len(slot_counts), 6.4), squeeze=False,
                             sharex=True, layout="constrained")
    for column, slots in enumerate(slot_counts):
        common = dict(x="step", hue="objective", units="seed", estimator=None, palette=palette)
        sns.lineplot(data=logs[logs.slots == slots], y="recon", ax=axes[0, column], legend=False, **common)
        sns.lineplot(data=evals[evals.slots == slots], y="decoder/video/fg_ari", marker="o", ax=axes[1, column],
                     legend=False, **common)
        axes[0, column].set(title=f"{slots} slots, training\nreconstruction loss", yscale="log")
        axes[1, column].set(title=f"{slots} slots, validation\ndecoder video FG-ARI", ylabel="FG-ARI")
    fig.legend(handles=[Line2D([], [], color=color, label=objective) for objective, color in palette.items()],
               title="objective", loc="outside right upper")
    return fig


def plot_object_stats(stats: pd.DataFrame, hue: str | None = None, title: str | None = None) -> Figure:
    """Objects per video and object sizes (share of the frame) from the per-object table of
    ``ssync_lib.data.object_stats`` (columns ``id``, ``num_objects``, ``area_frac``; optionally a
    ``hue`` column such as the level or the split)."""
    missing = [c for c in ("id", "num_objects", "area_frac") if c not in stats.columns]
    if missing:
        raise KeyError(f"object table lacks columns {missing}; columns: {list(stats.columns)}")
    per_video = stats.drop_duplicates(["id"] + ([hue] if hue else []))
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8), layout="constrained")
    sns.countplot(data=per_video, x="num_objects", hue=hue, ax=axes[0])
    axes[0].set_title("objects per video", fontsize=10)
    sns.histplot(data=stats.dropna(subset=["area_frac"]), x="area_frac", hue=hue, bins=20, element="step",
                 ax=axes[1])
    axes[1].set_title("object size (mean share of the frame while visible)", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def metrics_rows(metrics: Mapping[str, float], objective: str, level: str = "video",
                 names: Sequence[str] = ("fg_ari", "mbo", "miou")) -> pd.DataFrame:
    """The flat dict of ``ssync_lib.evaluate.evaluate`` (keys ``<maps>/<level>/<metric>``) as one row
    per kind of map: columns ``objective``, ``maps``, then one per metric; input of ``plot_metric_bars``."""
    maps = sorted({k.split("/")[0] for k in metrics if k.count("/") == 2 and k.split("/")[1] == level})
    if not maps:
        raise KeyError(f"no '<maps>/{level}/<metric>' keys among {sorted(metrics)}")
    return pd.DataFrame([{"objective": objective, "maps": m, **{n: float(metrics[f"{m}/{level}/{n}"]) for n in names}}
                         for m in maps])


# ----------------------------------------------------------------------------- SSync's premises (notebook 05)

def _seeds_note(data: pd.DataFrame) -> str:
    seeds = data.groupby("slots")["seed"].nunique()
    return (f"{seeds.min()} seed{'s' if seeds.min() > 1 else ''} per slot count" if seeds.min() == seeds.max()
            else f"{seeds.min()}-{seeds.max()} seeds per slot count") + "; bands and bars: sd over seeds"


def plot_premise_accuracy(accuracy: pd.DataFrame, title: str | None = None) -> Figure:
    """Accuracy (%) of the encoder's and the decoder's merged labels against each patch's object, on ground-truth
    interior and boundary patches, against the slot count (``claims.premise_accuracy``: one row per run, patch
    set and map): one panel per patch set, one line per map, mean and sd over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(9.2, 3.5), sharey=True, layout="constrained")
    names = {"interior": "interior patches (inside objects)", "boundary": "boundary patches (object edges)"}
    for ax, (where, name) in zip(axes, names.items()):
        sns.lineplot(data=accuracy[accuracy["patches"] == where], x="slots", y="accuracy", hue="labels",
                     hue_order=["encoder", "decoder"], palette=["tab:blue", "tab:orange"], marker="o", errorbar="sd",
                     ax=ax, legend=ax is axes[0])
        ax.set(title=name, xticks=sorted(accuracy["slots"].unique()), xlabel="slots",
               ylabel="accuracy of the merged labels (%)")
    axes[0].get_legend().set_title("labels of the")
    fig.suptitle((title + ": " if title else "") + _seeds_note(accuracy), fontsize="medium")
    return fig


def plot_premise_teaching(teaching: pd.DataFrame, title: str | None = None) -> Figure:
    """Where SSync's teacher and student disagree, the share (%) of the set's patches where the teacher is right and
    the student wrong, and the reverse, per slot count (``claims.premise_teaching``), mean and sd over seeds: one
    panel per set (interior: the decoder teaches; boundary: the encoder teaches)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.2, 3.5), sharey=True, layout="constrained")
    names = {"interior": "interior set: the decoder teaches", "boundary": "boundary set: the encoder teaches"}
    words = {"teacher": "teacher right, student wrong", "student": "student right, teacher wrong"}
    data = teaching.assign(who=teaching["who"].map(words))
    for ax, (where, name) in zip(axes, names.items()):
        sns.barplot(data=data[data["patches"] == where], x="slots", y="pct", hue="who", hue_order=list(words.values()),
                    palette=["tab:green", "tab:red"], errorbar="sd", ax=ax, legend=ax is axes[0])
        ax.set(title=name, xlabel="slots", ylabel="share of the set's patches (%)")
    axes[0].get_legend().set_title("where they disagree")
    fig.suptitle((title + ": " if title else "") + _seeds_note(teaching), fontsize="medium")
    return fig


def plot_sweep_metric(data: pd.DataFrame, y: str, ylabel: str, wrap: int = 3, mark_step: int | None = None,
                      logy: bool = False) -> Figure:
    """One panel per slot count (``wrap`` panels a row), a line per run (colour: objective) of ``y`` against the
    step (``data``: a sweep's log or eval rows with objective, slots and seed columns, ``experiment.sweep_curves``),
    with one legend; ``mark_step`` draws a dotted vertical line there (e.g. SSync's switch-on)."""
    slot_counts = sorted(data["slots"].unique())
    every = dict(zip(objective_order(OBJECTIVES), sns.color_palette()))  # an objective's colour in every figure
    palette = {o: every.get(o, "black") for o in objective_order(data["objective"])}
    rows = -(-len(slot_counts) // wrap)
    fig, axes = plt.subplots(rows, wrap, figsize=(3.6 * wrap + 1.4, 2.7 * rows + 0.3), squeeze=False, sharex=True,
                             sharey=True, layout="constrained")
    for ax, slots in zip(axes.flat, slot_counts):
        sns.lineplot(data=data[data.slots == slots], x="step", y=y, hue="objective", units="seed", estimator=None,
                     palette=palette, marker="o" if len(data) < 500 else None, ax=ax, legend=False)
        if mark_step is not None:
            ax.axvline(mark_step, color="grey", ls=":", lw=1)
        ax.set(title=f"{slots} slots", ylabel=ylabel, yscale="log" if logy else "linear")
    for ax in list(axes.flat)[len(slot_counts):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=color, label=objective) for objective, color in palette.items()]
    if mark_step is not None:
        handles.append(Line2D([], [], color="grey", ls=":", label=f"step {mark_step:,}"))
    fig.legend(handles=handles, loc="outside right upper")
    return fig
