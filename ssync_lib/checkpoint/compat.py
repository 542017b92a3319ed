"""Whether a checkpoint fits: config values compared (``FREE_KEYS`` aside, and the ``objective`` values that the
run's objective does not read) before resuming or branching, and module states loaded with errors that name the
mismatched keys and the config values that explain them."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from ssync_lib.config import Config
from ssync_lib.errors import CheckpointError
from ssync_lib.objectives import OBJECTIVE_KEYS

# Config values that do not change what a run computes (paths, workers, logging, checkpoint and evaluation
# cadence, device, memory and speed knobs): free to change on resume and branch. Every other value is compared
# (of ``objective``, those the run's objective reads, ``objectives.OBJECTIVE_KEYS``: see ``config_changes``).
FREE_KEYS = {
    "data": {"root", "num_workers", "max_val_videos"},
    "model": {"chunk_frames"},
    "objective": {"dense_chunk"},
    "train": {"log_every", "ckpt_every", "keep_every", "eval_every", "eval_batch_size", "device", "compile",
              "deterministic", "run_root", "name", "init_from", "init_mode"},
}


class CheckpointMismatchError(CheckpointError):
    """A checkpoint does not fit the modules built from the current config."""


class ConfigChangeError(CheckpointMismatchError):
    """Resume or branch with a config that changes the model, the objective, the data or the schedule."""


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
    """``section.key: saved -> current`` for the values of ``sections`` that change what a run computes: every
    value but ``FREE_KEYS``, and of ``objective``, when saved and requested name the same objective, only the
    values that objective reads (``objectives.OBJECTIVE_KEYS``: a baseline run computes the same whatever
    ``objective.ssync_warmup_frac`` or ``w_ssync_enc`` say). Another objective (a branch): every value."""
    saved, current = with_defaults(saved_config), cfg.to_dict()
    name = current["objective"]["name"]
    read = OBJECTIVE_KEYS.get(name) if saved["objective"].get("name") == name else None

    def compared(section, key):
        return key not in FREE_KEYS.get(section, ()) and (section != "objective" or read is None or key in read)

    def relevant(d):
        return {s: {k: v for k, v in d[s].items() if compared(s, k)} for s in sections}
    return config_differences(relevant(saved), relevant(current))


def check_config_change(saved_config: Mapping[str, Any], cfg: Config, path: str | Path, *, branch: bool = False,
                        weights_only: bool = False, allow: bool = False) -> list[str]:
    """Refuse to resume (or branch from) ``path`` with a config that changes the model, the objective, the
    data or the schedule (``ConfigChangeError`` listing each difference, as ``config_changes`` finds them: the
    objective values that the run's objective does not read are not compared), before anything is written.
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
