"""Sweep summaries: a run as a row (``summary_row``), a sweep folder's ``summary.csv``, ``table.md`` and plots
(``summarise``), its curves, the branch points, and rows gathered from several sweeps' summaries (the premise table,
ablations)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from ssync_lib.errors import MissingInputError
from ssync_lib.lab import viz
from ssync_lib.lab.experiment.columns import COLUMN_SETS, SUMMARY_KEYS, TEST
from ssync_lib.lab.experiment.held_out import row_on_test
from ssync_lib.lab.experiment.tables import markdown_table
from ssync_lib.run_log import read_metrics


def summary_row(objective: str, slots: int, seed: int, metrics: Mapping[str, float]) -> dict:
    """One run as a row of the summary: objective, slots, seed and every ``SUMMARY_KEYS`` metric of the flat
    dict ``evaluate`` returns (NaN where it lacks one). The notebooks use it for runs they evaluate live."""
    return {"objective": objective, "slots": slots, "seed": seed,
            **{k: metrics.get(k, float("nan")) for k in SUMMARY_KEYS}}


def summarise(folder: Path, test_split: bool = False) -> pd.DataFrame:
    """summary.csv (a row per finished run), table.md (mean +- std over seeds) and the plots (slot robustness,
    training curves). ``test_split``: with the ``test/`` columns of each run's ``metrics-test.json``
    (``row_on_test``) and the slot robustness on the test split (``slot_robustness-test.png``)."""
    rows = []
    for metrics_file in sorted(folder.glob("*/metrics.json")):
        record = read_metrics(metrics_file)
        cfg = record["config"]
        final = pd.read_csv(metrics_file.with_name("eval.csv")).iloc[-1]  # the training's final evaluation
        videos = record["metrics"].get("num_videos")
        if "num_videos" in final and videos != final["num_videos"]:
            warnings.warn(f"{metrics_file}: {videos} videos, but its training's final evaluation (eval.csv) scored "
                          f"{final['num_videos']:g}: a partial evaluation, left out of the summary; evaluate the "
                          f"run again in full (python -m ssync_lib evaluate --run {metrics_file.parent})")
            continue
        log = pd.read_csv(metrics_file.with_name("log.csv"))
        rows.append({"run": metrics_file.parent.name,
                     **summary_row(cfg["objective"]["name"], cfg["model"]["num_slots"], cfg["train"]["seed"],
                                   record["metrics"]),
                     "step": record["step"],
                     "sec_per_step": float(log["sec_per_step"].median()),
                     "branched_from": cfg["train"]["init_from"] or "",
                     **(row_on_test(metrics_file.parent) if test_split else {})})
    summary = pd.DataFrame(rows)
    if summary.empty:
        raise MissingInputError(f"no finished run (metrics.json) under {folder}")
    summary.to_csv(folder / "summary.csv", index=False)
    (folder / "table.md").write_text(markdown_table(summary))
    viz.save_figure(viz.plot_slot_sweep(summary), folder / "slot_robustness.png")
    if test_split:
        viz.save_figure(viz.plot_slot_sweep(summary, [TEST + m for m in viz.SWEEP_METRICS],
                                            title="the held-out test split (decoder maps)"),
                        folder / "slot_robustness-test.png")
    viz.save_figure(viz.plot_sweep_curves(*sweep_curves(summary, folder)), folder / "curves.png", dpi=110)
    return summary


def sweep_curves(summary: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training log (reconstruction loss as a running mean of 10 log rows) and the evaluations of every run
    of ``summary``, tagged with objective, slots and seed: the input of ``viz.plot_sweep_curves``. A branched run's
    rows start at its branch step."""
    logs, evals = [], []
    for run in summary.itertuples():
        tags = {"objective": run.objective, "slots": run.slots, "seed": run.seed}
        log = pd.read_csv(folder / run.run / "log.csv")
        logs.append(log.assign(recon=log["recon"].rolling(10, min_periods=1).mean(), **tags))
        evals.append(pd.read_csv(folder / run.run / "eval.csv").assign(**tags))
    return pd.concat(logs), pd.concat(evals)


def branch_points(summary: pd.DataFrame) -> pd.Series:
    """SSync run name -> the step it branched from its baseline at (from ``branched_from``, a checkpoint named
    ``step-NNNNNNN.pt``), or None for a run trained from scratch."""
    runs = summary[summary["objective"] == "ssync"].set_index("run")["branched_from"]
    steps = runs.astype("string").str.extract(r"step-(\d+)\.pt$", expand=False)
    return pd.Series([int(s) if pd.notna(s) else None for s in steps], index=runs.index, dtype=object)


def premise_rows(folders: Iterable[str | Path]) -> pd.DataFrame:
    """The baseline runs that carry the premise diagnostics, from the ``summary.csv`` of each sweep folder that
    has one (e.g. ``results/synth-easy`` and ``results/synth-easy-premises``), with a ``sweep`` column naming the
    folder. Rows of one (slots, seed) from two folders are different trainings and are both kept."""
    tables = [pd.read_csv(Path(f) / "summary.csv").assign(sweep=Path(f).name) for f in folders
              if (Path(f) / "summary.csv").exists()]
    if not tables:
        return pd.DataFrame(columns=["objective", "slots", "seed", "sweep", *COLUMN_SETS["premises"]])
    rows = pd.concat(tables, ignore_index=True)
    scored = rows.reindex(columns=COLUMN_SETS["premises"]).notna().all(axis=1)  # a missing column counts as NaN
    return rows[(rows["objective"] == "baseline") & scored].sort_values(["slots", "sweep", "seed"], ignore_index=True)


def variant_rows(variants: Mapping[str, str | Path], slots: int, objective: str = "ssync") -> pd.DataFrame:
    """One summary for an ablation table: the baseline runs at ``slots`` of the first folder, then the
    ``objective`` runs at ``slots`` of every folder, each relabelled with its variant's name (e.g. ``{"ssync":
    "results/synth-easy", "ssync, only interiors": "results/synth-easy-interior-only"}``). The folders' sweeps
    must differ only in the ablated setting and branch from the same baselines."""
    tables = []
    for i, (name, folder) in enumerate(variants.items()):
        path = Path(folder) / "summary.csv"
        if not path.exists():
            raise MissingInputError(f"variant {name!r}: no sweep summary {path}")
        runs = pd.read_csv(path)
        runs = runs[runs["slots"] == slots]
        if i == 0:
            tables.append(runs[runs["objective"] == "baseline"])
        tables.append(runs[runs["objective"] == objective].assign(objective=name))
    return pd.concat(tables, ignore_index=True)
