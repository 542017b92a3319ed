"""``experiment --test-split`` (lab/experiment/): every run scored on the held-out test split as well, inline or
afterwards with ``--summary-only``, ``test/`` columns in the summary, the per-run files published; one clear error
for a level without a test split; without the flag, summaries as before."""
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ssync_lib.__main__ import main
from ssync_lib.checkpoint import load_trained
from ssync_lib.config import resolve_path
from ssync_lib.errors import MissingInputError
from ssync_lib.evaluate import evaluate
from ssync_lib.lab.experiment import (COLUMN_SETS, METRIC_KEYS, SUMMARY_KEYS, TEST_KEYS, Sweep, markdown_table,
                                      plain_name, publish, run_sweep, score_finished, summarise)
from ssync_lib.run_log import read_metrics
from tests.helpers import exactly

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def level_with_test(tmp_path):
    """The smoke level with a held-out test split: its train and val shards, and as test/ its train shards (48
    whole videos, other than the 8 of val)."""
    smoke = resolve_path("data/smoke")
    root = tmp_path / "smoke-with-test"
    root.mkdir()
    shutil.copy2(smoke / "meta.json", root / "meta.json")
    for split, source in (("train", "train"), ("val", "val"), ("test", "train")):
        (root / split).symlink_to(smoke / source, target_is_directory=True)
    return root


def smoke_sweep(tmp_path: Path, root: Path | None = None, objectives=("baseline", "ssync")) -> Sweep:
    """A smoke sweep at 3 slots, seed 0, on ``root`` (default: the smoke data, which has no test split)."""
    return Sweep(profile="smoke", objectives=list(objectives), seeds=[0], slots=[3], name="t", branch=["ssync"],
                 overrides=[f"train.run_root={tmp_path}", "train.deterministic=true"]
                 + ([f"data.root={root}"] if root else []))


def test_the_sweep_scores_each_run_on_the_test_split(level_with_test, tmp_path):
    sweep = smoke_sweep(tmp_path, level_with_test)
    summary = run_sweep(sweep, progress=False, test_split=True)
    folder = sweep.folder()
    assert sorted(summary.run) == ["baseline-s3-seed0", "ssync-s3-seed0"]
    for run in summary.itertuples():
        run_dir = folder / run.run
        test = read_metrics(run_dir / "metrics-test.json")
        assert test["metrics"]["num_videos"] == 48 and read_metrics(run_dir / "metrics.json")["metrics"]["num_videos"] == 8
        # the same numbers as the model evaluated on the test split here
        model = load_trained(run_dir, objective=False).model
        cfg = sweep.config(run.objective, 0, 3)
        assert test["metrics"] == exactly(evaluate(model, cfg, "test", progress=False))
        row = summary.set_index("run").loc[run.run]
        assert [row[f"test/{k}"] for k in SUMMARY_KEYS] == exactly([test["metrics"].get(k, float("nan"))
                                                                     for k in SUMMARY_KEYS])
    assert (summary["test/decoder/video/fg_ari"] != summary["decoder/video/fg_ari"]).all()  # other videos
    assert (folder / "slot_robustness-test.png").stat().st_size > 0
    header = (folder / "table.md").read_text().splitlines()[0]
    assert "| decoder fg_ari |" in header and "| test/decoder fg_ari |" in header

    # a second call scores nothing again; a run whose last.pt is newer than its test metrics is scored again
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*/metrics-test.json")}
    run_sweep(sweep, progress=False, test_split=True)
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*/metrics-test.json")} == stamps
    last = folder / "ssync-s3-seed0" / "last.pt"
    later = stamps[folder / "ssync-s3-seed0" / "metrics-test.json"] + 10**9
    os.utime(last, ns=(later, later))
    assert score_finished(folder) == ["ssync-s3-seed0"]

    # the same runs summarised without the flag: the summary as before, no test columns
    plain = summarise(folder)
    assert not [c for c in plain.columns if c.startswith("test/")]
    pd.testing.assert_frame_equal(plain, summary[plain.columns])
    assert "test/" not in (folder / "table.md").read_text()


def test_summary_only_scores_finished_runs_and_publishes_their_test_metrics(level_with_test, tmp_path, capsys):
    sweep = smoke_sweep(tmp_path, level_with_test, objectives=["baseline"])
    before = run_sweep(sweep, progress=False)  # an older sweep: no test split scored
    folder = sweep.folder()
    assert not list(folder.glob("*/metrics-test.json")) and not [c for c in before.columns if c.startswith("test/")]
    results = tmp_path / "results"
    publish(folder, results, "python -m ssync_lib experiment")
    assert not list(results.glob("runs/*/metrics-test.json")) and not (results / "slot_robustness-test.png").exists()

    args = ["experiment", "--profile", "smoke", "--objectives", "baseline", "--seeds", "0", "--slots", "3",
            "--name", "t", "--no-progress", "--summary-only", "--test-split", "--results", str(results),
            "--columns", "metrics-test", "--set", f"train.run_root={tmp_path}", "train.deterministic=true",
            f"data.root={level_with_test}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test split: scoring baseline-s3-seed0" in out and "test/decoder fg_ari" in out
    scored = read_metrics(folder / "baseline-s3-seed0" / "metrics-test.json")["metrics"]
    summary = pd.read_csv(results / "summary.csv")
    assert summary.loc[0, "test/decoder/video/fg_ari"] == pytest.approx(scored["decoder/video/fg_ari"], rel=1e-12)
    assert summary[TEST_KEYS[:len(METRIC_KEYS)]].notna().all().all()
    published = json.loads((results / "runs" / "baseline-s3-seed0" / "metrics-test.json").read_text())
    assert published == json.loads((folder / "baseline-s3-seed0" / "metrics-test.json").read_text())
    assert (results / "slot_robustness-test.png").exists()
    # the val columns are the same as before the test split was scored
    pd.testing.assert_frame_equal(summary[before.columns], pd.read_csv(folder / "summary.csv")[before.columns])
    assert (summary[before.columns].drop(columns="branched_from").fillna(-1)
            == before.drop(columns="branched_from").fillna(-1)).all().all()


def test_a_level_without_a_test_split_gets_one_clear_error(tmp_path, capsys):
    sweep = smoke_sweep(tmp_path)  # data/smoke: train and val only
    with pytest.raises(MissingInputError, match=r"--test-split: .* data .*smoke has none \(no test shards") as err:
        run_sweep(sweep, progress=False, test_split=True)
    assert "leave --test-split out" in err.value.fix
    assert not sweep.folder().exists()  # nothing trained
    code = main(["experiment", "--profile", "smoke", "--objectives", "baseline", "--seeds", "0", "--slots", "3",
                 "--no-progress", "--summary-only", "--test-split", "--set", f"train.run_root={tmp_path}"])
    message = capsys.readouterr().err
    assert code == 2 and message.count("error:") == 1 and "Traceback" not in message
    assert f"{resolve_path('data/smoke')} has none" in message and "fix: leave --test-split out" in message


def test_test_columns_in_tables_read_as_their_validation_twins():
    summary = pd.DataFrame({"objective": ["ssync", "ssync"], "slots": [5, 5], "decoder/video/fg_ari": [0.4, 0.5],
                            "test/decoder/video/fg_ari": [0.3, 0.5], "test/merge_audit/pairs": [1.0, 2.0]})
    table = markdown_table(summary, ["decoder/video/fg_ari", "test/decoder/video/fg_ari", "test/merge_audit/pairs"],
                           plain=True)
    assert table.splitlines()[0] == ("| objective | slots | seeds | decoder FG-ARI | decoder FG-ARI (test) | "
                                     "merged pairs per window (test) |")
    assert table.splitlines()[2] == "| ssync | 5 | 2 | 45.0 ± 5.0 | 40.0 ± 10.0 | 1.5 ± 0.5 |"  # metrics in %
    assert plain_name("test/teaching/boundary/teacher_right_pct") == "boundary: teacher right (test)"
    assert COLUMN_SETS["metrics-test"] == ["test/" + c for c in COLUMN_SETS["metrics"]]
