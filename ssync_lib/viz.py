"""All plotting for the notebooks: frames with mask overlays, PCA of features, encoder attention
and decoder maps over time, SSync's coverage / IoU / merge graph / boundary and interior maps,
loss curves, metric bars and the slot-count sweep.

Every function accepts numpy arrays or torch tensors (on any device) and returns the matplotlib
``Figure`` it drew, so notebooks can show it and tests can close it. Shapes: T frames, S slots,
H W frame size, h w patch grid, N = h*w patches, D feature dim. Label maps are integer arrays
(patch-level maps are upsampled to the frame, nearest); frames are RGB in [0, 1] (or uint8), laid
out (T, H, W, 3) as ``ssync_lib.data.denormalize`` returns them, or (T, 3, H, W).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

# Method notes section 4.8: video FG-ARI / mBO on MOVi-C against the slot count, as reported.
PAPER_SLOT_ROBUSTNESS = pd.DataFrame(
    [(7, "baseline", 74.9, 27.9), (7, "dense", 76.5, 31.6), (7, "ssync", 76.9, 39.8),
     (11, "baseline", 69.3, 32.7), (11, "dense", 74.3, 34.5), (11, "ssync", 79.4, 39.5),
     (15, "baseline", 61.8, 31.2), (15, "dense", 72.8, 31.1), (15, "ssync", 78.8, 41.0)],
    columns=["num_slots", "method", "fg_ari", "mbo"],
)
NOT_LOSSES = ("epoch", "lr", "grad_norm", "sec_per_step")  # columns of the training log that are not loss terms
METHODS = ("baseline", "dense", "ssync")  # SlotContrast, SRL (dense alignment), SSync: the order of every legend


# ----------------------------------------------------------------------------- array helpers

def to_numpy(x) -> np.ndarray:
    """A torch tensor (any device, any dtype) or array-like as a numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    return np.asarray(x)


def slot_colors(n: int) -> np.ndarray:
    """``n`` distinct RGB colours (n, 3) in [0, 1]: tab10, then tab20, then husl."""
    if n <= 10:
        return np.array(sns.color_palette("tab10", n))
    if n <= 20:
        return np.array(sns.color_palette("tab20", n))
    return np.array(sns.color_palette("husl", n))


def to_image(frame) -> np.ndarray:
    """One frame (3, H, W) or (H, W, 3), float in [0, 1] or uint8, as (H, W, 3) float in [0, 1]."""
    img = to_numpy(frame)
    if img.ndim != 3:
        raise ValueError(f"expected one frame of shape (3, H, W) or (H, W, 3), got {img.shape}")
    if img.shape[0] == 3 and img.shape[-1] != 3:
        img = img.transpose(1, 2, 0)
    img = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
    return np.clip(img, 0.0, 1.0)


def upsample_labels(labels, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of integer label maps (..., h, w) -> (..., H, W)."""
    lab = torch.as_tensor(to_numpy(labels).astype(np.int64))
    lead = lab.shape[:-2]
    flat = lab.reshape(-1, 1, *lab.shape[-2:]).float()
    out = F.interpolate(flat, size=tuple(size), mode="nearest").long()
    return out.reshape(*lead, *size).numpy()


def upsample_maps(maps, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of soft maps (..., h, w) -> (..., H, W)."""
    m = torch.as_tensor(to_numpy(maps).astype(np.float32))
    lead = m.shape[:-2]
    out = F.interpolate(m.reshape(-1, 1, *m.shape[-2:]), size=tuple(size), mode="bilinear", align_corners=False)
    return out.reshape(*lead, *size).numpy()


def label_colors(labels, num_labels: int, background: int | None = None) -> np.ndarray:
    """Integer labels (H, W) -> RGB (H, W, 3); the ``background`` label is drawn black."""
    lab = to_numpy(labels).astype(np.int64)
    if lab.min() < 0 or lab.max() >= num_labels:
        raise ValueError(f"labels must lie in [0, {num_labels}), got [{lab.min()}, {lab.max()}]")
    colors = slot_colors(num_labels)
    if background is not None:
        colors[background] = 0.0
    return colors[lab]


def overlay(image, labels, num_labels: int, alpha: float = 0.5, background: int | None = None) -> np.ndarray:
    """Blend label colours over an image (H, W, 3); ``background`` pixels keep the image."""
    img = to_image(image)
    lab = to_numpy(labels).astype(np.int64)
    if lab.shape != img.shape[:2]:
        lab = upsample_labels(lab, img.shape[:2])
    out = (1 - alpha) * img + alpha * label_colors(lab, num_labels)
    if background is not None:
        out[lab == background] = img[lab == background]
    return np.clip(out, 0.0, 1.0)


def pca_rgb(features, grid: tuple[int, int]) -> np.ndarray:
    """Project features (..., N, D) on their first 3 principal components (fit over all tokens of
    all frames given) and scale each component to [0, 1]: (..., h, w, 3). Tokens that the
    encoder sees as alike get alike colours."""
    x = to_numpy(features).astype(np.float64)
    lead, (n, d) = x.shape[:-2], x.shape[-2:]
    if n != grid[0] * grid[1]:
        raise ValueError(f"features have N={n} tokens but the grid {tuple(grid)} has {grid[0] * grid[1]}")
    flat = x.reshape(-1, d)
    flat = flat - flat.mean(0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    comps = flat @ vt[:3].T  # tokens x 3
    if comps.shape[1] < 3:
        comps = np.pad(comps, ((0, 0), (0, 3 - comps.shape[1])))
    lo, hi = comps.min(0), comps.max(0)
    comps = (comps - lo) / np.where(hi > lo, hi - lo, 1.0)
    return comps.reshape(*lead, grid[0], grid[1], 3)


def frame_indices(num_frames: int, max_frames: int = 6) -> list[int]:
    """Up to ``max_frames`` frame indices spread evenly over the clip."""
    return sorted(set(np.linspace(0, num_frames - 1, min(num_frames, max_frames)).round().astype(int).tolist()))


def _axes_grid(rows: int, cols: int, size: float = 1.8) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.6, size * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


# ----------------------------------------------------------------------------- frames and maps

def plot_frames(frames, masks=None, frames_to_show: Sequence[int] | None = None, title: str | None = None,
                background: int | None = 0, num_labels: int | None = None) -> Figure:
    """A row of frames (T, 3, H, W); with ``masks`` (T, H, W) a second row overlays them
    (ground truth: ``background=0`` keeps the background uncoloured)."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    rows = 1 if masks is None else 2
    fig, axes = _axes_grid(rows, len(ts))
    if masks is not None:
        masks = to_numpy(masks)
        num_labels = num_labels or int(masks.max()) + 1
    for j, t in enumerate(ts):
        axes[0, j].imshow(to_image(frames[t]))
        axes[0, j].set_title(f"t={t}", fontsize=9)
        if masks is not None:
            axes[1, j].imshow(overlay(frames[t], masks[t], num_labels, alpha=0.75, background=background))
    axes[0, 0].set_ylabel("frame")
    if masks is not None:
        axes[1, 0].set_ylabel("masks")
    if title:
        fig.suptitle(title)
    return fig


def plot_map_rows(frames, rows: Mapping[str, object], num_labels: int,
                  frames_to_show: Sequence[int] | None = None, title: str | None = None,
                  gt_background: int = 0) -> Figure:
    """Label maps over time, one row per entry of ``rows`` (name -> (T, h, w) or (T, H, W) int),
    each overlaid on the frames: e.g. ground truth, encoder attention and decoder object maps
    side by side. A row named ``"ground truth"`` keeps label 0 as uncoloured background."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    fig, axes = _axes_grid(len(rows) + 1, len(ts))
    for j, t in enumerate(ts):
        axes[0, j].imshow(to_image(frames[t]))
        axes[0, j].set_title(f"t={t}", fontsize=9)
        for i, (name, labels) in enumerate(rows.items(), start=1):
            lab = to_numpy(labels)
            is_gt = name == "ground truth"
            k = max(num_labels, int(lab.max()) + 1) if is_gt else num_labels
            axes[i, j].imshow(overlay(frames[t], lab[t], k, alpha=0.75, background=gt_background if is_gt else None))
    axes[0, 0].set_ylabel("frame")
    for i, name in enumerate(rows, start=1):
        axes[i, 0].set_ylabel(name)
    if title:
        fig.suptitle(title)
    return fig


def plot_pca(frames, features, grid: tuple[int, int], frames_to_show: Sequence[int] | None = None,
             title: str | None = "encoder features, first 3 principal components as RGB") -> Figure:
    """Frames (T, 3, H, W) above the PCA-to-RGB image of their features (T, N, D)."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    rgb = pca_rgb(features, grid)  # T h w 3
    fig, axes = _axes_grid(2, len(ts))
    for j, t in enumerate(ts):
        axes[0, j].imshow(to_image(frames[t]))
        axes[0, j].set_title(f"t={t}", fontsize=9)
        axes[1, j].imshow(rgb[t], interpolation="nearest")
    axes[0, 0].set_ylabel("frame")
    axes[1, 0].set_ylabel("PCA(features)")
    if title:
        fig.suptitle(title)
    return fig


def plot_slot_maps(frames, maps: Mapping[str, object], t: int = 0, title: str | None = None) -> Figure:
    """Per-slot soft maps at frame ``t``: one row per entry of ``maps`` (name -> (T, S, h, w) in
    [0, 1], e.g. the encoder attention and the decoder masks), one column per slot."""
    frames = to_numpy(frames)
    arrays = {k: to_numpy(v) for k, v in maps.items()}
    num_slots = next(iter(arrays.values())).shape[1]
    colors = slot_colors(num_slots)
    fig, axes = _axes_grid(len(arrays), num_slots + 1, size=1.5)
    for i, (name, m) in enumerate(arrays.items()):
        axes[i, 0].imshow(to_image(frames[t]))
        axes[i, 0].set_ylabel(name)
        for s in range(num_slots):
            axes[i, s + 1].imshow(m[t, s], vmin=0, vmax=1, cmap="gray", interpolation="nearest")
            if i == 0:
                axes[i, s + 1].set_title(f"slot {s}", fontsize=9, color=colors[s])
    fig.suptitle(title or f"per-slot maps at t={t}")
    return fig


def plot_boundary_interior(frames, enc_labels, dec_labels, boundary, interior, num_labels: int,
                           frames_to_show: Sequence[int] | None = None, title: str | None = None) -> Figure:
    """SSync's selected patches over time. Rows: merged encoder labels, boundary patches (where the
    decoder is taught by the encoder), merged decoder labels, interior patches (where the encoder
    is taught by the decoder). Label maps (T, h, w) int, boundary / interior (T, h, w) bool."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    enc, dec = to_numpy(enc_labels), to_numpy(dec_labels)
    bnd, itr = to_numpy(boundary).astype(bool), to_numpy(interior).astype(bool)
    fig, axes = _axes_grid(4, len(ts))
    for j, t in enumerate(ts):
        axes[0, j].set_title(f"t={t}", fontsize=9)
        enc_rgb = label_colors(enc[t], num_labels)
        dec_rgb = label_colors(dec[t], num_labels)
        axes[0, j].imshow(overlay(frames[t], enc[t], num_labels, alpha=0.75))
        axes[1, j].imshow(np.where(bnd[t][..., None], enc_rgb, 0.92), interpolation="nearest")
        axes[2, j].imshow(overlay(frames[t], dec[t], num_labels, alpha=0.75))
        axes[3, j].imshow(np.where(itr[t][..., None], dec_rgb, 0.92), interpolation="nearest")
    for i, name in enumerate(["merged encoder", "boundary", "merged decoder", "interior"]):
        axes[i, 0].set_ylabel(name)
    fig.suptitle(title or "SSync: boundary patches (from the encoder) and interior patches (from the decoder)")
    return fig


def plot_coverage(coverage, t: int = 0, title: str | None = None) -> Figure:
    """Coverage masks (T, S, h, w) bool at frame ``t``: where each slot's attention logit exceeds
    its own mean over the clip (method notes section 4.2)."""
    cov = to_numpy(coverage).astype(bool)
    num_slots = cov.shape[1]
    colors = slot_colors(num_slots)
    fig, axes = _axes_grid(1, num_slots, size=1.5)
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


def plot_patch_sets(frames, sets: Mapping[str, object], anchor: tuple[int, int, int],
                    title: str | None = None) -> Figure:
    """Sets of patches relative to one anchor patch, e.g. dense alignment's positives and
    semi-positives: one row per entry of ``sets`` (name -> (T, h, w) bool over the frames of a
    group), one column per frame of ``frames`` (T, 3, H, W); the anchor ``(t, y, x)`` is starred."""
    frames = to_numpy(frames)
    names = list(sets)
    colors = slot_colors(max(len(names), 2))
    fig, axes = _axes_grid(len(names), len(frames))
    t0, y0, x0 = anchor
    for i, name in enumerate(names):
        sel = to_numpy(sets[name]).astype(bool)
        if sel.shape[0] != len(frames):
            raise ValueError(f"set '{name}' covers {sel.shape[0]} frames but {len(frames)} frames were given")
        h, w = sel.shape[1:]
        axes[i, 0].set_ylabel(f"{name}\n({int(sel.sum())} patches)")
        for t in range(len(frames)):
            img = to_image(frames[t])
            mask = upsample_labels(sel[t].astype(np.int64), img.shape[:2]).astype(bool)
            axes[i, t].imshow(np.where(mask[..., None], 0.35 * img + 0.65 * colors[i], 0.4 * img))
            if i == 0:
                axes[i, t].set_title(f"t={t}", fontsize=9)
            if t == t0:
                sy, sx = img.shape[0] / h, img.shape[1] / w
                axes[i, t].plot((x0 + 0.5) * sx - 0.5, (y0 + 0.5) * sy - 0.5, marker="*", ms=14, mfc="white",
                                mec="black")
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- explorer panels

def selection_overlay(image, labels, num_labels: int) -> np.ndarray:
    """Patches with a label >= 0 in their label's colour over the image, the rest (-1) dimmed:
    e.g. SSync's boundary patches as ``where(boundary, merged_enc, -1)``."""
    img = to_image(image)
    lab = upsample_labels(labels, img.shape[:2])
    col = label_colors(np.maximum(lab, 0), num_labels)
    return np.where((lab >= 0)[..., None], 0.3 * img + 0.7 * col, 0.35 * img)


def draw_map(ax, frame, data, t: int, num_labels: int, slot: int | None = None) -> None:
    """Draw one map of frame ``t`` into ``ax``. ``data`` is either soft per-slot maps (T, S, h, w)
    (all slots: their argmax as colours; one slot: its map as a heat overlay) or a label map
    (T, h, w) int where -1 marks unselected patches (one slot: only that slot's patches)."""
    img = to_image(frame)
    m = to_numpy(data)
    if m.ndim == 4:
        if slot is None:
            rgb = overlay(img, m[t].argmax(0), num_labels, alpha=0.75)
        else:
            heat = np.clip(upsample_maps(m[t, slot], img.shape[:2]), 0, 1)[..., None]
            rgb = (1 - 0.7 * heat) * 0.5 * img + 0.7 * heat * slot_colors(num_labels)[slot]
    elif m.ndim == 3:
        lab = m[t].astype(np.int64)
        rgb = selection_overlay(img, lab if slot is None else np.where(lab == slot, lab, -1), num_labels)
    else:
        raise ValueError(f"a map must be (T, S, h, w) soft maps or (T, h, w) labels, got shape {m.shape}")
    ax.imshow(np.clip(rgb, 0, 1))


def plot_explorer(frames, maps: Mapping[str, object], num_labels: int, frames_to_show: Sequence[int] | None = None,
                  slot: int | None = None, title: str | None = None) -> Figure:
    """The explorer's static view: one row per map (see :func:`draw_map`), one column per frame.
    With a single frame the layout turns: one column per map."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    names = list(maps)
    single = len(ts) == 1
    fig, axes = _axes_grid(1, len(names) + 1, size=2.2) if single else _axes_grid(len(names), len(ts))
    if single:
        t = ts[0]
        axes[0, 0].imshow(to_image(frames[t]))
        axes[0, 0].set_title(f"frame t={t}", fontsize=9)
        for j, name in enumerate(names, start=1):
            draw_map(axes[0, j], frames[t], maps[name], t, num_labels, slot)
            axes[0, j].set_title(name, fontsize=9)
    else:
        for i, name in enumerate(names):
            axes[i, 0].set_ylabel(name)
            for j, t in enumerate(ts):
                draw_map(axes[i, j], frames[t], maps[name], t, num_labels, slot)
                if i == 0:
                    axes[i, j].set_title(f"t={t}", fontsize=9)
    fig.suptitle(title or ("all slots" if slot is None else f"slot {slot}"))
    return fig


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


def plot_metric_bars(table: pd.DataFrame, x: str = "method", hue: str = "maps",
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


def plot_slot_sweep(results: pd.DataFrame, paper: pd.DataFrame | None = PAPER_SLOT_ROBUSTNESS,
                    metrics: Sequence[str] = ("fg_ari", "mbo"), title: str | None = None) -> Figure:
    """Metric against slot count, one line per method (mean and sd over seeds when ``results`` has
    several rows per point). With ``paper`` a second row of panels shows the published MOVi-C
    numbers (method notes section 4.8, in %) for comparison."""
    missing = [c for c in ("method", "num_slots", *metrics) if c not in results.columns]
    if missing:
        raise KeyError(f"sweep results lack columns {missing}; columns: {list(results.columns)}")
    rows = 1 if paper is None else 2
    fig, axes = plt.subplots(rows, len(metrics), figsize=(3.6 * len(metrics), 2.9 * rows), squeeze=False,
                             layout="constrained")
    order = [m for m in METHODS if m in set(results["method"])] or sorted(set(results["method"]))
    for j, metric in enumerate(metrics):
        sns.lineplot(data=results, x="num_slots", y=metric, hue="method", hue_order=order, marker="o",
                     errorbar="sd", ax=axes[0, j])
        axes[0, j].set_title(f"{metric} (here)", fontsize=10)
        axes[0, j].set_xticks(sorted(results["num_slots"].unique()))
        if paper is not None and metric in paper.columns:
            sns.lineplot(data=paper, x="num_slots", y=metric, hue="method", hue_order=list(METHODS),
                         marker="s", ls="--", ax=axes[1, j])
            axes[1, j].set_title(f"{metric} (paper, MOVi-C, %)", fontsize=10)
            axes[1, j].set_xticks(sorted(paper["num_slots"].unique()))
    if title:
        fig.suptitle(title)
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


def metrics_rows(metrics: Mapping[str, float], method: str, level: str = "video",
                 names: Sequence[str] = ("fg_ari", "mbo", "miou")) -> pd.DataFrame:
    """The flat dict of ``ssync_lib.evaluate.evaluate`` (keys ``<maps>/<level>/<metric>``) as one row
    per kind of map: columns ``method``, ``maps``, then one per metric; input of ``plot_metric_bars``."""
    maps = sorted({k.split("/")[0] for k in metrics if k.count("/") == 2 and k.split("/")[1] == level})
    if not maps:
        raise KeyError(f"no '<maps>/{level}/<metric>' keys among {sorted(metrics)}")
    return pd.DataFrame([{"method": method, "maps": m, **{n: float(metrics[f"{m}/{level}/{n}"]) for n in names}}
                         for m in maps])
