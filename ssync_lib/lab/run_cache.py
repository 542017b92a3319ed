"""The notebooks' run cache: reuse a finished run, else a shipped checkpoint, else train.

    cfg = notebook_config("cpu", objective="ssync", seed=0)
    run = get_trained(cfg)            # TrainResult(run_dir, model, objective, history, metrics)
    write_notebook_metrics("04", cfg, {"ssync/decoder/fg_ari": 0.81})

Where ``get_trained`` looks, in order (``retrain=True`` skips the first two and trains afresh):

1. ``<train.run_root>/<run_name>/``: a finished run of this config (``last.pt`` at ``max_steps``),
   e.g. one that an earlier notebook trained; an unfinished one is resumed.
2. ``checkpoints/<profile>/<run_name>/last.pt`` (a copy of a run folder, with its ``config.json``
   and ``log.csv``) or ``checkpoints/<profile>/<run_name>.pt``: the checkpoints the project ships
   for the ``cpu`` profile, trained by the documented command.
3. ``ssync_lib.train.train(cfg)``.

A checkpoint is reused only if it was trained with the same model, objective, data and step
budget as ``cfg`` (``MUST_MATCH``): a shipped one of other settings is skipped with a note naming
the values that differ; a run folder of other settings is an error (training would overwrite it).
Checkpoints are loaded with ``weights_only=True`` (``ssync_lib.checkpoint``).
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ssync_lib.checkpoint import LAST, SHIPPED_DIR, config_differences, load_checkpoint, load_trained, with_defaults
from ssync_lib.config import Config, get_config, project_root, resolve_path
from ssync_lib.errors import RunExistsError
from ssync_lib.run_log import read_metrics
from ssync_lib.train import TrainResult, train

# Config values that must agree for a checkpoint to stand for ``cfg`` (paths, workers, logging may differ).
MUST_MATCH = {
    "data": ("source", "level", "synth_seed", "num_frames", "resolution", "chunk_len", "input_size", "num_train"),
    "model": None,  # every model field
    "objective": None,
    "train": ("seed", "batch_size", "lr", "warmup_steps", "max_steps", "grad_clip"),
}
MEMORY_KNOBS = {("model", "chunk_frames"), ("objective", "dense_chunk")}  # same result, other memory use


def notebook_config(profile: str, objective: str = "baseline", seed: int = 0, data_root: str | None = None,
                    device: str = "auto", steps: int | None = None, num_slots: int | None = None,
                    run_root: str = "runs", **overrides: Any) -> Config:
    """The config a notebook's parameters describe. ``None`` keeps the profile's value; ``overrides``
    (``key=value`` as in ``get_config``) come last. A step count other than the profile's goes into
    the run name, so it never collides with the default run."""
    base = get_config(profile)
    values: dict[str, Any] = {"objective.name": objective, "train.seed": seed, "train.device": device,
                              "train.run_root": run_root}
    if data_root:
        values["data.root"] = data_root
    if num_slots is not None:
        values["model.num_slots"] = num_slots
    if steps is not None:
        values["train.max_steps"] = steps
    cfg = get_config(profile, {**values, **overrides})
    if steps is not None and steps != base.train.max_steps and not cfg.train.name:
        cfg.train.name = f"{cfg.run_name}-{steps}steps"
    return cfg


def _relevant(d: Mapping[str, Any]) -> dict:
    return {s: {k: v for k, v in d.get(s, {}).items() if (keys is None or k in keys) and (s, k) not in MEMORY_KNOBS}
            for s, keys in MUST_MATCH.items()}


def reuse_differences(saved_config: Mapping[str, Any], cfg: Config) -> list[str]:
    """The config values (of ``MUST_MATCH``) that differ between a checkpoint and ``cfg``. A key the
    checkpoint's config lacks (written before the field existed) counts as the field's default,
    since new fields default to the earlier behaviour."""
    return config_differences(_relevant(with_defaults(saved_config)), _relevant(cfg.to_dict()))


def shipped_checkpoint(cfg: Config) -> Path | None:
    """The checkpoint the project ships for this config's run name, if any."""
    folder = project_root() / SHIPPED_DIR / cfg.profile
    for path in (folder / cfg.run_name / LAST, folder / f"{cfg.run_name}.pt"):
        if path.is_file():
            return path
    return None


def _beside(ckpt: Path, name: str) -> Path:
    """A file stored with a checkpoint: ``<folder>/<name>`` for a run folder's ``last.pt``, else
    ``<stem>.<name>`` (``log.csv`` holds the training curve, ``metrics.json`` the final evaluation)."""
    return ckpt.parent / name if ckpt.name == LAST else ckpt.with_name(f"{ckpt.stem}.{name}")


def _result(path: str | Path, cfg: Config, state: Mapping[str, Any] | None = None) -> TrainResult:
    """Model and objective of ``cfg`` with the weights of checkpoint ``path`` (already loaded:
    ``state``), in eval mode on ``cfg.train.device`` (``checkpoint.load_trained``); the history and final
    metrics stored beside it (empty when absent)."""
    path = resolve_path(path)
    trained = load_trained(path, cfg=cfg, state=state)
    log, record = _beside(path, "log.csv"), _beside(path, "metrics.json")
    metrics = read_metrics(record)["metrics"] if record.is_file() else {}  # written by run_log.write_metrics
    return TrainResult(run_dir=path.parent, model=trained.model, objective=trained.objective,
                       history=pd.read_csv(log) if log.is_file() else pd.DataFrame(), metrics=metrics)


def _why_not(path: Path, state: Mapping[str, Any], cfg: Config) -> str:
    """Why the checkpoint cannot stand for ``cfg`` ("" when it can)."""
    diffs = reuse_differences(state["config"], cfg)
    if diffs:
        return f"{path} was trained with other settings ({'; '.join(diffs)})"
    if state["step"] != cfg.train.max_steps:
        return f"{path} stopped at step {state['step']} of {cfg.train.max_steps}"
    return ""


def get_trained(cfg: Config, retrain: bool = False, progress: bool = True, init_from: str | Path | None = None,
                verbose: bool = True, train_missing: bool = True) -> TrainResult | None:
    """The trained model of ``cfg``: a finished run in ``runs/``, else a shipped checkpoint, else a
    fresh training run (see the module docstring). ``retrain=True`` deletes ``runs/<run_name>/``
    and trains from scratch (``init_from``: start from another run's checkpoint, see ``train``).
    ``train_missing=False`` returns None instead of training (or resuming) unless ``retrain``."""
    say = print if verbose else (lambda *_: None)
    run_dir = resolve_path(cfg.train.run_root) / cfg.run_name
    last = run_dir / LAST
    if retrain and run_dir.exists():
        say(f"retrain=True: removing the previous run {run_dir.name}")
        shutil.rmtree(run_dir)
    if last.is_file():
        state = load_checkpoint(last)
        why = _why_not(last, state, cfg)
        if not why:
            say(f"reusing the finished run {run_dir.name}")
            return _result(last, cfg, state)
        if state["step"] == cfg.train.max_steps or reuse_differences(state["config"], cfg):
            raise RunExistsError(f"{why}: set retrain=True to replace it, or choose another train.name")
        say(f"resuming the unfinished run {run_dir.name} at step {state['step']}")
    elif not retrain and (shipped := shipped_checkpoint(cfg)) is not None:
        state = load_checkpoint(shipped)
        why = _why_not(shipped, state, cfg)
        if not why:
            say(f"loading the shipped checkpoint {shipped.relative_to(project_root())}")
            return _result(shipped, cfg, state)
        say(f"not using the shipped checkpoint: {why}")
    if not (train_missing or retrain):
        say(f"no finished run or shipped checkpoint for {cfg.run_name}; not training it (train_missing=False)")
        return None
    say(f"training {cfg.run_name} for {cfg.train.max_steps} steps")
    result = train(cfg, resume="auto", progress=progress, init_from=init_from)
    result.model.eval()
    result.objective.eval()
    return result


def write_notebook_metrics(number: str, cfg: Config, metrics: Mapping[str, float]) -> Path:
    """Write a notebook's headline metrics to ``<run_root>/notebooks_metrics/<number>_<profile>.json``
    (read by tests/test_notebooks.py). Values must be finite numbers."""
    bad = {k: v for k, v in metrics.items() if not isinstance(v, (int, float)) or not math.isfinite(v)}
    if bad:
        raise ValueError(f"notebook {number}: metrics must be finite numbers, got {bad}")
    path = resolve_path(cfg.train.run_root) / "notebooks_metrics" / f"{number}_{cfg.profile}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: float(v) for k, v in sorted(metrics.items())}, indent=2))
    return path
