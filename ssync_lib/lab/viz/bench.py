"""The benchmarks' figures: alignment cost against T*N, pseudo-label speed, the parts of a training step, the
metrics' speed. Each takes the table its ``ssync_lib.lab.bench`` function returns and returns a matplotlib Figure made
outside pyplot (no global state); ``path`` also writes it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns

from ssync_lib.config import resolve_path


def _figure(ncols: int = 1, width: float = 6.0, height: float = 4.0):
    """A matplotlib Figure outside pyplot (no global state; a notebook displays the returned figure)."""
    from matplotlib.figure import Figure
    sns.set_theme(style="whitegrid", context="notebook")
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _finish(fig, path: str | Path | None):
    if path is not None:
        fig.savefig(resolve_path(path), dpi=120, bbox_inches="tight")
    return fig


def plot_alignment(df: pd.DataFrame, path: str | Path | None = None):
    """Peak memory and time against T*N (log-log), one line per method through its measured points; extrapolated
    points (if any) as crosses off the lines, named in the legend."""
    fig, (ax_mem, ax_time) = _figure(2)
    data = df.assign(kind=np.where(df["extrapolated"].astype(bool), "extrapolated", "measured"))
    for ax, column, label in ((ax_mem, "peak_mb", "peak memory (MB)"), (ax_time, "time_ms", "forward + backward (ms)")):
        sns.lineplot(data=data[data["kind"] == "measured"], x="tokens", y=column, hue="method",
                     hue_order=list(dict.fromkeys(data["method"])), ax=ax, legend=False)
        sns.scatterplot(data=data, x="tokens", y=column, hue="method", style="kind", ax=ax, legend=ax is ax_mem,
                        markers={"measured": "o", "extrapolated": "X"}, s=60)
        ax.set(xscale="log", yscale="log", xlabel="tokens per clip T·N", ylabel=label)
    first = df.iloc[0]
    extrapolated = data["kind"].eq("extrapolated").any()
    fig.suptitle(f"Dense alignment vs SSync, forward + backward, batch {first['batch']} ({first['device']}, "
                 f"{first['threads']} thread{'s' if first['threads'] != 1 else ''}; "
                 + ("crosses: extrapolated, not measured)" if extrapolated else "every point measured)"))
    return _finish(fig, path)


def plot_labels(df: pd.DataFrame, path: str | Path | None = None):
    """Time of the loop reference and of pseudo_labels per shape, the speed-up under each shape."""
    fig, (ax,) = _figure(1)
    named = df.assign(shape=[f"{r['shape']} {r['grid']}, S={r['slots']}\n{r['speedup']:.1f}x faster"
                             for _, r in df.iterrows()])
    data = named.melt(id_vars=["shape"], value_vars=["loop_ms", "vectorised_ms"], var_name="implementation",
                      value_name="ms").replace({"loop_ms": "loop (reference)", "vectorised_ms": "pseudo_labels"})
    sns.barplot(data=data, x="shape", y="ms", hue="implementation", ax=ax)
    ax.set(ylabel="time per batch (ms)", xlabel="")
    first = df.iloc[0]
    ax.set_title(f"SSync pseudo-labels, batch {first['batch']} ({first['device']}, {first['threads']} threads)")
    return _finish(fig, path)


def plot_step(df: pd.DataFrame, path: str | Path | None = None):
    """Share of the SSync and the SRL training step per part (horizontal bars)."""
    fig, (ax,) = _figure(1, width=8)
    data = df[~df["part"].str.startswith("measured")].melt(
        id_vars=["part"], value_vars=["ssync_step_pct", "dense_step_pct"], var_name="step", value_name="share (%)")
    data = data.dropna().replace({"ssync_step_pct": "SSync step", "dense_step_pct": "SRL (dense) step"})
    sns.barplot(data=data, y="part", x="share (%)", hue="step", ax=ax)
    ax.set(xscale="log", ylabel="")
    first = df.iloc[0]
    ax.set_title(f"Training step at '{first['profile']}', batch {first['batch']} ({first['device']}, "
                 f"{first['threads']} threads)")
    return _finish(fig, path)


def plot_step_comparison(df: pd.DataFrame, base: str, other: str, path: str | Path | None = None):
    """A ``compare_step`` table: each part's time under variant ``base`` and ``other`` (horizontal bars, log scale),
    the measured steps included; the title gives other / base of each objective's measured step."""
    fig, (ax,) = _figure(1, width=8, height=4.5)
    sns.barplot(data=df, y="part", x="time_ms", hue="variant", hue_order=[base, other], ax=ax)
    first = df.iloc[0]
    ax.set(xscale="log", xlabel=f"time (ms, best run, {first.get('clock', 'wall')} clock)", ylabel="")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), title="variant")
    times = df.pivot(index="part", columns="variant", values="time_ms")
    steps = {name: times.loc[f"measured step, {objective} objective"]
             for objective, name in (("baseline", "baseline"), ("ssync", "SSync"), ("dense", "SRL"))}
    ratios = ", ".join(f"{name} {step[other] / step[base]:.2f}x" for name, step in steps.items())
    ax.set_title(f"Training step at '{first['profile']}', batch {first['batch']}, {first['slots']} slots "
                 f"({first['device']}, {first['threads']} thread{'s' if first['threads'] != 1 else ''})\n"
                 f"{other} / {base}, measured steps: {ratios}")
    return _finish(fig, path)


def plot_metrics(df: pd.DataFrame, path: str | Path | None = None):
    fig, (ax,) = _figure(1, width=7)
    sns.barplot(data=df, y="function", x="time_ms", ax=ax)
    first = df.iloc[0]
    ax.set(xlabel="time per batch (ms)", ylabel="",
           title=f"Metrics on ({first['batch']}, {first['frames']}, {first['size']}, {first['size']}) label maps "
                 f"({first['device']}, {first['threads']} threads)")
    return _finish(fig, path)


def plot_gradients(df: pd.DataFrame, path: str | Path | None = None):
    """``lab.gradients.gradient_report``: per group (encoder side, decoder) the gradient norm of each loss term and the
    cosine between the terms' gradients (red: they pull the same way, blue: against each other)."""
    groups = list(dict.fromkeys(df["group"]))
    terms = list(dict.fromkeys(df["term"]))
    fig, axes = _figure(1 + len(groups), width=4.2, height=3.6)
    sns.barplot(data=df, x="term", y="norm", hue="group", ax=axes[0])
    axes[0].set(yscale="log", xlabel="", ylabel="gradient norm", title="norm of each term's gradient")
    axes[0].tick_params(axis="x", rotation=30)
    for ax, group in zip(axes[1:], groups):
        cos = df[df["group"] == group].set_index("term").loc[terms, [f"cos_{t}" for t in terms]]
        sns.heatmap(cos.set_axis(terms, axis=1), vmin=-1, vmax=1, cmap="RdBu_r", annot=True, fmt=".2f", ax=ax,
                    cbar=ax is axes[-1])
        ax.set(title=f"{group}: cosine between terms", xlabel="", ylabel="")
    first = df.iloc[0]
    if "step" in df:  # the run folder and file name say which checkpoint; the full path is in the CSV
        checkpoint = Path(first["checkpoint"])
        fig.suptitle(f"gradients at step {first['step']} of {checkpoint.parent.name}/{checkpoint.name} "
                     f"({first['clips']} clips; blank: the term has no gradient there)")
    return _finish(fig, path)
