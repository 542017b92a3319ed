"""What a slot is and how it behaves over time, the pictures a lecturer needs: which slot holds each object frame by
frame, slot attention's maps over its iterations, the decoder's reconstruction beside its target features, and the
slot vectors themselves. Shapes as in ``viz.arrays``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from ssync_lib.lab.viz.arrays import axes_grid, frame_indices, pca_rgb, slot_colors, slot_tracks, to_image, to_numpy
from ssync_lib.lab.viz.maps import add_slot_legend, draw_labels


# ----------------------------------------------------------------------------- slots over time, iterations, decoder

def plot_slot_tracks(masks, labels, num_labels: int, names: Mapping[int, str] | None = None,
                     title: str | None = None) -> Figure:
    """Which slot holds each object, frame by frame (:func:`viz.slot_tracks`): a matrix per label map
    (``labels`` (T, h, w) int, or name -> (T, h, w) for several maps stacked), rows = the background and every
    ground-truth object of ``masks`` (T, H, W), columns = frames; each cell in the colour of the slot covering
    most of the object, with its number. A hatched cell: the object's slot is the one that also covers most of
    the background in that frame (the object is not separated from the background). Blank: not visible."""
    maps = dict(labels) if isinstance(labels, Mapping) else {"slot": labels}
    colors = slot_colors(num_labels)
    tracks = {name: slot_tracks(masks, lab) for name, lab in maps.items()}
    rows, cols = next(iter(tracks.values()))[1].shape
    fig = plt.figure(figsize=(0.32 * cols + 3.2, len(maps) * (0.32 * rows + 0.7) + 0.5), layout="constrained")
    axes = np.array(fig.subplots(len(maps), 1, squeeze=False))
    for ax, (name, (ids, slots, _)) in zip(axes[:, 0], tracks.items()):
        rows, cols = slots.shape
        ax.set_xlim(0, cols)
        ax.set_ylim(rows, 0)
        for i in range(rows):
            for t in range(cols):
                s = slots[i, t]
                if s < 0:
                    continue
                shared = i > 0 and s == slots[0, t]
                ax.add_patch(Rectangle((t, i), 1, 1, facecolor=colors[s], edgecolor="black", linewidth=0.5,
                                       hatch="///" if shared else None))
                dark = colors[s] @ np.array([0.299, 0.587, 0.114]) < 0.5
                ax.text(t + 0.5, i + 0.5, str(s), ha="center", va="center", fontsize=8,
                        color="white" if dark else "black",
                        bbox=dict(boxstyle="square,pad=0.05", fc=colors[s], ec="none") if shared else None)
        ax.set_yticks(np.arange(rows) + 0.5)
        ax.set_yticklabels(["background" if obj == 0 else f"{obj} {(names or {}).get(obj, '')}".strip()
                            for obj in ids], fontsize=8)
        ax.set_xticks(np.arange(cols) + 0.5)
        ax.set_xticklabels([str(t) for t in range(cols)], fontsize=7)
        ax.set_aspect("equal")
        ax.set_ylabel(name, fontsize=9)
    axes[-1, 0].set_xlabel("frame t")
    add_slot_legend(fig, num_labels, extra=[Patch(facecolor="white", edgecolor="black", hatch="///",
                                                  label="same slot as\nthe background")])
    fig.suptitle(title or "which slot covers most of each object")
    return fig


def plot_attention_iterations(frames, rows: Mapping[str, tuple[int, object]], title: str | None = None) -> Figure:
    """Slot attention's maps after each of its iterations: one row per entry of ``rows`` (name -> (t, maps
    (S, h, w) softmax over slots)), columns: the frame t, every slot's map (white = the slot takes the
    patch; framed in the slot's colour) and the argmax over slots in the slot colours."""
    frames = to_numpy(frames)
    arrays = {name: (t, to_numpy(m)) for name, (t, m) in rows.items()}
    num_slots = next(iter(arrays.values()))[1].shape[0]
    colors = slot_colors(num_slots)
    fig, axes = axes_grid(len(arrays), num_slots + 2, size=1.5)
    for i, (name, (t, m)) in enumerate(arrays.items()):
        img = to_image(frames[t])
        axes[i, 0].imshow(img)
        axes[i, 0].set_ylabel(name, fontsize=8)
        for s in range(num_slots):
            axes[i, s + 1].imshow(m[s], vmin=0, vmax=1, cmap="gray", interpolation="nearest")
            for spine in axes[i, s + 1].spines.values():
                spine.set_edgecolor(colors[s])
                spine.set_linewidth(4)
        draw_labels(axes[i, -1], m.argmax(0), num_slots, img.shape[:2])
    for s in range(num_slots):
        axes[0, s + 1].set_title(f"slot {s}", fontsize=9)
    axes[0, 0].set_title("frame", fontsize=9)
    axes[0, -1].set_title("argmax", fontsize=9)
    add_slot_legend(fig, num_slots)
    fig.suptitle(title or "slot attention, iteration by iteration")
    return fig


def plot_reconstruction(frames, features, recon, grid: tuple[int, int], frames_to_show: Sequence[int] | None = None,
                        title: str | None = None) -> Figure:
    """The decoder's reconstruction beside its target: rows = the frame, the target features (T, N, D) and the
    reconstruction (T, N, D), both as PCA to RGB in the *same* colours (fit on the target), and the per-patch
    error 1 - cos(target, reconstruction) (0 = exact direction, black; 1 or more, white)."""
    frames = to_numpy(frames)
    feats, rec = to_numpy(features).astype(np.float64), to_numpy(recon).astype(np.float64)
    ts = list(frames_to_show) if frames_to_show is not None else frame_indices(len(frames))
    target_rgb, recon_rgb = pca_rgb(feats, grid), pca_rgb(rec, grid, reference=feats)
    cos = (feats * rec).sum(-1) / (np.linalg.norm(feats, axis=-1) * np.linalg.norm(rec, axis=-1) + 1e-12)
    err = (1.0 - cos).reshape(len(feats), *grid)
    fig, axes = axes_grid(4, len(ts))
    for j, t in enumerate(ts):
        axes[0, j].imshow(to_image(frames[t]))
        axes[0, j].set_title(f"t={t}", fontsize=9)
        axes[1, j].imshow(target_rgb[t], interpolation="nearest")
        axes[2, j].imshow(recon_rgb[t], interpolation="nearest")
        im = axes[3, j].imshow(err[t], vmin=0, vmax=1, cmap="gray", interpolation="nearest")
    for i, name in enumerate(["frame", "target features", "reconstruction", "1 - cos"]):
        axes[i, 0].set_ylabel(name)
    fig.colorbar(im, ax=axes[3, :].tolist(), shrink=0.8, label="1 - cos")
    fig.suptitle(title or "decoder: reconstruction beside its target (PCA to RGB, same basis)")
    return fig


def plot_slot_vectors(slots, t: int = 0, title: str | None = None) -> Figure:
    """What a slot is: its vector. ``slots`` (T, S, d). Left: the S vectors of frame ``t`` (one row each,
    d columns). Middle: cosine similarity of the slots of frame ``t`` (rows) with those of frame t+1 (columns).
    Right: for every slot and every step t -> t+1 of the clip, the slot of frame t+1 nearest to it (cosine),
    in the slot colours: a slot that keeps its identity has its own number all along its row."""
    x = to_numpy(slots).astype(np.float64)
    num_frames, num_slots, _ = x.shape
    unit = x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)
    sims = np.einsum("tsd,tud->tsu", unit[:-1], unit[1:])  # T-1 S S
    nearest = sims.argmax(-1).T  # S T-1
    colors = slot_colors(num_slots)
    fig, axes = _row_of_axes(3, widths=(2.2, 1.2, 1.6))
    lim = np.abs(x[t]).max()
    im = axes[0].imshow(x[t], cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    axes[0].set_title(f"slot vectors at t={t}", fontsize=9)
    axes[0].set_xlabel("dimension")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    t1 = min(t + 1, num_frames - 1)
    im = axes[1].imshow(np.einsum("sd,ud->su", unit[t], unit[t1]), cmap="viridis", vmin=-1, vmax=1)
    axes[1].set_title(f"cos(t={t}, t={t1})", fontsize=9)
    axes[1].set_xlabel(f"slot at t={t1}")
    axes[1].set_xticks(range(num_slots))
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    axes[2].imshow(colors[nearest], interpolation="nearest", aspect="auto")
    for s in range(num_slots):
        for k in range(nearest.shape[1]):
            dark = colors[nearest[s, k]] @ np.array([0.299, 0.587, 0.114]) < 0.5
            axes[2].text(k, s, str(nearest[s, k]), ha="center", va="center", fontsize=7,
                         color="white" if dark else "black")
    axes[2].set_title("nearest slot at t+1", fontsize=9)
    axes[2].set_xlabel("step t -> t+1")
    axes[2].set_xticks(range(nearest.shape[1]))
    for ax in axes[:3]:
        ax.set_yticks(range(num_slots))
        ax.set_yticklabels([f"slot {s}" for s in range(num_slots)], fontsize=8)
    fig.suptitle(title or "what a slot is: a vector, carried from frame to frame")
    return fig


def _row_of_axes(n: int, widths: Sequence[float]):
    fig, axes = plt.subplots(1, n, figsize=(sum(widths) * 1.6 + 1.0, 2.6), layout="constrained",
                             gridspec_kw={"width_ratios": list(widths)})
    return fig, list(axes)


