"""A trained model: ``load_trained(run_folder_or_file, overrides)`` builds the model (and its objective) of the
checkpoint's config with its weights, in eval mode: the one way evaluation, the notebooks' run cache, the gradient
report and the benchmarks get a trained model."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from torch import nn

from ssync_lib.checkpoint.compat import load_module_state
from ssync_lib.checkpoint.files import LAST, load_checkpoint
from ssync_lib.config import Config, apply_overrides
from ssync_lib.config_checks import validate
from ssync_lib.models import create_model
from ssync_lib.objectives import Objective, build_objective
from ssync_lib.runtime import resolve_device


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
