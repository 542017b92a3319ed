"""movi-mini's textures, made in code: (S,S,3) uint8 images from 2-3 colours (the objects' kinds, held-out kinds
for test), the objects' colours and the floor's smooth, low-contrast texture."""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image

from ssync_lib.data.movi_mini.level import Level


def _smooth_noise(rng: np.random.Generator, cells: int, size: int) -> np.ndarray:
    """Value noise in [0, 1]: a (cells+1)^2 random grid, bicubic-upsampled to (size, size)."""
    grid = rng.random((cells + 1, cells + 1))
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.asarray(img, np.float32) / 255


def texture(kind: str, colours: np.ndarray, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A texture image (size,size,3) uint8 of kind ``kind`` from ``colours`` (C,3) float in [0,255], C = 2 or 3."""
    u, v = np.meshgrid(np.linspace(0, 1, size, endpoint=False), np.linspace(0, 1, size, endpoint=False))
    angle = rng.uniform(0, np.pi)
    along = u * np.cos(angle) + v * np.sin(angle)
    c = len(colours)
    if kind == "stripes":  # bands cycling through the colours
        label = np.floor(along * rng.integers(2, 6) * c) % c
    elif kind == "spots":  # discs of the other colours on the first
        label = np.zeros((size, size))
        for _ in range(rng.integers(3, 8)):
            cu, cv, r = rng.random(), rng.random(), rng.uniform(0.06, 0.16)
            du, dv = np.abs(u - cu), np.abs(v - cv)
            du, dv = np.minimum(du, 1 - du), np.minimum(dv, 1 - dv)  # wraps around like the texture
            label[du ** 2 + dv ** 2 < r ** 2] = rng.integers(1, c)
    elif kind == "noise":  # blobs: smooth noise cut into c levels
        label = np.minimum(np.floor(_smooth_noise(rng, 4, size) * c), c - 1)
    elif kind == "gradient":  # a continuous blend through the colours
        t = (along - along.min()) / max(np.ptp(along), 1e-9) * (c - 1)
        lo = np.minimum(np.floor(t), c - 2).astype(int)
        frac = (t - lo)[..., None]
        return np.round(colours[lo] * (1 - frac) + colours[lo + 1] * frac).astype(np.uint8)
    elif kind == "checks":  # held out: a checkerboard of 2-4 cells per side
        n = rng.integers(2, 5)
        label = (np.floor(u * n) + np.floor(v * n)) % c
    elif kind == "rings":  # held out: concentric rings about a random centre
        r = np.hypot(u - rng.random(), v - rng.random())
        label = np.floor(r * rng.integers(4, 9)) % c
    elif kind == "waves":  # held out: wavy stripes
        across = -u * np.sin(angle) + v * np.cos(angle)
        label = np.floor((along + 0.08 * np.sin(2 * np.pi * 3 * across)) * rng.integers(3, 6) * c) % c
    else:
        raise ValueError(f"unknown texture kind '{kind}'")
    return np.round(colours[label.astype(int)]).astype(np.uint8)


def _colour(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    """A random colour (3,) in [0,255]: hue ``hue`` (else any), saturation 0.45-0.95, value 0.45-0.95."""
    hue = rng.random() if hue is None else hue
    return 255 * np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.95), rng.uniform(0.45, 0.95)))


def object_colours(rng: np.random.Generator, contrast: float, hue: float | None = None) -> np.ndarray:
    """2 or 3 texture colours (C,3): a base colour (of hue ``hue`` if given) and others moved ``contrast`` of the
    way to random colours."""
    base = _colour(rng, hue)
    others = [base + contrast * (_colour(rng) - base) for _ in range(rng.integers(1, 3))]
    return np.stack([base] + others)


def floor_texture(rng: np.random.Generator, level: Level, size: int = 256) -> np.ndarray:
    """A smooth, low-contrast floor: a pale, weakly saturated base colour times 1 +- floor_contrast of value noise."""
    base = 255 * np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.25), rng.uniform(0.55, 0.8)))
    factor = 1 + level.floor_contrast * (2 * _smooth_noise(rng, level.floor_cells, size) - 1)
    return np.round(np.clip(base * factor[..., None], 0, 255)).astype(np.uint8)
