import numpy as np
import pytest

from ssync_lib.lab import bench

pytestmark = pytest.mark.usefixtures("one_thread")


def test_step_cli_shares_add_up(tmp_path, written):
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
