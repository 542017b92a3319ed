"""The pretraining loop: DINO + iBOT on the clips of one or several data folders, checkpointed like ``train``.

    result = pretrain(get_pretrain_config("cpu", ["dino.mix=data/synth-easy,data/movi-mini"]))
    export_weights(result.run_dir)   # vit.safetensors + encoder.json, read by models.FrozenViT

Run folder ``<train.run_root>/<run_name>/``: ``config.json``, ``log.csv`` (every ``log_every`` steps: losses,
teacher entropy, batch mutual information, KL, lr, momentum, grad norm, seconds per step; TensorBoard events
beside it when installed), ``last.pt`` (atomic, see ``checkpoint/files.py``; resumed bit-exactly with ``resume=True``),
``step-<N>.pt`` every ``keep_every`` steps, and at the end ``vit.safetensors`` (the teacher's ViT: DINO
evaluates the teacher) with ``vit.json`` (the ``model.*`` settings that read it).

As in ``train``, one process writes a run folder (``run_lock.py``: a second ``pretrain`` of the same folder is
refused with the holder's PID), and Ctrl-C in the loop stops with ``errors.Interrupted``: where the last checkpoint
is; the command line prints the exact ``--resume`` command.

The data order is the training loop's (``data/order.py``: a pure function of seed, epoch and rank) over the
concatenated folders of ``dino.mix``; the views are a pure function of (seed, step, clip index) (``views.py``).
A resumed run therefore needs only the step and the weights. Under ``torchrun`` the student is wrapped in DDP;
the centres and the monitors are averaged over processes; logs and checkpoints come from rank 0.

A teacher whose batch mutual information (``dino.py``) stays under ``dino.collapse_mi`` in both heads (CLS and patch)
for ``dino.collapse_patience`` log rows after ``dino.collapse_from_frac`` of the run has collapsed: the run stops
with ``TrainingCollapseError``.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ssync_lib.checkpoint import (FORMAT, FREE_KEYS, ConfigChangeError, config_differences, keep_copy,
                                  load_checkpoint, load_module_state, remove_stale_tmp, rng_state, save_checkpoint,
                                  set_rng_state)
from ssync_lib.config import Config, project_root, resolve_path
from ssync_lib.data import build_dataset, check_data_root
from ssync_lib.data.order import training_batches
from ssync_lib.errors import CheckpointError, ConfigError, TrainingCollapseError
from ssync_lib.pretrain.config import PretrainConfig
from ssync_lib.pretrain.dino import DinoLoss, DinoViT, cosine, ema_update, lr_at, make_teacher
from ssync_lib.pretrain.views import make_views
from ssync_lib.run_lock import writer_lock
from ssync_lib.run_log import CsvLog, RunningMeans, tensorboard_write, tensorboard_writer
from ssync_lib.runtime import DistInfo, resolve_device, run_process, seed_everything
from ssync_lib.train import LAST, _check_finite, _kept, _resolve_resume, interrupted

KIND = "pretrain"  # checkpoint["kind"]: a slot-model checkpoint is refused here and vice versa
WEIGHTS = "vit.safetensors"  # and vit.json beside it


@dataclass
class PretrainResult:
    run_dir: Path
    student: nn.Module
    teacher: nn.Module
    history: pd.DataFrame  # the rows of log.csv


# ----------------------------------------------------------------------------- data

class MixDataset(torch.utils.data.Dataset):
    """The training clips of several folders, one after the other; items carry their index (for the views)."""

    def __init__(self, parts: list):
        self.parts = parts
        self.offsets = [0]
        for p in parts:
            self.offsets.append(self.offsets[-1] + len(p))

    def __len__(self) -> int:
        return self.offsets[-1]

    def set_epoch(self, epoch: int) -> None:
        for p in self.parts:
            p.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        part = next(i for i in range(len(self.parts)) if index < self.offsets[i + 1])
        item = self.parts[part][index - self.offsets[part]]
        return {"video": item["video"], "index": index}


def mix_entries(cfg: PretrainConfig) -> list[tuple[str, str]]:
    """(source, folder) of every folder of ``dino.mix`` (``data.root`` when empty)."""
    entries = [e.strip() for e in cfg.dino.mix.split(",") if e.strip()] or [cfg.data.root]
    out = []
    for e in entries:
        source, _, folder = e.rpartition(":") if e.split(":", 1)[0] in ("synthetic", "movi", "ytvis", "davis") \
            else ("", "", e)
        out.append((source or ("movi" if cfg.data.source == "synthetic" else cfg.data.source), folder))
    return out


def level_config(cfg: PretrainConfig, source: str, folder: str) -> Config:
    """The project Config that reads one folder (synthetic levels are MOVi-layout shards: the movi reader)."""
    return Config(profile=cfg.profile, data=replace(cfg.data, source=source, root=folder), train=cfg.train)


def build_mix(cfg: PretrainConfig, split: str = "train") -> MixDataset:
    parts = []
    for source, folder in mix_entries(cfg):
        lcfg = level_config(cfg, source, folder)
        check_data_root(lcfg)
        parts.append(build_dataset(lcfg, split))
    return MixDataset(parts)


# ----------------------------------------------------------------------------- the loop

class _Student(nn.Module):
    """The student as the module DDP wraps."""

    def __init__(self, model: DinoViT):
        super().__init__()
        self.model = model

    def forward(self, globals_, locals_, masks):
        return self.model(globals_, locals_, masks)


def check_pretrain_config(cfg: PretrainConfig) -> None:
    """Refuse settings that cannot run, before anything is built."""
    p, s = cfg.patch_size, cfg.data.input_size
    if s % p or cfg.dino.local_size % p:
        raise ConfigError(f"data.input_size={s} and dino.local_size={cfg.dino.local_size} must be multiples of the "
                          f"ViT's patch size {p} (vit.backbone_kwargs.patch_size)")
    if cfg.dino.temporal and cfg.data.chunk_len < 2:
        raise ConfigError(f"dino.temporal needs clips of 2 or more frames; data.chunk_len is {cfg.data.chunk_len}",
                          fix="--set data.chunk_len=3, or dino.temporal=false")
    if not 0 <= cfg.dino.mask_ratio_min <= cfg.dino.mask_ratio_max < 1:
        raise ConfigError("dino.mask_ratio_min <= dino.mask_ratio_max < 1 is required")


def pretrain(cfg: PretrainConfig, resume: bool | str = False, progress: bool = True,
             allow_config_change: bool = False) -> PretrainResult:
    """Pretrain ``cfg`` in ``<run_root>/<run_name>`` (``resume`` as in ``train.train``), export the weights."""
    cfg = copy.deepcopy(cfg)
    check_pretrain_config(cfg)
    tcfg = cfg.train
    device = resolve_device(tcfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    run_dir = resolve_path(tcfg.run_root) / cfg.run_name
    ckpt_path = run_dir / LAST
    lock = writer_lock(run_dir)  # rank 0 writes
    if lock is not None:
        lock.acquire()  # one writer per run folder, as in train: a second pretrain / resume is refused here
    try:
        resume = _resolve_resume(resume, ckpt_path)
        state = None
        if resume:
            state = load_pretrain_checkpoint(ckpt_path)
            check_pretrain_change(state["config"], cfg, ckpt_path, allow_config_change)
        with run_process(device, tcfg.deterministic) as info:
            return _pretrain(cfg, info, device, run_dir, ckpt_path, state, progress)
    finally:
        if lock is not None:
            lock.release()


def _pretrain(cfg: PretrainConfig, info: DistInfo, device, run_dir: Path, ckpt_path: Path, state, progress: bool):
    tcfg, dcfg = cfg.train, cfg.dino
    seed_everything(tcfg.seed)
    data = build_mix(cfg)
    steps_per_epoch = len(data) // (tcfg.batch_size * info.world_size)
    if steps_per_epoch == 0:
        raise ConfigError(f"pretrain: {len(data)} training clips are fewer than one global batch "
                          f"(train.batch_size={tcfg.batch_size} x {info.world_size} processes)")
    student = DinoViT(cfg.vit, cfg.data.input_size, dcfg).to(device)
    teacher = make_teacher(student)
    loss_fn = DinoLoss(dcfg).to(device)
    decay = [p for n, p in student.named_parameters() if p.requires_grad and p.ndim > 1 and "token" not in n
             and "pos_embed" not in n]
    no_decay = [p for n, p in student.named_parameters() if p.requires_grad and not (p.ndim > 1 and "token" not in n
                                                                                    and "pos_embed" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=tcfg.lr)
    step, log_accum = 0, None
    if state is not None:
        load_module_state(student, state["student"], what="student", path=ckpt_path)
        load_module_state(teacher, state["teacher"], what="teacher", path=ckpt_path)
        load_module_state(loss_fn, state["loss"], what="loss centres", path=ckpt_path)
        optimizer.load_state_dict(state["optimizer"])
        if len(state["rng"]) == info.world_size:
            set_rng_state(state["rng"][info.rank])
        step, log_accum = state["step"], state["log_accum"]
        remove_stale_tmp(run_dir)
    del state

    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(cfg.to_json())
    log = CsvLog(run_dir / "log.csv", info.is_main, keep_upto_step=step if step else None)
    tb = tensorboard_writer(run_dir, step) if info.is_main else None
    means = RunningMeans(log_accum)
    module = _Student(student)
    if info.world_size > 1:
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    use_bf16 = tcfg.amp_bf16 and device.type == "cuda"
    params = [p for p in student.parameters() if p.requires_grad]
    last_layers = [p for n, p in student.named_parameters() if "last_layer" in n]
    last_good = (ckpt_path, step) if step else (None, None)
    low_mi_rows = _low_mi_rows(log.rows, cfg)

    bar = tqdm(total=tcfg.max_steps, initial=step, disable=not (progress and info.is_main), desc=cfg.run_name)
    tick, tick_step = time.perf_counter(), step
    student.train()
    teacher.train()
    batches = training_batches(data, tcfg, cfg.data.num_workers, step, steps_per_epoch, info.rank, info.world_size,
                               pin_memory=device.type == "cuda")
    try:
        for epoch, batch in (batches if step < tcfg.max_steps else ()):
            views = make_views(batch["video"], batch["index"].tolist(), step, tcfg.seed, dcfg, cfg.patch_size)
            g, loc, masks = (x.to(device, non_blocking=True) for x in (views.globals_, views.locals_,
                                                                      views.masks))
            lr = lr_at(step, tcfg, dcfg)
            wd = cosine(step, tcfg.max_steps, dcfg.weight_decay, dcfg.weight_decay_end)
            for i, group in enumerate(optimizer.param_groups):
                group["lr"] = lr
                if i == 0:
                    group["weight_decay"] = wd
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                with torch.no_grad():
                    t_cls, t_patch = teacher(g, None, masks, student=False)
                s_cls, s_patch = module(g, loc, masks)
            out = loss_fn(s_cls, s_patch, t_cls, t_patch, masks, step, tcfg.max_steps)
            optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            grad_norm = nn.utils.clip_grad_norm_(params, tcfg.grad_clip)
            if step < dcfg.freeze_last_layer_steps:
                for p in last_layers:
                    p.grad = None
            values = _values(out, grad_norm, info)
            _check_finite(values, step, last_good)
            optimizer.step()
            momentum = cosine(step, tcfg.max_steps, dcfg.momentum, 1.0)
            ema_update(teacher, student, momentum)  # DINO eq. 2
            step += 1
            bar.update(1)
            bar.set_postfix({k: f"{values[k]:.3g}" for k in ("loss", "teacher_mi", "kl")}, refresh=False)
            means.add(values)
            if step % tcfg.log_every == 0 or step == tcfg.max_steps:
                now = time.perf_counter()
                row = {"step": step, "epoch": epoch, "lr": lr, "weight_decay": wd, "momentum": momentum,
                       **means.pop(), "sec_per_step": (now - tick) / max(step - tick_step, 1)}
                log.append(row)
                tensorboard_write(tb, "pretrain", row, step)
                tick, tick_step = now, step
                low_mi_rows = low_mi_rows + 1 if _is_low_mi(row, cfg) else 0
                if low_mi_rows >= dcfg.collapse_patience:
                    raise _collapse_error(row, cfg, last_good)
            if step % tcfg.ckpt_every == 0 or step == tcfg.max_steps:
                _save(ckpt_path, student, teacher, loss_fn, optimizer, step, cfg, info, means.state_dict())
                last_good = (ckpt_path, step)
            if step >= tcfg.max_steps:
                break
        bar.close()
        if info.is_main:
            export_weights(run_dir)
    except KeyboardInterrupt:  # Ctrl-C: where the last checkpoint is and how to resume (as train)
        raise interrupted(step, tcfg.max_steps, run_dir, last_good) from None
    finally:
        batches.close()
        bar.close()
        if tb is not None:
            tb.close()
    return PretrainResult(run_dir, student, teacher, log.frame())


def _values(out, grad_norm: torch.Tensor, info: DistInfo) -> dict[str, float]:
    """Loss, terms and monitors (averaged over processes) and the grad norm as floats: one host sync per step."""
    values = torch.stack([out.total.detach().float(), *(t.detach().float() for t in out.terms.values()),
                          *(m.float().reshape(()) for m in out.monitors.values())])
    if info.world_size > 1:
        dist.all_reduce(values)  # NaN on any process reaches all: every process stops together
        values = values / info.world_size
    names = ["loss", *out.terms, *out.monitors, "grad_norm"]
    return dict(zip(names, torch.cat([values, grad_norm.detach().float().reshape(1)]).tolist()))


def _is_low_mi(row: dict, cfg: PretrainConfig) -> bool:
    """Neither head of the teacher carries information about its input (the CLS head alone going uniform while the
    patch head still separates patches is logged, not stopped: the slot model reads the patches)."""
    informative = max(row["teacher_mi"], row["teacher_mi_patch"])
    return row["step"] >= cfg.dino.collapse_from_frac * cfg.train.max_steps and informative < cfg.dino.collapse_mi


def _low_mi_rows(rows: list[dict], cfg: PretrainConfig) -> int:
    """Consecutive low-information rows at the end of a resumed log (the patience carries over)."""
    count = 0
    for row in rows:
        count = count + 1 if _is_low_mi(row, cfg) else 0
    return count


def _collapse_error(row: dict, cfg: PretrainConfig, last_good) -> TrainingCollapseError:
    d = cfg.dino
    return TrainingCollapseError(
        f"step {row['step']}: the DINO teacher has collapsed: its output no longer depends on the input (batch mutual "
        f"information {row['teacher_mi']:.4f} nats for the CLS head and {row['teacher_mi_patch']:.4f} for the patch "
        f"head, both < dino.collapse_mi={d.collapse_mi} for {d.collapse_patience} log rows; teacher entropy "
        f"{row['teacher_entropy']:.3f} of log K = {math.log(d.out_dim):.3f}, KL(teacher || student) "
        f"{row['kl']:.4f}); training stopped, {_kept(last_good)}",
        fix="start again with a lower train.lr, a higher dino.momentum, a lower dino.teacher_temp or a higher "
            "dino.centre_momentum (a collapsed run does not recover by resuming)")


# ----------------------------------------------------------------------------- checkpoints

def _save(path: Path, student, teacher, loss_fn, optimizer, step: int, cfg: PretrainConfig, info: DistInfo,
          log_accum: dict) -> None:
    rngs = [rng_state()]
    if info.world_size > 1:
        own, rngs = rngs[0], [None] * info.world_size
        dist.all_gather_object(rngs, own)
    if not info.is_main:
        return
    save_checkpoint(path, {"format": FORMAT, "kind": KIND, "step": step, "world_size": info.world_size,
                           "student": student.state_dict(), "teacher": teacher.state_dict(),
                           "loss": loss_fn.state_dict(), "optimizer": optimizer.state_dict(), "rng": rngs,
                           "log_accum": dict(log_accum), "config": cfg.to_dict()})
    if cfg.train.keep_every and step % cfg.train.keep_every == 0:
        keep_copy(path, path.with_name(f"step-{step:07d}.pt"))


def load_pretrain_checkpoint(path: str | Path) -> dict:
    state = load_checkpoint(path)
    if state.get("kind") != KIND:
        raise CheckpointError(f"{path} is a slot-model checkpoint, not one of `python -m ssync_lib pretrain`",
                              fix="give the last.pt of a pretraining run (runs/pretrain-<profile>-seed<N>/last.pt)")
    return state


def check_pretrain_change(saved: dict, cfg: PretrainConfig, path: Path, allow: bool) -> None:
    """Refuse to resume with values that change what the run computes (paths, cadence, device are free)."""
    def relevant(d):
        return {s: {k: v for k, v in d.get(s, {}).items() if k not in FREE_KEYS.get(s, ())} for s in cfg.SECTIONS}
    diffs = config_differences(relevant(saved), relevant(cfg.to_dict()))
    listing = "\n  ".join(diffs)
    if diffs and allow:
        warnings.warn(f"resume {path} with a config that differs (checkpoint -> requested, allowed by "
                      f"--allow-config-change):\n  {listing}")
    elif diffs:
        raise ConfigChangeError(f"cannot resume {path}: the requested config changes what the run computes "
                                f"(checkpoint -> requested):\n  {listing}\nnothing was written",
                                fix="drop these overrides, start a new run (--name NEW), or pass "
                                    "--allow-config-change")


def export_weights(run: str | Path, checkpoint: str | Path | None = None, out: str | Path | None = None) -> Path:
    """The teacher's ViT of ``<run>/last.pt`` (or ``checkpoint``) as a safetensors state dict that
    ``models.FrozenViT`` loads (``model.weights=<file>``), with a JSON file: the model settings that read
    it, the step and the pretraining config (``<name>.json`` beside ``<name>.safetensors``). Returns the .safetensors path."""
    from safetensors.torch import save_file

    run = resolve_path(run)
    state = load_pretrain_checkpoint(checkpoint or run / LAST)
    out = resolve_path(out) if out else run / WEIGHTS
    vit = {k[len("vit."):]: v.contiguous() for k, v in state["teacher"].items() if k.startswith("vit.")}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(vit, str(out))
    cfg = state["config"]
    inside = out.is_relative_to(project_root())  # shipped under checkpoints/: named relative to the repository
    encoder = {"model.backbone": cfg["vit"]["backbone"], "model.backbone_kwargs": cfg["vit"]["backbone_kwargs"],
               "model.weights": str(out.relative_to(project_root()) if inside else out), "model.feature_layer": "last", "data.input_size": cfg["data"]["input_size"],
               "step": state["step"], "pretrain_config": cfg}
    out.with_name(out.stem + ".json").write_text(json.dumps(encoder, indent=2))
    return out
