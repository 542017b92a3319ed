"""The one training loop, for the CLI and the notebooks alike.

    result = train(get_config("cpu", {"objective.name": "ssync"}))
    result.history  # pandas DataFrame of the logged rows;  result.metrics  # final evaluation

Run folder ``<train.run_root>/<cfg.run_name>/``: ``config.json`` (the resolved config), ``log.csv``
(every ``log_every`` steps: step, epoch, each loss term, lr, grad norm, seconds per step),
``eval.csv`` (one row per evaluation), ``metrics.json`` (the final evaluation), ``last.pt`` (the
checkpoint, see ``checkpoint.py``), ``step-<N>.pt`` (every ``keep_every`` steps, if set) and
TensorBoard event files when ``tensorboard`` is installed.

Data order: epoch ``e`` visits the training set in the permutation drawn by a ``torch.Generator``
seeded from ``(seed, e)``, in global batches of ``batch_size * world_size`` (last partial batch
dropped); rank ``r`` takes the ``r``-th slice of ``batch_size`` items of each global batch. Step
``s`` is therefore batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``: resuming needs
only the step. The items themselves (which chunk of each video) depend on ``(seed, epoch, index)``
only (``dataset.set_epoch``).

Branching: ``train(cfg_ssync, init_from="runs/base/step-3000.pt")`` starts a new run from another
run's checkpoint. ``train.init_mode="full"`` (default) takes the model weights, the model's Adam
state, the step and every RNG state, so the branch continues the base run's data order and lr
schedule exactly where it stopped, under the new objective (whose parameters, if any, start fresh).
``train.init_mode="model"`` takes the model weights only and starts at step 0.

Multi-GPU: run the same command under ``torchrun --nproc_per_node K``; ``batch_size`` is per
process. Logs, checkpoints and evaluation come from rank 0.
"""
from __future__ import annotations

import copy
import csv
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ssync_lib.checkpoint import (config_differences, load_checkpoint, load_module_state, remove_stale_tmp,
                                  rng_state, save_checkpoint, set_rng_state)
from ssync_lib.config import Config, TrainConfig, resolve_path
from ssync_lib.data import build_dataset
from ssync_lib.evaluate import check_data_root, evaluate, resolve_device, write_metrics
from ssync_lib.models import create_model
from ssync_lib.objectives import build_objective

LAST = "last.pt"


class NonFiniteLossError(RuntimeError):
    """A loss term (or the gradient norm) became NaN or infinite."""


@dataclass
class TrainResult:
    run_dir: Path
    model: nn.Module
    objective: nn.Module
    history: pd.DataFrame  # the rows of log.csv
    metrics: dict = field(default_factory=dict)  # final evaluation (see evaluate()), empty on ranks > 0


# ----------------------------------------------------------------------------- lr schedule (§1.8)

class WarmupExpDecay:
    """lr factor: linear warm-up ``step / warmup`` for ``step < warmup``, then
    ``0.5 ** ((step - warmup) / (max_steps - warmup))`` (§1.8). ``step`` is the global step (0-based)
    of the update the lr is used for; like the public code the first update (step 0) has lr 0.

    A class with plain attributes (not a lambda) so that ``LambdaLR.state_dict`` stays
    weights_only-loadable."""

    def __init__(self, warmup_steps: int, max_steps: int):
        self.warmup_steps, self.max_steps = warmup_steps, max_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps  # §1.8 linear warm-up
        decay_steps = max(self.max_steps - self.warmup_steps, 1)
        return 0.5 ** ((step - self.warmup_steps) / decay_steps)  # §1.8 exponential decay


def build_optimizer(model: nn.Module, objective: nn.Module, tcfg: TrainConfig) -> torch.optim.Adam:
    """Adam over the trainable parameters: group 0 the model's, group 1 the objective's (possibly
    empty). The groups keep the model's state separable when branching to another objective."""
    groups = [{"params": [p for p in m.parameters() if p.requires_grad]} for m in (model, objective)]
    return torch.optim.Adam(groups, lr=tcfg.lr)


def build_scheduler(optimizer: torch.optim.Optimizer, tcfg: TrainConfig,
                    step: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR positioned so that the next update (global step ``step``) uses ``lr * factor(step)``."""
    for group in optimizer.param_groups:
        group["initial_lr"] = tcfg.lr
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupExpDecay(tcfg.warmup_steps, tcfg.max_steps),
                                             last_epoch=step - 1)


# ----------------------------------------------------------------------------- data order

def epoch_permutation(num_items: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the training set in ``epoch``: a pure function of (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 2**32 + epoch)
    return torch.randperm(num_items, generator=gen)


def rank_batches(num_items: int, seed: int, epoch: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> list[list[int]]:
    """Dataset indices of every batch of ``epoch`` that ``rank`` processes: global batches of
    ``batch_size * world_size`` items (last partial one dropped), rank ``r`` taking the ``r``-th
    slice, so that the union over ranks of batch ``b`` is batch ``b`` of a 1-process run with
    ``batch_size * world_size``."""
    global_batch = batch_size * world_size
    order = epoch_permutation(num_items, seed, epoch).tolist()
    return [order[b * global_batch + rank * batch_size: b * global_batch + (rank + 1) * batch_size]
            for b in range(num_items // global_batch)]


def epoch_loader(dataset, tcfg: TrainConfig, num_workers: int, epoch: int, first_batch: int, rank: int,
                 world_size: int, pin_memory: bool) -> torch.utils.data.DataLoader:
    """DataLoader over batches ``first_batch, ...`` of ``epoch`` for ``rank``. Its own seeded
    generator keeps the global torch RNG untouched (bit-exact resume)."""
    dataset.set_epoch(epoch)
    batches = rank_batches(len(dataset), tcfg.seed, epoch, tcfg.batch_size, rank, world_size)[first_batch:]
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers,
                                       pin_memory=pin_memory,
                                       generator=torch.Generator().manual_seed(tcfg.seed * 2**32 + epoch))


# ----------------------------------------------------------------------------- processes and devices

@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created_group: bool = False  # this call initialised the process group (and destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group (gloo on CPU, nccl on CUDA); one process = no group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    info = DistInfo(rank=int(os.environ["RANK"]), world_size=world_size,
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        info.created_group = True
    return info


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# ----------------------------------------------------------------------------- logging

class CsvLog:
    """Rows of scalars in a CSV file, flushed on every row; the header grows when a new key appears.
    Floats are written with ``repr`` and read back exactly."""

    def __init__(self, path: Path, enabled: bool = True, keep_upto_step: int | None = None):
        self.path, self.enabled, self.rows = path, enabled, []
        if enabled and keep_upto_step is not None and path.exists():
            with open(path, newline="") as f:
                self.rows = [{k: _number(v) for k, v in row.items() if v != ""}
                             for row in csv.DictReader(f) if int(row["step"]) <= keep_upto_step]
        self.fields: list[str] = []
        if enabled:
            self._rewrite()

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))
        if not self.enabled:
            return
        if any(k not in self.fields for k in row):
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields, lineterminator="\n").writerow(row)

    def _rewrite(self) -> None:
        self.fields = list(dict.fromkeys(k for row in self.rows for k in row))
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


class RunningMeans:
    """Per-key means of the values added since the last ``pop``; its state (plain floats) goes into
    the checkpoint so that a resumed run logs the same means."""

    def __init__(self, state: Mapping[str, Any] | None = None):
        self.count, self.sums = (state["count"], dict(state["sums"])) if state else (0, {})

    def add(self, values: Mapping[str, float]) -> None:
        self.count += 1
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def pop(self) -> dict[str, float]:
        means = {k: v / self.count for k, v in self.sums.items()}
        self.count, self.sums = 0, {}
        return means

    def state_dict(self) -> dict:
        return {"count": self.count, "sums": dict(self.sums)}


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _tensorboard(run_dir: Path, purge_step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)


# ----------------------------------------------------------------------------- the loop

class TrainStep(nn.Module):
    """Model and objective as one module, so that DDP averages the gradients of both."""

    def __init__(self, model: nn.Module, objective: nn.Module):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, video: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.objective(self.model(video), step)
        return loss.total, dict(loss.terms)


def train(cfg: Config, resume: bool | str = False, progress: bool = True,
          init_from: str | Path | None = None) -> TrainResult:
    """Train ``cfg`` in ``<run_root>/<run_name>``, evaluate at the end, return the run.

    resume: True continues from ``last.pt`` (error if there is none); "auto" continues when it
        exists and starts fresh otherwise; False starts fresh (error if the folder holds a checkpoint).
    init_from: a checkpoint to start from (overrides ``cfg.train.init_from``); see the module
        docstring for ``train.init_mode``.
    """
    cfg = copy.deepcopy(cfg)
    if init_from is not None:
        cfg.train.init_from = str(init_from)
    tcfg = cfg.train
    device = resolve_device(tcfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    check_data_root(cfg)
    run_dir = resolve_path(tcfg.run_root) / cfg.run_name
    ckpt_path = run_dir / LAST
    resume = _resolve_resume(resume, ckpt_path)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    info = init_distributed(device)
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    try:
        if tcfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        return _train(cfg, info, device, run_dir, ckpt_path, resume, progress)
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
        if info.created_group:
            dist.destroy_process_group()


def _resolve_resume(resume: bool | str, ckpt_path: Path) -> bool:
    if resume == "auto":
        return ckpt_path.exists()
    if resume and not ckpt_path.exists():
        raise FileNotFoundError(f"cannot resume: {ckpt_path} does not exist")
    if not resume and ckpt_path.exists():
        raise FileExistsError(f"{ckpt_path.parent} already holds a checkpoint: resume it (--resume, "
                              f"resume=True or 'auto'), choose another train.name, or delete the folder")
    return bool(resume)


def _train(cfg: Config, info: DistInfo, device: torch.device, run_dir: Path, ckpt_path: Path, resume: bool,
           progress: bool) -> TrainResult:
    tcfg = cfg.train
    seed_everything(tcfg.seed)
    train_set = build_dataset(cfg, "train")
    global_batch = tcfg.batch_size * info.world_size
    steps_per_epoch = len(train_set) // global_batch
    if steps_per_epoch == 0:
        raise ValueError(f"the training set ({len(train_set)} items in {resolve_path(cfg.data.root)}) is "
                         f"smaller than one global batch (train.batch_size={tcfg.batch_size} x {info.world_size} "
                         f"processes)")
    model = create_model(cfg.model, input_size=cfg.data.input_size).to(device)
    objective = build_objective(cfg.objective, model.feature_dim, cfg.model.slot_dim, tcfg.max_steps).to(device)
    optimizer = build_optimizer(model, objective, tcfg)
    seed_everything(tcfg.seed + 1_000_003 * (info.rank + 1))  # per-rank stream for the slot-init noise

    start = {"step": 0, "scheduler": None, "log_accum": None}
    if resume:
        start = _restore(load_checkpoint(ckpt_path), cfg, ckpt_path, model, objective, optimizer, info, full=True)
        remove_stale_tmp(run_dir)
    elif tcfg.init_from:
        if tcfg.init_mode not in ("full", "model"):
            raise ValueError(f"train.init_mode='{tcfg.init_mode}': expected 'full' or 'model'")
        src = resolve_path(tcfg.init_from)
        start = _restore(load_checkpoint(src), cfg, src, model, objective, optimizer, info,
                         full=tcfg.init_mode == "full", branch=True)
    step = start["step"]
    scheduler = build_scheduler(optimizer, tcfg, step)
    if start["scheduler"] is not None:
        scheduler.load_state_dict(start["scheduler"])

    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(cfg.to_json())
    log = CsvLog(run_dir / "log.csv", info.is_main, keep_upto_step=step if resume else None)
    # mid-run evaluations precede their checkpoint; the final one follows it and is redone on resume
    eval_log = CsvLog(run_dir / "eval.csv", info.is_main,
                      keep_upto_step=(step - (step >= tcfg.max_steps)) if resume else None)
    tb = _tensorboard(run_dir, step) if info.is_main else None
    means = RunningMeans(start["log_accum"])

    module = TrainStep(model, objective)
    if info.world_size > 1:
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                         find_unused_parameters=True)  # loss terms switch on by schedule
    use_bf16 = tcfg.amp_bf16 and device.type == "cuda"
    forward = torch.compile(module) if tcfg.compile and device.type == "cuda" else module
    if (tcfg.amp_bf16 or tcfg.compile) and device.type != "cuda":
        warnings.warn("train.amp_bf16 and train.compile apply on CUDA only; ignored on CPU")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    last_good = (ckpt_path, step) if resume else (None, None)

    bar = tqdm(total=tcfg.max_steps, initial=step, disable=not (progress and info.is_main), desc=cfg.run_name)
    tick, tick_step = time.perf_counter(), step
    model.train()
    objective.train()
    try:
        while step < tcfg.max_steps:
            epoch, first_batch = divmod(step, steps_per_epoch)
            loader = epoch_loader(train_set, tcfg, cfg.data.num_workers, epoch, first_batch, info.rank,
                                  info.world_size, pin_memory=device.type == "cuda")
            for batch in loader:
                video = batch["video"].to(device, non_blocking=True)  # B T 3 H W
                lr = optimizer.param_groups[0]["lr"]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    total, terms = forward(video, step)
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                grad_norm = nn.utils.clip_grad_norm_(params, tcfg.grad_clip)  # §1.8
                values = _step_values(total, terms, grad_norm, info)
                _check_finite(values, step, last_good)
                optimizer.step()
                scheduler.step()
                step += 1
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
                means.add(values)
                if step % tcfg.log_every == 0 or step == tcfg.max_steps:
                    now = time.perf_counter()
                    row = {"step": step, "epoch": epoch, "lr": lr, **means.pop(),
                           "sec_per_step": (now - tick) / max(step - tick_step, 1)}
                    log.append(row)
                    _tb_write(tb, "train", row, step)
                    tick, tick_step = now, step
                if tcfg.eval_every and step % tcfg.eval_every == 0 and step < tcfg.max_steps:
                    _evaluate_into(model, cfg, info, eval_log, tb, step, progress)
                if step % tcfg.ckpt_every == 0 or step == tcfg.max_steps:
                    _save(ckpt_path, model, objective, optimizer, scheduler, step, steps_per_epoch, cfg, info,
                          means)
                    last_good = (ckpt_path, step)
                if step >= tcfg.max_steps:
                    break
        bar.close()
        metrics = _evaluate_into(model, cfg, info, eval_log, tb, step, progress)
        if info.is_main:
            write_metrics(run_dir / "metrics.json", metrics, step=step, cfg=cfg, checkpoint=ckpt_path)
    finally:
        bar.close()
        if tb is not None:
            tb.close()
    return TrainResult(run_dir=run_dir, model=model, objective=objective, history=log.frame(), metrics=metrics)


def _step_values(total: torch.Tensor, terms: Mapping[str, torch.Tensor], grad_norm: torch.Tensor,
                 info: DistInfo) -> dict[str, float]:
    """Loss, loss terms (averaged over ranks) and grad norm as floats: one host sync per step."""
    names = ["loss", *terms]
    losses = torch.stack([t.detach().float().reshape(()) for t in (total, *terms.values())])
    if info.world_size > 1:
        dist.all_reduce(losses)  # NaN on any rank propagates to all: every rank stops together
        losses = losses / info.world_size
    values = torch.cat([losses, grad_norm.detach().float().reshape(1)]).tolist()
    return dict(zip(names + ["grad_norm"], values))


def _check_finite(values: Mapping[str, float], step: int, last_good: tuple) -> None:
    """Raise NonFiniteLossError naming the step and the first non-finite loss term (or the grad norm)."""
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if not bad:
        return
    name = next((k for k in bad if k not in ("loss", "grad_norm")), bad[0])
    what = "the gradient norm" if name == "grad_norm" else f"loss term '{name}'"
    ckpt, ckpt_step = last_good
    kept = f"the last good checkpoint is {ckpt} (step {ckpt_step})" if ckpt else "no checkpoint was written yet"
    raise NonFiniteLossError(f"step {step}: {what} is {values[name]} (all values: {dict(values)}); training "
                             f"stopped before the update, {kept}")


def _save(path: Path, model, objective, optimizer, scheduler, step: int, steps_per_epoch: int, cfg: Config,
          info: DistInfo, means: RunningMeans) -> None:
    """Checkpoint from rank 0, with every rank's RNG states (gathered)."""
    rngs = [rng_state()]  # CPU tensors and plain values
    if info.world_size > 1:
        own, rngs = rngs[0], [None] * info.world_size
        dist.all_gather_object(rngs, own)
    if not info.is_main:
        return
    epoch, batch = divmod(step, steps_per_epoch)
    save_checkpoint(path, {
        "format": 1, "step": step, "epoch": epoch, "batch_in_epoch": batch, "world_size": info.world_size,
        "model": model.state_dict(), "objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rng": rngs, "log_accum": means.state_dict(), "config": cfg.to_dict(),
    })
    if cfg.train.keep_every and step % cfg.train.keep_every == 0:
        keep_copy(path, path.with_name(f"step-{step:07d}.pt"))


def keep_copy(src: Path, dst: Path) -> None:
    """Atomically give ``dst`` the content of ``src`` (a hard link where possible)."""
    tmp = dst.with_name(f".tmp-{dst.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        save_checkpoint(dst, torch.load(src, map_location="cpu", weights_only=True))
        return
    os.replace(tmp, dst)


def _restore(state: dict, cfg: Config, path: Path, model, objective, optimizer, info: DistInfo, full: bool,
             branch: bool = False) -> dict:
    """Load ``state`` into the modules. ``full``: also optimiser, step and RNG states; ``branch``:
    a checkpoint of another run whose objective may differ (only the model's Adam state is kept)."""
    saved_cfg, current = state["config"], cfg.to_dict()
    load_module_state(model, state["model"], what="model", path=path, saved_config=saved_cfg, config=current)
    if not full:
        return {"step": 0, "scheduler": None, "log_accum": None}
    if branch:
        optimizer.load_state_dict(_model_optimizer_state(state["optimizer"], optimizer))
    else:
        diffs = config_differences(saved_cfg, current)
        if diffs and info.is_main:
            warnings.warn(f"resuming {path} with a config that differs (checkpoint -> current): {diffs}")
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
        raise ValueError(f"the checkpoint's optimiser has {len(model_ids)} model parameters, this model "
                         f"{len(own['param_groups'][0]['params'])}")
    objective_group = dict(own["param_groups"][1], params=[len(model_ids) + i for i in
                                                           range(len(own["param_groups"][1]["params"]))])
    return {"state": {i: saved["state"][pid] for i, pid in enumerate(model_ids) if pid in saved["state"]},
            "param_groups": [dict(saved["param_groups"][0], params=list(range(len(model_ids)))), objective_group]}


def _evaluate_into(model, cfg: Config, info: DistInfo, eval_log: CsvLog, tb, step: int, progress: bool) -> dict:
    """Evaluate on rank 0 (the others wait), record the flat metrics in eval.csv and TensorBoard."""
    metrics = {}
    if info.is_main:
        metrics = evaluate(model, cfg, "val", max_videos=cfg.data.max_val_videos or None, progress=progress)
        eval_log.append({"step": step, **metrics})
        _tb_write(tb, "val", metrics, step)
    if info.world_size > 1:
        dist.barrier()
    return metrics


def _tb_write(tb, prefix: str, row: Mapping[str, Any], step: int) -> None:
    if tb is None:
        return
    for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)):
            tb.add_scalar(f"{prefix}/{k}", v, step)
