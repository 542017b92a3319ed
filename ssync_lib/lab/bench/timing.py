"""What every benchmark shares: the best-of-N timer, the machine context of a row, the CSV/PNG writer.

Times are the best of ``repeats`` runs after a warm-up, waiting for the GPU where there is one, on the wall clock
(or, for ``step --clock cpu``, the process's CPU time, which other jobs on a shared machine do not inflate; summed
over threads); the thread count (``--threads``, else torch's default, which follows OMP_NUM_THREADS) is recorded in
every table.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from ssync_lib.config import resolve_path

DEFAULT_OUT = "runs/bench"
MB = 2 ** 20


CLOCKS = {"wall": time.perf_counter,  # elapsed time: what a user waits, inflated by other jobs on a shared machine
          "cpu": time.process_time}  # this process's CPU time: the work done, whatever else runs (CPU only)


def best_time(fn: Callable[[], object], repeats: int = 3, device: torch.device | str = "cpu",
              clock: str = "wall") -> float:
    """Seconds of the fastest of `repeats` runs of fn() (the caller warms up) on `clock` (CLOCKS); waits for the GPU
    to finish."""
    device = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    now = CLOCKS[clock]
    best = math.inf
    for _ in range(max(repeats, 1)):
        sync()
        start = now()
        fn()
        sync()
        best = min(best, now() - start)
    return best


def machine_context(device: torch.device) -> dict:
    return {"device": str(device), "threads": torch.get_num_threads()}


def save_table(df: pd.DataFrame, name: str, fig=None, out: str | Path = DEFAULT_OUT) -> list[Path]:
    """Write out/<name>.csv and, given a figure, out/<name>.png (out relative to the project root) -> the paths."""
    folder = resolve_path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.csv"]
    df.to_csv(paths[0], index=False)
    if fig is not None:
        paths.append(folder / f"{name}.png")
        fig.savefig(paths[1], dpi=120, bbox_inches="tight")
    return paths


