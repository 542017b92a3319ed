"""Checkpoints: atomic writes, safe loads, every RNG state, clear errors on mismatch.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values, so that it
loads with ``torch.load(weights_only=True)`` (no arbitrary unpickling):

    {"format": 1, "step": int, "epoch": int, "batch_in_epoch": int, "world_size": int,
     "model": state_dict, "objective": state_dict, "optimizer": state_dict, "scheduler": state_dict,
     "rng": [rng_state() of rank 0, rank 1, ...], "log_accum": running log means (plain floats),
     "config": Config.to_dict()}

The data order is a pure function of (seed, epoch) and the step (see ``data/order.py``), so the step
is all a resumed run needs to continue it.

Training state: ``save_training_state`` writes the checkpoint above from rank 0 (with every rank's RNG
states); ``restore_training_state`` loads one into the modules, either to resume the same run or to
branch another run from it (``train.init_from``: model weights and the model's Adam state, the step and
the RNG states; the objective starts fresh).

A trained model: ``load_trained(run_folder_or_file, overrides)`` builds the model (and its objective) of the
checkpoint's config with its weights, in eval mode: the one way evaluation, the notebooks' run cache, the gradient
report and the benchmarks get a trained model.

Writes go to a temporary file in the same folder, are flushed and fsync'ed, then renamed over the
old file with ``os.replace`` (atomic on POSIX) and the folder is fsync'ed: a crash or an exception
at any point leaves the previous checkpoint intact.
"""
from __future__ import annotations

import copy
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ssync_lib.config import Config, apply_overrides
from ssync_lib.config_checks import validate
from ssync_lib.errors import CheckpointError, MissingInputError, short_reason
from ssync_lib.models import create_model
from ssync_lib.objectives import Objective, build_objective
from ssync_lib.runtime import DistInfo, resolve_device, seed_everything

FORMAT = 1
LAST = "last.pt"  # a run folder's latest checkpoint
SHIPPED_DIR = "checkpoints"  # the shipped models and their metrics, below the project root: never written over
TMP_PREFIX = ".tmp-"
# Config values that do not change what a run computes (paths, workers, logging, checkpoint and evaluation
# cadence, device, memory and speed knobs): free to change on resume and branch. Every other value is compared.
FREE_KEYS = {
    "data": {"root", "num_workers", "max_val_videos"},
    "model": {"chunk_frames"},
    "objective": {"dense_chunk"},
    "train": {"log_every", "ckpt_every", "keep_every", "eval_every", "eval_batch_size", "device", "compile",
              "deterministic", "run_root", "name", "init_from", "init_mode"},
}


class CheckpointMismatchError(CheckpointError):
    """A checkpoint does not fit the modules built from the current config."""


class NonFiniteWeightsError(CheckpointError):
    """A checkpoint whose model weights hold NaN or infinities."""


class ConfigChangeError(CheckpointMismatchError):
    """Resume or branch with a config that changes the model, the objective, the data or the schedule."""


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Atomically write ``state`` to ``path``; on any failure the old file is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_tmp(folder: str | Path) -> list[Path]:
    """Delete temporary files left by a save that was killed (SIGKILL cannot run cleanup)."""
    stale = sorted(Path(folder).glob(f"{TMP_PREFIX}*"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", check_finite: bool = True) -> dict:
    """Load a checkpoint with ``weights_only=True``; errors name the file. ``check_finite``: refuse model weights
    that hold NaN or infinities (``NonFiniteWeightsError`` naming the last checkpoint beside it whose weights
    are finite)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"checkpoint {path} does not exist",
                                fix="check the path; a run folder's checkpoint is <run>/last.pt")
    size = path.stat().st_size
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        if size == 0 or "central directory" in str(err) or isinstance(err, EOFError):
            reason = "an empty file" if size == 0 else f"{size} bytes; {short_reason(err)}"
            raise CheckpointError(f"checkpoint {path} is truncated ({reason}): the file "
                                  f"was cut short (a copy or download that did not finish, a full disk)",
                                  fix="copy or download it again; a run's own saves are atomic, so its "
                                      "step-<N>.pt files beside it are whole") from err
        raise CheckpointError(f"cannot load checkpoint {path} safely (weights_only=True): {short_reason(err)}",
                              fix=NOT_OURS_FIX) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ssync_lib checkpoint of format {FORMAT}", fix=NOT_OURS_FIX)
    if check_finite:
        check_finite_weights(state, path)
    return state


def nonfinite_weights(state: Mapping[str, Any]) -> list[str]:
    """The names of the model's floating-point tensors that hold NaN or infinities."""
    return [k for k, v in state.get("model", {}).items()
            if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def last_finite_checkpoint(path: Path) -> tuple[Path, int] | None:
    """The latest other checkpoint in ``path``'s folder (``last.pt``, ``step-<N>.pt``) whose weights are all
    finite, with its step; None if there is none."""
    candidates = []
    for other in path.parent.glob("*.pt"):
        if other.resolve() == path.resolve() or other.name.startswith(TMP_PREFIX):
            continue
        try:
            state = load_checkpoint(other, check_finite=False)
        except CheckpointError:
            continue
        if not nonfinite_weights(state):
            candidates.append((int(state.get("step", -1)), other))
    if not candidates:
        return None
    step, other = max(candidates, key=lambda c: (c[0], c[1].name == "last.pt"))
    return other, step


def check_finite_weights(state: Mapping[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose model weights hold NaN or infinities, naming the tensors and the last
    checkpoint beside it with finite weights."""
    bad = nonfinite_weights(state)
    if not bad:
        return
    good = last_finite_checkpoint(path)
    named = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    if good:
        fix = (f"use the last checkpoint with finite weights, {good[0]} (step {good[1]}): evaluate it (--checkpoint "
               f"{good[0]}) or train on from it (--init-from {good[0]} --name NEW), with a lower train.lr or "
               f"train.grad_clip")
    else:
        fix = (f"no checkpoint in {path.parent} has finite weights: train again with a lower train.lr or "
               f"train.grad_clip")
    raise NonFiniteWeightsError(f"checkpoint {path} (step {state.get('step')}) holds NaN or infinite weights in "
                                f"{len(bad)} of {len(state['model'])} tensors ({named}): the model diverged before "
                                f"this save", fix=fix)


NOT_OURS_FIX = ("give a last.pt or step-<N>.pt written by `python -m ssync_lib train` (this project never unpickles "
                "code); a public SSync / SlotContrast checkpoint goes to `evaluate --official PATH --profile P`")


# ----------------------------------------------------------------------------- RNG states

def rng_state() -> dict:
    """Every RNG state of this process as tensors and plain values (weights_only-loadable)."""
    py_version, py_keys, py_gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python_version": py_version,
        "python_keys": torch.tensor(py_keys, dtype=torch.int64),  # 625 ints < 2**32
        "python_gauss": py_gauss,
        "numpy_keys": torch.from_numpy(np_keys.astype(np.int64)),  # 624 uint32
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate((state["python_version"], tuple(int(k) for k in state["python_keys"].tolist()),
                     state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


# ----------------------------------------------------------------------------- compatibility

def state_dict_mismatches(module: torch.nn.Module, saved: Mapping[str, torch.Tensor]) -> list[str]:
    """Human-readable differences between ``module.state_dict()`` and ``saved`` (empty = compatible)."""
    own = module.state_dict()
    problems = [f"missing in checkpoint: {k}" for k in own if k not in saved]
    problems += [f"unexpected in checkpoint: {k}" for k in saved if k not in own]
    problems += [f"shape of {k}: {tuple(saved[k].shape)} in checkpoint vs {tuple(v.shape)} in model"
                 for k, v in own.items() if k in saved and tuple(saved[k].shape) != tuple(v.shape)]
    return problems


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any], sections=None) -> list[str]:
    """``section.key: saved -> current`` for every config value that differs."""
    diffs = []
    for section in sections or sorted(set(saved) | set(current)):
        old, new = saved.get(section), current.get(section)
        if not isinstance(old, Mapping) or not isinstance(new, Mapping):
            if old != new:
                diffs.append(f"{section}: {old!r} -> {new!r}")
            continue
        diffs += [f"{section}.{k}: {old.get(k)!r} -> {new.get(k)!r}"
                  for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return diffs


def with_defaults(saved_config: Mapping[str, Any]) -> dict:
    """A stored config with the fields it lacks (written before they existed) at their defaults: new
    fields default to the earlier behaviour."""
    defaults = Config().to_dict()
    return {**saved_config, **{s: {**defaults[s], **saved_config.get(s, {})} for s in Config.SECTIONS}}


def config_changes(saved_config: Mapping[str, Any], cfg: Config, sections=Config.SECTIONS) -> list[str]:
    """``section.key: saved -> current`` for the values of ``sections`` that change what a run computes
    (every value but ``FREE_KEYS``)."""
    saved, current = with_defaults(saved_config), cfg.to_dict()

    def relevant(d):
        return {s: {k: v for k, v in d[s].items() if k not in FREE_KEYS.get(s, ())} for s in sections}
    return config_differences(relevant(saved), relevant(current))


def check_config_change(saved_config: Mapping[str, Any], cfg: Config, path: str | Path, *, branch: bool = False,
                        weights_only: bool = False, allow: bool = False) -> list[str]:
    """Refuse to resume (or branch from) ``path`` with a config that changes the model, the objective, the
    data or the schedule (``ConfigChangeError`` listing each difference), before anything is written.
    Branching (``branch``) may change the objective; ``weights_only`` (``train.init_mode=model``, step 0)
    compares the model only. ``allow``: warn instead (``--allow-config-change``). Returns the differences."""
    sections = ("model",) if weights_only else tuple(s for s in Config.SECTIONS if not (branch and s == "objective"))
    diffs = config_changes(saved_config, cfg, sections)
    if not diffs:
        return diffs
    what = "branch from" if branch else "resume"
    listing = "\n  ".join(diffs)
    if allow:
        warnings.warn(f"{what} {path} with a config that differs (checkpoint -> requested, allowed by "
                      f"allow_config_change):\n  {listing}")
        return diffs
    if branch:
        fix = ("use the checkpoint's values for these keys (a branch may change the objective: --objective, "
               "--set objective.*), or pass --allow-config-change to branch anyway (values that change parameter "
               "shapes still cannot load)")
    else:
        fix = ("drop these overrides to continue the run as it was; or start a new run (--name NEW, from this "
               f"checkpoint with --init-from {path}); or pass --allow-config-change to continue this run with the "
               "new values (its curves then mix two configs)")
    raise ConfigChangeError(f"cannot {what} {path}: the requested config changes what the run computes "
                            f"(checkpoint -> requested):\n  {listing}\nnothing was written", fix=fix)


def load_module_state(module: torch.nn.Module, saved: Mapping[str, torch.Tensor], *, what: str,
                      path: str | Path, saved_config: Mapping[str, Any] | None = None,
                      config: Mapping[str, Any] | None = None) -> None:
    """``module.load_state_dict(saved)`` with an error that names the mismatched keys, and the
    config values (model section) that explain them."""
    problems = state_dict_mismatches(module, saved)
    if problems:
        msg = f"checkpoint {path} does not fit the {what} built from the config:\n  " + "\n  ".join(problems)
        if saved_config is not None and config is not None:
            diffs = config_differences(saved_config, config, sections=("data", "model"))
            if diffs:
                msg += "\nconfig values that differ (checkpoint -> current):\n  " + "\n  ".join(diffs)
        raise CheckpointMismatchError(msg, fix="use the config the checkpoint was trained with (the config.json "
                                               "beside it), or another checkpoint")
    module.load_state_dict(saved)


# ----------------------------------------------------------------------------- a trained model

@dataclass
class TrainedModel:
    """What ``load_trained`` returns: a checkpoint's model (and objective) in eval mode, with where it comes from."""
    path: Path  # the checkpoint file
    step: int  # the training step it was written at
    saved_config: dict  # the config stored in it
    cfg: Config  # the config the modules were built from (the stored one, or the one given, with the overrides)
    model: nn.Module  # on the device, eval mode
    objective: Objective | None  # on the device, eval mode; None when not asked for


def checkpoint_file(source: str | Path) -> Path:
    """A run folder -> its ``last.pt``; a checkpoint file -> itself."""
    source = Path(source)
    return source / LAST if source.is_dir() else source


def checkpoint_config(state: Mapping[str, Any], overrides: Iterable[str] | Mapping = ()) -> Config:
    """The config stored in a loaded checkpoint with ``overrides`` applied, validated (``config_checks``)."""
    return validate(apply_overrides(Config.from_dict(state["config"]), overrides))


def load_trained(source: str | Path, overrides: Iterable[str] | Mapping = (), *, cfg: Config | None = None,
                 state: Mapping[str, Any] | None = None, device: str | None = None,
                 objective: bool = True) -> TrainedModel:
    """The trained model of a run folder or checkpoint file, in eval mode.

    Built from ``cfg`` (default: the checkpoint's own config, validated) with ``overrides`` applied, loaded with the
    checkpoint's weights (mismatches named by ``load_module_state``), moved to ``device`` (default
    ``cfg.train.device``). ``state``: the checkpoint when already loaded. ``objective``: also build the objective
    and load its state (its parameters, e.g. dense alignment's projections)."""
    path = checkpoint_file(source)
    state = state if state is not None else load_checkpoint(path)
    cfg = checkpoint_config(state, overrides) if cfg is None else apply_overrides(copy.deepcopy(cfg), overrides)
    target = resolve_device(device or cfg.train.device)
    current = cfg.to_dict()
    model = create_model(cfg.model, input_size=cfg.data.input_size)
    load_module_state(model, state["model"], what="model", path=path, saved_config=state["config"], config=current)
    built = None
    if objective:
        built = build_objective(cfg.objective, model.feature_dim, cfg.model.slot_dim, cfg.train.max_steps)
        load_module_state(built, state["objective"], what="objective", path=path, saved_config=state["config"],
                          config=current)
        built = built.to(target).eval()
    return TrainedModel(path=path, step=int(state["step"]), saved_config=state["config"], cfg=cfg,
                        model=model.to(target).eval(), objective=built)


# ----------------------------------------------------------------------------- training state

def save_training_state(path: Path, model, objective, optimizer, scheduler, step: int, steps_per_epoch: int,
                        cfg: Config, info: DistInfo, log_accum: Mapping[str, Any]) -> None:
    """The checkpoint of a training run, from rank 0, with every rank's RNG states (gathered); a copy
    ``step-<N>.pt`` every ``train.keep_every`` steps."""
    rngs = [rng_state()]  # CPU tensors and plain values
    if info.world_size > 1:
        own, rngs = rngs[0], [None] * info.world_size
        dist.all_gather_object(rngs, own)
    if not info.is_main:
        return
    epoch, batch = divmod(step, steps_per_epoch)
    save_checkpoint(path, {
        "format": FORMAT, "step": step, "epoch": epoch, "batch_in_epoch": batch, "world_size": info.world_size,
        "model": model.state_dict(), "objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rng": rngs, "log_accum": dict(log_accum), "config": cfg.to_dict(),
    })
    if cfg.train.keep_every and step % cfg.train.keep_every == 0:
        keep_copy(path, path.with_name(f"step-{step:07d}.pt"))


def keep_copy(src: Path, dst: Path) -> None:
    """Atomically give ``dst`` the content of ``src`` (a hard link where possible)."""
    tmp = dst.with_name(f"{TMP_PREFIX}{dst.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        save_checkpoint(dst, torch.load(src, map_location="cpu", weights_only=True))
        return
    os.replace(tmp, dst)


def restore_training_state(state: dict, cfg: Config, path: Path, model, objective, optimizer, info: DistInfo,
                           full: bool, branch: bool = False) -> dict:
    """Load ``state`` into the modules. ``full``: also optimiser, step and RNG states; ``branch``:
    a checkpoint of another run whose objective may differ (only the model's Adam state is kept).
    Returns where training continues: ``{"step", "scheduler", "log_accum"}``."""
    saved_cfg, current = state["config"], cfg.to_dict()
    load_module_state(model, state["model"], what="model", path=path, saved_config=saved_cfg, config=current)
    if not full:
        return {"step": 0, "scheduler": None, "log_accum": None}
    if branch:
        optimizer.load_state_dict(_model_optimizer_state(state["optimizer"], optimizer))
    else:  # the config was compared before (check_config_change)
        load_module_state(objective, state["objective"], what="objective", path=path, saved_config=saved_cfg,
                          config=current)
        optimizer.load_state_dict(state["optimizer"])
    rngs = state["rng"]
    if len(rngs) == info.world_size:
        set_rng_state(rngs[info.rank])
    else:
        if info.is_main:
            warnings.warn(f"{path} was written by {len(rngs)} processes, now {info.world_size}: RNG streams "
                          f"re-seeded (the data order is kept, the slot-init noise differs)")
        seed_everything(cfg.train.seed + 1_000_003 * (info.rank + 1) + state["step"])
    return {"step": state["step"], "scheduler": None if branch else state["scheduler"],
            "log_accum": None if branch else state["log_accum"]}


def _model_optimizer_state(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """The saved optimiser's group 0 (the model's parameters, with their Adam moments) joined with
    this optimiser's fresh objective group, for branching to another objective."""
    own = optimizer.state_dict()
    model_ids = saved["param_groups"][0]["params"]
    if len(model_ids) != len(own["param_groups"][0]["params"]):
        raise CheckpointMismatchError(f"the checkpoint's optimiser has {len(model_ids)} model parameters, this "
                                      f"model {len(own['param_groups'][0]['params'])}")
    objective_group = dict(own["param_groups"][1], params=[len(model_ids) + i for i in
                                                           range(len(own["param_groups"][1]["params"]))])
    return {"state": {i: saved["state"][pid] for i, pid in enumerate(model_ids) if pid in saved["state"]},
            "param_groups": [dict(saved["param_groups"][0], params=list(range(len(model_ids)))), objective_group]}
