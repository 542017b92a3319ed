"""scripts/compare_runs.py: two run folders written here, equal and then changed in one value at a time; each
change is found, timing columns are not compared, a branched run's shorter log is compared on the shared steps."""
import math

import numpy as np
import pandas as pd
import pytest

from ssync_lib.config import get_config
from ssync_lib.run_log import write_metrics
from tests.helpers import script_module


def write_run(folder, *, steps=(50, 100, 150), fg_ari=0.5, recon_at_100=0.2, sec=0.1, test_nan=False):
    folder.mkdir(parents=True)
    log = pd.DataFrame({"step": list(steps), "loss": [1.0 / s for s in steps],
                        "recon": [recon_at_100 if s == 100 else 0.3 for s in steps], "sec_per_step": sec})
    log.to_csv(folder / "log.csv", index=False)
    pd.DataFrame({"step": [100], "decoder/video/fg_ari": [fg_ari]}).to_csv(folder / "eval.csv", index=False)
    cfg = get_config("smoke")  # the records as training and evaluate write them (a NaN metric stored as null)
    write_metrics(folder / "metrics.json", {"decoder/video/fg_ari": fg_ari, "num_videos": 4}, 150, cfg, None)
    write_metrics(folder / "metrics-test.json", {"decoder/video/fg_ari": math.nan if test_nan else 0.4}, 150, cfg, None)
    return folder


def run_main(tmp_path, capsys, **changes):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", **changes)
    with script_module("compare_runs") as script:
        code = script.main([str(a), str(b)])
    return code, capsys.readouterr().out


def test_equal_runs_are_the_same_run_and_timing_is_not_compared(tmp_path, capsys):
    code, out = run_main(tmp_path, capsys, sec=9.9)
    assert code == 0 and "the same run" in out
    assert out.count("largest |difference| 0") == 4
    assert "decoder FG-ARI 0.5000 and 0.5000" in out


@pytest.mark.parametrize("changes,file", [
    ({"recon_at_100": 0.25}, "log.csv"),
    ({"fg_ari": 0.5 + 1e-9}, "eval.csv"),
    ({"test_nan": True}, "metrics-test.json"),
])
def test_one_changed_value_makes_them_different(tmp_path, capsys, changes, file):
    code, out = run_main(tmp_path, capsys, **changes)
    line = next(line for line in out.splitlines() if line.strip().startswith(file))
    assert code == 1 and "different" in out and "largest |difference| 0," not in line + ","


def test_a_branched_run_is_compared_on_the_steps_both_logged(tmp_path, capsys):
    code, out = run_main(tmp_path, capsys, steps=(100, 150))
    assert code == 0 and "log.csv: 2 shared steps (3 and 2 rows)" in out


def test_tolerance(tmp_path, capsys):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", fg_ari=0.5 + 1e-9)
    with script_module("compare_runs") as script:
        assert script.main([str(a), str(b), "--atol", "1e-6"]) == 0
        assert script.compare_tables(pd.read_csv(a / "eval.csv"), pd.read_csv(b / "eval.csv")) == (1, pytest.approx(1e-9))
        assert script.compare_metrics({"x": np.nan}, {"x": np.nan}) == (1, 0.0)


def test_bad_folders_get_one_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with script_module("compare_runs") as script:
        with pytest.raises(SystemExit) as missing:
            script.main([str(tmp_path / "nope"), str(tmp_path / "empty")])
        assert missing.value.code == 2 and "nope is not a folder; fix: pass a run folder" in capsys.readouterr().err
        with pytest.raises(SystemExit) as empty:
            script.main([str(tmp_path / "empty"), str(tmp_path / "empty")])
        assert empty.value.code == 2 and "holds any of log.csv" in capsys.readouterr().err
