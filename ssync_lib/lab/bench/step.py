"""The parts of a training step (docs/method.md §4.7): encoder, slot attention + predictor, decoder, each loss term,
SSync's labels and losses, dense alignment; each part's share of the SSync and of the SRL step.

    df = run_step("smoke")
    df = compare_step("cpu_movi", {"profile": [], "pretrained": ["model.feature_layer=last", ...]}, rounds=3)
    step_ratios(df, "profile", "pretrained")   # per part: time of each, ratio
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch

from ssync_lib.config import get_config
from ssync_lib.lab.bench.timing import best_time, machine_context
from ssync_lib.models import create_model
from ssync_lib.objectives import (build_objective, pseudo_labels, reconstruction_loss, redundancy_loss,
                                  slot_contrast_loss, ssync_loss)
from ssync_lib.runtime import resolve_device


SSYNC_STEP = ("encoder", "slot attention + predictor", "decoder", "reconstruction loss", "slot contrast loss",
              "SSync pseudo-labels", "SSync losses")
DENSE_STEP = SSYNC_STEP[:5] + ("dense alignment",)


def run_step(profile: str = "cpu", batch: int | None = None, overrides: Sequence[str] | Mapping = (),
             repeats: int = 3, device: str = "cpu", seed: int = 0, clock: str = "wall") -> pd.DataFrame:
    """Time of each part of a training step (forward + backward) at `profile`'s config, with random backbone weights
    and a random video of the profile's input size and chunk length (`batch` overrides train.batch_size).

    Each part runs alone on detached inputs (a module's backward from random upstream gradients; an objective term's
    from its loss), so the parts add up to the step: `ssync_step_pct` is each part's share of the SSync step
    (SSYNC_STEP), `dense_step_pct` of SRL's step in its contrastive phase (DENSE_STEP; the redundancy regulariser,
    early steps only, is shown against the same total). Three more rows: each objective's step (baseline, SSync,
    SRL) measured as one model + objective forward and backward, a cross-check of the sum of its parts. `clock`: timing.CLOCKS (the
    column `clock` says which)."""
    device = resolve_device(device)
    cfg = get_config(profile, overrides)
    cfg.model.weights = "random"  # the time does not depend on the weights; no download
    B, T, size = batch or cfg.train.batch_size, cfg.data.chunk_len, cfg.data.input_size
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = create_model(cfg.model, size).to(device).train()
    objectives = {name: build_objective(replace(cfg.objective, name=name), model.feature_dim, cfg.model.slot_dim,
                                        cfg.train.max_steps).to(device) for name in ("baseline", "ssync", "dense")}
    video = torch.randn(B, T, 3, size, size, generator=gen).to(device)  # B T 3 H W
    with torch.no_grad():
        out = model(video)

    def leaf(x: torch.Tensor) -> torch.Tensor:
        return x.detach().clone().requires_grad_()

    features = out.features  # B T N D
    slots_in, recon, slots, attn_logits, alpha, attn, projected = (
        leaf(x) for x in (out.slots.flatten(0, 1), out.recon, out.slots, out.attn_logits, out.alpha, out.attn,
                          out.projected))
    ocfg = cfg.objective
    labels = pseudo_labels(attn_logits.detach(), alpha.detach(), model.grid, ocfg.merge_iou)

    upstream = {name: torch.randn(x.shape, generator=gen).to(x)  # random gradients from the parts downstream
                for name, x in (("slots", out.slots), ("logits", out.attn_logits), ("recon", out.recon.flatten(0, 1)),
                                ("alpha", out.alpha.flatten(0, 1)))}

    def slot_part():
        _, part_slots, _, part_logits = model.slots_from_features(features)  # B T S d, B T S N
        torch.autograd.backward([part_slots, part_logits], [upstream["slots"], upstream["logits"]])

    def decoder_part():
        part_recon, part_alpha, _ = model.decoder(slots_in)  # (B*T) N D, (B*T) S N
        torch.autograd.backward([part_recon, part_alpha], [upstream["recon"], upstream["alpha"]])

    def full_step(name: str) -> Callable[[], None]:
        step = cfg.train.max_steps - 1  # past SSync's warm-up and inside SRL's contrastive phase (§3, §4.6)

        def run():
            model.zero_grad(set_to_none=True)
            objectives[name](model(video), step).total.backward()
        return run

    parts = {
        "encoder": lambda: model.encode(video),  # frozen: forward only (§1.1)
        "slot attention + predictor": slot_part,
        "decoder": decoder_part,
        "reconstruction loss": lambda: reconstruction_loss(recon, features).backward(),
        "slot contrast loss": lambda: slot_contrast_loss(slots, ocfg.slot_contrast_tau).backward(),
        "SSync pseudo-labels": lambda: pseudo_labels(attn_logits.detach(), alpha.detach(), model.grid,
                                                     ocfg.merge_iou),
        "SSync losses": lambda: sum(ssync_loss(attn_logits, alpha, labels)).backward(),
        "dense alignment": lambda: sum(objectives["dense"].dense(recon, features, projected, attn_logits,
                                                                 alpha)).backward(),
        "redundancy regulariser": lambda: redundancy_loss(slots[:, -1], attn[:, -1],
                                                          ocfg.redundancy_slots).backward(),
        "measured step, baseline objective": full_step("baseline"),  # reconstruction + slot contrast (§1)
        "measured step, ssync objective": full_step("ssync"),
        "measured step, dense objective": full_step("dense"),
    }
    rows = []
    for part, fn in parts.items():
        fn()  # warm-up
        rows.append({"part": part, "time_ms": best_time(fn, repeats, device, clock) * 1e3})
    df = step_shares(pd.DataFrame(rows))
    return df.assign(profile=profile, batch=B, frames=T, input_size=size, grid=f"{model.grid[0]}x{model.grid[1]}",
                     slots=cfg.model.num_slots, dense_chunk=ocfg.dense_chunk, clock=clock, **machine_context(device))


def step_shares(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (columns part, time_ms; one configuration) with each part's share of the SSync step (SSYNC_STEP) and of
    SRL's step (DENSE_STEP) in ``ssync_step_pct`` / ``dense_step_pct``."""
    df = df.set_index("part")
    shares = {"ssync_step_pct": (SSYNC_STEP, ("measured step, ssync objective",)),
              "dense_step_pct": (DENSE_STEP, ("measured step, dense objective", "redundancy regulariser"))}
    for column, (members, also_shown) in shares.items():
        shown = list(members + also_shown)
        df.loc[shown, column] = 100 * df.loc[shown, "time_ms"] / df.loc[list(members), "time_ms"].sum()
    return df.reset_index()


def compare_step(profile: str, variants: Mapping[str, Sequence[str]], batch: int | None = None,
                 overrides: Sequence[str] = (), repeats: int = 3, rounds: int = 1, device: str = "cpu",
                 seed: int = 0, clock: str = "wall") -> pd.DataFrame:
    """``run_step`` under several configurations of one profile (``variants``: name -> overrides on top of
    ``overrides``, e.g. another encoder), one row per (variant, part), in one table: columns ``variant`` and
    ``overrides`` (all of that variant's, as typed) beside run_step's. The variants take turns ``rounds`` times and
    each part keeps its best time over all rounds, so a load that comes and goes on a shared machine reaches every
    variant alike. Weights are random in every variant (run_step): the time does not depend on their values."""
    frames = [run_step(profile, batch, [*overrides, *extra], repeats, device, seed, clock)
              .assign(variant=name, overrides=" ".join([*overrides, *extra]))
              for _ in range(rounds) for name, extra in variants.items()]
    timed = pd.concat(frames, ignore_index=True)
    best = timed.loc[timed.groupby(["variant", "part"], sort=False)["time_ms"].idxmin()]
    return pd.concat([step_shares(best[best["variant"] == name].drop(columns=["ssync_step_pct", "dense_step_pct"]))
                      for name in variants], ignore_index=True)


def step_ratios(df: pd.DataFrame, base: str, other: str) -> pd.DataFrame:
    """Per part of a ``compare_step`` table: the time of variant ``base``, of ``other``, and ``ratio`` = other / base
    (rows in the table's order of parts)."""
    times = df.pivot(index="part", columns="variant", values="time_ms")
    parts = list(dict.fromkeys(df["part"]))
    out = pd.DataFrame({"part": parts, f"{base}_ms": times.loc[parts, base].to_numpy(),
                        f"{other}_ms": times.loc[parts, other].to_numpy()})
    return out.assign(ratio=out[f"{other}_ms"] / out[f"{base}_ms"])
