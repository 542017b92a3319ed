"""The GPU check's report: the environment, the JSON (plain values) and the Markdown tables."""
from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import numpy as np
import torch

from gpu.stages import is_cuda
from ssync_lib.runtime import commit_hash

def environment(device: str) -> dict:
    import timm

    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "timm": timm.__version__, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "float32_matmul_precision": torch.get_float32_matmul_precision(), "commit": commit_hash()}
    if is_cuda(device):
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update(gpu=props.name, gpu_memory_gb=props.total_memory / 2 ** 30,
                   compute_capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version())
    return env


def plain(value):
    """JSON-ready: numpy scalars to Python, NaN and infinities to None, paths to strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value) if isinstance(value, Path) else value


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "x".join(map(str, value))
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    """A Markdown table of `rows` with (key, header) columns; columns no row has are left out."""
    columns = [(k, h) for k, h in columns if any(k in r for r in rows)]
    if not rows or not columns:
        return ["(nothing recorded)", ""]
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return lines + [""]


RUN_COLUMNS = [("name", "run"), ("status", "status"), ("video_shape", "video B,T,3,H,W"), ("grid", "grid"),
               ("sec_per_step", "s/step (median)"), ("clips_per_s", "clips/s"), ("first_step_s", "first step s"),
               ("data_wait_ms", "data wait ms/step"), ("data_wait_share", "wait share"),
               ("peak_gpu_train_mb", "peak GPU MB (train)"), ("peak_gpu_mb", "peak GPU MB (with eval)"),
               ("recon_first", "recon first"), ("recon_last", "recon last"), ("all_finite", "finite"),
               ("seconds", "run s"), ("error", "error")]


BENCH_SECTIONS = (  # stage, CSV name (prefix), title, columns
    ("bench_step", "step", "Step breakdown (`bench step`)",
     [("part", "part"), ("time_ms", "ms"), ("ssync_step_pct", "% of SSync step"),
      ("dense_step_pct", "% of dense step")]),
    ("bench_labels", "labels", "Pseudo-label speed (`bench labels`)",
     [("shape", "shape"), ("batch", "batch"), ("loop_ms", "loop ms"), ("vectorised_ms", "pseudo_labels ms"),
      ("speedup", "speed-up"), ("equal", "equal")]),
    ("bench_alignment", "alignment", "Alignment cost (`bench alignment`)",
     [("method", "method"), ("tokens", "T*N"), ("batch", "batch"), ("peak_mb", "peak MB"), ("time_ms", "ms"),
      ("extrapolated", "extrapolated")]),
)


def render_markdown(report: dict) -> str:
    stages, env = report["stages"], report["environment"]
    lines = [f"# GPU check ({'dry run, CPU' if report['settings']['dry_run'] else env.get('gpu', 'CPU')})", "",
             f"`{report['command']}`, started {report['started']}, {report.get('seconds', 0):.0f} s, commit "
             f"`{env.get('commit')}`, torch {env['torch']} (CUDA {env['cuda']}), float32 matmul precision "
             f"'{env['float32_matmul_precision']}'.", "", "## Stages", ""]
    lines += md_table([{"stage": k, **v} for k, v in stages.items()],
                      [("stage", "stage"), ("status", "status"), ("seconds", "seconds"), ("budget_s", "budget s"),
                       ("error", "error")])
    lines += ["## Training (`ssync_lib.train.train`)", ""]
    lines += md_table(stages.get("train", {}).get("runs", []), RUN_COLUMNS)
    for name, table, title, columns in BENCH_SECTIONS:
        record = stages.get(name, {})
        tables = record.get("tables", {})
        lines += [f"## {title}", "", f"`{record.get('command', '')}`", ""]
        figures = record.get("figures", {})
        if name == "bench_step" and "ssync_share_pct" in figures:
            lines += [f"SSync (labels + losses): {figures['ssync_share_pct']:.2f}% of the SSync step; dense "
                      f"alignment: {figures['dense_share_pct']:.1f}% of the dense step.", ""]
        lines += md_table(next((rows for key, rows in tables.items() if key.startswith(table)), []), columns)
    lines += ["## Evaluation (`ssync_lib.evaluate.evaluate`, random model)", ""]
    lines += md_table([stages.get("evaluate", {})], [("status", "status"), ("videos", "videos"), ("frames", "frames"),
                                                     ("input_size", "input px"), ("eval_seconds", "seconds"),
                                                     ("videos_per_s", "videos/s"), ("frames_per_s", "frames/s"),
                                                     ("peak_gpu_mb", "peak GPU MB"), ("error", "error")])
    lines += ["## Other profiles (a few steps each)", ""]
    lines += md_table(stages.get("profiles", {}).get("runs", []),
                      [("name", "run"), ("status", "status"), ("backbone", "backbone"),
                       ("video_shape", "video B,T,3,H,W"), ("grid", "grid"), ("feature_dim", "D"),
                       ("num_slots", "S"), ("slot_dim", "d"), ("sec_per_step", "s/step"),
                       ("peak_gpu_train_mb", "peak GPU MB (train)"), ("error", "error")])
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report = plain(report)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    (out / "gpu_check.md").write_text(render_markdown(report))
