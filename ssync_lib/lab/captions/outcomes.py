"""How the model scores and fails, in words: the metrics table, the failure gallery, the summary (notebook 02)
and notebook 04's merge within one object."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import torch

from ssync_lib.diagnostics import AUDIT_CLASSES, merge_classes
from ssync_lib.lab.viz import slot_tracks, upsample_labels


from ssync_lib.lab.captions.words import _and, _join, _plural


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
