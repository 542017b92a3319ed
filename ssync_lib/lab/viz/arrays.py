"""Array helpers of the plots: numpy from tensors, slot colours, frames as images, label and map upsampling,
overlays, PCA of features to RGB, the frames to show and a grid of axes.

Shapes: T frames, S slots, H W frame size, h w patch grid, N = h*w patches, D feature dim. Label maps are
integer arrays; frames are RGB in [0, 1] (or uint8), (T, H, W, 3) or (T, 3, H, W).
"""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure


def to_numpy(x) -> np.ndarray:
    """A torch tensor (any device, any dtype) or array-like as a numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    return np.asarray(x)


# The slots' colours: the entries of Trubetskoy's list of distinct colours that the synthetic objects do *not* use
# (``data.scenes.DISTINCT_COLOURS`` holds the other eight: red, green, yellow, blue, orange, purple, cyan,
# magenta), ordered so that neighbouring slot ids differ in lightness. Each is at least 33 CIELAB units (delta E)
# from every object colour and from the plain background, so a slot's colour is never mistaken for an object's.
SLOT_PALETTE = (("navy", "#000075"), ("pink", "#fabed4"), ("olive", "#808000"), ("lavender", "#dcbeff"),
                ("brown", "#9a6324"), ("mint", "#aaffc3"), ("maroon", "#800000"), ("apricot", "#ffd8b1"),
                ("teal", "#469990"), ("grey", "#a9a9a9"), ("lime", "#bfef45"), ("beige", "#fffac8"))
# The synthetic objects' colours by name (``data.scenes.DISTINCT_COLOURS``, in its order), for captions.
OBJECT_COLOUR_NAMES = ("red", "green", "yellow", "blue", "orange", "purple", "cyan", "magenta")


def _hex_rgb(code: str) -> tuple[float, float, float]:
    return tuple(int(code[i:i + 2], 16) / 255.0 for i in (1, 3, 5))


def slot_colors(n: int) -> np.ndarray:
    """``n`` RGB colours (n, 3) in [0, 1], slot ``k`` always ``SLOT_PALETTE[k]`` (the same colour for a slot in
    every frame and every figure); beyond 12 slots, muted husl hues follow."""
    base = [_hex_rgb(code) for _, code in SLOT_PALETTE[:n]]
    if n > len(SLOT_PALETTE):
        base += list(sns.husl_palette(n - len(SLOT_PALETTE), s=0.45, l=0.55))
    return np.array(base, dtype=np.float64).reshape(n, 3)


def slot_color_names(n: int) -> list[str]:
    """The names of :func:`slot_colors` (``"navy"``, ...; ``"hue k"`` beyond the palette), for captions."""
    return [SLOT_PALETTE[k][0] if k < len(SLOT_PALETTE) else f"hue {k}" for k in range(n)]


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


def pca_rgb(features, grid: tuple[int, int], reference=None) -> np.ndarray:
    """Project features (..., N, D) on their first 3 principal components (fit over all tokens of
    all frames given) and scale each component to [0, 1]: (..., h, w, 3). Tokens that the
    encoder sees as alike get alike colours. With ``reference`` (..., N, D) the components and the
    scaling are fit on the reference instead (values outside its range are clipped), so that e.g. the
    decoder's reconstruction is drawn in the same colours as the features it reconstructs."""
    x = to_numpy(features).astype(np.float64)
    lead, (n, d) = x.shape[:-2], x.shape[-2:]
    if n != grid[0] * grid[1]:
        raise ValueError(f"features have N={n} tokens but the grid {tuple(grid)} has {grid[0] * grid[1]}")
    ref = x.reshape(-1, d) if reference is None else to_numpy(reference).astype(np.float64).reshape(-1, d)
    mean = ref.mean(0)
    _, _, vt = np.linalg.svd(ref - mean, full_matrices=False)
    basis = vt[:3].T  # D x <=3
    ref_comps, comps = (ref - mean) @ basis, (x.reshape(-1, d) - mean) @ basis  # tokens x <=3
    if comps.shape[1] < 3:
        ref_comps = np.pad(ref_comps, ((0, 0), (0, 3 - ref_comps.shape[1])))
        comps = np.pad(comps, ((0, 0), (0, 3 - comps.shape[1])))
    lo, hi = ref_comps.min(0), ref_comps.max(0)
    comps = np.clip((comps - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
    return comps.reshape(*lead, grid[0], grid[1], 3)


# ----------------------------------------------------------------------------- which slot holds which object

def slot_tracks(masks, labels) -> tuple[list[int], np.ndarray, np.ndarray]:
    """For every ground-truth id of ``masks`` (T, H, W) (0 = background first) and every frame, the slot of
    ``labels`` (T, h, w) or (T, H, W) (upsampled to the masks, nearest) that covers most of its pixels.

    Returns ``ids`` (K+1 ints, 0 first), ``slots`` (K+1, T) int (-1 where the id is not visible) and ``share``
    (K+1, T) float: the fraction of the id's pixels that slot covers (nan where not visible)."""
    gt = to_numpy(masks).astype(np.int64)
    lab = to_numpy(labels).astype(np.int64)
    if lab.shape[0] != gt.shape[0]:
        raise ValueError(f"masks cover {gt.shape[0]} frames but labels {lab.shape[0]}")
    if lab.shape[1:] != gt.shape[1:]:
        lab = upsample_labels(lab, gt.shape[1:])
    ids = sorted(set(np.unique(gt).tolist()) | {0})
    num_labels = int(lab.max()) + 1
    slots = np.full((len(ids), len(gt)), -1, dtype=np.int64)
    share = np.full((len(ids), len(gt)), np.nan)
    for i, obj in enumerate(ids):
        for t in range(len(gt)):
            inside = lab[t][gt[t] == obj]
            if inside.size:
                counts = np.bincount(inside, minlength=num_labels)
                slots[i, t] = int(counts.argmax())
                share[i, t] = counts.max() / inside.size
    return ids, slots, share


def track_summary(masks, labels, names: dict | None = None):
    """One row per ground-truth object (id > 0) of :func:`slot_tracks`: ``frames`` visible, the ``slots`` it
    was given (in order of first use), ``switches`` (frames where its slot differs from the previous visible
    frame's), ``with_background`` (frames where its slot is also the background's slot), ``mean_share``, and
    its ``name`` (``names[id]``, e.g. from :func:`object_colour_names`). A pandas DataFrame."""
    import pandas as pd

    ids, slots, share = slot_tracks(masks, labels)
    rows = []
    for i, obj in enumerate(ids):
        if obj == 0:
            continue
        seen = slots[i] >= 0
        track = slots[i][seen]
        rows.append({"id": obj, "name": (names or {}).get(obj, f"object {obj}"), "frames": int(seen.sum()),
                     "slots": list(dict.fromkeys(track.tolist())),
                     "switches": int((track[1:] != track[:-1]).sum()),
                     "with_background": int(((slots[i] == slots[0]) & seen & (slots[0] >= 0)).sum()),
                     "mean_share": float(np.nanmean(share[i])) if seen.any() else float("nan")})
    return pd.DataFrame(rows, columns=["id", "name", "frames", "slots", "switches", "with_background", "mean_share"])


def object_colour_names(frames, masks) -> dict[int, str]:
    """Each ground-truth id > 0 named by the synthetic colour (:data:`OBJECT_COLOUR_NAMES`) nearest to its
    median pixel colour over the clip, e.g. ``{1: "green", 2: "blue", 3: "purple"}``: the words a caption
    can use. Frames (T, H, W, 3) or (T, 3, H, W) in [0, 1]; for real data the names are only approximate."""
    from ssync_lib.data.scenes import DISTINCT_COLOURS

    imgs = np.stack([to_image(f) for f in to_numpy(frames)])  # T H W 3
    gt = to_numpy(masks).astype(np.int64)
    palette = np.array(DISTINCT_COLOURS, dtype=np.float64) / 255.0
    names = {}
    for obj in sorted(set(np.unique(gt).tolist()) - {0}):
        colour = np.median(imgs[gt == obj], axis=0)
        names[obj] = OBJECT_COLOUR_NAMES[int(np.linalg.norm(palette - colour, axis=1).argmin())]
    return names


def frame_indices(num_frames: int, max_frames: int = 6) -> list[int]:
    """Up to ``max_frames`` frame indices spread evenly over the clip."""
    return sorted(set(np.linspace(0, num_frames - 1, min(num_frames, max_frames)).round().astype(int).tolist()))


def axes_grid(rows: int, cols: int, size: float = 1.8) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.6, size * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes




def describe_tracks(masks, label_maps: Mapping[str, object]) -> str:
    """A Markdown list, one line per named label map (T, h, w) of the same clip, of what :func:`track_summary`
    finds: objects in the background's slot for at least half of their frames, slot changes of objects, how many
    slots the background's majority slot takes over the clip, and how many slots the map uses."""
    lines = []
    for name, labels in label_maps.items():
        tracks = track_summary(masks, labels)
        lost = int((tracks["with_background"] * 2 >= tracks["frames"]).sum())
        background_slots = len({int(x) for x in slot_tracks(masks, labels)[1][0] if x >= 0})
        lines.append(f"- **{name}**: {lost} of {len(tracks)} objects in the background's slot for at least half "
                     f"of their frames; {int(tracks['switches'].sum())} slot changes of objects; the background's "
                     f"majority slot takes {background_slots} different slot(s) over the clip; "
                     f"{len(np.unique(to_numpy(labels)))} slots used in all")
    return "\n".join(lines)
