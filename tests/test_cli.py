import json
import shutil
from pathlib import Path

import pytest
import torch

from ssync_lib.__main__ import build_parser, main
from ssync_lib.config import get_config
from ssync_lib.data import synthetic


def test_train_arguments_parse():
    args = build_parser().parse_args(["train", "--profile", "smoke", "--objective", "ssync", "--set", "max_steps=5",
                                      "model.num_slots=3", "--name", "x", "--resume"])
    assert (args.profile, args.objective, args.name, args.resume) == ("smoke", "ssync", "x", True)
    assert args.overrides == ["max_steps=5", "model.num_slots=3"] and args.init_from is None


@pytest.mark.parametrize("command", ["train", "evaluate --run r", "experiment"])
def test_data_root_is_a_data_root_override(command):
    args = build_parser().parse_args([*command.split(), "--set", "max_steps=5", "--data-root", "/data/movi_c"])
    assert args.overrides == ["max_steps=5", "data.root=/data/movi_c"]
    assert build_parser().parse_args(command.split()).overrides == []  # no --data-root, no override


@pytest.mark.parametrize("argv", [
    ["evaluate"],  # neither --run nor --checkpoint
    ["evaluate", "--run", "a", "--checkpoint", "b"],  # both
    ["train", "--objective", "srl"],  # not an objective
    ["train", "--profile", "gpu"],  # not a profile
    [],  # no command
])
def test_bad_command_lines_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(argv)
    assert err.value.code == 2 and "usage:" in capsys.readouterr().err


def test_train_then_evaluate_from_the_command_line(tmp_path, capsys):
    data, runs = tmp_path / "data", tmp_path / "runs"
    synthetic.generate_from_config(get_config("smoke", {"data.root": str(data)}), workers=1, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--profile", "smoke", "--objective", "ssync", "--name", "cli", "--no-progress",
                     "--set", f"data.root={data}", f"train.run_root={runs}", "max_steps=4"]) == 0
        trained = json.loads((runs / "cli" / "metrics.json").read_text())
        assert trained["config"]["objective"]["name"] == "ssync" and trained["step"] == 4
        capsys.readouterr()
        assert main(["evaluate", "--run", str(runs / "cli"), "--no-progress", "--max-videos", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    printed = json.loads(capsys.readouterr().out)
    assert printed["num_videos"] == 2
    # two videos are not the run's own evaluation: beside its metrics.json, which keeps the training's (issue 32)
    assert json.loads((runs / "cli" / "metrics-first2.json").read_text())["metrics"] == printed
    assert json.loads((runs / "cli" / "metrics.json").read_text()) == trained


def published_sweep(root: Path) -> Path:
    """The sweep folder ``<root>/experiments/x`` holding two published synth-easy runs (baseline, SSync; 5 slots)."""
    published = Path(__file__).parents[1] / "results" / "synth-easy" / "runs"
    folder = root / "experiments" / "x"
    for run in ("baseline-s5-seed0", "ssync-s5-seed0"):
        shutil.copytree(published / run, folder / run)
    return folder


def test_experiment_summary_prints_the_chosen_columns(tmp_path, capsys):
    folder = published_sweep(tmp_path)
    assert main(["experiment", "--summary-only", "--name", "x", "--set", f"train.run_root={tmp_path}",
                 "--columns", "decoder/video/fg_ari,pseudo_labels/merged_slots"]) == 0
    header, _, *rows = capsys.readouterr().out.strip().splitlines()
    assert header == "| objective | slots | seeds | decoder fg_ari | merged_slots |"
    ssync = json.loads((folder / "ssync-s5-seed0" / "metrics.json").read_text())["metrics"]
    assert rows[1] == (f"| ssync | 5 | 1 | {100 * ssync['decoder/video/fg_ari']:.1f} | "
                       f"{ssync['pseudo_labels/merged_slots']:.1f} |")
    assert "decoder mbo" in (folder / "table.md").read_text()  # the written table keeps every column


def test_experiment_results_folder_restates_the_claims_from_its_summary(tmp_path, capsys):
    folder = published_sweep(tmp_path)
    assert main(["experiment", "--summary-only", "--name", "x", "--set", f"train.run_root={tmp_path}",
                 "--results", str(tmp_path / "published")]) == 0
    fg = {o: 100 * json.loads((folder / f"{o}-s5-seed0" / "metrics.json").read_text())["metrics"][
        "decoder/video/fg_ari"] for o in ("baseline", "ssync")}
    claims = (tmp_path / "published" / "claims.md").read_text()
    assert (f"5 slots (dense not run): FG-ARI: baseline {fg['baseline']:.1f} (one seed), "
            f"ssync {fg['ssync']:.1f} (one seed)") in claims
    assert "## Validation" in claims and "Held-out test split" not in claims  # synth-easy has no test split
