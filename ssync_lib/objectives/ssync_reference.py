"""The loop reference of SSync's pseudo-labels: a correctness oracle for ``objectives.ssync.pseudo_labels``.

Written for clarity, not speed: Python loops over the batch, the frames, the slot pairs and the slot components
(depth-first search), tensor operations over the patches of one frame only. The tests compare the vectorised
labels with it field by field on random and model-like logits, and ``python -m ssync_lib.lab.bench labels`` times
both. It is this project's own reference, not the public code (which batches the IoU of all slot pairs in one
matmul and loops in Python only over the batch for merging).

    ref = loop_pseudo_labels(attn_logits, alpha, grid, merge_iou)   # attn_logits, alpha: B T S N
    labels_mismatch(pseudo_labels(...), ref)                             # [] when equal
"""
from __future__ import annotations

import torch

from ssync_lib.objectives.ssync import PseudoLabels


def _frame_neighbours(labels: torch.Tensor, t: int) -> torch.Tensor:
    """labels T H W -> 10 H W: frame t's 3x3 spatial neighbours and the same patch in frames t-1 and t+1, replicate
    padding (§4.3)."""
    T, H, W = labels.shape
    rows = torch.cat([labels[t, :1], labels[t], labels[t, -1:]])  # H+2 W  edge rows repeated
    padded = torch.cat([rows[:, :1], rows, rows[:, -1:]], dim=1)  # H+2 W+2
    spatial = [padded[1 + dh:1 + dh + H, 1 + dw:1 + dw + W] for dh in (-1, 0, 1) for dw in (-1, 0, 1) if dh or dw]
    return torch.stack(spatial + [labels[max(t - 1, 0)], labels[min(t + 1, T - 1)]])


def loop_pseudo_labels(attn_logits: torch.Tensor, alpha: torch.Tensor, grid: tuple[int, int],
                       merge_iou: float = 0.7) -> PseudoLabels:
    """The reference for `pseudo_labels` (§4.1-§4.4), a plain loop version: Python loops over the batch,
    the frames, the slot pairs and the slot components (depth-first search), tensor operations over the patches of
    one frame. Same tie rules as pseudo_labels (representative: largest area, then lowest index); iou in float64."""
    B, T, S, N = attn_logits.shape
    H, W = grid
    logits = attn_logits.to(torch.promote_types(attn_logits.dtype, torch.float32))
    eye = torch.eye(S, dtype=torch.bool, device=logits.device)
    fields = {name: [] for name in ("slot_map", "enc_labels", "dec_labels", "boundary", "interior", "enc_unmerged",
                                    "dec_unmerged", "coverage", "iou", "edges")}
    for b in range(B):
        enc = torch.stack([logits[b, t].argmax(0) for t in range(T)])  # T N  §4.1
        dec = torch.stack([alpha[b, t].argmax(0) for t in range(T)])  # T N  §4.1
        cover = torch.stack([logits[b, :, s] > logits[b, :, s].mean() for s in range(S)], dim=1)  # T S N  §4.2
        iou = torch.zeros(S, S, dtype=torch.float64, device=logits.device)
        for i in range(S):
            for j in range(S):
                for t in range(T):
                    union = int((cover[t, i] | cover[t, j]).sum())
                    if union:  # both masks empty: IoU 0, the frame still counts in the mean (§4.2)
                        iou[i, j] += int((cover[t, i] & cover[t, j]).sum()) / union / T
        edges = (iou > merge_iou) & ~eye  # §4.2 strict >, no self-pairs
        adjacent, area = edges.tolist(), torch.bincount(enc.flatten(), minlength=S).tolist()
        slot_map, seen = list(range(S)), set()
        for start in (s for s in range(S) if s not in seen):
            component, stack = [], [start]
            while stack:  # depth-first search over the edges: one connected component
                i = stack.pop()
                if i not in seen:
                    seen.add(i)
                    component.append(i)
                    stack += [j for j in range(S) if adjacent[i][j] and j not in seen]
            representative = max(component, key=lambda s: (area[s], -s))  # §4.2 largest area, ties: lowest index
            for i in component:
                slot_map[i] = representative
        slot_map = torch.tensor(slot_map, device=logits.device)  # S
        enc_m, dec_m = slot_map[enc].view(T, H, W), slot_map[dec].view(T, H, W)  # §4.2 rewritten through the map
        boundary, interior = [], []
        for t in range(T):
            differs = _frame_neighbours(enc_m, t) != enc_m[t]  # 10 H W
            boundary.append(differs.any(0) & ~differs.all(0))  # §4.4
            interior.append((_frame_neighbours(dec_m, t) == dec_m[t]).all(0))  # §4.4
        for name, value in (("slot_map", slot_map), ("enc_labels", enc_m), ("dec_labels", dec_m),
                            ("boundary", torch.stack(boundary)), ("interior", torch.stack(interior)),
                            ("enc_unmerged", enc.view(T, H, W)), ("dec_unmerged", dec.view(T, H, W)),
                            ("coverage", cover), ("iou", iou), ("edges", edges)):
            fields[name].append(value)
    return PseudoLabels(**{name: torch.stack(values) for name, values in fields.items()})


def labels_mismatch(got: PseudoLabels, ref: PseudoLabels, atol: float = 1e-6) -> list[str]:
    """Names of the PseudoLabels fields that differ (iou: beyond atol; every other field: exactly)."""
    bad = []
    for name in PseudoLabels.__dataclass_fields__:
        a, b = getattr(got, name), getattr(ref, name)
        same = (a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=atol) if name == "iou"
                else torch.equal(a, b))
        if not same:
            bad.append(name)
    return bad


