"""A training run's state: ``save_training_state`` writes the checkpoint from rank 0 (with every rank's RNG
states); ``restore_training_state`` loads one into the modules, to resume the same run or to branch another run
from it (model weights and the model's Adam state, the step and the RNG states; the objective starts fresh)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.distributed as dist

from ssync_lib.checkpoint.compat import CheckpointMismatchError, load_module_state
from ssync_lib.checkpoint.files import FORMAT, keep_copy, save_checkpoint
from ssync_lib.checkpoint.rng import rng_state, set_rng_state
from ssync_lib.config import Config
from ssync_lib.runtime import DistInfo, seed_everything


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
