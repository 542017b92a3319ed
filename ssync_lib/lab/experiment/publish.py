"""A sweep published to a results folder: its summary, table and plots, every run's small files, and the provenance
(every command that fed the folder, commit, versions, machine)."""
from __future__ import annotations

import json
import platform
import shutil
import sys
from pathlib import Path

import pandas as pd
import torch

from ssync_lib.lab.experiment.columns import TEST_KEYS
from ssync_lib.lab.experiment.held_out import TEST_METRICS
from ssync_lib.runtime import commit_hash


def publish(folder: Path, results: Path, command: str) -> None:
    """Copy the small files of a sweep to a results folder (a run's ``metrics-test.json`` and the test split's
    plot where they exist), with the command, commit and machine."""
    results.mkdir(parents=True, exist_ok=True)
    tested = TEST_KEYS[0] in pd.read_csv(folder / "summary.csv", nrows=0).columns  # summarised with --test-split
    names = ["summary.csv", "table.md", "slot_robustness.png", "curves.png"] + ["slot_robustness-test.png"] * tested
    for name in names:
        shutil.copy2(folder / name, results / name)
    for run in sorted(p.parent for p in folder.glob("*/metrics.json")):
        (results / "runs" / run.name).mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "log.csv", "eval.csv", "config.json", TEST_METRICS):
            if name == TEST_METRICS and not (run / name).exists():
                continue
            shutil.copy2(run / name, results / "runs" / run.name / name)
    provenance = results / "provenance.json"
    earlier = json.loads(provenance.read_text()) if provenance.exists() else {}  # its other keys (notes) are kept
    commands = earlier.get("commands", [])
    provenance.write_text(json.dumps({
        **earlier,
        "commands": commands + [command] * (command not in commands),  # every invocation that fed this folder
        "commit": commit_hash(), "python": sys.version.split()[0], "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_threads": torch.get_num_threads(),
    }, indent=2) + "\n")
