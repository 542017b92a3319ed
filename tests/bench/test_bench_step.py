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


def test_step_against_writes_both_configurations_in_one_table(tmp_path, written, capsys):
    assert bench.main(["step", "--profile", "smoke", "--repeats", "1", "--set", "model.slot_dim=8", "--against",
                       "model.num_slots=3", "--tag", "three", "--out", str(tmp_path)]) == 0
    df = written(tmp_path, "step_smoke_three")
    assert list(dict.fromkeys(df["variant"])) == ["profile", "three"]
    by = df.groupby("variant")
    assert by["slots"].unique().to_dict() == {"profile": [4], "three": [3]}
    assert df.groupby("variant")["overrides"].first().to_dict() == {"profile": "model.slot_dim=8",
                                                                    "three": "model.slot_dim=8 model.num_slots=3"}
    for _, one in by:  # each variant: the parts of run_step, shares of its own step
        one = one.set_index("part")
        assert one.loc[list(bench.SSYNC_STEP), "ssync_step_pct"].sum() == pytest.approx(100)
        assert "measured step, baseline objective" in one.index
    out = capsys.readouterr().out
    step = df[df["part"] == "measured step, ssync objective"].set_index("variant")["time_ms"]
    assert f"measured ssync step: three / profile = {step['three'] / step['profile']:.3f}x" in out
    assert not (tmp_path / "step_smoke.csv").exists()
    assert bench.main(["step", "--profile", "smoke", "--against", "model.num_slots=3", "--tag", "profile"]) == 2
    assert bench.main(["step", "--profile", "smoke", "--against", "model.num_slots=3", "--rounds", "0"]) == 2


def test_compare_step_takes_turns_and_keeps_each_parts_best(monkeypatch):
    """Rounds alternate the variants (so a passing load reaches both) and each part keeps its fastest round."""
    import pandas as pd

    from ssync_lib.lab.bench import step as step_module

    calls = []

    def fake_run_step(profile, batch, overrides, repeats, device, seed, clock):
        calls.append(list(overrides))
        n = len(calls)  # call n: part times n and 10 - n (the best of each part comes from a different round)
        parts = list(bench.DENSE_STEP) + ["SSync pseudo-labels", "SSync losses", "measured step, ssync objective",
                                          "measured step, dense objective", "redundancy regulariser"]
        times = [float(n) if i % 2 else 10.0 - n for i in range(len(parts))]
        return step_module.step_shares(pd.DataFrame({"part": parts, "time_ms": times})).assign(profile=profile)

    monkeypatch.setattr(step_module, "run_step", fake_run_step)
    df = bench.compare_step("smoke", {"a": [], "b": ["x=1"]}, overrides=["y=2"], rounds=3)
    assert calls == [["y=2"], ["y=2", "x=1"]] * 3
    a, b = (df[df["variant"] == v].reset_index(drop=True) for v in "ab")
    # a: calls 1, 3, 5 -> odd parts keep 1, even parts keep 10 - 5; b: calls 2, 4, 6 -> 2 and 10 - 6
    assert list(a["time_ms"]) == [1.0 if i % 2 else 5.0 for i in range(len(a))]
    assert list(b["time_ms"]) == [2.0 if i % 2 else 4.0 for i in range(len(b))]
    assert a.set_index("part").loc[list(bench.SSYNC_STEP), "ssync_step_pct"].sum() == pytest.approx(100)
    ratios = bench.step_ratios(df, "a", "b").set_index("part")
    assert ratios.loc["encoder", "ratio"] == pytest.approx(4.0 / 5.0) and ratios.loc["slot attention + predictor", "ratio"] == 2.0


def test_cpu_clock_times_the_work_not_the_wait(monkeypatch):
    """--clock cpu counts this process's CPU time: a part that sleeps costs nothing on it and its time on the wall."""
    import time

    from ssync_lib.lab.bench.timing import best_time

    assert best_time(lambda: time.sleep(0.05), repeats=2, clock="cpu") < 0.01
    assert best_time(lambda: time.sleep(0.05), repeats=2, clock="wall") >= 0.05
    df = bench.run_step("smoke", batch=2, repeats=1, clock="cpu")
    assert (df["clock"] == "cpu").all() and (df["time_ms"] > 0).all()
    assert bench.main(["step", "--profile", "smoke", "--clock", "cpu", "--device", "cuda"]) == 2
