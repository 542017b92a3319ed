"""Object-discovery metrics on integer label maps (docs/method.md §2): FG-ARI, mBO, mIoU.

    pred = masks_to_labels(out.masks.unflatten(-1, model.grid), size=true.shape[-2:])  # B T H W
    fg_ari(pred, true)                  # (B,)   video level: all frames of a clip pooled
    fg_ari(pred, true, level="image")   # (B, T) one score per frame
    evaluate_masks(pred, true)          # {"fg_ari": mean, "fg_ari_n": valid, "fg_ari_skipped": ..., ...}

Label maps are integer tensors (B, T, H, W). Ground-truth id 0 is the background (ignored when
``ignore_background``); negative ground-truth ids mark unlabelled pixels (padding), which are left
out everywhere. Predicted ids are any non-negative integers (need not be contiguous).

Everything is computed from one contingency table per frame, built by counting (``index_add_``)
the flat (frame, true id, predicted id) cell of every pixel: no Python loop over pixels; runs on
GPU tensors as well. Only the Hungarian matching of mIoU runs on the CPU, once per clip (or frame)
on a small (objects x ids) matrix. On the CPU the metrics use one thread (see ``_one_thread``).

Edge cases (§2): a clip (frame) with no foreground pixel scores NaN for all three metrics and
:func:`mean_valid` skips and counts it. ARI follows scikit-learn's convention otherwise: when the
two partitions are identical (including a single pixel, or one object predicted as one id) the
score is 1.0, a case where the ARI formula itself is 0/0.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

LEVELS = ("video", "image")
_MAX_CELLS = 4096  # (true id, pred id) cells per frame above which ids are compacted (torch.unique) first
_CPU_CHUNK_PIXELS = 2 ** 17  # pixels counted per step on the CPU (1 MiB of int64 cells: cache-sized)


def _one_thread(fn):
    """Run ``fn`` with one intra-op CPU thread. The metrics are memory-bound passes over cache-sized
    chunks and small tables: with several threads each op ends in an OpenMP barrier, and on cores
    shared with other processes these barriers cost more than the work (GPU ops are unaffected)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return wrapper


def masks_to_labels(soft_masks: torch.Tensor, size: int | tuple[int, int], chunk: int = 16) -> torch.Tensor:
    """Soft masks (B,T,S,h,w) -> hard labels (B,T,H,W), int64: bilinear resize to the ground-truth
    size, then argmax over slots (§2). Frames are processed ``chunk`` at a time to bound memory."""
    if soft_masks.dim() != 5:
        raise ValueError(f"masks_to_labels: soft_masks must be (B, T, S, h, w), got {tuple(soft_masks.shape)}")
    size = (size, size) if isinstance(size, int) else tuple(size)
    frames = soft_masks.flatten(0, 1).float().contiguous(memory_format=torch.channels_last)  # (B*T) S h w
    labels = [F.interpolate(x, size=size, mode="bilinear", align_corners=False).max(dim=1).indices
              for x in frames.split(chunk)]  # (chunk) H W each; max's index is argmax's (first maximum)
    return torch.cat(labels).unflatten(0, soft_masks.shape[:2])  # B T H W


@_one_thread
def contingency(pred: torch.Tensor, true: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame contingency tables of two label maps (B,T,H,W).

    Returns ``table`` (B,T,Q,P) int64, pixel counts of (true id, predicted id) per frame, and
    ``true_ids`` (Q,), the ground-truth id of each row (negative ids all map to one row of -1).
    Predicted ids that never occur give empty columns, which change none of the metrics.
    On the CPU frames are counted in chunks of about ``_CPU_CHUNK_PIXELS`` pixels (cache-sized, no
    large temporary); on a GPU all at once.
    """
    _check(pred, true)
    b, t, h, w = true.shape
    t_lo, t_hi = (int(v) for v in torch.aminmax(true))
    p_lo, p_hi = (int(v) for v in torch.aminmax(pred))
    if p_lo < 0:
        raise ValueError(f"metrics: pred holds negative ids (min {p_lo}); predicted ids must be >= 0")
    if t_lo < -1:
        true, t_lo = true.clamp_min(-1), -1  # all unlabelled pixels share the id -1
    q, p = t_hi - t_lo + 1, p_hi - p_lo + 1
    if q * p > _MAX_CELLS:  # sparse, far-apart ids: compacted first
        true_ids, true = torch.unique(true, return_inverse=True)  # Q
        _, pred = torch.unique(pred, return_inverse=True)
        q, p, t_lo, p_lo = len(true_ids), int(pred.max()) + 1, 0, 0
    else:
        true_ids = torch.arange(t_lo, t_hi + 1, device=true.device)  # Q
    true, pred = true.flatten(0, 1), pred.flatten(0, 1)  # (B*T) H W
    # cell of pixel (frame f, true id i, pred id j) = (f * Q + i - t_lo) * P + j - p_lo
    offset = torch.arange(b * t, device=true.device).view(-1, 1, 1) * (q * p) - (t_lo * p + p_lo)  # (B*T) 1 1
    table = torch.zeros(b * t * q * p, dtype=torch.long, device=true.device)  # (B*T*Q*P)
    step = b * t if true.is_cuda else max(1, _CPU_CHUNK_PIXELS // (h * w))
    for start in range(0, b * t, step):  # over chunks of frames, never over pixels
        frames = slice(start, start + step)
        cell = torch.add(pred[frames].long(), true[frames], alpha=p).add_(offset[frames]).flatten()  # (chunk*H*W)
        table.index_add_(0, cell, table.new_ones(1).expand(len(cell)))  # pixel counts per cell
    return table.view(b, t, q, p), true_ids


def _check(pred: torch.Tensor, true: torch.Tensor) -> None:
    if pred.shape != true.shape or pred.dim() != 4:
        raise ValueError(f"metrics: pred and true must both be (B, T, H, W) label maps, got pred "
                         f"{tuple(pred.shape)} and true {tuple(true.shape)}")
    for name, x in (("pred", pred), ("true", true)):
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"metrics: {name} must be an integer label map, got dtype {x.dtype}")


def _at_level(table: torch.Tensor, level: str) -> torch.Tensor:
    """(B,T,Q,P) per-frame tables -> video level: summed over frames (B,Q,P); image level: as is."""
    if level not in LEVELS:
        raise ValueError(f"metrics: level must be one of {LEVELS}, got '{level}'")
    return table.sum(dim=1) if level == "video" else table


def _split_rows(table: torch.Tensor, true_ids: torch.Tensor, ignore_background: bool):
    """Rows of the scored ground-truth ids (..., Q', P) and the predicted areas over all labelled
    pixels, background included (..., P)."""
    labelled = true_ids >= 0
    scored = true_ids > 0 if ignore_background else labelled
    return table[..., scored, :], table[..., labelled, :].sum(dim=-2)


def _comb2(n: torch.Tensor) -> torch.Tensor:
    return n * (n - 1) // 2  # exact in int64


def _ari(table: torch.Tensor) -> torch.Tensor:
    """ARI of each contingency table (..., Q, P) int64 -> (...) float64, via the pair confusion
    matrix exactly as scikit-learn's ``adjusted_rand_score``; NaN for an empty table."""
    same_both = _comb2(table).sum(dim=(-1, -2))  # pairs together in true and in pred
    same_true = _comb2(table.sum(dim=-1)).sum(dim=-1)  # pairs together in true
    same_pred = _comb2(table.sum(dim=-2)).sum(dim=-1)  # pairs together in pred
    n = table.sum(dim=(-1, -2))
    tp = same_both.double()
    fn = (same_true - same_both).double()
    fp = (same_pred - same_both).double()
    tn = (_comb2(n) - same_true - same_pred + same_both).double()
    denom = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    ari = 2.0 * (tp * tn - fn * fp) / denom.clamp_min(1.0)
    ari = torch.where((fn == 0) & (fp == 0), torch.ones_like(ari), ari)  # identical partitions: 1.0 (sklearn)
    return torch.where(n == 0, torch.full_like(ari, math.nan), ari)  # no scored pixel: NaN (§2)


def _iou(objects: torch.Tensor, pred_area: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU (..., Q, P) float64 between every ground-truth object and every predicted id, and the
    mask (..., Q) of non-empty objects."""
    area = objects.sum(dim=-1)  # ... Q
    union = area.unsqueeze(-1) + pred_area.unsqueeze(-2) - objects  # ... Q P
    iou = objects.double() / union.clamp_min(1).double()  # ... Q P
    return iou, area > 0


def _mbo(objects: torch.Tensor, pred_area: torch.Tensor) -> torch.Tensor:
    iou, present = _iou(objects, pred_area)
    best = iou.max(dim=-1).values  # ... Q   a predicted id may be reused
    count = present.sum(dim=-1)  # ...
    score = (best * present).sum(dim=-1) / count.clamp_min(1)  # mean over non-empty objects (§2)
    return torch.where(count == 0, torch.full_like(score, math.nan), score)


def _miou(objects: torch.Tensor, pred_area: torch.Tensor) -> torch.Tensor:
    iou, present = _iou(objects, pred_area)  # ... Q P, ... Q
    shape = present.shape[:-1]
    iou = iou.flatten(0, -3).cpu().numpy()  # G Q P
    present = present.reshape(iou.shape[:2]).cpu().numpy()  # G Q
    scores = np.full(len(iou), math.nan)
    for g in np.flatnonzero(present.any(axis=1)):  # one small assignment per clip (frame)
        matrix = iou[g][present[g]]  # objects x ids
        rows, cols = linear_sum_assignment(matrix, maximize=True)  # one-to-one (§2)
        scores[g] = matrix[rows, cols].sum() / len(matrix)  # unmatched objects score 0
    return torch.from_numpy(scores).view(shape).to(objects.device)


@_one_thread
def fg_ari(pred: torch.Tensor, true: torch.Tensor, level: str = "video", ignore_background: bool = True):
    """Adjusted Rand index over the pixels whose true id is not background (§2).

    ``level="video"`` -> (B,) pooling all frames of a clip; ``"image"`` -> (B, T).
    ``ignore_background=False``: plain ARI over all labelled pixels (YouTube-VIS).
    """
    table, true_ids = contingency(pred, true)
    return _ari(_split_rows(_at_level(table, level), true_ids, ignore_background)[0])


@_one_thread
def mbo(pred: torch.Tensor, true: torch.Tensor, level: str = "video", ignore_background: bool = True):
    """Mean best overlap: each non-empty ground-truth object (a spatio-temporal mask at video level)
    scores its best IoU over the predicted ids, averaged per clip (B,) or frame (B, T) (§2)."""
    table, true_ids = contingency(pred, true)
    return _mbo(*_split_rows(_at_level(table, level), true_ids, ignore_background))


@_one_thread
def miou(pred: torch.Tensor, true: torch.Tensor, level: str = "video", ignore_background: bool = True):
    """As :func:`mbo` with a one-to-one Hungarian matching of objects to predicted ids
    (``scipy.optimize.linear_sum_assignment``); unmatched objects score 0 (§2)."""
    table, true_ids = contingency(pred, true)
    return _miou(*_split_rows(_at_level(table, level), true_ids, ignore_background))


@_one_thread
def object_sharing(table: torch.Tensor, true_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Video-level tables (B,Q,P) -> per clip (B,), over the objects present (true id > 0): the share of objects
    whose majority predicted id is also the background's ("lost" to the background slot) and the share whose
    majority id is also another object's ("shared" with another object). NaN for a clip without objects.
    A diagnostic of how masks go wrong (under-segmentation), not a field-standard metric."""
    present = table.sum(-1) > 0  # B Q
    major = table.argmax(-1)  # B Q  each ground-truth id's majority predicted id
    objects = present & (true_ids > 0)  # B Q
    is_bg = present & (true_ids == 0)  # B Q  (at most one row)
    same = major.unsqueeze(2) == major.unsqueeze(1)  # B Q Q
    lost = objects & (same & is_bg.unsqueeze(1)).any(2)
    others = objects.unsqueeze(1) & ~torch.eye(len(true_ids), dtype=torch.bool, device=table.device)  # B Q Q
    shared = objects & (same & others).any(2)
    count = objects.sum(1).double()  # B
    nan = torch.full_like(count, math.nan)
    return (torch.where(count > 0, lost.sum(1) / count, nan), torch.where(count > 0, shared.sum(1) / count, nan))


def clip_scores(pred: torch.Tensor, true: torch.Tensor, ignore_background: bool = True) -> dict[str, torch.Tensor]:
    """All metrics from one contingency table: ``fg_ari``, ``mbo``, ``miou`` (B,) at video level,
    ``fg_ari_image``, ``mbo_image``, ``miou_image`` (B, T) at image level, and the video-level diagnostics
    ``objects_lost``, ``objects_shared`` (B,) of :func:`object_sharing`; NaN where nothing to score."""
    table, true_ids = contingency(pred, true)
    scores = {}
    for level, suffix in (("video", ""), ("image", "_image")):
        objects, pred_area = _split_rows(_at_level(table, level), true_ids, ignore_background)
        scores["fg_ari" + suffix] = _ari(objects)
        scores["mbo" + suffix] = _mbo(objects, pred_area)
        scores["miou" + suffix] = _miou(objects, pred_area)
    scores["objects_lost"], scores["objects_shared"] = object_sharing(_at_level(table, "video"), true_ids)
    return scores


def mean_valid(scores: torch.Tensor) -> tuple[float, int, int]:
    """Mean over the non-NaN entries of ``scores`` (any shape) -> (mean, n_valid, n_skipped);
    the mean is NaN when nothing is valid."""
    valid = ~torch.isnan(scores)
    n_valid = int(valid.sum())
    mean = float(scores[valid].double().mean()) if n_valid else math.nan
    return mean, n_valid, scores.numel() - n_valid


def evaluate_masks(pred_labels: torch.Tensor, true: torch.Tensor, ignore_background: bool = True) -> dict:
    """Video- and image-level means of FG-ARI, mBO and mIoU with valid and skipped counts:
    ``{"fg_ari": mean, "fg_ari_n": n_valid, "fg_ari_skipped": n_skipped, "fg_ari_image": ..., ...}``.
    Image-level means run over all valid frames of all clips. To average over several batches,
    concatenate :func:`clip_scores` and call :func:`mean_valid` once."""
    result = {}
    for name, scores in clip_scores(pred_labels, true, ignore_background).items():
        result[name], result[name + "_n"], result[name + "_skipped"] = mean_valid(scores)
    return result


def kmeans_labels(features: torch.Tensor, k: int, seed: int = 0, restarts: int = 10) -> torch.Tensor:
    """k-means over every token of one clip, all frames pooled (so that an id names the same cluster in every
    frame): features (T, h, w, D) -> labels (T, h, w) int64 in [0, k). scipy's ``kmeans2`` (k-means++ seeding,
    Lloyd iterations), the best of ``restarts`` runs by inertia (scikit-learn's n_init), all drawn from
    ``np.random.default_rng(seed)``: deterministic per seed."""
    from scipy.cluster.vq import kmeans2

    data = features.detach().reshape(-1, features.shape[-1]).double().cpu().numpy()  # T*h*w D
    rng = np.random.default_rng(seed)
    best, best_inertia = None, math.inf
    for _ in range(restarts):
        centroids, labels = kmeans2(data, k, minit="++", seed=rng)
        inertia = float(((data - centroids[labels]) ** 2).sum())  # sum of squared distances to the centre
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return torch.from_numpy(best.astype(np.int64)).view(features.shape[:-1])


def kmeans_fg_ari(features: torch.Tensor, true: torch.Tensor, k: int, seed: int = 0) -> float:
    """The k-means reference of one clip: video FG-ARI of ``kmeans_labels(features, k)`` (T, h, w), upsampled
    (nearest) to the ground truth's (T, H, W), against ``true`` (T, H, W) (0 = background). What a clustering of
    the features alone scores: on raw pixels (mean colour per patch) it calibrates a data level, on a
    backbone's features it says how object-like they are. NaN for a clip without foreground."""
    return grid_fg_ari(kmeans_labels(features, k, seed), true)


def grid_fg_ari(labels: torch.Tensor, true: torch.Tensor) -> float:
    """Video FG-ARI of one clip's patch-grid labels (T, h, w), upsampled (nearest) to the ground truth's
    (T, H, W), against ``true`` (T, H, W) (0 = background). NaN for a clip without foreground."""
    labels = F.interpolate(labels.double()[:, None], size=tuple(true.shape[-2:]), mode="nearest")[:, 0].long()
    return float(fg_ari(labels[None], true[None].long())[0])  # T H W labels, one clip
