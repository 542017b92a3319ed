"""Feature reconstruction loss (docs/method.md §1.7)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(recon: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """recon, features B T N D -> mean squared error against the detached backbone features (§1.7)."""
    if recon.shape != features.shape:
        raise ValueError(f"recon has shape {tuple(recon.shape)} but features has {tuple(features.shape)}")
    return F.mse_loss(recon, features.detach())  # §1.7 target detached
