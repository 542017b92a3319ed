"""The GPU check's stages and what they measure: seconds per step, the data loader's waits, peak GPU memory."""
from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import time
from typing import Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from gpu.budget import attempt, require_all_ok
from gpu.settings import PROJECT_ROOT, Settings, run_config
from ssync_lib.config import Config
from ssync_lib.data.synthetic import generate
from ssync_lib.evaluate import evaluate
from ssync_lib.models import create_model
from ssync_lib.train import train

MB = 2 ** 20


# ----------------------------------------------------------------------------- measuring

def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def reset_peak(device: str) -> None:
    if is_cuda(device):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(device: str) -> float | None:
    """torch's peak GPU memory since reset_peak; None on the CPU."""
    return torch.cuda.max_memory_allocated() / MB if is_cuda(device) else None


def release(device: str) -> None:
    """Hand cached GPU memory back (the benchmarks run in other processes) and drop compiled graphs."""
    gc.collect()
    torch._dynamo.reset()
    if is_cuda(device):
        torch.cuda.empty_cache()


class LoaderWaits:
    """While active, wraps the training loop's batch source ``LOADER`` (a global of the module that defines
    ``train``): `waits[i]` is how long the loop waited for the batch of step i + 1, `peaks[i]` torch's peak GPU
    memory (MB) when it asked, i.e. over steps 1..i."""

    LOADER = "training_batches"  # data.order's batches of every step, epoch after epoch (train and pretrain share it)

    def __init__(self, device: str):
        self.device, self.waits, self.peaks = device, [], []
        self.module = sys.modules[train.__module__]

    def __enter__(self) -> "LoaderWaits":
        self.original = getattr(self.module, self.LOADER, None)
        if self.original is not None:
            setattr(self.module, self.LOADER, lambda *a, **k: self._timed(self.original(*a, **k)))
        return self

    def __exit__(self, *exc) -> None:
        if self.original is not None:
            setattr(self.module, self.LOADER, self.original)

    def _timed(self, loader):
        batches = iter(loader)
        while True:
            if is_cuda(self.device):
                self.peaks.append(torch.cuda.max_memory_allocated() / MB)
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            self.waits.append(time.perf_counter() - start)
            yield batch


def first_last(values: pd.Series) -> tuple[float, float]:
    """Means of the first and the last few values (a third of them, at most 5)."""
    k = max(1, min(5, len(values) // 3))
    return float(values.iloc[:k].mean()), float(values.iloc[-k:].mean())


def step_figures(history: pd.DataFrame, waits: LoaderWaits, warmup: int, batch: int) -> dict:
    """Timing and loss figures of a run from its log.csv rows (one per step) and its loader waits."""
    if history.empty or "sec_per_step" not in history:
        raise ValueError(f"log.csv has no per-step rows (columns {list(history.columns)})")
    timed = history[history["step"] > warmup]["sec_per_step"]
    loss_first, loss_last = first_last(history["loss"])
    recon_first, recon_last = first_last(history["recon"])
    numeric = history.select_dtypes("number").to_numpy(dtype=float)
    figures = {"steps": int(history["step"].max()), "timed_steps": len(timed),
               "first_step_s": float(history["sec_per_step"].iloc[0]), "sec_per_step": float(timed.median()),
               "sec_per_step_mean": float(timed.mean()), "clips_per_s": batch / float(timed.median()),
               "loss_first": loss_first, "loss_last": loss_last, "recon_first": recon_first,
               "recon_last": recon_last, "recon_falling": recon_last < recon_first,
               "all_finite": bool(np.isfinite(numeric).all()),
               "loss_terms": [c for c in history.columns if c not in ("step", "epoch", "lr", "sec_per_step")]}
    timed_waits = waits.waits[warmup:]
    if timed_waits:
        mean_wait = float(np.mean(timed_waits))
        figures.update(data_wait_ms=1e3 * mean_wait, data_wait_max_ms=1e3 * max(timed_waits),
                       data_wait_share=mean_wait / figures["sec_per_step_mean"])
    else:
        figures.update(data_wait_ms=None, data_wait_note=f"not measured: the loop did not call "
                                                         f"{waits.module.__name__}.{waits.LOADER}")
    if waits.peaks:
        figures["peak_gpu_train_mb"] = waits.peaks[-1]
    return figures


def train_run(s: Settings, cfg: Config, record: dict, warmup: int) -> None:
    """One ssync_lib.train.train call, its figures into `record`."""
    record.update(profile=cfg.profile, objective=cfg.objective.name, amp_bf16=cfg.train.amp_bf16,
                  compile=cfg.train.compile, batch=cfg.train.batch_size, chunk_len=cfg.data.chunk_len,
                  input_size=cfg.data.input_size, backbone=cfg.model.backbone)
    shutil.rmtree(s.work / "runs" / cfg.run_name, ignore_errors=True)  # train() refuses a folder with a checkpoint
    reset_peak(s.device)
    with LoaderWaits(s.device) as waits:
        result = train(cfg, progress=s.progress)
    record["peak_gpu_mb"] = peak_mb(s.device)  # training and the final evaluation of train_eval_videos videos
    model = result.model
    record.update(grid=list(model.grid), tokens_per_clip=cfg.data.chunk_len * model.grid[0] * model.grid[1],
                  feature_dim=model.feature_dim, num_slots=cfg.model.num_slots, slot_dim=cfg.model.slot_dim,
                  video_shape=[cfg.train.batch_size, cfg.data.chunk_len, 3, cfg.data.input_size,
                               cfg.data.input_size])
    record.update(step_figures(result.history, waits, warmup, cfg.train.batch_size))
    record["run_dir"] = str(result.run_dir)


# ----------------------------------------------------------------------------- stages

def stage_data(s: Settings, record: dict) -> None:
    """The MOVi-layout shard set (reused when its meta.json matches)."""
    record.update(root=str(s.shards), train_clips=s.train_clips, val_clips=s.val_clips, frames=s.frames,
                  resolution=s.resolution, generator="ssync_lib.data.synthetic (synth-easy)")
    if not (s.shards / "meta.json").exists():
        shutil.rmtree(s.shards, ignore_errors=True)  # an interrupted generation: the folder is the check's own
    start = time.perf_counter()
    record["reused"] = generate(s.shards, "synth-easy", 0, s.train_clips, s.val_clips, s.resolution, s.frames,
                                workers=s.data_workers, progress=s.progress)
    record["write_seconds"] = time.perf_counter() - start
    record["bytes"] = sum(p.stat().st_size for p in s.shards.rglob("*.tar"))


def train_runs(s: Settings, record: dict, jobs: list[tuple[str, str, str, int, int]], what: str) -> None:
    """Each (profile, objective, variant, steps, timing warm-up) job as one train() run within s.run_budget."""
    runs = record["runs"] = []
    for profile, objective, variant, steps, warmup in tqdm(jobs, desc=what, disable=not s.progress):
        name = f"{profile}-{objective}-{variant}"
        run = {"name": name, "variant": variant}
        runs.append(run)
        attempt(run, s.run_budget,
                lambda r: train_run(s, run_config(s, profile, objective, variant, name, steps), r, warmup))
        release(s.device)
    require_all_ok(runs, what)


def stage_train(s: Settings, record: dict) -> None:
    """Every objective in every variant, variant by variant (compiled runs last by default)."""
    train_runs(s, record, [(s.profile, objective, variant, s.steps, s.timing_warmup)
                           for variant in s.variants for objective in s.objectives], "training runs")


def stage_profiles(s: Settings, record: dict) -> None:
    train_runs(s, record, [(profile, s.profile_objective, s.profile_variant, s.profile_steps, 1)
                           for profile in s.profiles], "profile runs")


def stage_evaluate(s: Settings, record: dict) -> None:
    """One timed evaluate() of a fresh (random) model over the validation shards."""
    cfg = run_config(s, s.profile, "baseline", s.eval_variant, "evaluate", 1)
    cfg.data.max_val_videos = s.eval_videos
    model = create_model(cfg.model, input_size=cfg.data.input_size).to(s.device)
    reset_peak(s.device)
    start = time.perf_counter()
    metrics = evaluate(model, cfg, "val", max_videos=s.eval_videos, progress=s.progress)
    if is_cuda(s.device):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    videos = metrics["num_videos"]
    record.update(videos=videos, frames=videos * s.frames, input_size=cfg.data.input_size,
                  eval_batch_size=cfg.train.eval_batch_size, amp_bf16=cfg.train.amp_bf16, eval_seconds=seconds,
                  videos_per_s=videos / seconds, frames_per_s=videos * s.frames / seconds,
                  peak_gpu_mb=peak_mb(s.device),
                  metrics={k: v for k, v in metrics.items() if not k.endswith(("_valid", "_skipped"))})


def bench_stage(command: str, extra: Callable[[Settings], list[str]], figures: Callable[[dict], dict]):
    """A stage running ``python -m ssync_lib.lab.bench <command>`` in a subprocess (its output shown and kept), then
    reading every CSV it wrote into the record and `figures(tables)` from them."""

    def run(s: Settings, record: dict) -> None:
        folder = s.work / "bench" / command
        shutil.rmtree(folder, ignore_errors=True)
        argv = [sys.executable, "-m", "ssync_lib.lab.bench", command, "--device", s.device, "--repeats",
                str(s.bench_repeats), "--out", str(folder), *extra(s)]
        record["command"] = " ".join(["python", *argv[1:]])
        record["output_tail"] = output = []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                         os.environ.get("PYTHONPATH")]))}
        with subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as proc:
            try:
                for line in proc.stdout:
                    output.append(line.rstrip())
                    del output[:-40]
                    if s.progress:
                        tqdm.write(line.rstrip())
            except BaseException:
                proc.kill()  # over the budget (or interrupted): the benchmark goes too
                raise
        if proc.returncode:
            raise RuntimeError(f"{record['command']} exited with {proc.returncode}: {output[-1] if output else ''}")
        tables = {path.stem: pd.read_csv(path) for path in sorted(folder.glob("*.csv"))}
        record["tables"] = {name: df.to_dict("records") for name, df in tables.items()}
        record["figures"] = figures(tables)

    return run


def _table(tables: dict, prefix: str) -> pd.DataFrame:
    names = [n for n in tables if n.startswith(prefix)]
    if not names:
        raise KeyError(f"the benchmark wrote no table '{prefix}*.csv' (it wrote {sorted(tables)})")
    return tables[names[0]]


def step_highlights(tables: dict) -> dict:
    """SSync's and dense alignment's share of their training step, and the two measured steps."""
    df = _table(tables, "step").set_index("part")
    return {"ssync_share_pct": float(df.loc[["SSync pseudo-labels", "SSync losses"], "ssync_step_pct"].sum()),
            "dense_share_pct": float(df.loc["dense alignment", "dense_step_pct"]),
            "ssync_step_ms": float(df.loc["measured step, ssync objective", "time_ms"]),
            "dense_step_ms": float(df.loc["measured step, dense objective", "time_ms"])}


def labels_highlights(tables: dict) -> dict:
    df = _table(tables, "labels")
    return {row["shape"]: {"speedup": float(row["speedup"]), "equal": bool(row["equal"]),
                           "vectorised_ms": float(row["vectorised_ms"])} for _, row in df.iterrows()}


def alignment_highlights(tables: dict) -> dict:
    """Per method, the largest T*N measured (not extrapolated) and its peak memory."""
    df = _table(tables, "alignment")
    measured = df[~df["extrapolated"].astype(bool)]
    return {"rows": len(df), "extrapolated": int(df["extrapolated"].astype(bool).sum()),
            "largest_measured": {m: {"tokens": int(g["tokens"].max()),
                                     "peak_mb": float(g.loc[g["tokens"].idxmax(), "peak_mb"])}
                                 for m, g in measured.groupby("method")}}


def _step_args(s: Settings) -> list[str]:
    return ["--profile", s.profile, "--batch", str(s.bench_batch)] + (["--set", *s.overrides] if s.overrides else [])


def _alignment_args(s: Settings) -> list[str]:
    sizes = ["--sizes", *map(str, s.alignment_sizes)] if s.alignment_sizes else []
    return ["--batch", str(s.bench_batch), "--budget-gb", str(s.alignment_budget_gb), "--max-seconds",
            str(s.alignment_max_seconds), "--no-rss", *sizes]


STAGE_FUNCTIONS = {
    "data": stage_data,
    "train": stage_train,
    "bench_step": bench_stage("step", _step_args, step_highlights),
    "bench_labels": bench_stage("labels", lambda s: ["--batch", str(s.bench_batch)], labels_highlights),
    "bench_alignment": bench_stage("alignment", _alignment_args, alignment_highlights),
    "evaluate": stage_evaluate,
    "profiles": stage_profiles,
}
