import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssync_lib.lab import bench
from ssync_lib.lab.bench.alignment import (ALIGNMENT_METHODS, cost_claim, dense_alignment_memory, load_alignment,
                                          minimum_bytes, read_alignment, read_batch_memory)
from ssync_lib.lab.bench.timing import MB

pytestmark = pytest.mark.usefixtures("one_thread")


def test_alignment_cli_writes_table_plot_and_summary(tmp_path, capsys, written):
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
    # a budget that the first size's inputs fit (issue 32: one they do not fit is refused before any work) and a
    # time limit that no later size fits
    df = bench.run_alignment(sizes=(32, 64, 128), chunk=16, repeats=1, budget_gb=1e-4, max_seconds=1e-9)
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
    with pytest.raises(ValueError, match=r"sizes \[10\] are not positive multiples of frames=4"):
        bench.run_alignment(sizes=(8, 10))
    with pytest.raises(ValueError, match=r"sizes \[0\] are not positive multiples"):
        bench.run_alignment(sizes=(0, 8))


def test_alignment_refuses_a_first_size_beyond_the_budget_before_any_work():
    with pytest.raises(ValueError, match=r"size 100000000 \(batch 1\): the inputs alone take more than the memory "
                                         r"budget of 8 GB \(dense direct: .*ssync: 8.8 GB\)"):
        bench.run_alignment(sizes=(100_000_000,), budget_gb=8.0)
    assert minimum_bytes("ssync", 64, 2, 16, 11) == 2 * 64 * 11 * 2 * 4  # B T S N logits and alpha


def test_chunked_peak_memory_grows_linearly_direct_quadratically():
    rows = dense_alignment_memory(sizes=(128, 256, 512), chunk=32)
    direct = [r["direct_bytes"] for r in rows]
    chunked = [r["chunked_bytes"] for r in rows]
    assert all(c < d for c, d in zip(chunked, direct))
    assert direct[2] / direct[1] > 3.0 and direct[1] / direct[0] > 3.0  # ~4x per doubling of M: quadratic
    assert chunked[2] / chunked[1] < 2.5 and chunked[1] / chunked[0] < 2.5  # ~2x per doubling of M: linear


def _table(extrapolate_direct_at=None) -> pd.DataFrame:
    """A run_alignment-shaped table with known numbers: direct memory ~ M^2, chunked and SSync ~ M."""
    rows = []
    for tokens in (256, 1024, 2304):
        for method, mb, ms in (("dense direct", 1e-6 * tokens ** 2, 1e-4 * tokens ** 2),
                               ("dense chunked", 1e-3 * tokens, 1.2e-4 * tokens ** 2),
                               ("ssync", 1e-4 * tokens, 1.0)):
            rows.append(dict(method=method, tokens=tokens, batch=1, device="cpu", threads=1,
                             peak_bytes=mb * MB, seconds=ms / 1e3, peak_mb=mb, time_ms=ms,
                             bytes_per_pair=mb * MB / tokens ** 2,
                             extrapolated=method == "dense direct" and tokens == extrapolate_direct_at))
    return pd.DataFrame(rows)


def test_read_alignment_states_measured_growth_and_times():
    text = read_alignment(_table())
    assert text.startswith("Every point is measured, at 3 sizes from 256 to 2,304 tokens per clip (batch 1, cpu, 1 thread(s)).")
    assert "exponent 2.00 in the tokens for the direct dense losses" in text and "1.00 for the chunked ones" in text
    assert "the chunked form takes 1.20-1.20x the direct form's time" in text
    assert "SSync takes 1.0 ms there, 531x less than the direct form (6.6x less at 256 tokens)" in text


def test_read_alignment_leaves_extrapolated_points_out_and_names_them():
    text = read_alignment(_table(extrapolate_direct_at=2304))
    assert "only extrapolated (crosses in the figure, left out of every number here): dense direct at 2,304." in text
    assert "at 1,024)" in text.split("Peak memory")[1].split(",")[1] or "MB at 1,024" in text
    assert "1,024 tokens), while SSync" in text  # the time comparison stops at the largest size both measured


def test_cost_claim_and_batch_memory():
    claim = cost_claim(_table())
    assert claim.startswith("**3. SSync costs linearly in the patches: held.** Its peak memory grows with exponent "
                            "1.00 in the tokens per clip, dense alignment's with 2.00; at 2,304 tokens dense alignment "
                            "needs 23x SSync's memory and 531x its time (measured).")
    assert "23x" not in cost_claim(_table(extrapolate_direct_at=2304))  # no ratio from an extrapolated point
    text = read_batch_memory(_table(), batch=64, gpu_gb=80)
    assert "times 64, not a measurement" in text and f"{2304 ** 2 * 1e-6 * 64 / 1024:.1f} GB" in text


def test_committed_benchmark_is_measured_everywhere_and_read_by_both_notebooks():
    cost = load_alignment()
    assert not cost["extrapolated"].any() and set(cost["method"]) == set(ALIGNMENT_METHODS)
    for notebook in ("03_dense_alignment", "04_ssync"):
        source = (Path(__file__).resolve().parents[2] / "notebooks" / f"{notebook}.ipynb").read_text()
        assert "load_alignment()" in source and "run_alignment(" not in source, notebook
