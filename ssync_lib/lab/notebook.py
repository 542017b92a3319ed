"""What every notebook does before it teaches anything, in one place: its configs, the data (generated when
synthetic and missing), the validation clip it shows; and running a model on one clip.

    nb = setup_notebook(profile, ("baseline", "ssync"), seed=seed, data_root=data_root, device=device,
                        steps=steps, num_slots=num_slots, run_root=run_root, video_index=video_index)
    out = run_on_clip(model, nb.item["video"], seed)    # ModelOutput of one clip, batch of 1

No Jupyter import here: notebooks, tests and scripts call the same functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ssync_lib.config import Config
from ssync_lib.data import VideoDataset, build_dataset, denormalize, synthetic
from ssync_lib.lab.run_cache import notebook_config
from ssync_lib.models import ModelOutput


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


# ----------------------------------------------------------------------------- a gallery of failures

FAILURE_KINDS = {
    "lost": "an object in the background's slot",
    "switch": "an object changes slot over time",
    "shared": "two objects share one slot",
}


def find_failures(masks, labels) -> list[dict]:
    """The failures of one clip's label map, against its ground truth: masks (T, H, W) ids (0 = background), labels
    (T, h, w) or (T, H, W) slot ids (upsampled, nearest). Each failure is a dict with ``kind`` (``FAILURE_KINDS``),
    ``objects`` (ground-truth ids), ``frames`` (where it shows) and ``slots``:

    lost: an object whose majority slot is the background's majority slot in at least half of its visible frames;
    switch: an object (not lost) whose majority slot changes between visible frames;
    shared: two objects with the same majority slot, not the background's, in a frame."""
    from ssync_lib.lab.viz import slot_tracks

    ids, slots, _ = slot_tracks(masks, labels)  # K+1 ids (0 first), (K+1, T) majority slot (-1: not visible)
    background = slots[0]  # T
    failures, lost = [], set()
    for i, obj in enumerate(ids[1:], start=1):
        seen = slots[i] >= 0
        in_background = seen & (slots[i] == background) & (background >= 0)
        if seen.any() and 2 * in_background.sum() >= seen.sum():
            lost.add(obj)
            failures.append({"kind": "lost", "objects": [obj], "frames": [int(t) for t in in_background.nonzero()[0]],
                             "slots": sorted({int(s) for s in slots[i][in_background]})})
    for i, obj in enumerate(ids[1:], start=1):
        track = [(t, int(s)) for t, s in enumerate(slots[i]) if s >= 0]
        changes = [t for (_, a), (t, b) in zip(track, track[1:]) if a != b]
        if obj not in lost and changes:
            failures.append({"kind": "switch", "objects": [obj], "frames": changes,
                             "slots": list(dict.fromkeys(s for _, s in track))})
    pairs: dict[tuple[int, int], list[int]] = {}
    for t in range(slots.shape[1]):
        for a in range(1, len(ids)):
            for b in range(a + 1, len(ids)):
                s = slots[a, t]
                if s >= 0 and s == slots[b, t] and s != background[t]:
                    pairs.setdefault((ids[a], ids[b]), []).append(t)
    for (a, b), frames in pairs.items():
        failures.append({"kind": "shared", "objects": [a, b], "frames": frames,
                         "slots": sorted({int(slots[ids.index(a), t]) for t in frames})})
    return failures


def failure_cases(model: nn.Module, dataset, seed: int = 0, max_clips: int = 32) -> dict[str, dict]:
    """The first clip (of the first ``max_clips`` of ``dataset``) showing each kind of failure of the model's
    decoder maps: kind -> the failure (see :func:`find_failures`) with ``index`` and ``id`` of the clip and its
    decoder ``labels`` (T, h, w). A kind no clip shows is missing."""
    cases: dict[str, dict] = {}
    for index in range(min(max_clips, len(dataset))):
        item = dataset[index]
        out = run_on_clip(model, item["video"], seed)
        labels = out.masks[0].unflatten(-1, out.grid).argmax(1).cpu()  # T h w
        for failure in find_failures(item["masks"], labels):
            cases.setdefault(failure["kind"], {**failure, "index": index, "id": item["id"], "labels": labels})
        if len(cases) == len(FAILURE_KINDS):
            break
    return cases


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


FAILURE_WORDS = {"lost": "shares the background's slot", "switch": "changes slot", "shared": "share a slot"}


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
