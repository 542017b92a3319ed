"""Multi-crop views and iBOT masks of a batch of clips, drawn as a pure function of (seed, step, clip index).

    views = make_views(clips, indices, step, seed, cfg.dino, patch_size=4)
    views.globals_   # (2B, 3, S, S)   crop v of clip b at row v * B + b
    views.locals_    # (L*B, 3, s, s)  L = dino.local_crops, s = dino.local_size
    views.masks      # (2B, S/p, S/p)  bool, True = the student sees the mask token there (iBOT)

Every random number of clip ``i`` at step ``t`` comes from ``numpy.random.default_rng((seed, t, i))``: the views
do not depend on the batch size, the process count or what ran before, so one process and two torchrun
processes see the same crops, and a resumed run needs only the step.

Temporal views (``dino.temporal``): the two global crops come from two different frames of the clip (a video
moves its objects between them); the local crops from either. Crops are resized with ``grid_sample``
(bilinear), flipped horizontally with probability 1/2, and colour-jittered (brightness, contrast, saturation,
then grey with ``gray_prob``) in [0, 1] pixel space before the ImageNet normalisation is put back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ssync_lib.config import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class Views:
    globals_: torch.Tensor  # (2B, 3, S, S)
    locals_: torch.Tensor  # (L*B, 3, s, s)
    masks: torch.Tensor  # (2B, S/p, S/p) bool


def _crop_box(rng: np.random.Generator, scale: tuple[float, float]) -> tuple[float, float, float, float]:
    """A random-resized-crop box (centre x, centre y, width, height) as fractions of the frame: area in
    ``scale``, aspect ratio log-uniform in [3/4, 4/3] (torchvision's RandomResizedCrop rule), inside the frame."""
    area = rng.uniform(*scale)
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w, h = min(math.sqrt(area * ratio), 1.0), min(math.sqrt(area / ratio), 1.0)
    return rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2), w, h


def _theta(box, flip: bool) -> list[list[float]]:
    """The affine_grid matrix that samples ``box`` (fractions) of a frame, mirrored when ``flip``."""
    cx, cy, w, h = box
    return [[-w if flip else w, 0.0, 2 * cx - 1], [0.0, h, 2 * cy - 1]]


def _jitter_params(rng: np.random.Generator, dcfg) -> list[float]:
    """(brightness, contrast, saturation, grey) factors of one crop; (1, 1, 1, 0) = unchanged."""
    b = c = s = 1.0
    if rng.random() < dcfg.jitter_prob:
        b, c, s = (float(v) for v in rng.uniform(1 - dcfg.jitter, 1 + dcfg.jitter, size=3))
    return [b, c, s, float(rng.random() < dcfg.gray_prob)]


def block_mask(rng: np.random.Generator, grid: int, ratio: float) -> np.ndarray:
    """iBOT's blockwise mask: rectangles of random area and aspect added until ~``ratio`` of the grid x grid
    patches are covered. Returns (grid, grid) bool."""
    mask = np.zeros((grid, grid), bool)
    target = int(round(ratio * grid * grid))
    for _ in range(50):
        if mask.sum() >= target:
            break
        area = rng.uniform(min(4, target), max(target - mask.sum(), min(4, target)) + 1e-6)
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(1 / 0.3)))
        h = max(1, min(grid, int(round(math.sqrt(area * aspect)))))
        w = max(1, min(grid, int(round(math.sqrt(area / aspect)))))
        top, left = rng.integers(0, grid - h + 1), rng.integers(0, grid - w + 1)
        mask[top:top + h, left:left + w] = True
    return mask


def _colour(crops: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Jitter normalised crops (n, 3, s, s) by per-crop (brightness, contrast, saturation, grey) (n, 4)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = crops * std + mean  # [0, 1] pixels
    b, c, s, g = (params[:, i].view(-1, 1, 1, 1) for i in range(4))
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x = (x * b).clamp(0, 1)
    mean_grey = (x * weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = ((x - mean_grey) * c + mean_grey).clamp(0, 1)
    grey = (x * weights).sum(1, keepdim=True)
    x = ((x - grey) * s + grey).clamp(0, 1)
    x = torch.where(g > 0, (x * weights).sum(1, keepdim=True).expand_as(x), x)
    return (x - mean) / std


def _sample(frames: torch.Tensor, thetas: list, size: int) -> torch.Tensor:
    """Crops (n, 3, size, size) of frames (n, 3, S, S) by affine matrices (n x 2 x 3)."""
    theta = torch.tensor(thetas, dtype=frames.dtype)
    grid = F.affine_grid(theta, [len(thetas), 3, size, size], align_corners=False)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)


def make_views(clips: torch.Tensor, indices: list[int], step: int, seed: int, dcfg, patch_size: int) -> Views:
    """Views of clips (B, T, 3, S, S) whose dataset indices are ``indices`` at ``step`` (module docstring)."""
    B, T, _, S, _ = clips.shape
    grid = S // patch_size
    g_frames, g_thetas, g_jit, masks = [[], []], [[], []], [[], []], [[], []]
    l_frames, l_thetas, l_jit = ([[] for _ in range(dcfg.local_crops)] for _ in range(3))
    for b, index in enumerate(indices):
        rng = np.random.default_rng((seed, step, index))
        if dcfg.temporal and T > 1:
            pair = rng.choice(T, size=2, replace=False)  # two different frames, random order
        else:
            pair = np.repeat(rng.integers(T), 2)
        for v in range(2):
            g_frames[v].append(clips[b, int(pair[v])])
            g_thetas[v].append(_theta(_crop_box(rng, (dcfg.global_scale_min, 1.0)), rng.random() < 0.5))
            g_jit[v].append(_jitter_params(rng, dcfg))
            masked = rng.random() < dcfg.mask_prob
            ratio = rng.uniform(dcfg.mask_ratio_min, dcfg.mask_ratio_max)
            masks[v].append(block_mask(rng, grid, ratio) if masked else np.zeros((grid, grid), bool))
        for v in range(dcfg.local_crops):
            l_frames[v].append(clips[b, int(pair[v % 2])])
            l_thetas[v].append(_theta(_crop_box(rng, (dcfg.local_scale_min, dcfg.local_scale_max)),
                                      rng.random() < 0.5))
            l_jit[v].append(_jitter_params(rng, dcfg))
    flat = lambda lists: [x for sub in lists for x in sub]  # view-major: row v * B + b
    globals_ = _colour(_sample(torch.stack(flat(g_frames)), flat(g_thetas), S), torch.tensor(flat(g_jit)))
    if dcfg.local_crops:
        locals_ = _colour(_sample(torch.stack(flat(l_frames)), flat(l_thetas), dcfg.local_size),
                          torch.tensor(flat(l_jit)))
    else:
        locals_ = clips.new_zeros(0, 3, dcfg.local_size, dcfg.local_size)
    return Views(globals_, locals_, torch.from_numpy(np.stack(flat(masks))))
