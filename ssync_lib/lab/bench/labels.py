"""The speed of SSync's pseudo-labels (docs/method.md §4.7): the vectorised ``pseudo_labels`` against the loop
reference ``objectives.ssync_reference.loop_pseudo_labels`` (a correctness oracle: Python loops over the batch,
frames, slot pairs and components), outputs checked equal, on model-like slot logits at the MOVi-C and
YouTube-VIS shapes.

    df = run_labels(shapes={"tiny": LabelShape(2, 4, 5, (6, 6), 0.7)})
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import pandas as pd
import torch
import torch.nn.functional as F

from ssync_lib.lab.bench.timing import best_time, machine_context
from ssync_lib.objectives.ssync import pseudo_labels
from ssync_lib.objectives.ssync_reference import labels_mismatch, loop_pseudo_labels
from ssync_lib.runtime import resolve_device


@dataclass(frozen=True)
class LabelShape:
    """The shape of one labels benchmark: slot logits B T S N with N = H * W, and the merge threshold."""
    batch: int
    frames: int
    slots: int
    grid: tuple[int, int]
    merge_iou: float


LABEL_SHAPES = {"MOVi-C": LabelShape(64, 4, 11, (24, 24), 0.7),  # docs/method.md §1 table: ViT-S/14 at 336 px
                "YTVIS": LabelShape(64, 4, 7, (37, 37), 0.6)}  # ViT-B/14 at 518 px


def _smooth(gen: torch.Generator, B: int, T: int, C: int, grid: tuple[int, int], scale: float) -> torch.Tensor:
    """Random maps at 1/8 of the grid, bilinearly upsampled -> B T C N."""
    H, W = grid
    coarse = torch.randn(B * T, C, max(H // 8, 1), max(W // 8, 1), generator=gen)
    return scale * F.interpolate(coarse, size=grid, mode="bilinear", align_corners=False).view(B, T, C, H * W)


def clip_logits(shape: LabelShape, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot-attention and decoder logits B T S N that look like a model's: smooth object maps that change a little
    over the frames, a third of the slots weaker near-copies of others (so that merging happens), decoder logits =
    encoder logits + smooth noise. At the LABEL_SHAPES about 35% of the patches are boundary, 50% interior."""
    gen = torch.Generator().manual_seed(seed)
    B, T, S = shape.batch, shape.frames, shape.slots
    objects = max(1, S - S // 3)
    maps = _smooth(gen, B, 1, objects, shape.grid, 3.0) + _smooth(gen, B, T, objects, shape.grid, 0.3)  # B T O N
    sources = torch.randint(0, objects, (S - objects,), generator=gen)
    copies = maps[:, :, sources] - 0.5 + _smooth(gen, B, T, S - objects, shape.grid, 0.5)  # redundant slots
    attn = torch.cat([maps, copies], dim=2)  # B T S N
    return attn, attn + _smooth(gen, B, T, S, shape.grid, 1.0)


def run_labels(shapes: Mapping[str, LabelShape] = LABEL_SHAPES, batch: int | None = None, repeats: int = 3,
               device: str = "cpu", seed: int = 0) -> pd.DataFrame:
    """pseudo_labels against loop_pseudo_labels at each shape (`batch` overrides the shapes' batch): outputs checked
    equal first (AssertionError naming the fields otherwise), then both timed. -> one row per shape."""
    device = resolve_device(device)
    rows = []
    for name, shape in shapes.items():
        shape = replace(shape, batch=batch or shape.batch)
        attn, dec = (x.to(device) for x in clip_logits(shape, seed))
        args = (attn, dec, shape.grid, shape.merge_iou)
        got, ref = pseudo_labels(*args), loop_pseudo_labels(*args)  # also the warm-up runs
        bad = labels_mismatch(got, ref)
        if bad:
            raise AssertionError(f"labels bench '{name}': pseudo_labels and loop_pseudo_labels differ in {bad}")
        loop_s = best_time(lambda: loop_pseudo_labels(*args), repeats, device)
        vec_s = best_time(lambda: pseudo_labels(*args), repeats, device)
        S = shape.slots
        rows.append({"shape": name, "batch": shape.batch, "frames": shape.frames, "slots": S,
                     "grid": f"{shape.grid[0]}x{shape.grid[1]}", "merge_iou": shape.merge_iou,
                     "loop_ms": loop_s * 1e3, "vectorised_ms": vec_s * 1e3, "speedup": loop_s / vec_s,
                     "equal": True, "merged_per_clip": float((got.slot_map != torch.arange(S, device=device))
                                                             .sum(1).float().mean()),
                     "boundary_pct": 100 * float(got.boundary.float().mean()),
                     "interior_pct": 100 * float(got.interior.float().mean()), **machine_context(device)})
    return pd.DataFrame(rows)
