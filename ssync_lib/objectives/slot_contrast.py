"""SlotContrast's slot-slot contrastive loss (docs/method.md §1.7)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def slot_contrast_loss(slots: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """slots B T S d (corrected slots) -> scalar.

    Per pair of consecutive frames, the B*S slots of the whole batch are the rows (negatives from every video);
    each frame-(t+1) slot j must pick row j among all frame-t slots: a cross-entropy whose softmax runs over the
    frame-t axis. One direction only; mean over the T-1 pairs and the B*S slots. T = 1 has no pair: 0.
    """
    if slots.dim() != 4:
        raise ValueError(f"slots must have shape (B, T, S, d), got {tuple(slots.shape)}")
    B, T, S, d = slots.shape
    if T < 2:
        return slots.new_zeros(())
    z = F.normalize(slots, dim=-1).transpose(0, 1).reshape(T, B * S, d)  # T BS d  §1.7 the batch's slots as rows
    logits = z[:-1] @ z[1:].transpose(1, 2) / tau  # T-1 BS(frame t) BS(frame t+1)  §1.7 L_t = z_t z_{t+1}^T / tau
    target = torch.arange(B * S, device=slots.device).expand(T - 1, -1)  # T-1 BS  slot j picks row j
    return F.cross_entropy(logits, target)  # §1.7 class axis = dim 1 = frame-t slots: softmax over the frame-t axis
