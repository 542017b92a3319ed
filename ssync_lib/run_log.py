"""What a run writes: CSV rows of scalars, running means between log rows, TensorBoard events when
``tensorboard`` is installed, and the ``metrics.json`` record of an evaluation.

    log = CsvLog(run_dir / "log.csv")                  # log.append({"step": 10, "loss": 0.3})
    means = RunningMeans(); means.add({"loss": 0.3}); means.pop()   # {"loss": 0.3}
    tb = tensorboard_writer(run_dir, purge_step=0)     # None without tensorboard
    write_metrics(run_dir / "metrics.json", metrics, step, cfg, checkpoint); read_metrics(path)["metrics"]
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ssync_lib.config import Config
from ssync_lib.runtime import commit_hash


class CsvLog:
    """Rows of scalars in a CSV file, flushed on every row; the header grows when a new key appears.
    Floats are written with ``repr`` and read back exactly. ``keep_upto_step``: a resumed run keeps the
    rows logged up to its checkpoint's step and drops the later ones."""

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


def tensorboard_writer(run_dir: Path, purge_step: int):
    """A SummaryWriter on ``run_dir/tb`` (events after ``purge_step`` dropped), None without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)


def tensorboard_write(tb, prefix: str, row: Mapping[str, Any], step: int) -> None:
    """The numeric entries of ``row`` (but the step) as ``<prefix>/<key>`` scalars; nothing when ``tb`` is None."""
    if tb is None:
        return
    for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)):
            tb.add_scalar(f"{prefix}/{k}", v, step)


def write_metrics(path: Path, metrics: Mapping, step: int, cfg: Config, checkpoint: Path | None) -> Path:
    """``metrics.json``: the metrics with the step, checkpoint, config and commit they come from. Strict JSON:
    a NaN metric (no valid clip or frame; its ``_skipped`` count says how many were skipped) is written as
    null; ``read_metrics`` turns it back into NaN."""
    record = {"step": step, "checkpoint": str(checkpoint) if checkpoint else None, "commit": commit_hash(),
              "metrics": json_safe(metrics), "config": cfg.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False))
    return path


def json_safe(metrics: Mapping) -> dict:
    """The metrics with NaN and infinities as None (null in strict JSON)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}


def read_metrics(path: str | Path) -> dict:
    """A ``metrics.json`` record, its null metrics as NaN (files written before NaN became null read the same)."""
    record = json.loads(Path(path).read_text())
    record["metrics"] = {k: math.nan if v is None else v for k, v in record.get("metrics", {}).items()}
    return record
