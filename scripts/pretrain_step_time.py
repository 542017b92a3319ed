"""CPU seconds per pretraining step (forward, backward, update, EMA) of candidate ViT sizes, one thread.

    OMP_NUM_THREADS=1 python scripts/pretrain_step_time.py --out results/pretrain/step_time.csv

The cpu recipe's batch (32 clips: 64 global crops at 64 px, 128 local at 32 px, patch 4) on random clips; the
mean of ``--steps`` steps after one warm-up step. The choice of width and depth in ssync_lib/pretrain/config.py
rests on this table (docs/pretrain.md).
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from ssync_lib.pretrain.config import get_pretrain_config
from ssync_lib.pretrain.dino import DinoLoss, DinoViT, ema_update, make_teacher
from ssync_lib.pretrain.views import make_views

SIZES = [(64, 4, 2), (64, 4, 4), (96, 4, 3), (128, 4, 4), (96, 6, 3), (192, 4, 3)]  # (width, depth, heads)


def step_time(width: int, depth: int, heads: int, steps: int, batch: int) -> float:
    cfg = get_pretrain_config("cpu", [f"train.batch_size={batch}"])
    cfg.vit.backbone_kwargs = {"patch_size": 4, "embed_dim": width, "depth": depth, "num_heads": heads}
    torch.manual_seed(0)
    student = DinoViT(cfg.vit, 64, cfg.dino)
    teacher, loss_fn = make_teacher(student), DinoLoss(cfg.dino)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4)
    clips = torch.randn(batch, 3, 3, 64, 64)
    times = []
    for step in range(steps + 1):
        start = time.process_time()  # CPU seconds of this process: the machine is shared, wall time is not its own
        v = make_views(clips, list(range(batch)), step, 0, cfg.dino, 4)
        with torch.no_grad():
            t_cls, t_patch = teacher(v.globals_, None, v.masks, student=False)
        s_cls, s_patch = student(v.globals_, v.locals_, v.masks)
        out = loss_fn(s_cls, s_patch, t_cls, t_patch, v.masks, step, 1000)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        ema_update(teacher, student, 0.996)
        times.append(time.process_time() - start)
    return sum(times[1:]) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--out", default="results/pretrain/step_time.csv")
    args = p.parse_args()
    rows = []
    for w, d, h in SIZES:
        rows.append({"width": w, "depth": d, "heads": h, "batch": args.batch, "threads": torch.get_num_threads(),
                     "cpu_sec_per_step": round(step_time(w, d, h, args.steps, args.batch), 3)})
        print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
