"""SSync: the slot-attention encoder and the decoder teach each other where they are reliable (docs/method.md §4).

Works with any slot model that gives per-patch slot logits for its encoder (``attn_logits``, slot attention) and its
decoder (``alpha``). Shapes: B batch, T frames, S slots, N = H*W patches.

    labels = pseudo_labels(attn_logits, alpha, grid=(H, W), merge_iou=0.7)     # no gradient
    loss_dec, loss_enc = ssync_loss(attn_logits, alpha, labels)
    loss = ssync_weight(step, max_steps) * (loss_dec + loss_enc)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F


@dataclass
class PseudoLabels:
    slot_map: torch.Tensor  # B S        int64, each slot's merged id (its component's representative)
    enc_labels: torch.Tensor  # B T H W  int64, merged encoder labels
    dec_labels: torch.Tensor  # B T H W  int64, merged decoder labels
    boundary: torch.Tensor  # B T H W    bool, where the encoder teaches the decoder
    interior: torch.Tensor  # B T H W    bool, where the decoder teaches the encoder
    enc_unmerged: torch.Tensor  # B T H W  int64, argmax of attn_logits over slots
    dec_unmerged: torch.Tensor  # B T H W  int64, argmax of alpha over slots
    coverage: torch.Tensor  # B T S N    bool, the slots' coverage masks
    iou: torch.Tensor  # B S S           float, coverage IoU averaged over frames
    edges: torch.Tensor  # B S S         bool, slot pairs merged directly (iou > merge_iou)


class SlotMerge(NamedTuple):
    """What ``merge_slots`` returns (§4.2)."""
    slot_map: torch.Tensor  # B S        int64, each slot's merged id (its component's representative)
    coverage: torch.Tensor  # B T S N    bool, the slots' coverage masks
    iou: torch.Tensor  # B S S           float, coverage IoU averaged over frames
    edges: torch.Tensor  # B S S         bool, slot pairs merged directly (iou > merge_iou)


def _check_logits(name: str, x: torch.Tensor, like: torch.Tensor | None = None) -> None:
    """Shapes always; NaN where that costs no host synchronisation (a CPU tensor) or in debug mode (SSYNC_DEBUG=1).
    On an accelerator, training reports a NaN at its one host sync per step: any NaN logit makes the loss NaN."""
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, T, S, N), got {tuple(x.shape)}")
    if like is not None and x.shape != like.shape:
        raise ValueError(f"{name} has shape {tuple(x.shape)} but attn_logits has {tuple(like.shape)}")
    debug = os.environ.get("SSYNC_DEBUG", "") not in ("", "0")
    if (x.device.type == "cpu" or debug) and torch.isnan(x).any():
        raise ValueError(f"{name} contains NaN")


def merge_slots(attn_logits: torch.Tensor, enc: torch.Tensor, merge_iou: float) -> SlotMerge:
    """attn_logits B T S N, enc B T N (unmerged encoder labels) -> the slot map, coverage, IoU and edges (§4.2)."""
    S = attn_logits.shape[2]
    eye = torch.eye(S, dtype=torch.bool, device=attn_logits.device)
    coverage = attn_logits > attn_logits.mean(dim=(1, 3), keepdim=True)  # B T S N  §4.2 above the slot's clip mean
    cov = coverage.float()
    inter = cov @ cov.transpose(2, 3)  # B T S S  overlap counts per frame
    area = cov.sum(3)  # B T S
    union = area.unsqueeze(3) + area.unsqueeze(2) - inter  # B T S S
    iou = torch.where(union > 0, inter / union.clamp(min=1), 0.0)  # B T S S  both masks empty: IoU 0 ...
    iou = iou.mean(1)  # B S S  §4.2 ... and the frame still counts in the mean over T
    edges = (iou > merge_iou) & ~eye  # B S S  §4.2 strict >, self-pairs excluded
    # Connected components by repeated squaring of the reachability matrix (I + E): after k squarings it holds
    # every path of length <= 2^k, and a path between S nodes has at most S-1 edges, so bit_length(S-1) squarings
    # reach the fixed point. Chosen over label propagation (up to S-1 rounds) because the number of rounds is
    # fixed and small (4 for S=15), needs no data-dependent stopping test (no host sync on a GPU), and gives the
    # whole component of every slot, which the representative choice below needs anyway.
    reach = edges | eye  # B S S
    for _ in range((S - 1).bit_length()):
        reach = (reach.float() @ reach.float()) > 0  # §4.2 transitive closure
    enc_area = F.one_hot(enc.flatten(1), S).sum(1)  # B S  area under the unmerged enc over the whole clip
    rank = enc_area.unsqueeze(1) * S + (S - 1 - torch.arange(S, device=enc.device))  # B 1 S  area, then low index
    slot_map = torch.where(reach, rank, -1).argmax(2)  # B S  §4.2 largest area in the component, ties to lowest index
    return SlotMerge(slot_map=slot_map, coverage=coverage, iou=iou, edges=edges)


def agreeing_neighbours(labels: torch.Tensor) -> torch.Tensor:
    """labels B T H W -> B T H W: how many of the 10 neighbours (the 3x3 spatial ones and the same patch in the
    previous and next frame) carry the same label.

    Replicate padding in T, H and W (§4.3): an out-of-grid neighbour is the nearest in-grid patch. The ten
    neighbours are views into one padded tensor, so nothing of size 10 x B T H W is materialised.
    """
    T, H, W = labels.shape[1:]
    padded = F.pad(labels.unsqueeze(1).float(), (1, 1, 1, 1, 1, 1), mode="replicate").squeeze(1)  # B T+2 H+2 W+2
    offsets = [(0, dh, dw) for dh in (-1, 0, 1) for dw in (-1, 0, 1) if dh or dw] + [(-1, 0, 0), (1, 0, 0)]
    centre = labels.float()  # labels < S are exact in float32
    agree = torch.zeros_like(labels, dtype=torch.uint8)  # B T H W
    for dt, dh, dw in offsets:
        agree += padded[:, 1 + dt:1 + dt + T, 1 + dh:1 + dh + H, 1 + dw:1 + dw + W] == centre
    return agree


@torch.no_grad()
def pseudo_labels(attn_logits: torch.Tensor, alpha: torch.Tensor, grid: tuple[int, int],
                  merge_iou: float = 0.7) -> PseudoLabels:
    """attn_logits (slot-attention logits), alpha (decoder logits), both B T S N -> PseudoLabels (§4.1-§4.4)."""
    _check_logits("attn_logits", attn_logits)
    _check_logits("alpha", alpha, like=attn_logits)
    B, T, S, N = attn_logits.shape
    if len(grid) != 2 or grid[0] * grid[1] != N:
        raise ValueError(f"grid {tuple(grid)} must be (H, W) with H * W = N = {N} "
                         f"(attn_logits {tuple(attn_logits.shape)})")
    H, W = grid
    attn_logits = attn_logits.to(torch.promote_types(attn_logits.dtype, torch.float32))  # low precision: up to fp32
    enc = attn_logits.max(2).indices  # B T N  §4.1 argmax over slots (max: same ties, faster)
    dec = alpha.max(2).indices  # B T N  §4.1
    merge = merge_slots(attn_logits, enc, merge_iou)
    enc_m = merge.slot_map.gather(1, enc.flatten(1)).view(B, T, H, W)  # §4.2 rewrite enc through the slot map
    dec_m = merge.slot_map.gather(1, dec.flatten(1)).view(B, T, H, W)  # §4.2 rewrite dec through the slot map
    enc_agree = agreeing_neighbours(enc_m)  # B T H W, out of 10
    boundary = (enc_agree < 10) & (enc_agree > 0)  # §4.4 differs from >= 1 neighbour and agrees with >= 1
    interior = agreeing_neighbours(dec_m) == 10  # §4.4 agrees with all 10 neighbours
    return PseudoLabels(slot_map=merge.slot_map, enc_labels=enc_m, dec_labels=dec_m, boundary=boundary,
                        interior=interior, enc_unmerged=enc.view(B, T, H, W), dec_unmerged=dec.view(B, T, H, W),
                        coverage=merge.coverage, iou=merge.iou, edges=merge.edges)


def label_statistics(labels: PseudoLabels) -> dict[str, torch.Tensor]:
    """Per clip (B,): slots merged into another slot, the shares (%) of boundary and interior patches and of
    patches whose merged encoder and decoder labels agree: what SSync's losses act on (§4.2-§4.4)."""
    B, S = labels.slot_map.shape
    share = lambda x: 100 * x.flatten(1).float().mean(1)  # noqa: E731  B T H W -> B
    return {"merged_slots": (labels.slot_map != torch.arange(S, device=labels.slot_map.device)).sum(1).float(),
            "boundary_pct": share(labels.boundary), "interior_pct": share(labels.interior),
            "agreement_pct": share(labels.enc_labels == labels.dec_labels)}


def _masked_mse(logits: torch.Tensor, target: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
    """logits B T S N, target B T N int64, select B T N bool -> mean over selected patches x S of
    (softmax over slots - one-hot target)^2."""
    S = logits.shape[2]
    onehot = F.one_hot(target, S).permute(0, 1, 3, 2)  # B T S N
    sq_err = ((logits.softmax(2) - onehot) ** 2).sum(2)  # B T N  §4.5 temperature 1
    # §4.5 an empty selection gives 0 (the public code divides by zero there and returns NaN: deliberate fix)
    return (sq_err * select).sum() / (select.sum().clamp(min=1) * S)


def ssync_loss(attn_logits: torch.Tensor, alpha: torch.Tensor,
               labels: PseudoLabels) -> tuple[torch.Tensor, torch.Tensor]:
    """attn_logits, alpha B T S N (with gradients), labels from `pseudo_labels` -> (loss_dec, loss_enc) (§4.5)."""
    _check_logits("attn_logits", attn_logits)
    _check_logits("alpha", alpha, like=attn_logits)
    B, T, S, N = attn_logits.shape
    names = ("enc_labels", "dec_labels", "boundary", "interior")
    for name in names:
        x = getattr(labels, name)
        if x.dim() != 4 or tuple(x.shape[:2]) != (B, T) or x.shape[2] * x.shape[3] != N:
            raise ValueError(f"labels.{name} has shape {tuple(x.shape)}; expected (B, T, H, W) = ({B}, {T}, H, W) "
                             f"with H * W = {N} to match attn_logits {tuple(attn_logits.shape)}")
    enc, dec, boundary, interior = (getattr(labels, name).detach().reshape(B, T, N) for name in names)  # §4.5 detached
    loss_dec = _masked_mse(alpha, enc, boundary)  # §4.5 decoder alpha at boundaries vs one-hot merged enc
    loss_enc = _masked_mse(attn_logits, dec, interior)  # §4.5 slot-attention logits at interiors vs merged dec
    return loss_dec, loss_enc


def ssync_weight(step: int, max_steps: int, warmup_frac: float = 0.3) -> float:
    """0 during the warm-up, then 1 (§4.6: both SSync losses are off for the first 30% of the global steps)."""
    return 0.0 if step < warmup_frac * max_steps else 1.0
