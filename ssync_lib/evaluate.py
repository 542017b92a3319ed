"""Evaluation on whole validation videos (docs/method.md §2).

    metrics = evaluate(model, cfg)               # flat dict, see below
    metrics = evaluate_run("runs/smoke-ssync")   # loads last.pt, writes runs/smoke-ssync/metrics.json

The model runs over all T frames of each validation video (slots propagate through the whole
video). Two kinds of predicted masks are scored: the decoder object maps (``out.masks``) and the
encoder attention maps (``out.attn``). Each is reshaped to (B, T, S, h, w), resized to the ground
truth and turned into hard labels by ``metrics.masks_to_labels``, then scored at video and image
level. Keys of the returned dict: ``<maps>/<level>/<metric>`` with maps in (decoder, attention),
level in (video, image), metric in (fg_ari, mbo, miou), plus ``..._valid`` / ``..._skipped`` counts
(clips or frames whose ground truth is background only are skipped, §2) and ``num_videos``;
``<maps>/video/objects_lost`` and ``objects_shared``: the under-segmentation diagnostic of
``metrics.object_sharing``.
``pseudo_labels/<statistic>``: SSync's pseudo-label statistics (merged slots, boundary / interior /
agreement shares, ``ssync.label_statistics``) on windows of ``data.chunk_len`` frames, as in training,
averaged over the windows; computed for every objective (a baseline model's redundant slots show up too).
``premises/...``, ``merge_audit/...``, ``teaching/...``: SSync's premises against ground truth on the same
windows (who is right where, the merge audit, the precision of its teaching labels; ``diagnostics.py``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from ssync_lib import metrics as M
from ssync_lib.checkpoint import LAST, SHIPPED_DIR, checkpoint_config, config_changes, load_checkpoint, load_trained
from ssync_lib.config import Config, apply_overrides, get_config, project_root, resolve_path
from ssync_lib.config_checks import validate
from ssync_lib.data import build_dataset, check_data_root
from ssync_lib.diagnostics import accumulate, premise_means, premise_sums
from ssync_lib.errors import ConfigError
from ssync_lib.objectives.ssync import PseudoLabels, label_statistics, pseudo_labels
from ssync_lib.official import load_official
from ssync_lib.run_lock import check_not_busy, check_writable
from ssync_lib.run_log import write_metrics
from ssync_lib.runtime import resolve_device

NO_BACKGROUND = ("ytvis",)  # sources without a background id: plain ARI over labelled pixels (§2)
DATA_FREE = ("num_workers", "max_val_videos")  # data values that do not make other data
log = logging.getLogger(__name__)


def _batches(dataset, count: int, batch_size: int, num_workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``count`` items, consecutive items of equal shape stacked, at most ``batch_size`` at a
    time: video (B,T,3,H,W), masks (B,T,H,W). Workers prefetch; the global RNG is not touched."""
    items = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(count)), batch_size=None,
                                        num_workers=num_workers, generator=torch.Generator())
    videos, masks = [], []
    for item in items:
        if videos and (len(videos) == batch_size or item["video"].shape != videos[0].shape
                       or item["masks"].shape != masks[0].shape):
            yield torch.stack(videos), torch.stack(masks)
            videos, masks = [], []
        videos.append(item["video"])
        masks.append(item["masks"])
    if videos:
        yield torch.stack(videos), torch.stack(masks)


def predicted_labels(out, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Hard labels (B,T,H,W) of the decoder masks and the attention maps of a ModelOutput."""
    h, w = out.grid
    maps = {"decoder": out.masks, "attention": out.attn}  # B T S N each
    return {name: M.masks_to_labels(m.float().unflatten(-1, (h, w)), size)  # B T S h w -> B T H W
            for name, m in maps.items()}


def windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """x B T ... -> (B*n) w ...: non-overlapping windows of ``window`` frames of each video (the training clip
    length; a shorter video is one window, trailing frames are dropped), n = T // w windows per video."""
    B, T = x.shape[:2]
    w = min(window, T)
    n = T // w
    return x[:, :n * w].reshape(B * n, w, *x.shape[2:])


def window_labels(out, window: int, merge_iou: float) -> PseudoLabels:
    """SSync's pseudo-labels of a ModelOutput of whole videos on its windows of ``window`` frames (``windows``), as
    in training: per window (B*n clips)."""
    attn_logits, alpha = (windows(x, window).float() for x in (out.attn_logits, out.alpha))  # (B*n) w S N
    return pseudo_labels(attn_logits, alpha, out.grid, merge_iou)


@torch.no_grad()
def evaluate(model: nn.Module, cfg: Config, split: str = "val", max_videos: int | None = None,
             progress: bool = True) -> dict:
    """Video- and image-level FG-ARI, mBO and mIoU of ``model`` on whole videos of ``split``.

    Runs under a forked RNG seeded with ``cfg.train.seed`` (the Gaussian slot init draws noise):
    the result depends on the weights only, and the caller's RNG streams are left untouched."""
    dataset = build_dataset(cfg, split)
    count = len(dataset) if not max_videos else min(max_videos, len(dataset))
    ignore_background = cfg.data.source not in NO_BACKGROUND
    device = next(model.parameters()).device
    scores: dict[str, list[torch.Tensor]] = {}  # "<maps>/<level>/<metric>" -> per clip (B,) or frame (B,T)
    premises: dict[str, float] = {}  # SSync's premises against ground truth: sums and counts (diagnostics.py)
    was_training = model.training
    model.eval()
    bar = tqdm(total=count, desc=f"evaluate {split}", disable=not progress, leave=False)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(cfg.train.seed)
            batches = _batches(dataset, count, cfg.train.eval_batch_size, cfg.data.num_workers)
            for video, true in batches:  # B T 3 H W, B T H W
                with torch.autocast(device.type, dtype=torch.bfloat16,
                                    enabled=cfg.train.amp_bf16 and device.type == "cuda"):
                    out = model(video.to(device))
                for maps, pred in predicted_labels(out, tuple(true.shape[-2:])).items():
                    clip = M.clip_scores(pred, true.to(device), ignore_background)
                    for name, value in clip.items():  # fg_ari (B,) ... fg_ari_image (B, T) ...
                        level = "image" if name.endswith("_image") else "video"
                        key = f"{maps}/{level}/{name.removesuffix('_image')}"
                        scores.setdefault(key, []).append(value.flatten().cpu())
                # SSync's pseudo-labels on training-length windows, computed once: their statistics, its premises
                labels = window_labels(out, cfg.data.chunk_len, cfg.objective.merge_iou)
                for name, value in label_statistics(labels).items():
                    scores.setdefault(f"pseudo_labels/{name}", []).append(value.cpu())
                true_windows = windows(true.to(device), cfg.data.chunk_len)  # (B*n) w H W
                accumulate(premises, premise_sums(labels, true_windows, ignore_background))
                bar.update(video.shape[0])
    finally:
        bar.close()
        model.train(was_training)
    result: dict = {"num_videos": count}
    for key, parts in scores.items():
        result[key], result[f"{key}_valid"], result[f"{key}_skipped"] = M.mean_valid(torch.cat(parts))
    result.update(premise_means(premises))
    return result


def _is_shipped(path: Path) -> bool:
    return Path(path).resolve().is_relative_to((project_root() / SHIPPED_DIR).resolve())


def _data_suffix(saved_config: Mapping | None, cfg: Config) -> tuple[str, list[str]]:
    """``("-data-<folder>", differences)`` when ``cfg`` evaluates on other data than the checkpoint was trained
    on (``data.root`` compared as resolved paths, workers and video caps ignored), else ``("", [])``."""
    if saved_config is None:
        return "", []
    saved, now = dict(saved_config.get("data", {})), cfg.to_dict()["data"]
    diffs = [f"data.{k}: {saved.get(k)!r} -> {now[k]!r}" for k in now
             if k not in DATA_FREE and k in saved and saved[k] != now[k]
             and not (k == "root" and resolve_path(saved[k]) == resolve_path(now[k]))]
    if not diffs:
        return "", []
    name = resolve_path(now["root"]).name
    if name == resolve_path(saved.get("root", "")).name:  # same folder name: tell them apart by the values
        name += "-" + hashlib.sha256(json.dumps(now, sort_keys=True).encode()).hexdigest()[:8]
    return f"-data-{name}", diffs


def _setting_suffix(saved_config: Mapping | None, cfg: Config, max_videos: int | None) -> tuple[str, list[str]]:
    """``("-first<N>", ...)`` when fewer videos are evaluated than the run's own evaluation did (``max_videos``, or
    ``data.max_val_videos``, differs from the checkpoint's cap), ``"-config-<hash>"`` when a model, objective or
    train value that changes the evaluation differs from the checkpoint's (``checkpoint.config_changes``, free
    keys aside); with the differences, for the message."""
    if saved_config is None:
        return "", []
    suffix, diffs = "", []
    saved_cap = int(saved_config.get("data", {}).get("max_val_videos", 0) or 0)
    cap = max_videos or cfg.data.max_val_videos or 0
    if cap != saved_cap:
        suffix += f"-first{cap}" if cap else "-all"
        diffs.append(f"videos: {saved_cap or 'all'} -> {cap or 'all'}")
    changes = config_changes(saved_config, cfg, ("model", "objective", "train"))
    if changes:
        now = {s: cfg.to_dict()[s] for s in ("model", "objective", "train")}
        suffix += "-config-" + hashlib.sha256(json.dumps(now, sort_keys=True).encode()).hexdigest()[:8]
        diffs += changes
    return suffix, diffs


def check_max_videos(max_videos: int | None) -> None:
    if max_videos is not None and (not isinstance(max_videos, int) or max_videos < 1):
        raise ConfigError(f"--max-videos {max_videos}: must be an integer >= 1",
                          fix="give the number of validation videos to evaluate, or leave --max-videos out for all")


def _run_folder_of(path: Path) -> Path | None:
    """The run folder (a folder holding ``last.pt`` or ``config.json``) that ``path`` lies in, if any."""
    for folder in [path.parent, *path.parent.parents]:
        if (folder / LAST).exists() or (folder / "config.json").exists():
            return folder
    return None


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that is an existing folder, a file inside ``checkpoints/``, or, inside a run folder,
    anything but a new ``.json`` file (a run's checkpoints, logs and metrics are never written over)."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is an existing folder; it takes the path of the JSON file to write",
                          fix=f"give a file name, e.g. --out {out / 'metrics.json'}")
    if _is_shipped(out) and out.exists():
        raise ConfigError(f"--out {out} is a file inside {SHIPPED_DIR}/ (the shipped models' metrics, read by the "
                          f"notebooks); it is never written over", fix="choose a path outside checkpoints/")
    run = _run_folder_of(out.resolve())
    if run is not None and (out.exists() or out.suffix != ".json"):
        what = "an existing file" if out.exists() else "not a .json file"
        raise ConfigError(f"--out {out} is {what} inside the run folder {run}; a run's checkpoints, logs and metrics "
                          f"are never written over", fix=f"give a new .json name, e.g. --out {run / 'metrics-mine.json'}, "
                                                         f"or a path outside the run folder")


def metrics_destination(checkpoint: Path, cfg: Config, saved_config: Mapping | None = None, split: str = "val",
                        out: str | Path | None = None, base: str | None = None,
                        max_videos: int | None = None) -> tuple[Path, str]:
    """Where the evaluation of ``checkpoint`` goes, and why there.

    ``out`` when given (``check_out``: never an existing folder, a file inside ``checkpoints/`` or a run folder's
    own files). Otherwise beside the checkpoint: ``<base>[-<split>].json`` with ``base`` = ``metrics[-<stem>]``
    (``metrics.json`` for ``last.pt``), with ``-first<N>`` added for fewer videos than the run's own evaluation,
    ``-config-<hash>`` for other model / objective / train values and ``-data-<folder>`` for other data than the
    checkpoint's own: a run's ``metrics.json`` holds its own full evaluation only. For a checkpoint inside
    ``checkpoints/`` (the shipped models, whose metrics the notebooks read) the same name under
    ``<train.run_root>/evaluate/<its path below checkpoints/>``."""
    if out is not None:
        out = Path(out)
        check_out(out)
        return out, ""
    base = base or ("metrics" if checkpoint.stem == "last" else f"metrics-{checkpoint.stem}")
    setting, changes = _setting_suffix(saved_config, cfg, max_videos)
    suffix, diffs = _data_suffix(saved_config, cfg)
    name = f"{base}{'' if split == 'val' else '-' + split}{setting}{suffix}.json"
    reasons = ([f"other data than the checkpoint's: {'; '.join(diffs)}"] if diffs else []) + \
        ([f"another setting than the run's own evaluation: {'; '.join(changes)}"] if changes else [])
    why = f" ({'; '.join(reasons)}; its own metrics are kept)" if reasons else ""
    if _is_shipped(checkpoint):
        below = checkpoint.resolve().parent.relative_to((project_root() / SHIPPED_DIR).resolve())
        return (resolve_path(cfg.train.run_root) / "evaluate" / below / name,
                f" ({SHIPPED_DIR}/ holds the shipped models' metrics, never written over; --out for another place)"
                + why)
    return checkpoint.parent / name, why


def evaluate_checkpoint(checkpoint: str | Path, split: str = "val", max_videos: int | None = None,
                        overrides: Iterable[str] | Mapping = (), progress: bool = True,
                        out: str | Path | None = None) -> dict:
    """Evaluate a checkpoint and write the JSON where ``metrics_destination`` says (beside it: ``metrics.json``
    for ``last.pt``, ``metrics-<stem>.json`` otherwise; or ``out``); the place is logged. Returns the metrics."""
    check_max_videos(max_videos)
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    cfg = checkpoint_config(state, overrides)
    dest, why = metrics_destination(checkpoint, cfg, state["config"], split, out, max_videos=max_videos)
    check_writable(dest)  # before the work
    check_not_busy(dest.parent, dest)  # not into a run folder a training is writing
    check_data_root(cfg)  # before building the model
    model = load_trained(checkpoint, cfg=cfg, state=state, objective=False).model
    metrics = evaluate(model, cfg, split, max_videos=max_videos or cfg.data.max_val_videos or None,
                       progress=progress)
    write_metrics(dest, metrics, step=state["step"], cfg=cfg, checkpoint=checkpoint)
    log.info(f"metrics written to {dest}{why}")
    return metrics


def evaluate_run(run_dir: str | Path, split: str = "val", max_videos: int | None = None,
                 overrides: Iterable[str] | Mapping = (), progress: bool = True, out: str | Path | None = None) -> dict:
    """Evaluate the last checkpoint of a run folder; writes ``<run_dir>/metrics.json`` (see ``evaluate_checkpoint``)."""
    return evaluate_checkpoint(resolve_path(run_dir) / LAST, split, max_videos, overrides, progress, out)


def evaluate_official(path: str | Path, profile: str, split: str = "val", max_videos: int | None = None,
                      overrides: Iterable[str] | Mapping = (), progress: bool = True,
                      out: str | Path | None = None) -> dict:
    """A public SSync / SlotContrast checkpoint converted by ``ssync_lib.official`` (its report on stderr), evaluated
    with ``profile``'s data and metrics; writes ``metrics-official-<stem>.json`` beside it (or ``out``). Returns the
    metrics."""
    check_max_videos(max_videos)
    cfg = validate(apply_overrides(get_config(profile), overrides))
    path = Path(path)
    dest, why = metrics_destination(path, cfg, None, split, out, base=f"metrics-official-{path.stem}")
    check_writable(dest)  # before the work
    check_data_root(cfg)  # before building the model
    model, report = load_official(path, cfg.model, cfg.data.input_size)
    print(report.summary(), file=sys.stderr)
    metrics = evaluate(model.to(resolve_device(cfg.train.device)), cfg, split,
                       max_videos=max_videos or cfg.data.max_val_videos or None, progress=progress)
    write_metrics(dest, metrics, step=None, cfg=cfg, checkpoint=path)
    log.info(f"metrics written to {dest}{why}")
    return metrics
