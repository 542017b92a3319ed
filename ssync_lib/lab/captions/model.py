"""What the model does on one clip, in words (notebook 02, sections on the encoder, slots and objects, areas,
slot attention's iterations, the reconstruction, slot vectors over time)."""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ssync_lib.config import Config
from ssync_lib.lab.viz import slot_tracks, track_summary, upsample_labels


from ssync_lib.lab.captions.words import _join, _plural


# ----------------------------------------------------------------------------- the encoder

def describe_encoder(cfg: Config, grid: tuple[int, int], feature_dim: int) -> str:
    """What ``cfg.model.backbone`` means for this run: which weights, which layer's features, the patch size and
    the grid of patches a frame becomes."""
    m = cfg.model
    patch = m.backbone_kwargs.get("patch_size") or int(re.search(r"patch(\d+)", m.backbone).group(1))
    if m.weights == "random":
        why = (f"The weights are **random** (`model.weights=random`: nothing can be downloaded here, and the slot "
               "model learns fewer objects on the ViT pretrained here; notebook 01, \"What the encoder sees\"), so "
               f"nothing of DINO is in this model but the layer shapes, and the features are read at "
               f"`{m.feature_layer}`: "
               + ("right after the patch embedding, before any transformer block, i.e. a fixed random linear map of "
                  "each pixel patch (which keeps the patch's colour; docs/usage.md, \"What the CPU profiles use\")"
                  if m.feature_layer == "patch_embed" else "a block of an untrained network") + ". ")
    else:
        why = f"The weights are the published `{m.weights}` ones, the features read at `{m.feature_layer}`. "
    return (f"**Reading that line.** `{m.backbone}` is only the name of the timm *architecture* the encoder is "
            f"built from. {why}The profile overrides the architecture's patch size to {patch} px "
            f"(`model.backbone_kwargs={m.backbone_kwargs}`), so a {cfg.data.input_size} px frame becomes the "
            f"grid {tuple(grid)} of {grid[0] * grid[1]} patches, each a D={feature_dim} feature vector. "
            "The GPU profiles use DINOv2 weights and the last block's features (docs/method.md §1.1).")


# ----------------------------------------------------------------------------- which slot holds which object

def describe_object_tracks(masks, labels, names: Mapping[int, str], what: str) -> tuple[str, pd.DataFrame]:
    """The slot-track figure of one label map (T, h, w) in words, a Markdown list: the background's main slot(s),
    then per object its slot(s), identity switches, frames in the background's slot, the background's pixels its
    own slot also takes (>= 5 %), the share of its pixels that slot covers; slots that are the main slot of
    several objects. Returns the text and ``viz.track_summary``'s table."""
    ids, slots, _ = slot_tracks(masks, labels)
    summary = track_summary(masks, labels, dict(names))
    bg = sorted(set(slots[0][slots[0] >= 0].tolist()))
    lab = upsample_labels(labels, tuple(masks.shape[-2:]))
    is_bg = np.asarray(masks) == 0
    lines = [f"- **{what}**: the background is covered mostly by slot {_join(bg)}."]
    for r in summary.itertuples():
        part = f"the {r.name} object ({r.id}): {_plural(len(r.slots), 'slot')} {_join(r.slots)}"
        if r.switches:
            part += f", **{r.switches} slot {_plural(r.switches, 'change')}**"
        if r.with_background:
            part += (f", **in the background's slot in {r.with_background} of {r.frames} frames** "
                     "(not separated from the background)")
        elif len(r.slots) == 1:
            part += f", its own slot in all {r.frames} frames"
            spill = float(np.mean([(lab[t][is_bg[t]] == r.slots[0]).mean() for t in range(len(lab))]))
            if spill >= 0.05:
                part += f" (a slot that also takes {100 * spill:.0f} % of the background's pixels)"
        lines.append(f"  - {part} (that slot covers {100 * r.mean_share:.0f} % of its pixels on average).")
    shared = summary.slots.explode().value_counts()
    for s, n in shared[shared > 1].items():
        lines.append(f"  - slot {s} is the main slot of {n} objects: they are merged.")
    return "\n".join(lines), summary


# ----------------------------------------------------------------------------- how the slots share a clip

def slot_areas(label_maps: Mapping[str, object], num_slots: int) -> dict[str, np.ndarray]:
    """Per label map (name -> (T, h, w) slot ids) the share of the clip's patches each slot wins: (S,) in [0, 1]."""
    return {name: np.bincount(np.asarray(lab).ravel(), minlength=num_slots)[:num_slots] / np.asarray(lab).size
            for name, lab in label_maps.items()}


def describe_slot_areas(label_maps: Mapping[str, object], num_slots: int, unused: float = 0.005) -> str:
    """``slot_areas`` in words, and the slots that win less than ``unused`` of the patches (unused on this clip)."""
    area = slot_areas(label_maps, num_slots)
    text = "Share of the clip's patches each slot wins (argmax, all frames): " + "; ".join(
        f"{name}: " + ", ".join(f"slot {s} {100 * float(a[s]):.0f} %" for s in range(num_slots))
        for name, a in area.items()) + "."
    for name, a in area.items():
        idle = [s for s in range(num_slots) if a[s] < unused]
        if idle:
            text += (f" In the {name} map, {_plural(len(idle), 'slot')} {_join(idle)} "
                     f"{_plural(len(idle), 'wins', 'win')} (almost) no patch: unused on this clip.")
    return text


def describe_background_share(soft_maps: dict, masks, t: int = 0) -> str:
    """How each map shares the background out over its slots at frame ``t``: per map (name -> (T, S, h, w) soft
    values, summing to 1 over slots), each slot's mean value over the background's patches (each patch's majority
    ground-truth id is 0: ``diagnostics.patch_majority``), in %."""
    from ssync_lib.diagnostics import patch_majority

    parts = []
    for name, maps in soft_maps.items():
        maps = torch.as_tensor(maps, dtype=torch.float32)
        background = patch_majority(torch.as_tensor(masks)[None], tuple(maps.shape[-2:]))[0, t] == 0  # h w
        share = 100 * maps[t][:, background].mean(1)  # S
        top = int(share.argmax())
        parts.append(f"the {name} map gives its slots " + ", ".join(f"{v:.0f} %" for v in share.tolist())
                     + f" of each background patch on average (slots 0-{len(share) - 1}; slot {top} the most)")
    return (f"At frame {t} the background is shared out, not one slot's: " + "; ".join(parts)
            + ". That is why every slot's map is grey over the background.")


# ----------------------------------------------------------------------------- slot attention's iterations

def iteration_settling(iters: list[torch.Tensor], frames=(0, 1)) -> tuple[dict, dict]:
    """``iters``: per frame (iterations, S, h, w) soft maps (``notebook.attention_iterations``). For frames
    ``frames`` and each iteration i: ``settled[t, i]``, the share of patches whose argmax slot is already the one
    of the last iteration, and ``peak[t, i]``, the mean winning weight (1 = one slot takes the patch alone)."""
    settled, peak = {}, {}
    for t in frames:
        final = iters[t][-1].argmax(0)
        for i, a in enumerate(iters[t]):
            settled[t, i] = float((a.argmax(0) == final).float().mean())
            peak[t, i] = float(a.max(0).values.mean())
    return settled, peak


def describe_iterations(iters: list[torch.Tensor]) -> str:
    """The iteration figure in words: the first iteration's largest slot, then ``iteration_settling`` per
    iteration of frames 0 and 1."""
    settled, peak = iteration_settling(iters)
    first = iters[0][0].argmax(0)
    first_slot = int(first.flatten().mode().values)
    first_share = float((first == first_slot).float().mean())
    return (f"**What it shows here.** After the first iteration of frame 0, slot {first_slot} wins "
            f"{100 * first_share:.0f} % of the patches, confidently (hence the high weight below), because the learned "
            "initial slots are the same for every video and not yet fitted to this clip. Share of the patches already "
            "assigned to the slot they end with, and the mean winning attention weight (1 = one slot takes the patch "
            "alone), per iteration: "
            + "; ".join(f"t={t} iteration {i + 1}: {100 * settled[t, i]:.0f} % settled, weight {peak[t, i]:.2f}"
                        for (t, i) in settled) + ". "
            + f"On frame 0 the first iteration starts from the same learned slots for every video, so its map is the "
              f"roughest ({100 * settled[0, 0]:.0f} % of patches where they end); on frame 1 the predictor's slots "
              f"already start {100 * settled[1, 0]:.0f} % of the way: the slots carried from the previous frame do "
              "most of the work.")


# ----------------------------------------------------------------------------- the reconstruction

def reconstruction_error(features: torch.Tensor, recon: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """features, recon (T, N, D) -> (T, h, w): the per-patch error 1 - cos(target, reconstruction)."""
    return (1 - F.cosine_similarity(features, recon, dim=-1)).unflatten(-1, tuple(grid))


def border_patches(masks, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """masks (T, H, W) -> the nearest-sampled ground-truth id per patch (T, h, w) and the border patches
    (T, h, w) bool: those whose 3x3 neighbourhood (replicate padding) holds more than one id."""
    h, w = grid
    gt_patch = F.interpolate(torch.as_tensor(masks)[:, None].float(), size=(h, w), mode="nearest")[:, 0].long()
    padded = F.pad(gt_patch[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0].long()
    border = torch.zeros_like(gt_patch, dtype=torch.bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            border |= padded[:, dy:dy + h, dx:dx + w] != gt_patch
    return gt_patch, border


def describe_reconstruction(err: torch.Tensor, masks, tracks: pd.DataFrame) -> str:
    """``err`` (T, h, w) from ``reconstruction_error``: its mean over all patches, at object outlines
    (``border_patches``) and elsewhere; for every object of ``tracks`` (``describe_object_tracks``' table of the
    decoder map) that shares the background's slot, its own patches' error."""
    gt_patch, border = border_patches(masks, tuple(err.shape[-2:]))
    obj_err = {r.name: float(err[gt_patch == r.id].mean()) for r in tracks.itertuples() if r.with_background > 0}
    return (f"**What it shows here.** Mean error 1 − cos: {float(err.mean()):.3f} over all patches, "
            f"{float(err[border].mean()):.3f} on patches at an object's outline, {float(err[~border].mean()):.3f} "
            "elsewhere: the reconstruction is right inside regions and blurred at their borders (the decoder paints "
            "every slot as a smooth blob). "
            + (" ".join(f"The {n} object shares the background's slot, yet its features are rebuilt (mean error "
                        f"{e:.3f} on its patches): the decoder turns *one* slot into different features at different "
                        "positions, so the reconstruction loss alone does not force that object into a slot of its "
                        "own." for n, e in obj_err.items())
               if obj_err else "Every object has a slot of its own in the decoder map, and each is rebuilt in its "
                               "own colour."))


# ----------------------------------------------------------------------------- slot vectors over time

def slot_persistence(slots: torch.Tensor) -> tuple[float, float, float]:
    """slots (T, S, d) -> (kept, self, other): the share of (step, slot) pairs whose nearest slot (cosine) one frame
    later is the slot itself, the mean cosine similarity of a slot with itself one frame later, and with the
    other slots."""
    unit = F.normalize(slots, dim=-1)
    sims = torch.einsum("tsd,tud->tsu", unit[:-1], unit[1:])  # T-1 S S
    S = slots.shape[1]
    kept = float((sims.argmax(-1) == torch.arange(S)).float().mean())
    return kept, float(sims.diagonal(dim1=1, dim2=2).mean()), float(sims[:, ~torch.eye(S, dtype=torch.bool)].mean())


def describe_slot_persistence(slots: torch.Tensor) -> str:
    kept, self_sim, other_sim = slot_persistence(slots)
    T, S = slots.shape[:2]
    return (f"**What it shows here.** In {100 * kept:.0f} % of the {T - 1} x {S} (step, slot) pairs the nearest slot "
            f"of the next frame is the slot itself; the mean cosine similarity of a slot with itself one frame later "
            f"is {self_sim:.2f}, with the other slots {other_sim:.2f}. Identity is kept by the vectors, not only by "
            "the maps — including for the slot that holds the background, whatever objects it also holds.")


