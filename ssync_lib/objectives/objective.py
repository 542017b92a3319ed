"""The one objective the training loop uses, chosen by name (docs/method.md §1.7, §3, §4).

    objective = build_objective(cfg.objective, feature_dim=D, slot_dim=d, max_steps=cfg.train.max_steps)
    optimizer = Adam([*model.parameters(), *objective.parameters()])   # "dense" holds SRL's projections
    losses = objective(model_output, step); losses.total.backward(); log(losses.terms)

baseline  recon (1.0) + slot contrast (0.5)
dense     baseline + SRL decoder/encoder alignment (0.1 / 0.1, from dense_from_frac of the steps)
          + slot-redundancy regulariser (0.1, until redundancy_until_frac of the steps)
ssync     baseline + SSync decoder/encoder losses (1.0 / 1.0, off for the first ssync_warmup_frac of the steps)
Every term of a name is always reported (0 while scheduled off), each already multiplied by its weight.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ssync_lib.config import ObjectiveConfig
from ssync_lib.errors import ConfigError
from ssync_lib.models.output import ModelOutput
from ssync_lib.objectives.dense_alignment import DenseAlignment, redundancy_loss
from ssync_lib.objectives.reconstruction import reconstruction_loss
from ssync_lib.objectives.slot_contrast import slot_contrast_loss
from ssync_lib.objectives.ssync import pseudo_labels, ssync_loss, ssync_weight

OBJECTIVES = ("baseline", "dense", "ssync")

# The objective.* values a run of each objective reads: its terms' weights, temperatures and schedules (forward
# below, DenseAlignment), and merge_iou, which evaluate() reads for every run (the pseudo-label statistics and
# SSync's premises in metrics.json). A run computes the same whatever the other values say, so resume, branch
# and the sweep compare only these while the objective stays (checkpoint.config_changes). Checked against the
# reads of build, training and evaluation by tests/objectives/test_obj_keys.py.
BASELINE_KEYS = ("name", "w_recon", "w_slot_contrast", "slot_contrast_tau", "merge_iou")
OBJECTIVE_KEYS = {
    "baseline": BASELINE_KEYS,
    "dense": (*BASELINE_KEYS, "dense_group", "dense_topk", "dense_tau", "dense_scale", "dense_chunk",
              "w_dense_dec", "w_dense_enc", "dense_from_frac", "w_redundancy", "redundancy_slots",
              "redundancy_until_frac"),
    "ssync": (*BASELINE_KEYS, "w_ssync_dec", "w_ssync_enc", "ssync_warmup_frac"),
}


@dataclass
class LossOutput:
    total: torch.Tensor  # scalar, the sum of the terms
    terms: dict[str, torch.Tensor]  # each weighted term (scalars), for logging


class Objective(nn.Module):
    def __init__(self, cfg: ObjectiveConfig, feature_dim: int, slot_dim: int, max_steps: int):
        super().__init__()
        if cfg.name not in OBJECTIVES:
            raise ConfigError(f"unknown objective.name '{cfg.name}'; choose one of {list(OBJECTIVES)}",
                              fix=f"--objective {'|'.join(OBJECTIVES)}")
        self.cfg, self.max_steps = cfg, max_steps
        self.dense = (DenseAlignment(feature_dim, slot_dim, cfg.dense_group, cfg.dense_topk, cfg.dense_tau,
                                     cfg.dense_scale, cfg.dense_chunk) if cfg.name == "dense" else None)

    def forward(self, out: ModelOutput, step: int) -> LossOutput:
        cfg = self.cfg
        zero = out.recon.new_zeros(())
        terms = {"recon": cfg.w_recon * reconstruction_loss(out.recon, out.features),  # §1.7
                 "slot_contrast": cfg.w_slot_contrast * slot_contrast_loss(out.slots, cfg.slot_contrast_tau)}
        if cfg.name == "dense":
            dense_on = step >= cfg.dense_from_frac * self.max_steps  # §3 schedule: contrastive losses late
            dec, enc = (self.dense(out.recon, out.features, out.projected, out.attn_logits, out.alpha)
                        if dense_on else (zero, zero))
            redundancy_on = step < cfg.redundancy_until_frac * self.max_steps  # §3 regulariser early only
            red = redundancy_loss(out.slots[:, -1], out.attn[:, -1], cfg.redundancy_slots) if redundancy_on else zero
            terms.update(dense_dec=cfg.w_dense_dec * dec, dense_enc=cfg.w_dense_enc * enc,
                         redundancy=cfg.w_redundancy * red)
        if cfg.name == "ssync":
            weight = ssync_weight(step, self.max_steps, cfg.ssync_warmup_frac)  # §4.6 warm-up
            if weight > 0:
                labels = pseudo_labels(out.attn_logits.detach(), out.alpha.detach(), out.grid, cfg.merge_iou)
                dec, enc = ssync_loss(out.attn_logits, out.alpha, labels)  # §4.5
            else:
                dec = enc = zero
            terms.update(ssync_dec=weight * cfg.w_ssync_dec * dec, ssync_enc=weight * cfg.w_ssync_enc * enc)
        return LossOutput(total=torch.stack(list(terms.values())).sum(), terms=terms)


def build_objective(cfg: ObjectiveConfig, feature_dim: int, slot_dim: int, max_steps: int) -> Objective:
    """The objective named by cfg.name (see the module docstring)."""
    return Objective(cfg, feature_dim, slot_dim, max_steps)
