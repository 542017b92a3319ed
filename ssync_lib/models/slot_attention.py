"""Feature projection, slot initialisation and slot attention (docs/method.md §1.2-§1.4).

Shapes: B batch, S slots, N patches, D backbone dim, d slot dim.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ssync_lib.config_checks import check_choice


class ProjectionMLP(nn.Module):
    """LayerNorm(D) -> Linear(D, 2D) -> ReLU -> Linear(2D, d) (§1.2). (..., D) -> (..., d)."""

    def __init__(self, feature_dim: int, slot_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, 2 * feature_dim), nn.ReLU(),
                                 nn.Linear(2 * feature_dim, slot_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class SlotInit(nn.Module):
    """Initial slots (B, S, d) (§1.3).

    "learned" (SlotContrast): one learned (1, S, d) tensor shared by all videos.
    "gaussian" (VideoSAUR): S samples from a learned diagonal Gaussian, fresh for every video.
    """

    def __init__(self, num_slots: int, slot_dim: int, mode: str = "learned"):
        super().__init__()
        check_choice("model", "slot_init", mode)
        self.mode, self.num_slots, self.slot_dim = mode, num_slots, slot_dim
        std = slot_dim ** -0.5
        if mode == "learned":
            self.slots = nn.Parameter(torch.randn(1, num_slots, slot_dim) * std)  # 1 S d
        else:
            self.mean = nn.Parameter(torch.zeros(1, 1, slot_dim))  # 1 1 d
            self.log_std = nn.Parameter(torch.full((1, 1, slot_dim), math.log(std)))  # 1 1 d

    def forward(self, batch_size: int) -> torch.Tensor:
        if self.mode == "learned":
            return self.slots.expand(batch_size, -1, -1)  # B S d
        noise = torch.randn(batch_size, self.num_slots, self.slot_dim, device=self.mean.device,
                            dtype=self.mean.dtype)  # B S d
        return self.mean + noise * self.log_std.exp()  # B S d


class SlotAttention(nn.Module):
    """Slot attention on one frame (§1.4). Keys and values are computed once per video by
    :meth:`keys_values` so that the per-frame loop only runs the slot side.

    forward(slots (B,S,d), k (B,N,d), v (B,N,d), iters) -> slots (B,S,d), attn (B,S,N), logits (B,S,N);
    with ``return_iterations=True`` a fourth output: every iteration's attention (B,iters,S,N), for figures.
    """

    def __init__(self, slot_dim: int, mlp_hidden_factor: int = 4, eps: float = 1e-8):
        super().__init__()
        self.eps = eps
        self.scale = slot_dim ** -0.5
        self.norm_inputs = nn.LayerNorm(slot_dim)
        self.to_k = nn.Linear(slot_dim, slot_dim, bias=False)
        self.to_v = nn.Linear(slot_dim, slot_dim, bias=False)
        self.norm_slots = nn.LayerNorm(slot_dim)
        self.to_q = nn.Linear(slot_dim, slot_dim, bias=False)
        self.gru = nn.GRUCell(slot_dim, slot_dim)
        hidden = mlp_hidden_factor * slot_dim
        self.mlp = nn.Sequential(nn.LayerNorm(slot_dim), nn.Linear(slot_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, slot_dim))

    def keys_values(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (..., N, d) projected features -> k, v (..., N, d), bias-free, of LN(inputs) (§1.4)."""
        inputs = self.norm_inputs(inputs)
        return self.to_k(inputs), self.to_v(inputs)

    def step(self, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """One iteration: slots (B,S,d) -> slots (B,S,d), attn (B,S,N), logits (B,S,N)."""
        b, s, d = slots.shape
        slots_n = self.norm_slots(slots)  # B S d
        q = self.to_q(slots_n)  # B S d
        logits = torch.einsum("bsd,bnd->bsn", q, k) * self.scale  # B S N   q k^T / sqrt(d) (§1.4)
        attn = logits.softmax(dim=1)  # B S N   softmax over slots (§1.4)
        weights = (attn + self.eps) / (attn + self.eps).sum(dim=-1, keepdim=True)  # B S N  renormalised over patches
        updates = torch.einsum("bsn,bnd->bsd", weights, v)  # B S d
        # The public code (VideoSAUR/SlotContrast) feeds the *normalised* slots as the GRU state; reproduced (§1.4).
        slots = self.gru(updates.reshape(b * s, d), slots_n.reshape(b * s, d)).view(b, s, d)  # B S d
        slots = slots + self.mlp(slots)  # B S d   residual MLP, hidden 4d (§1.4)
        return slots, attn, logits

    def forward(self, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor, iters: int,
                return_iterations: bool = False):
        per_iter = []
        for _ in range(iters):
            slots, attn, logits = self.step(slots, k, v)
            per_iter.append(attn)
        if return_iterations:  # the same computation; the maps of every iteration kept (B iters S N)
            return slots, attn, logits, torch.stack(per_iter, dim=1)
        return slots, attn, logits  # last iteration's maps: the encoder attention maps (§1.4)
