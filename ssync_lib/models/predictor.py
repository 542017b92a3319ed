"""Slot propagation between frames (docs/method.md §1.5)."""
from __future__ import annotations

import torch
from torch import nn


class SlotPredictor(nn.Module):
    """A one-block pre-norm transformer encoder over the slots of one frame (4 heads, FFN 4d, no
    dropout): the corrected slots of frame t (B,S,d) -> the initial slots of frame t+1 (B,S,d)."""

    def __init__(self, slot_dim: int, num_heads: int = 4, ffn_factor: int = 4):
        super().__init__()
        if slot_dim % num_heads:
            raise ValueError(f"model.slot_dim={slot_dim} is not divisible by model.predictor_heads={num_heads}")
        self.block = nn.TransformerEncoderLayer(slot_dim, num_heads, dim_feedforward=ffn_factor * slot_dim,
                                                dropout=0.0, batch_first=True, norm_first=True)

    def forward(self, slots: torch.Tensor) -> torch.Tensor:
        return self.block(slots)  # B S d
