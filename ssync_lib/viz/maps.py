"""Frames, masks and slot maps over time: ground truth, encoder attention, decoder maps, PCA of the features,
dense alignment's patch sets and the explorer panels of the widgets.

Every function accepts numpy arrays or torch tensors (on any device) and returns the matplotlib ``Figure`` it
drew. Shapes as in ``viz.arrays``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ssync_lib.viz.arrays import (axes_grid, frame_indices, label_colors, overlay, pca_rgb, slot_colors, to_image,
                                 to_numpy, upsample_labels, upsample_maps)


# ----------------------------------------------------------------------------- frames and maps

def plot_frames(frames, masks=None, frames_to_show: Sequence[int] | None = None, title: str | None = None,
                background: int | None = 0, num_labels: int | None = None) -> Figure:
    """A row of frames (T, 3, H, W); with ``masks`` (T, H, W) a second row overlays them
    (ground truth: ``background=0`` keeps the background uncoloured)."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    rows = 1 if masks is None else 2
    fig, axes = axes_grid(rows, len(ts))
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
    fig, axes = axes_grid(len(rows) + 1, len(ts))
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
    fig, axes = axes_grid(2, len(ts))
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
    fig, axes = axes_grid(len(arrays), num_slots + 1, size=1.5)
    for i, (name, m) in enumerate(arrays.items()):
        axes[i, 0].imshow(to_image(frames[t]))
        axes[i, 0].set_ylabel(name)
        for s in range(num_slots):
            axes[i, s + 1].imshow(m[t, s], vmin=0, vmax=1, cmap="gray", interpolation="nearest")
            if i == 0:
                axes[i, s + 1].set_title(f"slot {s}", fontsize=9, color=colors[s])
    fig.suptitle(title or f"per-slot maps at t={t}")
    return fig



def plot_patch_sets(frames, sets: Mapping[str, object], anchor: tuple[int, int, int],
                    title: str | None = None) -> Figure:
    """Sets of patches relative to one anchor patch, e.g. dense alignment's positives and
    semi-positives: one row per entry of ``sets`` (name -> (T, h, w) bool over the frames of a
    group), one column per frame of ``frames`` (T, 3, H, W); the anchor ``(t, y, x)`` is starred."""
    frames = to_numpy(frames)
    names = list(sets)
    colors = slot_colors(max(len(names), 2))
    fig, axes = axes_grid(len(names), len(frames))
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
    fig, axes = axes_grid(1, len(names) + 1, size=2.2) if single else axes_grid(len(names), len(ts))
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


