"""The typed result of the video slot model: the contract between models and objectives.

Shapes: B batch, T frames, S slots, N = H*W patches, D backbone feature dim, d slot dim.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class ModelOutput:
    slots: torch.Tensor  # B T S d    corrected slots (after slot attention) per frame
    attn: torch.Tensor  # B T S N     encoder attention maps, softmax over slots (last iteration)
    attn_logits: torch.Tensor  # B T S N   pre-softmax slot-attention logits (last iteration)
    alpha: torch.Tensor  # B T S N    decoder alpha logits (the decoder object maps before softmax)
    masks: torch.Tensor  # B T S N    softmax of alpha over slots
    recon: torch.Tensor  # B T N D    reconstructed features, sum_s masks * per-slot recon
    features: torch.Tensor  # B T N D detached backbone features (the reconstruction target)
    projected: torch.Tensor  # B T N d  features after the projection MLP (slot-attention inputs)
    grid: tuple[int, int]  # (H, W) patch grid, H * W = N
    keys: Optional[torch.Tensor] = None  # B T N D  last block's attention keys (optional)
