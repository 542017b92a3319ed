"""Per-term gradients: how the loss terms pull on the encoder side and on the decoder (docs/method.md §1.7, §4.5).

    report = gradient_report(model, objective, video)            # DataFrame, one row per (group, term)
    report = gradient_report_checkpoint("runs/x/last.pt", overrides, num_clips=16)   # from a checkpoint
    python -m ssync_lib.lab.bench gradients --checkpoint runs/x/last.pt   # the same, as a table and a figure

The terms are those of the SSync objective, computed by ``Objective`` itself (``TERMS``: ``recon``,
``slot_contrast``, ``ssync_dec``, ``ssync_enc``, each with its weight), with the SSync terms always on (the report is
asked after the warm-up, §4.6), whatever objective the model was trained with. Groups: ``encoder`` = every trainable
parameter that is not the decoder's (input projection and position embedding, slot init, slot attention, predictor;
the ViT is frozen), ``decoder``. One row per (group, term) with the norm of the term's gradient and its cosine to
every term (NaN when a norm is 0, e.g. ``ssync_enc`` never reaches the decoder).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
import torch

from ssync_lib.checkpoint import load_trained
from ssync_lib.config import ObjectiveConfig
from ssync_lib.data import build_dataset
from ssync_lib.objectives import Objective

TERMS = ("recon", "slot_contrast", "ssync_dec", "ssync_enc")


def _gradient_groups(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Trainable parameters: the decoder's, and the rest (the encoder side: grouping)."""
    groups: dict[str, list[torch.nn.Parameter]] = {"encoder": [], "decoder": []}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups["decoder" if name.startswith("decoder.") else "encoder"].append(p)
    return groups


def ssync_terms(model: torch.nn.Module, objective: Objective | ObjectiveConfig) -> Objective:
    """The SSync objective with the weights, temperature and merge IoU of ``objective`` (an ``Objective`` or its
    config), to be called at its last step (``max_steps=1``, ``step=1``): every term of ``TERMS`` on."""
    cfg = dataclasses.replace(getattr(objective, "cfg", objective), name="ssync")
    return Objective(cfg, model.feature_dim, model.slot_dim, max_steps=1)


def gradient_report(model: torch.nn.Module, objective, batch) -> pd.DataFrame:
    """Per-term gradient norms and cosines at the model's current weights on one batch.

    objective: an ``Objective`` or its ``ObjectiveConfig`` (weights, temperature, merge IoU); batch: a video
    (B,T,3,H,W) or a dict holding one under "video". Returns one row per (group, term): ``group`` (encoder,
    decoder), ``term``, ``loss`` (the weighted term), ``norm`` (L2 norm of its gradient over the group's
    parameters) and ``cos_<term>`` for every term. Gradients only; the parameters' ``.grad`` are left untouched."""
    video = batch["video"] if isinstance(batch, Mapping) else batch
    device = next(model.parameters()).device
    with torch.enable_grad():
        out = model(video.to(device))
        terms = ssync_terms(model, objective).to(device)(out, step=1).terms  # SSync on: step 1 of 1
        groups = _gradient_groups(model)
        params = [p for ps in groups.values() for p in ps]
        flat: dict[str, dict[str, torch.Tensor]] = {g: {} for g in groups}
        for term in TERMS:
            grads = torch.autograd.grad(terms[term], params, retain_graph=True, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
            start = 0
            for group, ps in groups.items():
                flat[group][term] = torch.cat([g.flatten() for g in grads[start:start + len(ps)]]).double()
                start += len(ps)
    rows = []
    for group, vectors in flat.items():
        for term, v in vectors.items():
            row = {"group": group, "term": term, "loss": float(terms[term].detach()), "norm": float(v.norm())}
            for other, u in vectors.items():
                denom = float(v.norm() * u.norm())
                row[f"cos_{other}"] = float(v @ u) / denom if denom > 0 else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def gradient_report_checkpoint(checkpoint: str | Path, overrides: Iterable[str] | Mapping = (), num_clips: int = 16,
                               split: str = "train", device: str = "cpu") -> pd.DataFrame:
    """:func:`gradient_report` of a checkpoint or run folder (its config plus ``overrides``,
    ``checkpoint.load_trained``) on the first ``num_clips`` clips of ``split`` (train: one chunk of
    ``data.chunk_len`` frames per video, as in training), under a forked RNG seeded with ``train.seed``. Adds the
    columns ``checkpoint``, ``step`` and ``clips``. For a CLI: (checkpoint path, profile overrides, number of clips)."""
    trained = load_trained(checkpoint, overrides, device=device, objective=False)
    cfg = trained.cfg
    dataset = build_dataset(cfg, split)
    count = min(num_clips, len(dataset))
    video = torch.stack([dataset[i]["video"] for i in range(count)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        report = gradient_report(trained.model, cfg.objective, video)
    report.insert(0, "checkpoint", str(trained.path))
    report.insert(1, "step", trained.step)
    report.insert(2, "clips", count)
    return report
