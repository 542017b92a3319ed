"""SSync's premises, measured against ground truth (issue 17; docs/method.md §4).

SSync lets the encoder's slot-attention labels teach the decoder on boundary patches and the decoder's alpha labels
teach the encoder on interior patches, after merging redundant slots. That helps only where its premises hold: the
encoder is the better map at boundaries, the decoder inside objects, and the merged slots are one object split in
two. This module measures them on a model's output and the ground-truth masks:

    labels = pseudo_labels(attn_logits, alpha, grid, merge_iou)   # B clips, as in training (ssync.py)
    stats = premise_sums(labels, true)                    # one evaluation batch -> flat dict of sums and counts
    totals = accumulate(totals, stats)                    # over the batches
    metrics = premise_means(totals)                       # {key: mean, key_valid: count, merge_audit/*_total}

Shapes: B batch (clips), T frames, S slots, N = H*W patches, R x C ground-truth pixels. Clips are windows of
``cfg.data.chunk_len`` frames of each video, as in training and as ``evaluate``'s pseudo-label statistics.

Definitions (every count below runs over *labelled* patches only: ground-truth majority id >= 0):

* **Ground truth on the patch grid** (:func:`patch_majority`): each patch takes the majority ground-truth id of its
  pixels (pixel row y belongs to patch row floor(y H / R), likewise for columns; ties to the lowest id; unlabelled
  pixels, id < 0, do not vote; a patch with no labelled pixel is unlabelled, -1).
* **Ground-truth boundary / interior** (:func:`ground_truth_regions`): SSync's own rule (§4.3-§4.4, the same
  ``agreeing_neighbours``: 8 spatial neighbours + the same patch in the previous and next frame, replicate padding)
  applied to the ground-truth patch labels: boundary = differs from >= 1 of the 10 neighbours and agrees with >= 1;
  interior = agrees with all 10. A patch that agrees with none (an object one patch large) is in neither set.
* **Label maps**: ``encoder`` = argmax of the slot-attention logits, ``decoder`` = argmax of alpha (unmerged),
  ``encoder_merged`` / ``decoder_merged`` = both rewritten through SSync's slot map (``ssync.pseudo_labels``, merge
  IoU ``cfg.objective.merge_iou``).
* ``premises/<set>/<map>_fg_ari``: the library's FG-ARI (``metrics.fg_ari``, video level: all frames of a clip
  pooled) over the clip's patches of the set whose ground truth is not background; mean over clips (a clip with no
  such patch is skipped; ``_valid`` counts the clips scored).
* ``premises/<set>/<map>_acc``: accuracy against each patch's majority ground-truth object (background included as
  one group) after a **one-to-one Hungarian matching** (``scipy.optimize.linear_sum_assignment``) of the map's label
  ids to the ground-truth ids, chosen per clip to maximise the number of agreeing labelled patches over the *whole
  clip* (not the set, so one matching serves both sets); an unmatched label id is wrong everywhere, so an object
  split across two slots loses the smaller part. Pooled over the patches of the set (``_valid`` = patches).
* ``premises/<set>/patch_pct``: the set's share of the labelled patches (%).
* ``merge_audit/<class>`` (:func:`merge_audit`): every slot that SSync merges into another slot makes one pair
  (slot, its representative): the number of pairs is ``label_statistics``' ``merged_slots``. Each slot is given the
  majority ground-truth id of the patches it wins under the *unmerged encoder* labels (the territory that merging
  rewrites). Classes: ``object_split`` (both slots' majority is the same object), ``object_background`` (one an
  object, the other the background), ``two_objects`` (two different objects), ``background_or_empty`` (both
  background, or either slot wins no labelled patch). Mean per clip; ``_total`` = summed over all clips.
* ``teaching/<set>/<who>_right_pct`` (:func:`teaching_precision`), on SSync's own sets: on ``boundary`` the teacher
  is the merged encoder label and the student the merged decoder label, on ``interior`` the reverse. A slot is the
  same slot in both maps (the target is a slot id in the student's map), so one matching per clip serves both: the
  Hungarian matching of the merged slot ids to the ground-truth ids that maximises the agreeing patches of the two
  maps together. A label "agrees with the ground-truth grouping" at a patch when its matched ground-truth id is the
  patch's majority id. ``teacher_right_pct``: % of the set's patches where the teacher agrees and the student does
  not (the teaching corrects); ``student_right_pct``: the reverse (the teaching corrupts); ``both_right_pct``,
  ``both_wrong_pct``. Where teacher and student carry the same label they are both right or both wrong, so the
  first two shares lie inside the patches where the labels differ. Pooled over patches.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from scipy.optimize import linear_sum_assignment

from ssync_lib import metrics as M
from ssync_lib.objectives.ssync import PseudoLabels, agreeing_neighbours

SETS = ("interior", "boundary")
MAPS = ("encoder", "decoder", "encoder_merged", "decoder_merged")
AUDIT_CLASSES = ("object_split", "object_background", "two_objects", "background_or_empty")
TEACHING = ("teacher_right_pct", "student_right_pct", "both_right_pct", "both_wrong_pct")
PREMISE_KEYS = ([f"premises/{s}/{m}_{score}" for s in SETS for m in MAPS for score in ("fg_ari", "acc")]
                + [f"premises/{s}/patch_pct" for s in SETS]
                + [f"merge_audit/{c}" for c in ("pairs",) + AUDIT_CLASSES]
                + [f"teaching/{s}/{t}" for s in ("boundary", "interior") for t in TEACHING])


def patch_majority(true: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """true B T R C (int, < 0 unlabelled) -> B T H W int64: each patch's majority ground-truth id (see module doc)."""
    B, T, R, C = true.shape
    H, W = grid
    if R < H or C < W:
        raise ValueError(f"patch_majority: ground truth {R}x{C} is smaller than the patch grid {H}x{W}")
    true = true.long().clamp(min=-1)
    Q = max(int(true.max()) + 2, 2)  # columns: 0 = unlabelled, 1 + id
    rows = torch.arange(R, device=true.device) * H // R  # R   patch row of each pixel row
    cols = torch.arange(C, device=true.device) * W // C  # C
    patch = (rows[:, None] * W + cols[None, :]).flatten()  # R*C
    frame = torch.arange(B * T, device=true.device)[:, None]  # (B*T) 1
    cell = (frame * (H * W) + patch) * Q + true.flatten(2).flatten(0, 1) + 1  # (B*T) (R*C)
    counts = torch.bincount(cell.flatten(), minlength=B * T * H * W * Q).view(B, T, H, W, Q)[..., 1:]
    best = counts.max(-1)  # first maximum: ties to the lowest id
    return torch.where(best.values > 0, best.indices, -1)


def ground_truth_regions(gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gt B T H W patch labels -> boundary, interior B T H W bool: SSync's 10-neighbour rule (§4.4) on the ground
    truth; unlabelled patches are in neither."""
    agree = agreeing_neighbours(gt)
    labelled = gt >= 0
    return labelled & (agree > 0) & (agree < 10), labelled & (agree == 10)


def contingency_tables(pred: torch.Tensor, gt: torch.Tensor, num_pred: int, num_true: int) -> torch.Tensor:
    """pred B ... (ids in [0, num_pred)), gt B ... (ids < num_true, < 0 unlabelled) -> B P Q counts of the labelled
    patches of each clip."""
    B = pred.shape[0]
    pred, gt = pred.reshape(B, -1).long(), gt.reshape(B, -1).long()
    keep = gt >= 0
    cell = (torch.arange(B, device=pred.device)[:, None] * num_pred + pred) * num_true + gt.clamp(min=0)
    return torch.bincount(cell[keep], minlength=B * num_pred * num_true).view(B, num_pred, num_true)


def best_matching(tables: torch.Tensor) -> torch.Tensor:
    """tables B P Q -> B P int64: each label id's ground-truth id under the one-to-one matching that maximises the
    matched counts (scipy's linear_sum_assignment, one small problem per clip), -1 for an unmatched label id."""
    lookup = torch.full(tables.shape[:2], -1, dtype=torch.long)
    for b, counts in enumerate(tables.cpu().numpy()):
        rows, cols = linear_sum_assignment(counts, maximize=True)
        lookup[b, torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return lookup.to(tables.device)


def matched_right(labels: torch.Tensor, gt: torch.Tensor, lookup: torch.Tensor) -> torch.Tensor:
    """labels, gt B T H W; lookup B P -> B T H W bool: the label's matched ground-truth id is the patch's id."""
    matched = lookup.gather(1, labels.flatten(1)).view_as(labels)
    return (matched == gt) & (gt >= 0)


def subset_fg_ari(labels: torch.Tensor, gt: torch.Tensor, select: torch.Tensor,
                  ignore_background: bool = True) -> torch.Tensor:
    """labels, gt B T H W, select B T H W bool -> (B,) the library's video-level FG-ARI over the selected patches
    (the others are marked unlabelled); NaN for a clip with nothing to score."""
    return M.fg_ari(labels, torch.where(select, gt, -1), level="video", ignore_background=ignore_background)


def merge_audit(labels: PseudoLabels, gt: torch.Tensor) -> torch.Tensor:
    """labels of B clips, gt B T H W patch labels -> B x 4 counts of the merged slot pairs per class
    (``AUDIT_CLASSES``; definitions in the module doc)."""
    return merge_classes(labels, gt).sum(1)  # B 4


def merge_classes(labels: PseudoLabels, gt: torch.Tensor) -> torch.Tensor:
    """labels of B clips, gt B T H W patch labels -> B S 4 bool: the class (``AUDIT_CLASSES``) of the pair (slot s,
    its representative ``slot_map[s]``) for every merged slot s; all False for a slot that is not merged."""
    B, S = labels.slot_map.shape
    tables = contingency_tables(labels.enc_unmerged, gt, S, max(int(gt.max()) + 1, 1))  # B S Q
    major = tables.max(-1).indices  # B S   each slot's majority id (ties to the lowest)
    empty = tables.sum(-1) == 0  # B S   wins no labelled patch
    rep = labels.slot_map  # B S   the pair (s, rep[s]) for every merged slot s
    merged = rep != torch.arange(S, device=rep.device)
    major_rep, empty_rep = major.gather(1, rep), empty.gather(1, rep)
    bg_or_empty = empty | empty_rep | ((major == 0) & (major_rep == 0))
    split = ~bg_or_empty & (major == major_rep)
    with_bg = ~bg_or_empty & ((major == 0) != (major_rep == 0))
    two = ~bg_or_empty & (major != major_rep) & (major > 0) & (major_rep > 0)
    return torch.stack([split, with_bg, two, bg_or_empty], -1) & merged[..., None]  # B S 4


def teaching_precision(labels: PseudoLabels, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """labels of B clips, gt B T H W -> per set {"boundary", "interior"}: B x 4 patch counts (teacher right only,
    student right only, both right, both wrong; ``TEACHING``) and, under "<set>_patches", the set's labelled
    patches per clip (B,). Definitions in the module doc."""
    B, S = labels.slot_map.shape
    Q = max(int(gt.max()) + 1, 1)
    joint = contingency_tables(labels.enc_labels, gt, S, Q) + contingency_tables(labels.dec_labels, gt, S, Q)
    lookup = best_matching(joint)  # B S   one matching for both maps: a slot is one slot in both
    enc_right, dec_right = matched_right(labels.enc_labels, gt, lookup), matched_right(labels.dec_labels, gt, lookup)
    result = {}
    for name, select, teacher, student in (("boundary", labels.boundary, enc_right, dec_right),
                                           ("interior", labels.interior, dec_right, enc_right)):
        select = select & (gt >= 0)
        cases = torch.stack([teacher & ~student, student & ~teacher, teacher & student, ~teacher & ~student], -1)
        result[name] = (cases & select[..., None]).flatten(1, 3).sum(1)  # B 4
        result[f"{name}_patches"] = select.flatten(1).sum(1)  # B
    return result


def premise_sums(labels: PseudoLabels, true: torch.Tensor, ignore_background: bool = True) -> dict[str, float]:
    """SSync's pseudo-labels of B clips (``ssync.pseudo_labels``: B T H W maps, S slots), true B T R C ground-truth
    masks -> flat dict of sums and counts: ``<key>/sum`` and ``<key>/count`` for every key of ``PREMISE_KEYS``
    (definitions in the module doc). Add the dicts of several batches with :func:`accumulate`."""
    B, S = labels.slot_map.shape
    gt = patch_majority(true, tuple(labels.enc_labels.shape[-2:]))  # B T H W
    labelled = gt >= 0
    regions = dict(zip(("boundary", "interior"), ground_truth_regions(gt)))
    Q = max(int(gt.max()) + 1, 1)
    maps = {"encoder": labels.enc_unmerged, "decoder": labels.dec_unmerged,
            "encoder_merged": labels.enc_labels, "decoder_merged": labels.dec_labels}
    out: dict[str, float] = {}

    def add(key: str, total, count) -> None:
        out[f"{key}/sum"], out[f"{key}/count"] = float(total), float(count)

    right = {name: matched_right(m, gt, best_matching(contingency_tables(m, gt, S, Q))) for name, m in maps.items()}
    for set_name in SETS:
        select = regions[set_name]
        add(f"premises/{set_name}/patch_pct", 100 * select.sum(), labelled.sum())
        for name, m in maps.items():
            ari = subset_fg_ari(m, gt, select, ignore_background)
            valid = ~torch.isnan(ari)
            add(f"premises/{set_name}/{name}_fg_ari", ari[valid].sum(), valid.sum())
            add(f"premises/{set_name}/{name}_acc", (right[name] & select).sum(), select.sum())
    audit = merge_audit(labels, gt).sum(0)  # 4
    add("merge_audit/pairs", audit.sum(), B)
    for k, name in enumerate(AUDIT_CLASSES):
        add(f"merge_audit/{name}", audit[k], B)
    teaching = teaching_precision(labels, gt)
    for set_name in ("boundary", "interior"):
        counts, patches = teaching[set_name].sum(0), teaching[f"{set_name}_patches"].sum()
        for k, name in enumerate(TEACHING):
            add(f"teaching/{set_name}/{name}", 100 * counts[k], patches)
    return out


def accumulate(totals: dict[str, float], stats: Mapping[str, float]) -> dict[str, float]:
    """totals += stats, key by key (in place; returns totals)."""
    for key, value in stats.items():
        totals[key] = totals.get(key, 0.0) + value
    return totals


def premise_means(totals: Mapping[str, float]) -> dict[str, float]:
    """Summed ``<key>/sum`` and ``<key>/count`` -> ``{key: sum / count (NaN when 0), key_valid: count}``, plus
    ``merge_audit/<class>_total`` (the summed pair counts)."""
    result: dict[str, float] = {}
    for key in sorted(k.removesuffix("/sum") for k in totals if k.endswith("/sum")):
        total, count = totals[f"{key}/sum"], totals[f"{key}/count"]
        result[key] = total / count if count else math.nan
        result[f"{key}_valid"] = int(count)
        if key.startswith("merge_audit/"):
            result[f"{key}_total"] = int(total)
    return result
