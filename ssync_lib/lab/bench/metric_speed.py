"""The speed of the metrics on a MOVi-sized evaluation batch (64 videos x 24 frames x 128 px by default).

    df = run_metrics(batch=2)
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from ssync_lib import metrics
from ssync_lib.lab.bench.timing import best_time, machine_context
from ssync_lib.runtime import resolve_device


def _blocky(shape: tuple[int, ...], high: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Random ids in blocks of 8x8 pixels -> B T size size, int64."""
    coarse = torch.randint(high, (*shape, max(size // 8, 1), max(size // 8, 1)), generator=gen)
    return F.interpolate(coarse.flatten(0, 1)[:, None].float(), size=(size, size), mode="nearest")[:, 0] \
        .long().unflatten(0, shape)  # B T H W


def run_metrics(batch: int = 64, frames: int = 24, size: int = 128, slots: int = 11, repeats: int = 3,
                device: str = "cpu", seed: int = 0) -> pd.DataFrame:
    """Time of each metric on a MOVi-sized evaluation batch of blocky random label maps (ground truth: up to 10
    objects on a background; prediction: one of `slots` ids per block) -> one row per function."""
    device = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    true = _blocky((batch, frames), 11, size, gen).to(torch.uint8).to(device)  # B T H W, 0 = background
    pred = _blocky((batch, frames), slots, size, gen).to(device)  # B T H W
    grid = max(size // 16, 1)
    soft = torch.rand(batch, frames, slots, grid, grid, generator=gen).softmax(dim=2).to(device)  # B T S h w
    cases = {
        "fg_ari video": lambda: metrics.fg_ari(pred, true),
        "fg_ari image": lambda: metrics.fg_ari(pred, true, level="image"),
        "mbo video": lambda: metrics.mbo(pred, true),
        "miou video": lambda: metrics.miou(pred, true),
        "miou image": lambda: metrics.miou(pred, true, level="image"),
        "evaluate_masks (all six)": lambda: metrics.evaluate_masks(pred, true),
        f"masks_to_labels {grid}x{grid}->{size}": lambda: metrics.masks_to_labels(soft, size),
    }
    rows = []
    for name, fn in cases.items():
        fn()  # warm-up
        rows.append({"function": name, "time_ms": best_time(fn, repeats, device) * 1e3, "batch": batch,
                     "frames": frames, "size": size, "slots": slots, **machine_context(device)})
    return pd.DataFrame(rows)
