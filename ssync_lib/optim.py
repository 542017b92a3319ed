"""The optimiser and the learning-rate schedule (docs/method.md §1.8).

    optimizer = build_optimizer(model, objective, cfg.train)      # Adam, group 0 model, group 1 objective
    scheduler = build_scheduler(optimizer, cfg.train, step=0)     # linear warm-up, then exponential decay
"""
from __future__ import annotations

import torch
from torch import nn

from ssync_lib.config import TrainConfig


class WarmupExpDecay:
    """lr factor: linear warm-up ``step / warmup`` for ``step < warmup``, then
    ``0.5 ** ((step - warmup) / (max_steps - warmup))`` (§1.8). ``step`` is the global step (0-based)
    of the update the lr is used for; like the public code the first update (step 0) has lr 0.

    A class with plain attributes (not a lambda) so that ``LambdaLR.state_dict`` stays
    weights_only-loadable."""

    def __init__(self, warmup_steps: int, max_steps: int):
        self.warmup_steps, self.max_steps = warmup_steps, max_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps  # §1.8 linear warm-up
        decay_steps = max(self.max_steps - self.warmup_steps, 1)
        return 0.5 ** ((step - self.warmup_steps) / decay_steps)  # §1.8 exponential decay


def build_optimizer(model: nn.Module, objective: nn.Module, tcfg: TrainConfig) -> torch.optim.Adam:
    """Adam over the trainable parameters: group 0 the model's, group 1 the objective's (possibly
    empty). The groups keep the model's state separable when branching to another objective."""
    groups = [{"params": [p for p in m.parameters() if p.requires_grad]} for m in (model, objective)]
    return torch.optim.Adam(groups, lr=tcfg.lr)


def build_scheduler(optimizer: torch.optim.Optimizer, tcfg: TrainConfig,
                    step: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR positioned so that the next update (global step ``step``) uses ``lr * factor(step)``."""
    for group in optimizer.param_groups:
        group["initial_lr"] = tcfg.lr
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupExpDecay(tcfg.warmup_steps, tcfg.max_steps),
                                             last_epoch=step - 1)
