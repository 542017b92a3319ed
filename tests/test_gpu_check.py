"""scripts/gpu_check.py, the prepared GPU check (issue 22), as a CPU dry run at tiny sizes: every stage runs the
code of the full check (train(), the bench CLI in subprocesses, evaluate(), the other profiles) and succeeds, so
that the script cannot rot while no GPU is at hand. No assertion on speed."""
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up while it is being executed
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["gpu_check"]


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.filterwarnings("ignore:train.amp_bf16 and train.compile apply on CUDA only")
def test_dry_run_writes_json_and_markdown_with_every_stage_ok(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the benchmark subprocesses: tiny tensors on a busy machine
    out = tmp_path / "out"
    # every stage must run its code to the end: budgets far above the dry run's defaults (tens of seconds), so that
    # a loaded machine cannot turn a stage into a timeout (the limits themselves are tested below)
    generous = [f"--budget={stage}=900" for stage in gpu_check.STAGES]
    rc = gpu_check.main(["--dry-run", "--out", str(out), "--work", str(tmp_path / "work"), "--no-progress",
                         *generous])
    report = json.loads((out / "gpu_check.json").read_text())
    markdown = (out / "gpu_check.md").read_text()
    stages = report["stages"]
    assert list(stages) == list(gpu_check.STAGES)
    assert {name: (r["status"], r.get("error")) for name, r in stages.items()} == \
        {name: ("ok", None) for name in gpu_check.STAGES}
    assert rc == 0

    settings = report["settings"]
    runs = stages["train"]["runs"]
    assert [r["name"] for r in runs] == [f"movi_c-{o}-{v}" for v in settings["variants"]
                                         for o in ("baseline", "dense", "ssync")]
    for run in runs:
        assert run["status"] == "ok" and run["all_finite"] is True
        assert run["steps"] == settings["steps"] and run["timed_steps"] == settings["steps"] - settings["timing_warmup"]
        for key in ("sec_per_step", "clips_per_s", "first_step_s", "data_wait_ms", "loss_first", "loss_last",
                    "recon_first", "recon_last"):
            assert finite(run[key]), (run["name"], key, run[key])
        assert isinstance(run["recon_falling"], bool)
        assert run["video_shape"] == [settings["batch"], 4, 3, 56, 56] and run["grid"] == [4, 4]
        assert run["tokens_per_clip"] == 4 * 16
    terms = {run["objective"]: set(run["loss_terms"]) for run in runs}
    assert {"dense_dec", "dense_enc"} <= terms["dense"] and {"ssync_dec", "ssync_enc"} <= terms["ssync"]

    step = stages["bench_step"]["figures"]
    assert all(finite(step[k]) for k in ("ssync_share_pct", "dense_share_pct", "ssync_step_ms", "dense_step_ms"))
    labels = stages["bench_labels"]["figures"]
    assert labels and all(v["equal"] is True and finite(v["speedup"]) for v in labels.values())
    alignment = stages["bench_alignment"]["figures"]
    assert alignment["rows"] == 3 * len(settings["alignment_sizes"])
    assert set(alignment["largest_measured"]) == {"dense direct", "dense chunked", "ssync"}

    evaluation = stages["evaluate"]
    assert evaluation["videos"] == settings["eval_videos"] and finite(evaluation["eval_seconds"])
    assert finite(evaluation["metrics"]["decoder/video/fg_ari"])

    profiles = {r["profile"]: r for r in stages["profiles"]["runs"]}
    assert set(profiles) == {"movi_e", "ytvis"}
    assert (profiles["movi_e"]["num_slots"], profiles["ytvis"]["num_slots"]) == (15, 7)
    assert all(finite(r["sec_per_step"]) for r in profiles.values())

    for heading in ("## Stages", "## Training", "bench step", "bench labels", "bench alignment", "## Evaluation",
                    "## Other profiles", "movi_c-ssync-"):
        assert heading in markdown


def test_a_failing_or_slow_part_is_recorded_and_the_rest_goes_on(gpu_check):
    def broken(record):
        record["gathered"] = 1.5
        raise ValueError("bad shape")

    failed = gpu_check.attempt({}, 10, broken)
    assert failed["status"] == "failed" and failed["error"] == "ValueError: bad shape" and failed["gathered"] == 1.5
    slow = gpu_check.attempt({}, 0.3, lambda r: time.sleep(5))
    assert slow["status"] == "timeout" and slow["seconds"] < 3

    def stage(record):  # units get at most what is left of their stage's budget
        record["units"] = [gpu_check.attempt({}, 10, lambda r: time.sleep(5)), gpu_check.attempt({}, 10, print)]

    record = gpu_check.attempt({}, 0.3, stage)
    assert [u["status"] for u in record["units"]] == ["timeout", "skipped"] and record["seconds"] < 3


@pytest.mark.parametrize("argv", [["--steps", "3", "--timing-warmup", "3"], ["--variants", "fp16"],
                                  ["--stages", "train,bench"], ["--budget", "train"]])
def test_bad_settings_are_refused_before_anything_runs(gpu_check, argv, tmp_path):
    with pytest.raises(SystemExit):
        gpu_check.main(["--dry-run", "--out", str(tmp_path), *argv])
    assert not (tmp_path / "gpu_check.json").exists()
