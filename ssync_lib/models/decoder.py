"""MLP broadcast decoder (docs/method.md §1.6)."""
from __future__ import annotations

import torch
from torch import nn

from ssync_lib.config_checks import check_choice
from ssync_lib.models.position import LinearPositionEmbedding


class MLPBroadcastDecoder(nn.Module):
    """Each slot is broadcast to the N patches, a position embedding (1,N,d) is added, and an
    MLP d -> hidden x layers -> D+1 gives per-slot features and an alpha logit (§1.6).

    pos_embed: "learned" (a (1,N,d) parameter, published) or "linear" (a linear map of the patch
    coordinates, as in the spatial broadcast decoder; the cpu profile, see docs/cpu_recipe.md).

    forward(slots (B,S,d)) -> recon (B,N,D), alpha (B,S,N), masks (B,S,N).
    """

    def __init__(self, slot_dim: int, feature_dim: int, grid: tuple[int, int], hidden: int = 1024, layers: int = 3,
                 pos_embed: str = "learned"):
        super().__init__()
        self.feature_dim = feature_dim
        check_choice("model", "decoder_pos_embed", pos_embed)
        if pos_embed == "learned":
            self.pos_emb = nn.Parameter(torch.randn(1, grid[0] * grid[1], slot_dim) * slot_dim ** -0.5)  # 1 N d
        else:  # "linear"
            self.pos_linear = LinearPositionEmbedding(grid, slot_dim)
        dims = [slot_dim] + [hidden] * layers
        blocks = []
        for i, o in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(i, o), nn.ReLU()]
        self.mlp = nn.Sequential(*blocks, nn.Linear(dims[-1], feature_dim + 1))

    def forward(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = self.pos_emb if hasattr(self, "pos_emb") else self.pos_linear()  # 1 N d
        x = slots.unsqueeze(2) + pos.unsqueeze(1)  # B S N d   broadcast + position (§1.6)
        per_slot, alpha = self.mlp(x).split((self.feature_dim, 1), dim=-1)  # B S N D, B S N 1
        alpha = alpha.squeeze(-1)  # B S N
        masks = alpha.softmax(dim=1)  # B S N   softmax over slots: the decoder object maps (§1.6)
        recon = torch.einsum("bsn,bsnd->bnd", masks, per_slot)  # B N D   sum_s masks * recon (§1.6)
        return recon, alpha, masks
