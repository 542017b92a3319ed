"""SSync's pseudo-labels drawn: slot coverage, the IoU matrix, the merge graph, boundary and interior patches
(docs/method.md §4.2-§4.4). Shapes as in ``viz.arrays``.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ssync_lib.lab.viz.arrays import axes_grid, frame_indices, label_colors, overlay, slot_colors, to_numpy
from ssync_lib.lab.viz.maps import add_slot_legend, draw_outlines, selection_overlay


def plot_boundary_interior(frames, enc_labels, dec_labels, boundary, interior, num_labels: int,
                           frames_to_show: Sequence[int] | None = None, title: str | None = None,
                           masks=None) -> Figure:
    """SSync's selected patches over time. Rows: merged encoder labels, boundary patches (where the
    decoder is taught by the encoder), merged decoder labels, interior patches (where the encoder
    is taught by the decoder). Label maps (T, h, w) int, boundary / interior (T, h, w) bool; ``masks`` (T, H, W)
    ground-truth ids, outlined in every panel when given. Selected patches in their label's colour over the frame,
    the others dimmed (as in the explorer); a legend names the slot colours."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    enc, dec = to_numpy(enc_labels), to_numpy(dec_labels)
    bnd, itr = to_numpy(boundary).astype(bool), to_numpy(interior).astype(bool)
    fig, axes = axes_grid(4, len(ts))
    for j, t in enumerate(ts):
        axes[0, j].set_title(f"t={t}", fontsize=9)
        axes[0, j].imshow(overlay(frames[t], enc[t], num_labels, alpha=0.75))
        axes[1, j].imshow(selection_overlay(frames[t], np.where(bnd[t], enc[t], -1), num_labels))
        axes[2, j].imshow(overlay(frames[t], dec[t], num_labels, alpha=0.75))
        axes[3, j].imshow(selection_overlay(frames[t], np.where(itr[t], dec[t], -1), num_labels))
        if masks is not None:
            for i in range(4):
                draw_outlines(axes[i, j], to_numpy(masks)[t], color="white", linewidth=0.8)
    for i, name in enumerate(["merged encoder", "boundary", "merged decoder", "interior"]):
        axes[i, 0].set_ylabel(name)
    add_slot_legend(fig, num_labels, extra=[Patch(facecolor=(0.1, 0.1, 0.1), label="not selected (dimmed frame)")]
                    + ([Patch(facecolor="none", edgecolor="0.5", label="ground-truth outline (white)")]
                       if masks is not None else []))
    fig.suptitle(title or "SSync: boundary patches (from the encoder) and interior patches (from the decoder)")
    return fig


def plot_coverage(coverage, t: int = 0, title: str | None = None) -> Figure:
    """Coverage masks (T, S, h, w) bool at frame ``t``: where each slot's attention logit exceeds
    its own mean over the clip (docs/method.md §4.2)."""
    cov = to_numpy(coverage).astype(bool)
    num_slots = cov.shape[1]
    colors = slot_colors(num_slots)
    fig, axes = axes_grid(1, num_slots, size=1.5)
    for s in range(num_slots):
        axes[0, s].imshow(np.where(cov[t, s][..., None], colors[s], 0.95), interpolation="nearest")
        axes[0, s].set_title(f"slot {s}", fontsize=9)
    fig.suptitle(title or f"coverage masks at t={t}")
    return fig


def plot_iou_matrix(iou, threshold: float, ax=None) -> Figure:
    """Slot-pair IoU of the coverage masks (S, S), averaged over frames; pairs above the merge
    threshold are outlined."""
    m = to_numpy(iou).astype(float)
    fig = ax.figure if ax is not None else plt.figure(figsize=(3.6, 3.0), layout="constrained")
    ax = ax or fig.add_subplot()
    sns.heatmap(m, vmin=0, vmax=1, annot=m.shape[0] <= 12, fmt=".2f", cmap="viridis", square=True, ax=ax,
                cbar_kws={"shrink": 0.8}, annot_kws={"fontsize": 7})
    for i, j in zip(*np.nonzero(m > threshold)):
        if i != j:
            ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, edgecolor="red", lw=2))
    ax.set_xlabel("slot")
    ax.set_ylabel("slot")
    ax.set_title(f"coverage IoU (merge if > {threshold:g})", fontsize=10)
    return fig


def plot_merge_graph(iou, threshold: float, slot_map, areas=None, ax=None) -> Figure:
    """The merge graph: slots on a circle, an edge for every pair whose coverage IoU exceeds the
    threshold (solid, labelled), pairs within half of it dashed for context. Nodes are coloured by
    the slot they are merged into (``slot_map`` (S,) int); the representative of each component
    has a black ring; node area follows ``areas`` (S,) when given."""
    m = to_numpy(iou).astype(float)
    smap = to_numpy(slot_map).astype(int)
    num_slots = m.shape[0]
    angle = np.pi / 2 - 2 * np.pi * np.arange(num_slots) / num_slots
    pos = np.stack([np.cos(angle), np.sin(angle)], 1)
    colors = slot_colors(num_slots)
    fig = ax.figure if ax is not None else plt.figure(figsize=(3.6, 3.6), layout="constrained")
    ax = ax or fig.add_subplot()
    for i in range(num_slots):
        for j in range(i + 1, num_slots):
            if m[i, j] > threshold:
                ax.plot(*pos[[i, j]].T, color="black", lw=1 + 4 * m[i, j], zorder=1)
                ax.text(*pos[[i, j]].mean(0), f"{m[i, j]:.2f}", fontsize=8, ha="center", va="center",
                        bbox=dict(fc="white", ec="none", pad=0.5), zorder=3)
            elif m[i, j] > threshold / 2:
                ax.plot(*pos[[i, j]].T, color="gray", lw=1, ls="--", zorder=1)
    a = to_numpy(areas).astype(float) if areas is not None else np.ones(num_slots)
    size = 250 + 900 * a / max(a.max(), 1e-9)
    rep = smap == np.arange(num_slots)
    ax.scatter(*pos.T, s=size, c=colors[smap], edgecolors=np.where(rep, "black", "white"),
               linewidths=np.where(rep, 2.5, 1.0), zorder=2)
    for s in range(num_slots):
        ax.text(*pos[s], str(s), ha="center", va="center", fontsize=9, color="white", weight="bold", zorder=4)
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.45, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    groups = [sorted(np.nonzero(smap == r)[0].tolist()) for r in np.unique(smap)]
    merged = [g for g in groups if len(g) > 1]
    ax.set_title("merge graph: " + (", ".join(f"{g}->{smap[g[0]]}" for g in merged) if merged else "no merges"),
                 fontsize=10)
    return fig


