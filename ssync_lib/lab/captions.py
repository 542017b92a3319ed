"""The sentences under the notebooks' figures (notebook 02's, and notebook 04's merge within one object), computed
from what the figures draw, so that they cannot drift from them (tests/test_captions.py checks them on small
hand-made inputs).

    describe_encoder(cfg, grid, feature_dim)            the encoder line in words (random or published weights)
    describe_object_tracks(masks, labels, names, what)   which slot holds which object, frame by frame
    describe_slot_areas(label_maps, S) / describe_background_share(soft_maps, masks)   how the slots share a clip
    iteration_settling(iters) / describe_iterations(iters)   slot attention, iteration by iteration
    reconstruction_error(...) / describe_reconstruction(...)  the decoder's error, at borders and inside regions
    slot_persistence(slots) / describe_slot_persistence(slots)  slot vectors from frame to frame
    describe_metrics(...)                                the metrics table, and why FG-ARI is above mBO
    describe_failure(case, masks, names, num_slots)      one case of the failure gallery (notebook.failure_cases)
    describe_baseline(...)                               the notebook's summary
    describe_split_merge(case, names, threshold)          notebook 04: a merge within one object (notebook.split_merge_case)

Shapes: T frames, S slots, H W frame size, h w patch grid, N = h*w patches, D feature dim, d slot dim; ``names``
maps a ground-truth id to a colour name (``viz.object_colour_names``). The other notebooks' sentences sit next to
what they describe: ``notebook.describe_failures`` / ``describe_curves`` / ``describe_switch_on``,
``viz.describe_tracks``, ``claims.read_premise_*``.
"""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ssync_lib.config import Config
from ssync_lib.diagnostics import AUDIT_CLASSES, merge_classes
from ssync_lib.lab.viz import slot_tracks, track_summary, upsample_labels


def _plural(n: int, word: str, many: str | None = None) -> str:
    return word if n == 1 else (many or word + "s")


def _join(items) -> str:
    return ", ".join(str(x) for x in items)


def _and(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(x) for x in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ----------------------------------------------------------------------------- the encoder

def describe_encoder(cfg: Config, grid: tuple[int, int], feature_dim: int) -> str:
    """What ``cfg.model.backbone`` means for this run: which weights, which layer's features, the patch size and
    the grid of patches a frame becomes."""
    m = cfg.model
    patch = m.backbone_kwargs.get("patch_size") or int(re.search(r"patch(\d+)", m.backbone).group(1))
    if m.weights == "random":
        why = (f"The weights are **random** (`model.weights=random`: nothing can be downloaded here), so nothing of "
               f"DINO is in this model but the layer shapes, and the features are read at `{m.feature_layer}`: "
               + ("right after the patch embedding, before any transformer block, i.e. a fixed random linear map of "
                  "each pixel patch (which keeps the patch's colour; README, \"What the CPU profiles use\")"
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


# ----------------------------------------------------------------------------- the metrics table

def best_iou(labels: torch.Tensor, masks: torch.Tensor, obj: int, num_slots: int) -> tuple[float, int]:
    """Video-level IoU of object ``obj`` of masks (T, H, W) with each slot of labels (T, H, W), background pixels
    counted: the best IoU and its slot."""
    o = masks == obj
    ious = torch.stack([(o & (labels == s)).sum() / (o | (labels == s)).sum() for s in range(num_slots)])
    return float(ious.max()), int(ious.argmax())


def describe_metrics(table: pd.DataFrame, metrics: Mapping[str, float], labels: torch.Tensor, masks: torch.Tensor,
                     names: Mapping[int, str], num_slots: int, grid: tuple[int, int]) -> str:
    """The metrics table (``viz.metrics_rows``: one row per kind of map) in words: which map scores the higher
    FG-ARI, why FG-ARI is above mBO on this clip's decoder map (``labels`` (T, H, W) at pixel resolution, each
    object's best IoU; ``grid`` the patch grid it was upsampled from), whether mBO equals mIoU, and the validation
    split's ``objects_lost`` shares."""
    score = {r.maps: r for r in table.itertuples()}
    ahead, behind = sorted(score, key=lambda m: -score[m].fg_ari)
    dec = {obj: best_iou(labels, masks, obj, num_slots) for obj in names}
    distinct = len({s for _, s in dec.values()}) == len(dec)
    return (f"**What the table shows.** The {ahead} maps score the higher FG-ARI ({score[ahead].fg_ari:.2f} against "
            f"{score[behind].fg_ari:.2f} for the {behind} maps), while mBO is {score['attention'].mbo:.2f} "
            f"(attention) and {score['decoder'].mbo:.2f} (decoder). Why FG-ARI is so much higher than mBO, on this "
            "clip's decoder map: the best-matching slot's IoU per object is "
            + ", ".join(f"{names[o]} {iou:.2f} (slot {s})" for o, (iou, s) in dec.items())
            + ". FG-ARI only looks at object pixels and asks whether objects are kept apart: an object alone in a "
              "slot scores perfectly there even when that slot also covers the whole background. mBO's IoU counts "
              "the background pixels of the slot, so such an object scores its area divided by the "
              f"object-plus-background area; and the patch-resolution masks (a {grid[0]}x{grid[1]} grid upsampled to "
              f"{masks.shape[-1]} px) cost IoU at every border. "
            + (f"mBO equals mIoU here because every object's best slot is a different slot (slots "
               f"{_join(s for _, s in dec.values())}), so the one-to-one matching picks the same slots "
               "(docs/method.md §2); they differ only when one slot is the best match of several objects."
               if distinct else "On this clip two objects share their best slot, so mIoU (one-to-one) is below mBO "
                                "for it.")
            + f" Over all {metrics['num_videos']} validation videos, "
            + " and ".join(f"{100 * metrics[f'{m}/video/objects_lost']:.0f} % of objects ({m} maps)"
                           for m in ("attention", "decoder"))
            + " have a majority slot that is also the background's (`objects_lost`, docs/method.md §2): the failure "
              "this clip shows is common, and it is what holds mBO down.")


# ----------------------------------------------------------------------------- the failure gallery

def _holder(labels: np.ndarray, masks: np.ndarray, t: int, slot: int, names: Mapping[int, str]) -> str:
    """What ``slot`` holds at frame ``t``: its pixel count and the majority ground-truth id of those pixels."""
    inside = masks[t][labels[t] == slot]
    if inside.size == 0:
        return "no pixel"
    obj = int(np.bincount(inside).argmax())
    return f"{inside.size} {_plural(inside.size, 'pixel')}, " + (
        "mostly background" if obj == 0 else f"mostly the {names.get(obj, f'object {obj}')} object (id {obj})")


def describe_failure(case: Mapping, masks, names: Mapping[int, str], num_slots: int) -> str:
    """One case of the failure gallery (``notebook.failure_cases``: ``kind``, ``objects``, ``frames``, ``slots``,
    ``labels`` (T, h, w), for a switch ``moves``) in words, with the clip's masks (T, H, W): what is drawn, the
    numbers that make it that failure, and (flagged as such) a likely cause."""
    gt = np.asarray(masks).astype(np.int64)
    lab = upsample_labels(case["labels"], gt.shape[1:]).astype(np.int64)
    ids, slots, share = slot_tracks(gt, lab)
    area = {obj: (gt == obj).reshape(len(gt), -1).sum(1) for obj in ids}  # T pixels per id
    name = {o: f"the {names.get(o, f'object {o}')} object (id {o})" for o in ids if o}
    kind, objects = case["kind"], case["objects"]
    if kind == "lost":
        obj = objects[0]
        others = [area[o].sum() / gt.size for o in ids if o and o != obj]
        return (f"{name[obj]} covers {100 * area[obj].sum() / gt.size:.1f} % of the clip's pixels (the other objects "
                f"{100 * sum(others) / max(len(others), 1):.1f} % on average) and is in the background's slot "
                f"{_join(case['slots'])} in {len(case['frames'])} of its {int((area[obj] > 0).sum())} visible frames. "
                "Likely cause: the background's slot reconstructs it well enough that no slot is pushed to take it "
                "alone.")
    if kind == "switch":
        obj = objects[0]
        i = ids.index(obj)
        t, before, after = case["moves"][0]
        bg = (int(slots[0, t - 1]), int(slots[0, t]))
        text = (f"{name[obj]} is held by slot {before} at t={t - 1} (it covers {100 * share[i, t - 1]:.0f} % of the "
                f"object's pixels) and by slot {after} at t={t} ({100 * share[i, t]:.0f} %), while the object is in "
                f"full view: {100 * area[obj][t - 1] / area[obj].max():.0f} % and "
                f"{100 * area[obj][t] / area[obj].max():.0f} % of its largest area (both frames drawn). At t={t - 1} "
                f"slot {after} held {_holder(lab, gt, t - 1, after, names)}; at t={t} slot {before} holds "
                f"{_holder(lab, gt, t, before, names)}. ")
        text += (f"The background's majority slot stays slot {bg[0]} across the switch. " if bg[0] == bg[1] else
                 f"At the same step the background's majority slot changes too, from slot {bg[0]} (it covers "
                 f"{100 * share[0, t - 1]:.0f} % of the background at t={t - 1}) to slot {bg[1]} "
                 f"({100 * share[0, t]:.0f} % at t={t}): no single slot holds the background, and which of its slots "
                 "is the larger changes. ")
        if len(case["moves"]) > 1:
            text += ("Later switches of the same object: "
                     + ", ".join(f"slot {a} to {b} at t={s}" for s, a, b in case["moves"][1:]) + ". ")
        return text + ("Likely cause: each frame slot attention re-binds the slots the predictor carried over, and "
                       "nothing but their similarity to the object's features keeps the same slot on it.")
    a, b = objects
    t = case["frames"][0]
    s = int(slots[ids.index(a), t])
    centre = {o: np.argwhere(gt[t] == o).mean(0) for o in (a, b)}
    spill = float((lab[t][gt[t] == 0] == s).mean())  # the share of the background's pixels the slot also takes
    return (f"{name[a]} and {name[b]} are both held by slot {_join(case['slots'])} in "
            f"{len(case['frames'])} {_plural(len(case['frames']), 'frame')} ({_join(case['frames'])}); at t={t} slot {s} "
            f"covers {100 * share[ids.index(a), t]:.0f} % and {100 * share[ids.index(b), t]:.0f} % of their pixels "
            f"(and {100 * spill:.0f} % of the background's), "
            f"their centres are {float(np.linalg.norm(centre[a] - centre[b])):.0f} px apart (frames of "
            f"{gt.shape[-1]} px), with {len(ids) - 1} objects in the clip for {num_slots} slots. Likely cause: "
            "neighbouring objects, or more objects than free slots once the background has taken its share.")


# ----------------------------------------------------------------------------- the summary

def describe_baseline(run_name: str, num_slots: int, table: pd.DataFrame, num_videos: int,
                      tracks: pd.DataFrame, settled: Mapping, mean_error: float, kept: float) -> str:
    """The notebook's summary from its numbers: the metrics table, the decoder's tracks on the clip shown
    (``describe_object_tracks``), ``iteration_settling``, the mean reconstruction error, ``slot_persistence``."""
    score = {r.maps: r for r in table.itertuples()}
    lost = [f"the {r.name} object shares the background's slot in {r.with_background} of {r.frames} frames"
            for r in tracks.itertuples() if r.with_background]
    return (f"**What this notebook showed.** The baseline (`{run_name}`, {num_slots} slots) scores video FG-ARI "
            f"{score['attention'].fg_ari:.2f} with its attention maps and {score['decoder'].fg_ari:.2f} with its "
            f"decoder maps, mBO {score['attention'].mbo:.2f} / {score['decoder'].mbo:.2f}, on {num_videos} "
            f"validation videos. On the clip shown, {int((tracks.with_background == 0).sum())} of {len(tracks)} "
            f"objects have a decoder slot of their own, their slots change {int(tracks.switches.sum())} times; "
            + (", ".join(lost) or "no object shares the background's slot")
            + f". Slot attention settles in its iterations ({100 * settled[0, 0]:.0f} % of patches in place after "
              f"the first iteration of frame 0, {100 * settled[1, 0]:.0f} % on frame 1), the decoder rebuilds the "
              f"features with a mean error 1 − cos of {mean_error:.3f}, mostly at borders, and {100 * kept:.0f} % of "
              "slots are their own nearest slot one frame later. High FG-ARI with low mBO is the signature of an "
              "object kept apart from the other objects but not from the background.")


# ----------------------------------------------------------------------------- notebook 04: a merge that does its job

MERGE_WORDS = {"object_split": "two slots of one object", "object_background": "an object's slot with a background slot",
               "two_objects": "two objects' slots", "background_or_empty": "slots of the background, or that win no patch"}

def describe_split_merge(case: Mapping, names: Mapping[int, str], threshold: float) -> str:
    """``notebook.split_merge_case`` in words: which object the merged slots split, how much of it each slot won,
    how much of each slot's territory is that object, their coverage IoU against ``threshold``, how much of the
    object the merged label holds against its largest slot before, the window's other merges, and how often such
    a merge happens over the windows scanned (``counts``, ``diagnostics.merge_classes``)."""
    c = case["counts"]
    often = (f"Over the {case['windows']} windows of the first {case['clips']} validation clips, "
             f"{case['split_windows']} hold a merge within one object; of the {sum(c.values())} merged slot pairs "
             "there, " + _and([f"{c[k]} join {MERGE_WORDS[k]}" for k in AUDIT_CLASSES])
             + " (`diagnostics.merge_classes`).")
    if "index" not in case:
        return "No window merges two slots of one object for this model. " + often
    labels, gt = case["labels"], case["gt"][0]  # gt: w h w patch majority ids
    enc, merged = labels.enc_unmerged[0], labels.enc_labels[0]
    obj, rep, slots = case["object"], case["rep"], case["slots"]
    on_obj = gt == obj
    won = {s: float((enc[on_obj] == s).float().mean()) for s in slots}  # share of the object's patches per slot
    pure = {s: float((gt[(enc == s) & (gt >= 0)] == obj).float().mean()) for s in slots}  # of the slot's own patches
    pairs = [(a, b) for i, a in enumerate(slots) for b in slots[i + 1:] if labels.edges[0, a, b]]
    w = enc.shape[0]
    name = names.get(obj, f"object {obj}")
    text = (f"In clip {case['id']}, frames {case['start']}-{case['start'] + w - 1} (one window of {w} frames, as in "
            f"training), the unmerged encoder labels split the {name} object (id {obj}) over slots "
            f"{_and(slots)}: " + _and([f"slot {s} wins {100 * won[s]:.0f} %" for s in slots]) + " of its patches, and "
            + _and([f"{100 * pure[s]:.0f} %" for s in slots]) + " of the patches these slots win are that object. "
            + "Their coverage IoU is " + ", ".join(f"{float(labels.iou[0, a, b]):.2f} (slots {a} and {b})"
                                                    for a, b in pairs)
            + f", above the threshold {threshold:g}, so the merge gives them one label, {rep} (its slot with the "
              f"largest encoder area): in the merged row the object carries one label on "
              f"{100 * float((merged[on_obj] == rep).float().mean()):.0f} % of its patches, against "
              f"{100 * max(won.values()):.0f} % for its largest slot before. ")
    slot_map = labels.slot_map[0]
    classes = merge_classes(labels, case["gt"])[0]  # S 4: each merged slot's pair (slot, representative)
    others = [f"slot {s} into {int(slot_map[s])} ({MERGE_WORDS[AUDIT_CLASSES[int(classes[s].float().argmax())]]})"
              for s in range(len(slot_map)) if int(slot_map[s]) not in (s, rep)]
    text += ("No other slot merges in this window. " if not others else
             "Other merges in this window: " + _and(others) + ". ")
    return text + often
