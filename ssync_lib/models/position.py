"""Position embeddings made from the patch-centre coordinates (the spatial broadcast decoder, Watters et
al. 2019; SAVi's encoder position embedding). Used by the cpu profile, whose random backbone features carry
no position (docs/cpu_recipe.md); the published configurations use a learned (1, N, d) embedding instead.
"""
from __future__ import annotations

import torch
from torch import nn


def patch_coordinates(grid: tuple[int, int]) -> torch.Tensor:
    """grid (H, W) -> (N, 2) patch-centre (row, col) coordinates in [-1, 1], row-major like the tokens."""
    rows, cols = (torch.linspace(-1.0, 1.0, n) for n in grid)
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)  # N 2


class LinearPositionEmbedding(nn.Module):
    """A linear map of the patch coordinates: forward() -> (1, N, dim)."""

    def __init__(self, grid: tuple[int, int], dim: int):
        super().__init__()
        self.register_buffer("coords", patch_coordinates(grid), persistent=False)  # N 2
        self.linear = nn.Linear(2, dim)

    def forward(self) -> torch.Tensor:
        return self.linear(self.coords).unsqueeze(0)  # 1 N dim
