"""Array helpers of the plots: numpy from tensors, slot colours, frames as images, label and map upsampling,
overlays, PCA of features to RGB, the frames to show and a grid of axes.

Shapes: T frames, S slots, H W frame size, h w patch grid, N = h*w patches, D feature dim. Label maps are
integer arrays; frames are RGB in [0, 1] (or uint8), (T, H, W, 3) or (T, 3, H, W).
"""
from __future__ import annotations

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


def axes_grid(rows: int, cols: int, size: float = 1.8) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.6, size * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


