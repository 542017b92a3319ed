"""The benchmarks at tiny sizes: every subcommand writes its CSV and PNG, and the tables hold sane values (no
assertion on time: speed targets live in the benchmark output, not in tests)."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ssync_lib import bench

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")


def written(folder, name):
    csv, png = folder / f"{name}.csv", folder / f"{name}.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    return pd.read_csv(csv)


def test_alignment_cli_writes_table_plot_and_summary(tmp_path, capsys):
    assert bench.main(["alignment", "--sizes", "16", "64", "--chunk", "8", "--repeats", "1", "--no-rss",
                       "--out", str(tmp_path)]) == 0
    df = written(tmp_path, "alignment")
    assert (tmp_path / "alignment_summary.csv").exists()
    assert sorted(df["method"].unique()) == sorted(bench.ALIGNMENT_METHODS)
    assert sorted(df["tokens"].unique()) == [16, 64]
    assert (df["peak_bytes"] > 0).all() and (df["time_ms"] > 0).all() and not df["extrapolated"].any()
    chunked = df[df["method"] == "dense chunked"]
    assert (chunked["max_diff"] < 1e-5).all()  # chunked = direct: loss and gradients
    direct = df[df["method"] == "dense direct"].set_index("tokens")
    assert np.allclose(chunked.set_index("tokens")["loss"], direct["loss"], rtol=1e-5)
    out = capsys.readouterr().out
    assert "dense / SSync" in out and "growth exponents" in out and "wrote" in out


def test_alignment_memory_grows_as_expected_and_dense_exceeds_ssync():
    df = bench.run_alignment(sizes=(64, 128, 256), chunk=16, repeats=1)
    exps = bench.growth_exponents(df, fit_from=64).set_index("method")["memory_exponent"]
    assert exps["dense direct"] > 1.6  # quadratic in T*N (allocation sizes are deterministic: no timing here)
    assert exps["dense chunked"] < 1.4 and exps["ssync"] < 1.4  # linear
    summary = bench.alignment_summary(df).set_index("tokens")
    assert (summary["direct/ssync mem"] > 1).all() and summary["direct/ssync mem"].is_monotonic_increasing
    assert summary.loc[256, "direct/chunked mem"] > 1
    lines = bench.alignment_targets(df, at=256)
    assert "T*N=256" in lines[0] and "growing with T*N: yes" in lines[0] and "extrapolated" not in lines[0]
    assert bench.alignment_targets(df, at=2304) == ["targets: T*N = 2304 not among the sizes"]


def test_alignment_extrapolates_from_the_per_entry_cost_beyond_the_budget():
    df = bench.run_alignment(sizes=(32, 64, 128), chunk=16, repeats=1, budget_gb=0.0)
    first = df[df["tokens"] == 32].set_index("method")
    assert not first["extrapolated"].any()  # the first size always runs
    for tokens in (64, 128):
        rows = df[df["tokens"] == tokens].set_index("method")
        assert rows["extrapolated"].all()
        for method, (mem_power, time_power) in bench.ALIGNMENT_METHODS.items():
            scale = tokens / 32
            assert math.isclose(rows.loc[method, "peak_bytes"], first.loc[method, "peak_bytes"] * scale ** mem_power)
            assert math.isclose(rows.loc[method, "seconds"], first.loc[method, "seconds"] * scale ** time_power)
    assert bench.growth_exponents(df)["memory_exponent"].isna().all()  # one measured size: no fit
    assert "dense chunked" in bench.alignment_summary(df).set_index("tokens").loc[128, "extrapolated"]
    assert "(extrapolated: dense direct, dense chunked, ssync)" in bench.alignment_targets(df, at=64)[0]


def test_growth_exponents_recover_power_laws():
    tokens = np.array([64, 256, 1024])
    df = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "tokens": np.tile(tokens, 2),
                       "peak_bytes": np.r_[3.0 * tokens ** 2, 5.0 * tokens],
                       "seconds": np.r_[1e-6 * tokens ** 1.5, 2e-3 * tokens], "extrapolated": False})
    exps = bench.growth_exponents(df, fit_from=64).set_index("method")
    assert exps.loc["a", "memory_exponent"] == pytest.approx(2.0)
    assert exps.loc["a", "time_exponent"] == pytest.approx(1.5)
    assert exps.loc["b", "memory_exponent"] == pytest.approx(1.0)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS is read from Linux's /proc")
def test_alignment_rss_cross_check_agrees_with_the_profiler():
    df = bench.run_alignment(sizes=(1024,), chunk=256, repeats=1, rss=True)
    direct = df.set_index("method").loc["dense direct"]  # ~27 MB of B x M x M tensors
    assert 0.7 < direct["rss_bytes"] / direct["peak_bytes"] < 1.5


def test_alignment_sizes_must_be_multiples_of_frames():
    with pytest.raises(ValueError, match=r"sizes \[10\] are not multiples of frames=4"):
        bench.run_alignment(sizes=(8, 10))


def test_loop_reference_matches_pseudo_labels_with_merges_on_a_non_square_grid():
    shape = bench.LabelShape(batch=3, frames=3, slots=6, grid=(5, 9), merge_iou=0.6)
    attn, dec = bench.clip_logits(shape, seed=1)
    got = bench.pseudo_labels(attn, dec, shape.grid, shape.merge_iou)
    ref = bench.loop_pseudo_labels(attn, dec, shape.grid, shape.merge_iou)
    assert bench.labels_mismatch(got, ref) == []
    assert (got.slot_map != torch.arange(6)).any()  # the near-copies were merged: the components were exercised
    ref.boundary[0, 0, 0, 0] = ~ref.boundary[0, 0, 0, 0]
    ref.iou[1, 0, 1] += 1e-3
    assert bench.labels_mismatch(got, ref) == ["boundary", "iou"]


def test_labels_cli_at_a_small_batch(tmp_path):
    assert bench.main(["labels", "--batch", "2", "--repeats", "1", "--out", str(tmp_path)]) == 0
    df = written(tmp_path, "labels")
    assert list(df["shape"]) == list(bench.LABEL_SHAPES) and (df["batch"] == 2).all()
    assert df["equal"].all() and (df["speedup"] > 0).all() and (df["vectorised_ms"] > 0).all()
    assert list(df["grid"]) == ["24x24", "37x37"]
    assert df["boundary_pct"].between(5, 80).all() and df["interior_pct"].between(5, 95).all()


def test_labels_reports_a_mismatch(monkeypatch):
    right = bench.pseudo_labels

    def wrong(attn_logits, dec_logits, grid, merge_iou=0.7):
        labels = right(attn_logits, dec_logits, grid, merge_iou)
        labels.interior = ~labels.interior
        return labels

    monkeypatch.setattr(bench, "pseudo_labels", wrong)
    with pytest.raises(AssertionError, match=r"'tiny'.*\['interior'\]"):
        bench.run_labels({"tiny": bench.LabelShape(1, 2, 4, (4, 4), 0.7)}, repeats=1)


def test_step_cli_shares_add_up(tmp_path):
    assert bench.main(["step", "--profile", "smoke", "--repeats", "1", "--out", str(tmp_path)]) == 0
    df = written(tmp_path, "step_smoke").set_index("part")
    assert (df["time_ms"] > 0).all()
    assert df.loc[list(bench.SSYNC_STEP), "ssync_step_pct"].sum() == pytest.approx(100)
    assert df.loc[list(bench.DENSE_STEP), "dense_step_pct"].sum() == pytest.approx(100)
    assert np.isnan(df.loc["dense alignment", "ssync_step_pct"]) and np.isnan(df.loc["SSync losses", "dense_step_pct"])
    assert {"measured step, ssync objective", "measured step, dense objective"} <= set(df.index)
    assert (df["profile"] == "smoke").all() and (df["grid"] == "2x2").all()


def test_step_overrides_reach_the_config():
    df = bench.run_step("smoke", batch=2, overrides=["model.num_slots=3", "objective.dense_chunk=4"], repeats=1)
    assert (df["batch"] == 2).all() and (df["slots"] == 3).all() and (df["dense_chunk"] == 4).all()


def test_metrics_cli(tmp_path):
    assert bench.main(["metrics", "--batch", "2", "--frames", "2", "--repeats", "1", "--out", str(tmp_path)]) == 0
    df = written(tmp_path, "metrics")
    assert len(df) == 7 and (df["time_ms"] > 0).all() and df["function"].is_unique
    assert (df[["batch", "frames", "size"]].iloc[0] == [2, 2, 128]).all()


def test_plots_return_figures_and_save_to_a_path(tmp_path):
    df = bench.run_metrics(batch=1, frames=1, size=32, repeats=1)
    fig = bench.plot_metrics(df, tmp_path / "m.png")
    assert fig.axes and (tmp_path / "m.png").read_bytes()[:8] == PNG_MAGIC
