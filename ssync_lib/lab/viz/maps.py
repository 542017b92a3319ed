"""Frames, masks and slot maps over time: ground truth, encoder attention, decoder maps, PCA of the features,
dense alignment's patch sets and the explorer panels of the widgets.

Every function accepts numpy arrays or torch tensors (on any device) and returns the matplotlib ``Figure`` it
drew. Shapes as in ``viz.arrays``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ssync_lib.lab.viz.arrays import (axes_grid, frame_indices, label_colors, pca_rgb, slot_colors, to_image, to_numpy,
                                 upsample_labels, upsample_maps)


# ----------------------------------------------------------------------------- legends, outlines, label panels

def add_slot_legend(fig: Figure, num_slots: int, extra: Sequence[Patch] = (), title: str = "slots",
                    label: str = "slot", shown: Sequence[int] | None = None):
    """A legend of the slot colours (``slot 0`` ... ``slot S-1``, the colours of :func:`slot_colors`) right of
    the figure, plus any ``extra`` handles; ``label`` names the entries (e.g. ``"id"`` for instance ids) and
    ``shown`` restricts them to the labels a figure draws (default: all ``num_slots``). Returns the legend."""
    colors = slot_colors(num_slots)
    handles = [Patch(facecolor=colors[s], edgecolor="black", linewidth=0.5, label=f"{label} {s}")
               for s in (range(num_slots) if shown is None else shown)] + list(extra)
    return fig.legend(handles=handles, loc="outside right upper", title=title, fontsize=8, title_fontsize=8,
                      frameon=False)


def draw_outlines(ax, gt, color="black", linewidth: float = 1.0) -> None:
    """The outline of every ground-truth object (ids > 0 of ``gt`` (H, W)) drawn into ``ax``."""
    gt = to_numpy(gt).astype(np.int64)
    for obj in np.unique(gt):
        if obj > 0:
            ax.contour(gt == obj, levels=[0.5], colors=[color], linewidths=linewidth)


def draw_ground_truth(ax, frame, gt) -> None:
    """The frame in its own colours, every object outlined in white and labelled with its id."""
    img = to_image(frame)
    gt = to_numpy(gt).astype(np.int64)
    ax.imshow(img)
    draw_outlines(ax, gt, color="white", linewidth=1.2)
    for obj in np.unique(gt):
        if obj > 0:
            ys, xs = np.nonzero(gt == obj)
            ax.text(xs.mean(), ys.mean(), str(obj), ha="center", va="center", fontsize=8, fontweight="bold",
                    color="black", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))


def draw_labels(ax, labels, num_labels: int, size: tuple[int, int], gt=None) -> None:
    """A label map (h, w) or (H, W) drawn unblended in the slot colours at ``size``; with ``gt`` (H, W) the
    ground-truth objects outlined in black over it."""
    lab = upsample_labels(to_numpy(labels).astype(np.int64), size)
    ax.imshow(label_colors(lab, num_labels), interpolation="nearest")
    if gt is not None:
        draw_outlines(ax, gt)


# ----------------------------------------------------------------------------- frames and maps

def plot_frames(frames, masks=None, frames_to_show: Sequence[int] | None = None, title: str | None = None,
                background: int | None = 0, num_labels: int | None = None) -> Figure:
    """A row of frames (T, 3, H, W); with ``masks`` (T, H, W) a second row draws them unblended, one colour
    per id with its number written on it (``background`` id drawn black) and a legend of the ids."""
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
            axes[1, j].imshow(label_colors(masks[t], num_labels, background=background), interpolation="nearest")
            for obj in np.unique(masks[t]):
                if obj != background:
                    ys, xs = np.nonzero(masks[t] == obj)
                    axes[1, j].text(xs.mean(), ys.mean(), str(obj), ha="center", va="center", fontsize=8)
    axes[0, 0].set_ylabel("frame")
    if masks is not None:
        axes[1, 0].set_ylabel("instance masks")
        colors = label_colors(np.arange(num_labels), num_labels, background=background)
        fig.legend(handles=[Patch(facecolor=colors[k], edgecolor="black", linewidth=0.5,
                                  label="background (0)" if k == background else f"id {k}")
                            for k in range(num_labels)],
                   loc="outside right upper", title="instance id", fontsize=8, title_fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_map_rows(frames, rows: Mapping[str, object], num_labels: int,
                  frames_to_show: Sequence[int] | None = None, title: str | None = None,
                  gt_background: int = 0) -> Figure:
    """Label maps over time, one row per entry of ``rows`` (name -> (T, h, w) or (T, H, W) int), under a row of
    the frames: e.g. ground truth, encoder attention and decoder object maps side by side. Slot maps are drawn
    unblended in the slot colours (one colour per slot in every frame, legend at the right). A row named
    ``"ground truth"`` is drawn as the frame with every object outlined in white and numbered by its id, and its
    outlines are repeated in black over the slot maps, so that "which slot holds which object" can be read."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    arrays = {name: to_numpy(labels) for name, labels in rows.items()}
    gt = arrays.get("ground truth")
    fig, axes = axes_grid(len(arrays) + 1, len(ts))
    for j, t in enumerate(ts):
        img = to_image(frames[t])
        axes[0, j].imshow(img)
        axes[0, j].set_title(f"t={t}", fontsize=9)
        for i, (name, lab) in enumerate(arrays.items(), start=1):
            if name == "ground truth":
                draw_ground_truth(axes[i, j], img, lab[t])
            else:
                draw_labels(axes[i, j], lab[t], num_labels, img.shape[:2], None if gt is None else gt[t])
    axes[0, 0].set_ylabel("frame")
    for i, name in enumerate(arrays, start=1):
        axes[i, 0].set_ylabel(name)
    add_slot_legend(fig, num_labels)
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


# ----------------------------------------------------------------------------- what a frozen encoder sees (notebook 01)

def _patch_image(ax, image, size: tuple[int, int], **kwargs) -> None:
    """A patch-grid image (h, w) or (h, w, 3) stretched over a frame of ``size`` (H, W), so that outlines drawn
    in pixel coordinates lie over it."""
    ax.imshow(to_numpy(image), extent=(-0.5, size[1] - 0.5, size[0] - 0.5, -0.5), interpolation="nearest",
              **kwargs)


def _encoder_grid(frames, masks, columns: Sequence[str]):
    """One row per clip: its frame (n, H, W, 3) with the ground-truth objects (masks (n, H, W)) outlined and
    numbered, then one empty panel per column."""
    frames, masks = to_numpy(frames), to_numpy(masks).astype(np.int64)
    fig, axes = axes_grid(len(frames), len(columns) + 1)
    for i in range(len(frames)):
        draw_ground_truth(axes[i, 0], frames[i], masks[i])
    for j, name in enumerate(["frame, objects outlined", *columns]):
        axes[0, j].set_title(name, fontsize=8)
    return fig, axes, masks


def plot_encoder_pca(frames, masks, colours: Mapping[str, object], title: str | None = None) -> Figure:
    """Per clip (rows) its frame and, per encoder (columns), its patch features' first three principal components
    as RGB (``colours``: name -> (n, h, w, 3) in [0, 1], :func:`pca_rgb`), the objects outlined in black."""
    fig, axes, masks = _encoder_grid(frames, masks, [f"{name}: PCA" for name in colours])
    for j, rgb in enumerate(colours.values()):
        for i in range(len(masks)):
            _patch_image(axes[i, j + 1], rgb[i], masks.shape[-2:])
            draw_outlines(axes[i, j + 1], masks[i], linewidth=0.8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_cls_attention(frames, masks, attention, title: str | None = None) -> Figure:
    """Per clip (rows) its frame and, per head (columns), the CLS token's attention over the patches (attention
    (n, heads, h, w); each map scaled to its own maximum, bright = more), the objects outlined in cyan."""
    attention = to_numpy(attention)
    fig, axes, masks = _encoder_grid(frames, masks, [f"head {h}" for h in range(attention.shape[1])])
    for i in range(len(masks)):
        for h in range(attention.shape[1]):
            _patch_image(axes[i, h + 1], attention[i, h], masks.shape[-2:], cmap="inferno")
            draw_outlines(axes[i, h + 1], masks[i], color="cyan", linewidth=0.8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_encoder_kmeans(frames, masks, labels: Mapping[str, object], scores: Mapping[str, Sequence[float]],
                        title: str | None = None) -> Figure:
    """Per clip (rows) its frame and, per encoder (columns), its k-means labels (``labels``: name -> (n, h, w)
    cluster ids, drawn in the slot colours; the ground-truth objects outlined in black), each panel titled with
    the clip's score (``scores``: name -> n values, the clip's video FG-ARI)."""
    fig, axes, masks = _encoder_grid(frames, masks, list(labels))
    num_labels = int(max(to_numpy(lab).max() for lab in labels.values())) + 1
    for j, (name, lab) in enumerate(labels.items()):
        for i in range(len(masks)):
            draw_labels(axes[i, j + 1], to_numpy(lab)[i], num_labels, masks.shape[-2:], gt=masks[i])
            axes[i, j + 1].set_title((f"{name}: k-means\n" if i == 0 else "") + f"FG-ARI {scores[name][i]:.2f}",
                                     fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_slot_maps(frames, maps: Mapping[str, object], t: int = 0, title: str | None = None) -> Figure:
    """Per-slot soft maps at frame ``t``: one row per entry of ``maps`` (name -> (T, S, h, w) in
    [0, 1], e.g. the encoder attention and the decoder masks), one column per slot, with a colour bar (black: the
    slot takes none of the patch, white: all of it)."""
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
            for spine in axes[i, s + 1].spines.values():  # the slot's colour as a frame around its map
                spine.set_edgecolor(colors[s])
                spine.set_linewidth(4)
            if i == 0:
                axes[i, s + 1].set_title(f"slot {s}", fontsize=9)
    image = axes[0, 1].get_images()[0]
    fig.colorbar(image, ax=axes[:, 1:], shrink=0.8, label="the slot's share of the patch")
    fig.suptitle(title or f"per-slot maps at t={t}")
    return fig



def plot_patch_sets(frames, sets: Mapping[str, object], anchor: tuple[int, int, int],
                    title: str | None = None, slots: Mapping[str, int | None] | None = None) -> Figure:
    """Sets of patches relative to one anchor patch, e.g. dense alignment's positives and
    semi-positives: one row per entry of ``sets`` (name -> (T, h, w) bool over the frames of a
    group), one column per frame of ``frames`` (T, 3, H, W); the anchor ``(t, y, x)`` is starred.
    ``slots`` (name -> slot k, or None) colours a set that is one slot's patches in slot k's colour of every figure
    and any other set white; without it, row i has slot i's colour."""
    frames = to_numpy(frames)
    names = list(sets)
    if slots is None:
        colors = slot_colors(max(len(names), 2))
    else:
        palette = slot_colors(max([k for k in slots.values() if k is not None], default=0) + 1)
        colors = [palette[slots[n]] if slots.get(n) is not None else np.ones(3) for n in names]
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
    (all slots: their argmax in the slot colours, unblended; one slot: its soft map in white over the faint
    frame) or a label map
    (T, h, w) int where -1 marks unselected patches (one slot: only that slot's patches)."""
    img = to_image(frame)
    m = to_numpy(data)
    if m.ndim == 4:
        if slot is None:  # the argmax over slots, unblended in the slot colours
            rgb = label_colors(upsample_labels(m[t].argmax(0), img.shape[:2]), num_labels)
        else:  # the slot's soft map: white where the slot takes the patch, the frame faintly below
            heat = np.clip(upsample_maps(m[t, slot], img.shape[:2]), 0, 1)[..., None]
            rgb = 0.3 * img + 0.7 * heat
    elif m.ndim == 3:
        lab = m[t].astype(np.int64)
        rgb = selection_overlay(img, lab if slot is None else np.where(lab == slot, lab, -1), num_labels)
    else:
        raise ValueError(f"a map must be (T, S, h, w) soft maps or (T, h, w) labels, got shape {m.shape}")
    ax.imshow(np.clip(rgb, 0, 1))


def plot_explorer(frames, maps: Mapping[str, object], num_labels: int, frames_to_show: Sequence[int] | None = None,
                  slot: int | None = None, title: str | None = None, label: str = "slot") -> Figure:
    """The explorer's static view: a row of frames, then one row per map (see :func:`draw_map`), one column
    per frame, and the legend of the labels (``label`` names them: ``"slot"``, or ``"id"`` for instance masks).
    With a single frame the layout turns: one column per map."""
    frames = to_numpy(frames)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    names = list(maps)
    single = len(ts) == 1
    fig, axes = axes_grid(1, len(names) + 1, size=2.2) if single else axes_grid(len(names) + 1, len(ts))
    if single:
        t = ts[0]
        axes[0, 0].imshow(to_image(frames[t]))
        axes[0, 0].set_title(f"frame t={t}", fontsize=9)
        for j, name in enumerate(names, start=1):
            draw_map(axes[0, j], frames[t], maps[name], t, num_labels, slot)
            axes[0, j].set_title(name, fontsize=9)
    else:
        axes[0, 0].set_ylabel("frame")
        for j, t in enumerate(ts):
            axes[0, j].imshow(to_image(frames[t]))
            axes[0, j].set_title(f"t={t}", fontsize=9)
        for i, name in enumerate(names, start=1):
            axes[i, 0].set_ylabel(name)
            for j, t in enumerate(ts):
                draw_map(axes[i, j], frames[t], maps[name], t, num_labels, slot)
    shown, extra = _explorer_legend(list(maps.values()), num_labels, slot)
    add_slot_legend(fig, num_labels, title=f"{label}s", label=label, shown=shown, extra=extra)
    fig.suptitle(title or (f"all {label}s" if slot is None else f"{label} {slot}"))
    return fig


def _explorer_legend(maps: Sequence, num_labels: int, slot: int | None) -> tuple[list[int], list[Patch]]:
    """The labels the explorer draws in colour and, when a label map leaves patches unselected (-1), a legend
    entry for them (the dimmed frame): e.g. instance masks with the background set to -1 list ids 1.. only."""
    arrays = [to_numpy(m) for m in maps]
    label_maps = [m for m in arrays if m.ndim == 3]
    shown = set(range(num_labels) if slot is None else [slot])
    if label_maps and len(label_maps) == len(arrays):  # only label maps: list the labels they draw
        shown &= set(np.unique(np.concatenate([m.ravel() for m in label_maps])).tolist())
    unselected = any((m < 0).any() for m in label_maps) or (slot is not None and bool(label_maps))
    extra = [Patch(facecolor=(0.1, 0.1, 0.1), edgecolor="black", linewidth=0.5,
                   label="unselected (frame dimmed)")] if unselected else []
    return sorted(shown), extra
