"""The one training loop, for the CLI and the notebooks alike.

    result = train(get_config("cpu", {"objective.name": "ssync"}))
    result.history  # pandas DataFrame of the logged rows;  result.metrics  # final evaluation

Run folder ``<train.run_root>/<cfg.run_name>/``: ``config.json`` (the resolved config), ``log.csv``
(every ``log_every`` steps: step, epoch, each loss term, lr, grad norm, seconds per step),
``eval.csv`` (one row per evaluation), ``metrics.json`` (the final evaluation), ``last.pt`` (the
checkpoint, see ``checkpoint/``), ``step-<N>.pt`` (every ``keep_every`` steps, if set) and
TensorBoard event files when ``tensorboard`` is installed.

Where the parts live: the data order in ``data/order.py`` (a pure function of seed, epoch and rank:
resuming needs only the step; which chunk of each video, ``dataset.set_epoch``, depends on
``(seed, epoch, index)`` only), the optimiser and lr schedule in ``optim.py``, the logs in
``run_log.py``, saving, resuming and branching in ``checkpoint/``, devices, processes and seeds in
``runtime.py``. This file is the loop.

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
import errno
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ssync_lib.checkpoint import (LAST, SHIPPED_DIR, check_config_change, load_checkpoint, remove_stale_tmp,
                                  restore_training_state, save_training_state)
from ssync_lib.config import Config, project_root, resolve_path
from ssync_lib.config_checks import validate
from ssync_lib.data import build_dataset, check_data_root
from ssync_lib.data.order import training_batches
from ssync_lib.errors import (ConfigError, Interrupted, MissingInputError, NonFiniteLossError, RunExistsError,
                              RunFolderError)
from ssync_lib.evaluate import evaluate
from ssync_lib.models import create_model
from ssync_lib.objectives import build_objective
from ssync_lib.optim import build_optimizer, build_scheduler
from ssync_lib.run_lock import check_writable, writer_lock
from ssync_lib.run_log import CsvLog, RunningMeans, tensorboard_write, tensorboard_writer, write_metrics
from ssync_lib.runtime import DistInfo, resolve_device, run_process, seed_everything

__all__ = ["train", "TrainResult", "NonFiniteLossError", "LAST"]


@dataclass
class TrainResult:
    run_dir: Path
    model: nn.Module
    objective: nn.Module
    history: pd.DataFrame  # the rows of log.csv
    metrics: dict = field(default_factory=dict)  # final evaluation (see evaluate()), empty on ranks > 0


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
          init_from: str | Path | None = None, allow_config_change: bool = False) -> TrainResult:
    """Train ``cfg`` in ``<run_root>/<run_name>``, evaluate at the end, return the run.

    resume: True continues from ``last.pt`` (error if there is none); "auto" continues when it
        exists and starts fresh otherwise; False starts fresh (error if the folder holds a checkpoint).
    init_from: a checkpoint to start from (overrides ``cfg.train.init_from``); see the module
        docstring for ``train.init_mode``.
    allow_config_change: resume or branch even when the config changes the model, the objective, the
        data or the schedule (``checkpoint.check_config_change``; otherwise refused before anything is
        written).
    """
    cfg = validate(copy.deepcopy(cfg))
    if init_from is not None:
        cfg.train.init_from = str(init_from)
    tcfg = cfg.train
    device = resolve_device(tcfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    run_dir = resolve_path(tcfg.run_root) / cfg.run_name
    ckpt_path = run_dir / LAST
    if run_dir.resolve().is_relative_to((project_root() / SHIPPED_DIR).resolve()):
        raise ConfigError(f"run folder {run_dir} is inside {SHIPPED_DIR}/ (the shipped models and their metrics, read "
                          f"by the notebooks): training never writes there",
                          fix=f"copy the run first (cp -r {run_dir} runs/) and resume the copy (train.run_root=runs), "
                              f"or branch from it: --init-from {ckpt_path} --name NEW")
    check_data_root(cfg)
    lock = writer_lock(run_dir)  # rank 0 writes
    if lock is not None:
        lock.acquire()  # one writer per run folder: a second train / resume is refused here
    try:
        resume = _resolve_resume(resume, ckpt_path)
        state = _start_state(cfg, resume, ckpt_path, allow_config_change)  # before anything is written
        if lock is not None:
            remove_stale_tmp(run_dir)  # left by a save that was killed; no other writer holds the folder
        with run_process(device, tcfg.deterministic) as info:
            return _train(cfg, info, device, run_dir, ckpt_path, resume, state, progress)
    finally:
        if lock is not None:
            lock.release()


def _resolve_resume(resume: bool | str, ckpt_path: Path) -> bool:
    if resume == "auto":
        return ckpt_path.exists()
    if resume and not ckpt_path.exists():
        raise MissingInputError(f"cannot resume: {ckpt_path} does not exist",
                                fix="check --name / --profile / --objective (they make the run folder's name), "
                                    "or start the run without --resume")
    if not resume and ckpt_path.exists():
        raise RunExistsError(f"{ckpt_path.parent} already holds a checkpoint")
    return bool(resume)


def _start_state(cfg: Config, resume: bool, ckpt_path: Path, allow_config_change: bool) -> dict | None:
    """The checkpoint a run continues from (resume) or branches from (``train.init_from``), its config
    compared with ``cfg`` first (``check_config_change``); None for a fresh start. On resume, a branched
    run keeps the ``init_from`` it was branched from (provenance) unless another one is given."""
    tcfg = cfg.train
    if resume:
        state = load_checkpoint(ckpt_path)
        check_config_change(state["config"], cfg, ckpt_path, allow=allow_config_change)
        saved = state["config"].get("train", {})
        if not tcfg.init_from and saved.get("init_from"):
            tcfg.init_from, tcfg.init_mode = saved["init_from"], saved.get("init_mode", tcfg.init_mode)
        return state
    if tcfg.init_from:
        src = resolve_path(tcfg.init_from)
        state = load_checkpoint(src)
        check_config_change(state["config"], cfg, src, branch=True, weights_only=tcfg.init_mode == "model",
                            allow=allow_config_change)
        return state
    return None


def _train(cfg: Config, info: DistInfo, device: torch.device, run_dir: Path, ckpt_path: Path, resume: bool,
           state: dict | None, progress: bool) -> TrainResult:
    tcfg = cfg.train
    seed_everything(tcfg.seed)
    train_set = build_dataset(cfg, "train")
    global_batch = tcfg.batch_size * info.world_size
    steps_per_epoch = len(train_set) // global_batch
    if steps_per_epoch == 0:
        raise ConfigError(f"the training set ({len(train_set)} items in {resolve_path(cfg.data.root)}) is "
                         f"smaller than one global batch (train.batch_size={tcfg.batch_size} x {info.world_size} "
                         f"processes)")
    model = create_model(cfg.model, input_size=cfg.data.input_size).to(device)
    objective = build_objective(cfg.objective, model.feature_dim, cfg.model.slot_dim, tcfg.max_steps).to(device)
    optimizer = build_optimizer(model, objective, tcfg)
    seed_everything(tcfg.seed + 1_000_003 * (info.rank + 1))  # per-rank stream for the slot-init noise

    start = {"step": 0, "scheduler": None, "log_accum": None}
    if resume:
        start = restore_training_state(state, cfg, ckpt_path, model, objective, optimizer, info, full=True)
    elif state is not None:
        start = restore_training_state(state, cfg, resolve_path(tcfg.init_from), model, objective, optimizer, info,
                                       full=tcfg.init_mode == "full", branch=True)
    del state  # the weights are in the modules now
    if info.is_main:  # a checkpoint (weights and two Adam moments) must fit beside the last one, checked up front
        size = sum(p.numel() * p.element_size() for p in (*model.parameters(), *objective.parameters()))
        check_writable(ckpt_path, need_bytes=3 * size + (1 << 20), elsewhere="another train.run_root")
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
    tb = tensorboard_writer(run_dir, step) if info.is_main else None
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
    batches = training_batches(train_set, tcfg, cfg.data.num_workers, step, steps_per_epoch, info.rank,
                               info.world_size, pin_memory=device.type == "cuda")
    try:
        for epoch, batch in (batches if step < tcfg.max_steps else ()):
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
                tensorboard_write(tb, "train", row, step)
                tick, tick_step = now, step
            if tcfg.eval_every and step % tcfg.eval_every == 0 and step < tcfg.max_steps:
                _evaluate_into(model, cfg, info, eval_log, tb, step, progress)
            if step % tcfg.ckpt_every == 0 or step == tcfg.max_steps:
                save_training_state(ckpt_path, model, objective, optimizer, scheduler, step, steps_per_epoch,
                                    cfg, info, means.state_dict())
                last_good = (ckpt_path, step)
            if step >= tcfg.max_steps:
                break
        bar.close()
        metrics = _evaluate_into(model, cfg, info, eval_log, tb, step, progress)
        if info.is_main:
            write_metrics(run_dir / "metrics.json", metrics, step=step, cfg=cfg, checkpoint=ckpt_path)
    except KeyboardInterrupt:
        raise interrupted(step, tcfg.max_steps, run_dir, last_good) from None
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        raise RunFolderError(f"step {step}: cannot write in {run_dir} ({type(err).__name__}: {err.strerror}); "
                             f"{_kept(last_good)}",
                             fix="free some space (or make the folder writable), then continue with the same command "
                                 "and --resume" if last_good[0] else "free some space (or make the folder "
                                 "writable), then start it again") from None
    finally:
        batches.close()
        bar.close()
        if tb is not None:
            tb.close()
    return TrainResult(run_dir=run_dir, model=model, objective=objective, history=log.frame(), metrics=metrics)


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)  # a full or read-only disk


def interrupted(step: int, max_steps: int, run_dir: Path, last_good: tuple) -> Interrupted:
    """Ctrl-C in a training loop (``train``, ``pretrain``) at ``step``: where the last checkpoint is, and how to go on
    (``__main__.interrupted_message`` turns the fix into the exact command)."""
    return Interrupted(f"interrupted at step {step} of {max_steps} in {run_dir}: {_kept(last_good)}",
                       fix="continue with the same command and --resume" if last_good[0] else
                       "start it again with the same command")


def _kept(last_good: tuple) -> str:
    ckpt, ckpt_step = last_good
    return (f"the last checkpoint is {ckpt} (step {ckpt_step}), written whole (atomic save)" if ckpt else
            "no checkpoint was written yet")


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


def _evaluate_into(model, cfg: Config, info: DistInfo, eval_log: CsvLog, tb, step: int, progress: bool) -> dict:
    """Evaluate on rank 0 (the others wait), record the flat metrics in eval.csv and TensorBoard."""
    metrics = {}
    if info.is_main:
        metrics = evaluate(model, cfg, "val", max_videos=cfg.data.max_val_videos or None, progress=progress)
        eval_log.append({"step": step, **metrics})
        tensorboard_write(tb, "val", metrics, step)
    if info.world_size > 1:
        dist.barrier()
    return metrics
