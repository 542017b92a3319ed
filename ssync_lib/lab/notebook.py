"""What every notebook does before it teaches anything, in one place: its configs, the data (generated when
synthetic and missing), the validation clip it shows; running a model on one clip; and notebook 01's two frozen
encoders on a few clips.

    nb = setup_notebook(profile, ("baseline", "ssync"), seed=seed, data_root=data_root, device=device,
                        steps=steps, num_slots=num_slots, run_root=run_root, video_index=video_index)
    out = run_on_clip(model, nb.item["video"], seed)    # ModelOutput of one clip, batch of 1
    seen = encoder_comparison(cfg, "synth-easy", SHIPPED_WEIGHTS, count=4)   # notebook 01: random vs pretrained

No Jupyter import here: notebooks, tests and scripts call the same functions.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ssync_lib.config import Config
from ssync_lib.data import VideoDataset, build_dataset, denormalize, synthetic
from ssync_lib.lab.run_cache import notebook_config
from ssync_lib.lab.viz import pca_rgb
from ssync_lib.models import ModelOutput
from ssync_lib.pretrain.features import EncoderView, encoder_views, middle_frame, read_encoder_json


@dataclass
class NotebookSetup:
    cfgs: dict[str, Config]  # objective -> the config of the notebook's parameters
    cfg: Config  # the first objective's
    val: VideoDataset  # the validation split
    item: dict  # the clip shown: {"video": (T,3,S,S) normalised, "masks": (T,S,S) ids, "id": str}
    frames: torch.Tensor  # T H W 3 in [0, 1] (the clip, for display)
    masks: torch.Tensor  # T H W ground-truth ids, 0 = background
    num_slots: int  # S of the first config
    digits: int  # rounding of headline numbers: smoke models are untrained, their scores noise
    params: dict  # the notebook's parameters, for config()

    def config(self, objective: str, **overrides: Any) -> Config:
        """Another config of the same parameters, e.g. ``nb.config("ssync", **{"model.num_slots": 11})``."""
        return notebook_config(objective=objective, **{**self.params, **overrides})


def setup_notebook(profile: str, objectives: Sequence[str] = ("baseline",), *, seed: int = 0,
                   data_root: str | None = None, device: str = "auto", steps: int | None = None,
                   num_slots: int | None = None, run_root: str = "runs", video_index: int = 0,
                   **overrides: Any) -> NotebookSetup:
    """The configs a notebook's parameters describe (``run_cache.notebook_config``, one per objective), the
    synthetic data generated if it is missing (skipped when it is there), and validation clip ``video_index``."""
    params = dict(profile=profile, seed=seed, data_root=data_root, device=device, steps=steps, num_slots=num_slots,
                  run_root=run_root, **overrides)
    cfgs = {name: notebook_config(objective=name, **params) for name in objectives}
    cfg = cfgs[objectives[0]]
    if cfg.data.source == "synthetic":
        synthetic.generate_from_config(cfg, progress=False)
    val = build_dataset(cfg, "val")
    item = val[video_index]
    return NotebookSetup(cfgs=cfgs, cfg=cfg, val=val, item=item, frames=denormalize(item["video"]),
                         masks=item["masks"], num_slots=cfg.model.num_slots, digits=1 if profile == "smoke" else 2,
                         params=params)


@torch.no_grad()
def run_on_clip(model: nn.Module, video: torch.Tensor, seed: int = 0) -> ModelOutput:
    """``model`` on one clip ``video`` (T,3,S,S), as a batch of 1 on the model's device. The slot initialisation
    draws noise, so the global RNG is seeded with ``seed`` first: the same clip gives the same maps every time."""
    torch.manual_seed(seed)
    return model(video[None].to(next(model.parameters()).device))


@torch.no_grad()
def attention_iterations(model: nn.Module, video: torch.Tensor, seed: int = 0) -> list[torch.Tensor]:
    """Slot attention's maps after every iteration on one clip ``video`` (T,3,S,S): a list of T tensors
    (iters, S, h, w), softmax over slots (3 iterations on frame 0, 2 later in the published set-up). Seeded
    as :func:`run_on_clip`, so the last iteration equals ``run_on_clip(...).attn``."""
    torch.manual_seed(seed)
    features = model.encode(video[None].to(next(model.parameters()).device))
    *_, per_frame = model.slots_from_features(features, return_iterations=True)
    return [a[0].unflatten(-1, model.grid).cpu() for a in per_frame]


# ----------------------------------------------------------------------------- what the encoder sees (notebook 01)

@dataclass
class EncoderComparison:
    """Notebook 01's "What the encoder sees": n clips of one level, the frame shown of each, and what each frozen
    encoder makes of them."""
    level: str  # the level the clips come from, as the notebook names it
    ids: list[str]  # the n clips' ids
    num_frames: list[int]  # T of each clip (k-means and its score use every frame)
    shown: list[int]  # the frame of each clip the figures show (``middle_frame``)
    frames: torch.Tensor  # (n, H, W, 3) in [0, 1]: each clip's middle frame, the one the figures show
    masks: torch.Tensor  # (n, H, W): its ground-truth ids, 0 = background
    views: dict[str, EncoderView]  # encoder name -> what it makes of the clips (``pretrain.features.encoder_views``)

    def middle(self, name: str) -> torch.Tensor:
        """Encoder ``name``'s k-means labels on each clip's middle frame: (n, h, w)."""
        return torch.stack([lab[t] for lab, t in zip(self.views[name].labels, self.shown)])

    def pca_colours(self, name: str) -> np.ndarray:
        """Encoder ``name``'s patch features of the shown frames on their first three principal components, fitted
        on those frames' patches together, as RGB in [0, 1] (``viz.pca_rgb``): (n, h, w, 3)."""
        features = torch.stack([f[t] for f, t in zip(self.views[name].features, self.shown)])  # n h w C
        return pca_rgb(features.flatten(1, 2), tuple(features.shape[1:3]))


def encoder_comparison(cfg: Config, level: str, weights: str | Path, count: int = 4,
                       profile: str = "cpu") -> EncoderComparison:
    """The first ``count`` validation clips of ``cfg``'s data, read at the weights' input size, seen by the random
    patch embedding the ``profile`` reads and by the pretrained ViT of ``weights`` (``encoder_views``)."""
    cfg = copy.deepcopy(cfg)
    cfg.data.input_size = int(read_encoder_json(weights)["data.input_size"])
    cfg.data.max_val_videos = count
    data = build_dataset(cfg, "val")
    clips = [data[i] for i in range(min(count, len(data)))]
    shown = [middle_frame(c) for c in clips]
    return EncoderComparison(
        level=level, ids=[c["id"] for c in clips], num_frames=[int(c["video"].shape[0]) for c in clips], shown=shown,
        frames=torch.stack([torch.as_tensor(denormalize(c["video"][t:t + 1]))[0] for c, t in zip(clips, shown)]),
        masks=torch.stack([c["masks"][t] for c, t in zip(clips, shown)]), views=encoder_views(clips, weights, profile))


# ----------------------------------------------------------------------------- a gallery of failures

FAILURE_KINDS = {
    "lost": "an object in the background's slot",
    "switch": "an identity switch: a visible object changes slot",
    "shared": "two objects share one slot",
}


def find_failures(masks, labels, min_area: float = 0.5, min_share: float = 0.5) -> list[dict]:
    """The failures of one clip's label map, against its ground truth: masks (T, H, W) ids (0 = background), labels
    (T, h, w) or (T, H, W) slot ids (upsampled, nearest). Each failure is a dict with ``kind`` (``FAILURE_KINDS``),
    ``objects`` (ground-truth ids), ``frames`` (where it shows) and ``slots``. An object is *well visible* in a
    frame where its area is at least ``min_area`` of its largest area in the clip, and *held* by a slot that covers
    at least ``min_share`` of its pixels there (its majority slot, ``viz.slot_tracks``):

    lost: an object whose majority slot is the background's majority slot in at least half of its visible frames;
    partly_lost: the same in fewer than half of its visible frames, but at least one (not in the gallery:
        ``FAILURE_KINDS``; ``describe_failures`` names it);
    switch: an identity switch, frame t where an object (not lost), well visible and held in frames t-1 and t, is
        held by a different slot in t than in t-1, neither of them the background's slot in t-1 or t (an object
        that shrinks to a sliver behind another one, or that falls into the background's slot, is not a switch);
        ``frames`` lists every such t, ``moves`` the (t, slot before, slot after) triples, ``slots`` the slots of
        the moves in order of first use;
    shared: two objects, both well visible, held by the same slot (not the background's) in a frame; ``slots``
        the shared slot(s)."""
    from ssync_lib.lab.viz import slot_tracks

    ids, slots, share = slot_tracks(masks, labels)  # K+1 ids (0 first), (K+1, T) majority slot (-1: not visible)
    gt = torch.as_tensor(masks)
    area = torch.stack([(gt == obj).flatten(1).sum(1) for obj in ids]).numpy()  # K+1 T pixels
    visible = (area > 0) & (area >= min_area * area.max(1, keepdims=True))  # K+1 T well visible
    held = visible & (share >= min_share)  # nan share (not visible) compares False
    background = slots[0]  # T
    failures, lost = [], set()
    for i, obj in enumerate(ids[1:], start=1):
        seen = slots[i] >= 0
        in_background = seen & (slots[i] == background) & (background >= 0)
        if in_background.any():  # lost, or for less than half its frames: partly lost
            kind = "lost" if 2 * in_background.sum() >= seen.sum() else "partly_lost"
            if kind == "lost":
                lost.add(obj)
            failures.append({"kind": kind, "objects": [obj], "frames": [int(t) for t in in_background.nonzero()[0]],
                             "slots": sorted({int(s) for s in slots[i][in_background]})})
    for i, obj in enumerate(ids[1:], start=1):
        if obj in lost:
            continue
        moves = [(t, int(slots[i, t - 1]), int(slots[i, t])) for t in range(1, slots.shape[1])
                 if held[i, t - 1] and held[i, t] and slots[i, t - 1] != slots[i, t]
                 and not {int(slots[i, t - 1]), int(slots[i, t])} & {int(background[t - 1]), int(background[t])}]
        if moves:
            failures.append({"kind": "switch", "objects": [obj], "frames": [t for t, _, _ in moves],
                             "slots": list(dict.fromkeys(s for _, a, b in moves for s in (a, b))), "moves": moves})
    pairs: dict[tuple[int, int], list[int]] = {}
    for t in range(slots.shape[1]):
        for a in range(1, len(ids)):
            for b in range(a + 1, len(ids)):
                s = slots[a, t]
                if held[a, t] and held[b, t] and s == slots[b, t] and s != background[t]:
                    pairs.setdefault((ids[a], ids[b]), []).append(t)
    for (a, b), frames in pairs.items():
        failures.append({"kind": "shared", "objects": [a, b], "frames": frames,
                         "slots": sorted({int(slots[ids.index(a), t]) for t in frames})})
    return failures


def failure_cases(model: nn.Module, dataset, seed: int = 0, max_clips: int = 32) -> dict[str, dict]:
    """One clip per kind of failure of the model's decoder maps (of the first ``max_clips`` of ``dataset``), each
    kind on a clip of its own: the first clip that shows it and is not already another kind's case. Kind -> the
    failure (see :func:`find_failures`) with ``index`` and ``id`` of the clip and its decoder ``labels``
    (T, h, w). A kind no such clip shows is missing."""
    cases: dict[str, dict] = {}
    for index in range(min(max_clips, len(dataset))):
        item = dataset[index]
        out = run_on_clip(model, item["video"], seed)
        labels = out.masks[0].unflatten(-1, out.grid).argmax(1).cpu()  # T h w
        for failure in find_failures(item["masks"], labels):  # lost, then switch, then shared
            if failure["kind"] in FAILURE_KINDS and failure["kind"] not in cases:
                cases[failure["kind"]] = {**failure, "index": index, "id": item["id"], "labels": labels}
                break  # this clip is that kind's case
        if len(cases) == len(FAILURE_KINDS):
            break
    return cases


def failure_frames(case: dict, num_frames: int, max_frames: int = 6) -> list[int]:
    """The frames a gallery figure draws for one failure (``failure_cases``): around an identity switch the two
    frames of its first move with one frame of context each side; for a shared slot up to ``max_frames`` of the
    frames where it shows; otherwise ``max_frames`` spread over the clip (``viz.frame_indices``)."""
    import numpy as np

    from ssync_lib.lab.viz import frame_indices

    if case["kind"] == "switch":
        t = case["moves"][0][0]
        return list(range(max(t - 2, 0), min(t + 2, num_frames)))
    if case["kind"] == "shared":
        frames = case["frames"]
        return sorted({frames[int(k)] for k in np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round()})
    return frame_indices(num_frames, max_frames)


# ----------------------------------------------------------------------------- a merge that does its job

@torch.no_grad()
def split_merge_case(model: nn.Module, dataset, window: int, merge_iou: float, seed: int = 0,
                     max_clips: int = 64) -> dict:
    """Where SSync's merge (``objectives.merge_slots`` through ``pseudo_labels``, at ``merge_iou``) does the job it
    is for: the first window of ``window`` frames (non-overlapping, as in training and ``evaluate``) of the first
    ``max_clips`` clips of ``dataset`` where a merged label's slots all lie on one ground-truth object (``pure``:
    every pair of its component is ``object_split`` in ``diagnostics.merge_classes``; other labels of the window may
    merge otherwise) and split it most clearly: the largest product of the smallest share of the object's patches
    a slot of the component wins and the smallest share of a slot's own patches that are the object (ties: the
    first). Failing a pure component, the same among components with any ``object_split`` pair. Returns a dict: ``counts``, the merged pairs per
    ``AUDIT_CLASSES`` class summed over all windows scanned, ``windows`` scanned, ``split_windows`` (windows with an
    ``object_split`` pair); and, when a window was found, ``index``, ``id``, ``start`` (its first frame),
    ``labels`` (its PseudoLabels, batch of 1), ``gt`` (1, w, h, w) patch majority ids, ``slots`` (the merged
    component), ``rep`` (its label), ``object`` (the ground-truth id its slots lie on) and ``pure``."""
    from ssync_lib.diagnostics import AUDIT_CLASSES, merge_classes, patch_majority
    from ssync_lib.objectives import pseudo_labels

    counts, scanned, split_windows = torch.zeros(len(AUDIT_CLASSES), dtype=torch.long), 0, 0
    best: dict = {}
    for index in range(min(max_clips, len(dataset))):
        item = dataset[index]
        out = run_on_clip(model, item["video"], seed)
        T = out.attn_logits.shape[1]
        w = min(window, T)
        for start in range(0, T - w + 1, w):  # non-overlapping windows, trailing frames dropped (evaluate.windows)
            frames = slice(start, start + w)
            labels = pseudo_labels(out.attn_logits[:, frames].float(), out.alpha[:, frames].float(), out.grid,
                                   merge_iou)
            gt = patch_majority(item["masks"][None, frames].to(labels.slot_map.device), out.grid)  # 1 w h w
            classes = merge_classes(labels, gt)[0]  # S 4
            counts += classes.sum(0).cpu()
            scanned += 1
            split = classes[:, 0]  # S: the slot's pair (slot, representative) lies on one object
            if not split.any():
                continue
            split_windows += 1
            slot_map, enc, true = labels.slot_map[0], labels.enc_unmerged[0], gt[0]  # S; w h w; w h w
            for rep in slot_map[split].unique().tolist():
                members = (slot_map == rep).nonzero()[:, 0]
                pure = bool(split[members[members != rep]].all())  # every pair of the component within one object
                obj = int(torch.mode(true[(enc == rep) & (true >= 0)]).values)
                won = min(float((enc[true == obj] == s).float().mean()) for s in members)  # of the object's patches
                own = min(float((true[(enc == s) & (true >= 0)] == obj).float().mean()) for s in members)
                rank = (pure, won * own)  # a true split: each slot holds a real part of the object, little else
                if best and best["rank"] >= rank:
                    continue
                best = {"index": index, "id": item["id"], "start": start, "labels": labels, "gt": gt,
                        "slots": members.tolist(), "rep": rep, "object": obj, "pure": pure, "rank": rank}
    result = {"counts": dict(zip(AUDIT_CLASSES, counts.tolist())), "windows": scanned, "split_windows": split_windows,
              "clips": min(max_clips, len(dataset))}
    best.pop("rank", None)
    return {**result, **best}


def describe_switch_on(history, columns: Sequence[str], window: int = 5) -> str:
    """One sentence per loss term that is zero until it switches on (``history``: a run's log.csv rows): the
    first logged step where it is non-zero, its mean over the first and the last ``window`` logged rows from there,
    and the relative change, e.g. ``dense_dec: on from step 1,650; 1.00 just after, 0.95 at the end (-6%)``."""
    parts = []
    for column in columns:
        on = history[history[column] != 0]
        if on.empty:
            parts.append(f"{column}: never on")
            continue
        first, last = on[column].head(window).mean(), on[column].tail(window).mean()
        parts.append(f"{column}: on from step {int(on['step'].iloc[0]):,}; {first:.2f} just after, {last:.2f} at "
                     f"the end ({100 * (last / first - 1):+.0f}%)")
    return "; ".join(parts) + "."


FAILURE_WORDS = {"lost": "shares the background's slot", "partly_lost": "is in the background's slot for a while",
                 "switch": "changes slot", "shared": "share a slot"}


def describe_failures(masks, labels, names: dict | None = None) -> str:
    """``find_failures`` of one label map in words, one clause per failure (``names``: object id -> colour name,
    ``viz.object_colour_names``), e.g. ``the purple object shares the background's slot (slots [0], frames [0, 1])``;
    or that every object keeps a slot of its own in every frame."""
    names = names or {}
    clauses = [f"the {' and the '.join(names.get(o, f'object {o}') for o in f['objects'])} object"
               f"{'s' if len(f['objects']) > 1 else ''} {FAILURE_WORDS[f['kind']]} (slots {f['slots']}, "
               f"frames {f['frames']})" for f in find_failures(masks, labels)]
    return "; ".join(clauses) if clauses else "every object keeps a slot of its own in every frame"


def describe_curves(evals, column: str, mark_step: int | None = None) -> str:
    """One sentence comparing objectives' validation curves (``evals``: eval.csv rows with an ``objective``
    column) at every evaluated step, in %, e.g. ``at step 2,000 (before step 2,400): baseline 41.6, ssync 41.6;
    at step 4,000: ...``."""
    table = evals.pivot_table(index="step", columns="objective", values=column) * 100
    parts = []
    for step, row in table.iterrows():
        when = f"at step {int(step):,}" + (" (before step {:,})".format(mark_step) if mark_step and step < mark_step
                                           else "")
        parts.append(when + ": " + ", ".join(f"{o} {v:.1f}" for o, v in row.dropna().items()))
    return "; ".join(parts) + "."
