"""Bad input through the public entry points (``python -m ssync_lib ...`` as ``main([...])``): one clear message
with its fix on stderr, exit status 2, and no file changed (hashed before and after). The catalogue with the
messages: docs/bad-input.md (issue 21)."""
import hashlib
import json
import math
import shlex
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ssync_lib.__main__ import main
from ssync_lib.config import get_config, project_root
from ssync_lib.data import DataWarning, synthetic
from ssync_lib.errors import UserInputError
from tests.helpers import hold_lock, poison_objective

SHIPPED = project_root() / "checkpoints" / "cpu"


def hashes(*folders: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for f in folders for p in sorted(Path(f).rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Smoke data and a finished 4-slot smoke run (Gaussian slot init: no parameter shape depends on the slot
    count) with a kept step-3 checkpoint, one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data, runs = tmp_path_factory.mktemp("smoke-data"), tmp_path_factory.mktemp("runs")
    synthetic.generate_from_config(get_config("smoke", {"data.root": str(data)}), workers=1, progress=False)
    assert main(["train", "--profile", "smoke", "--name", "four", "--no-progress", "--data-root", str(data),
                 "--set", f"train.run_root={runs}", "train.keep_every=3"]) == 0
    yield {"data": data, "runs": runs, "sets": ["--data-root", str(data), "--set", f"train.run_root={runs}"]}
    torch.set_num_threads(threads)


def refused(argv: list[str], capsys, *folders: Path) -> str:
    """Run the CLI, assert exit status 2, one message (no traceback) on stderr and no file changed in
    ``folders``; return the message."""
    before = hashes(*folders)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "fix: " in err, err
    assert hashes(*folders) == before
    return err


# ----------------------------------------------------------------------------- resume and branch

def test_resume_with_another_slot_count_is_refused_and_nothing_is_touched(smoke, capsys):
    run = smoke["runs"] / "four"
    err = refused(["train", "--profile", "smoke", "--name", "four", "--resume", "--no-progress", *smoke["sets"],
                   "num_slots=7"], capsys, run)
    assert "cannot resume" in err and "model.num_slots: 4 -> 7" in err and "--allow-config-change" in err
    assert sorted(p.name for p in run.iterdir() if p.name != "tb") == [
        "config.json", "eval.csv", "last.pt", "log.csv", "metrics.json", "step-0000003.pt", "step-0000006.pt"]


def test_resume_with_another_schedule_or_objective_is_refused(smoke, capsys):
    err = refused(["train", "--profile", "smoke", "--name", "four", "--resume", "--objective", "ssync", *smoke["sets"],
                   "train.max_steps=9"], capsys, smoke["runs"])
    assert "objective.name: 'baseline' -> 'ssync'" in err and "train.max_steps: 6 -> 9" in err


def test_branch_with_another_slot_count_is_refused_before_the_folder_exists(smoke, capsys):
    err = refused(["train", "--profile", "smoke", "--name", "seven", "--objective", "ssync", "--init-from",
                   str(smoke["runs"] / "four" / "step-0000003.pt"), *smoke["sets"], "num_slots=7"], capsys, smoke["runs"])
    assert "cannot branch from" in err and "model.num_slots: 4 -> 7" in err and "objective" not in err.split("fix:")[0]
    assert not (smoke["runs"] / "seven").exists()


def test_fresh_start_over_an_existing_run_and_resume_of_a_missing_one(smoke, capsys):
    err = refused(["train", "--profile", "smoke", "--name", "four", *smoke["sets"]], capsys, smoke["runs"])
    assert "already holds a checkpoint" in err and "--resume" in err
    err = refused(["train", "--profile", "smoke", "--name", "none", "--resume", *smoke["sets"]], capsys, smoke["runs"])
    assert "cannot resume" in err and "does not exist" in err


# ----------------------------------------------------------------------------- evaluate: where results go

def test_evaluating_a_shipped_checkpoint_on_other_data_keeps_the_shipped_metrics(smoke, tmp_path, capsys):
    ckpt = SHIPPED / "cpu-baseline-s5-seed0" / "last.pt"
    before = hashes(SHIPPED)
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--max-videos", "2", "--no-progress", "--data-root",
                 str(smoke["data"]), "--set", f"train.run_root={tmp_path}", "data.resolution=32", "data.num_frames=6"]) == 0
    assert hashes(SHIPPED) == before
    written = tmp_path / "evaluate" / "cpu" / "cpu-baseline-s5-seed0" / f"metrics-first2-data-{smoke['data'].name}.json"
    err = capsys.readouterr().err
    assert f"metrics written to {written}" in err and "never written over" in err and "other data" in err
    assert json.loads(written.read_text())["metrics"]["num_videos"] == 2


def test_out_over_a_shipped_file_is_refused(smoke, capsys):
    shipped_metrics = SHIPPED / "cpu-baseline-s5-seed0" / "metrics.json"
    err = refused(["evaluate", "--checkpoint", str(SHIPPED / "cpu-baseline-s5-seed0" / "last.pt"), "--out",
                   str(shipped_metrics), "--data-root", str(smoke["data"])], capsys, SHIPPED)
    assert "never written over" in err


def test_a_run_evaluated_on_other_data_writes_beside_its_metrics(smoke, tmp_path, capsys):
    run = smoke["runs"] / "four"
    other = tmp_path / "other-data"
    synthetic.generate_from_config(get_config("smoke", {"data.root": str(other), "data.synth_seed": 1}), workers=1,
                                   progress=False)
    own = (run / "metrics.json").read_bytes()
    assert main(["evaluate", "--run", str(run), "--max-videos", "2", "--no-progress", "--data-root", str(other),
                 "--set", "data.synth_seed=1"]) == 0
    assert (run / "metrics.json").read_bytes() == own
    beside = json.loads((run / "metrics-first2-data-other-data.json").read_text())
    assert beside["config"]["data"]["synth_seed"] == 1 and "data.synth_seed: 0 -> 1" in capsys.readouterr().err
    out = tmp_path / "chosen" / "m.json"
    assert main(["evaluate", "--run", str(run), "--max-videos", "1", "--no-progress", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"]["num_videos"] == 1 and (run / "metrics.json").read_bytes() == own


def test_metrics_json_is_strict_json_with_null_for_nan(smoke):
    """Strict readers (json with parse_constant refusing NaN) read every metrics.json; a metric without any valid
    clip is null and its _skipped count says how many were skipped."""
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    record = json.loads((smoke["runs"] / "four" / "metrics.json").read_text(), parse_constant=refuse)
    nulls = [k for k, v in record["metrics"].items() if v is None]
    assert all(not isinstance(v, float) or math.isfinite(v) for v in record["metrics"].values())
    for key in nulls:
        if f"{key}_valid" in record["metrics"]:
            assert record["metrics"][f"{key}_valid"] == 0


# ----------------------------------------------------------------------------- the CLI's handling of bad input

def test_debug_switches_show_the_traceback(smoke, monkeypatch):
    argv = ["train", "--profile", "smoke", "--name", "four", *smoke["sets"]]
    with pytest.raises(FileExistsError, match="already holds a checkpoint"):
        main(["--traceback", *argv])
    monkeypatch.setenv("SSYNC_DEBUG", "1")
    with pytest.raises(FileExistsError):
        main(argv)


@pytest.mark.parametrize("sets,expected", [
    (["num_slots=0"], "model.num_slots=0: must be an integer >= 1"),
    (["num_slots=-3"], "model.num_slots=-3: must be an integer >= 1"),
    (["batch_size=0", "lr=-1"], "train.batch_size=0: must be an integer >= 1\n  train.lr=-1.0: must be a number > 0"),
    (["max_steps=abc"], "config key 'max_steps': 'abc' is not an integer"),
    (["model.num_slot=3"], "unknown config key 'model.num_slot'; did you mean 'model.num_slots'?"),
    (["num_slot=3"], "unknown config key 'num_slot'; did you mean 'model.num_slots'?"),
    (["slot_init=random"], "model.slot_init='random': must be one of ['learned', 'gaussian']"),
    (["slot_dim=15"], "model.slot_dim=15 is not divisible by model.predictor_heads=4"),
    (["model.backbone=resnet18"], "model.backbone='resnet18' is a timm resnet model, not a Vision Transformer"),
    (["device=gpu"], "train.device='gpu': expected auto, cpu, cuda or cuda:<index>"),
    (["objective.name=srl"], "unknown objective.name 'srl'"),
    (["max_steps"], "override 'max_steps' is not of the form key=value"),
])
def test_bad_config_values_are_refused_before_anything_is_written(smoke, capsys, sets, expected):
    err = refused(["train", "--profile", "smoke", "--name", "new", *smoke["sets"], *sets], capsys, smoke["runs"])
    assert expected in err
    assert not (smoke["runs"] / "new").exists()


def test_backbone_refusal_lists_the_supported_families(smoke, capsys):
    err = refused(["train", "--profile", "smoke", "--name", "new", *smoke["sets"], "model.backbone=resnet18"], capsys,
                  smoke["runs"])
    assert "vit_*" in err and "deit_*" in err and "--set model.backbone=vit_small_patch14_dinov2" in err


def test_one_slot_trains_with_a_warning(smoke):
    with pytest.warns(UserWarning, match="model.num_slots=1: a single slot takes every pixel"):
        assert main(["train", "--profile", "smoke", "--name", "one", "--no-progress", *smoke["sets"], "num_slots=1",
                     "max_steps=2"]) == 0


@pytest.mark.parametrize("content,suffix,expected", [
    (b"not a checkpoint at all", ".pt", "is not a weights-only torch file (UnpicklingError"),
    (b"\x01\x00", ".safetensors", "is not a readable .safetensors file"),
    (None, ".pth", "is not a weights-only torch file"),  # pickled code
    (b"", ".npz", "unsupported checkpoint type '.npz'"),
])
def test_weights_files_of_the_wrong_format_are_named(smoke, tmp_path, capsys, content, suffix, expected):
    path = tmp_path / f"weights{suffix}"
    if content is None:
        torch.save({"patch_embed.proj.weight": torch.zeros(1), "hook": Exotic()}, path)
    else:
        path.write_bytes(content)
    err = refused(["train", "--profile", "smoke", "--name", "new", *smoke["sets"], f"model.weights={path}"], capsys,
                  smoke["runs"], tmp_path)
    assert str(path) in err and expected in err and "weights_only=False" not in err


class Exotic:
    pass


def test_checkpoints_that_are_not_ours_or_missing(smoke, tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "obj": Exotic()}, evil)
    err = refused(["evaluate", "--checkpoint", str(evil)], capsys, tmp_path)
    assert "cannot load checkpoint" in err and "Unsupported global" in err and "weights_only=False" not in err
    assert "evaluate --official" in err
    err = refused(["evaluate", "--checkpoint", str(tmp_path / "missing.pt")], capsys, tmp_path)
    assert "missing.pt does not exist" in err
    err = refused(["train", "--profile", "smoke", "--name", "b", "--init-from", str(tmp_path / "missing.pt"),
                   *smoke["sets"]], capsys, smoke["runs"])
    assert "missing.pt does not exist" in err and not (smoke["runs"] / "b").exists()


def test_missing_data_folder(smoke, tmp_path, capsys):
    err = refused(["train", "--profile", "smoke", "--name", "new", "--data-root", str(tmp_path / "nowhere"), "--set",
                   f"train.run_root={smoke['runs']}"], capsys, smoke["runs"])
    assert "nowhere" in err and "does not exist" in err and "make_synthetic.py --profile smoke" in err


def test_nan_loss_stops_with_one_message(smoke, capsys, monkeypatch):
    poison_objective(monkeypatch, "recon", at_step=0)
    capsys.readouterr()
    assert main(["train", "--profile", "smoke", "--name", "nan", "--no-progress", *smoke["sets"]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: step 0: loss term 'recon' is nan")
    assert "no checkpoint was written yet" in err and "fix: lower train.lr" in err


@pytest.mark.parametrize("args,expected", [
    (["--seeds", "0,x"], "--seeds: 'x' is not an integer"),
    (["--seeds", "0,-1"], "--seeds: -1 is below 0"),
    (["--slots", "4,0"], "--slots: 0 is below 1"),
    (["--slots", "4,four"], "--slots: 'four' is not an integer"),
    (["--objectives", "baseline,srl"], "--objectives: 'srl' is not one of baseline, dense, ssync"),
    (["--branch", "baseline"], "--branch: 'baseline' is not one of ssync, dense"),
    (["--columns", "decoder/video/fgari"], "--columns: 'decoder/video/fgari' is not one of"),
    (["--name", "a/b"], "--name: 'a/b' is not a plain folder name"),
    (["--seeds", "1,1"], "--seeds: '1,1' repeats a value"),
    (["--set", "num_slot=3"], "did you mean 'model.num_slots'?"),
])
def test_experiment_arguments_are_checked_with_their_name(smoke, tmp_path, capsys, args, expected):
    err = refused(["experiment", "--profile", "smoke", "--set", f"train.run_root={tmp_path}", *args], capsys, tmp_path)
    assert expected in err
    assert not (tmp_path / "experiments").exists()


# ----------------------------------------------------------------------------- data

def movi_data(root: Path, size=(32, 32), count=6, empty_masks=False) -> Path:
    """MOVi-layout shards written by the project (with checksums): ``count`` train and val videos of 6 frames."""
    from ssync_lib.data.movi import make_sample, write_shards

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        samples = []
        for i in range(count):
            video = rng.integers(0, 255, (6, *size, 3), dtype=np.uint8)
            masks = np.zeros((6, *size), np.uint8)
            if not empty_masks:
                masks[:, : size[0] // 2, : size[1] // 2] = 1
            samples.append(make_sample(f"{i:06d}", video, masks))
        write_shards(samples, root / split)
    return root


def evaluate_on(smoke, root: Path, out: Path) -> list[str]:
    return ["evaluate", "--run", str(smoke["runs"] / "four"), "--no-progress", "--out", str(out), "--data-root",
            str(root), "--set", "data.source=movi"]


def test_non_square_frames_warn_that_they_are_stretched(smoke, tmp_path):
    root = movi_data(tmp_path / "wide", size=(32, 48))
    with pytest.warns(DataWarning, match=r"frames are 32x48 \(height x width\), not square: frames and masks are "
                                         r"resized to 32x32 .*aspect ratio is not kept"):
        assert main(evaluate_on(smoke, root, tmp_path / "m.json")) == 0


def test_training_reads_the_intact_videos_of_a_shard_damaged_in_the_middle(smoke, tmp_path):
    root = movi_data(tmp_path / "damaged")
    shard = root / "train" / "shard-000000.tar"
    with tarfile.open(shard) as tar:
        member = tar.getmember("000002.video.npy")
    raw = bytearray(shard.read_bytes())
    raw[member.offset: member.offset_data] = b"x" * (member.offset_data - member.offset)  # its headers destroyed
    shard.write_bytes(bytes(raw))
    with pytest.warns(DataWarning, match=r"shard-000000\.tar: truncated or corrupt at bytes \d+-\d+: 5 intact videos "
                                         r"read, 1 damaged videos skipped \(000002\)"):
        assert main(["train", "--profile", "smoke", "--name", "damaged", "--no-progress", "--data-root", str(root),
                     "--set", f"train.run_root={tmp_path}", "data.source=movi", "batch_size=2", "max_steps=2"]) == 0


def test_a_corrupt_array_in_an_intact_tar_is_refused_by_its_checksum(smoke, tmp_path, capsys):
    root = movi_data(tmp_path / "corrupt")
    shard = root / "val" / "shard-000000.tar"
    with tarfile.open(shard) as tar:
        member = tar.getmember("000001.video.npy")
    raw = bytearray(shard.read_bytes())
    raw[member.offset_data + member.size // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    err = refused(evaluate_on(smoke, root, tmp_path / "m.json"), capsys, root, smoke["runs"])
    assert "sample '000001': 'video.npy' frame 2: sha256" in err and "does not match" in err
    assert not (tmp_path / "m.json").exists()


def test_masks_without_objects_give_null_metrics_with_the_skipped_count(smoke, tmp_path):
    root = movi_data(tmp_path / "empty", empty_masks=True)
    out = tmp_path / "m.json"
    with pytest.warns(DataWarning, match="masks have no object"):
        assert main(evaluate_on(smoke, root, out)) == 0
    text = out.read_text()
    assert "NaN" not in text
    metrics = json.loads(text)["metrics"]
    assert metrics["decoder/video/fg_ari"] is None and metrics["decoder/video/fg_ari_skipped"] == 6
    assert metrics["decoder/video/fg_ari_valid"] == 0
    from ssync_lib.run_log import read_metrics
    assert math.isnan(read_metrics(out)["metrics"]["decoder/video/fg_ari"])


# ----------------------------------------------------------------------------- one writer per run folder (issue 32)

def test_a_second_writer_of_a_run_folder_is_refused_with_the_holders_pid(smoke, capsys):
    from ssync_lib.run_lock import RunLock

    run = smoke["runs"] / "four"
    proc = hold_lock(run)
    try:
        for extra in (["--resume"], [], ["--resume", "--set", "max_steps=9"]):
            err = refused(["train", "--profile", "smoke", "--name", "four", "--no-progress", *extra, *smoke["sets"]],
                          capsys, smoke["runs"])
            assert f"run folder {run} is in use by another process: PID {proc.pid}: holder-cmd --name four" in err
        # evaluate writes nothing into a run folder that a training is writing (its metrics.json comes at the end)
        err = refused(["evaluate", "--run", str(run), "--data-root", str(smoke["data"]), "--max-videos", "1"],
                      capsys, smoke["runs"])
        assert f"cannot write {run / 'metrics-first1.json'}: run folder {run} is in use by another process: " \
               f"PID {proc.pid}" in err
    finally:
        proc.kill()
        proc.wait()
    with RunLock(run) as lock:  # the holder was killed (SIGKILL): its lock is stale and the next writer takes it
        assert f"PID {__import__('os').getpid()}" in (run / ".lock").read_text() and lock.fd is not None
    assert not (run / ".lock").exists()


def test_a_refused_start_leaves_no_run_folder_and_a_killed_save_leaves_no_temporary_file(smoke, tmp_path):
    runs = tmp_path / "runs"
    (runs / "killed").mkdir(parents=True)
    stale = runs / "killed" / ".tmp-last.pt.99999"  # a first save killed with SIGKILL
    stale.write_bytes(b"\0" * 1000)
    assert main(["train", "--profile", "smoke", "--name", "killed", "--no-progress", "--data-root",
                 str(smoke["data"]), "--set", f"train.run_root={runs}", "max_steps=2"]) == 0
    assert not stale.exists() and (runs / "killed" / "last.pt").exists() and not (runs / "killed" / ".lock").exists()
    assert main(["train", "--profile", "smoke", "--name", "new", "--data-root", str(smoke["data"]), "--set",
                 f"train.run_root={runs}", "slot_dim=15"]) == 2
    assert not (runs / "new").exists()


def test_a_run_name_with_a_path_is_refused(smoke, tmp_path, capsys):
    err = refused(["train", "--profile", "smoke", "--name", "../../x", "--data-root", str(smoke["data"]), "--set",
                   f"train.run_root={tmp_path / 'runs'}"], capsys, tmp_path)
    assert "train.name='../../x': must be a plain folder name" in err and not (tmp_path / "x").exists()


def test_ctrl_c_in_train_says_what_is_safe_and_how_to_resume(smoke, tmp_path, capsys, monkeypatch):
    import ssync_lib.train as train_module

    real = train_module.build_objective

    def interrupted_at_4(*args, **kwargs):
        objective = real(*args, **kwargs)
        forward = objective.forward

        def forward_or_ctrl_c(out, step):
            if step == 4:
                raise KeyboardInterrupt
            return forward(out, step)
        objective.forward = forward_or_ctrl_c
        return objective

    monkeypatch.setattr(train_module, "build_objective", interrupted_at_4)
    argv = ["train", "--profile", "smoke", "--name", "cc", "--no-progress", "--data-root", str(smoke["data"]),
            "--set", f"train.run_root={tmp_path}"]
    capsys.readouterr()
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"interrupted: interrupted at step 4 of 6 in {tmp_path / 'cc'}: the last checkpoint is "
                          f"{tmp_path / 'cc' / 'last.pt'} (step 3)") and "Traceback" not in err
    assert f"fix: resume with python -m ssync_lib {' '.join(argv)} --resume" in err
    assert not (tmp_path / "cc" / ".lock").exists()
    monkeypatch.setattr(train_module, "build_objective", real)
    assert main([*argv, "--resume"]) == 0


# ----------------------------------------------------------------------------- checkpoints (issue 32)

def copy_run(smoke, dest: Path, names=("last.pt", "step-0000003.pt", "config.json")) -> Path:
    dest.mkdir(parents=True)
    for name in names:
        (dest / name).write_bytes((smoke["runs"] / "four" / name).read_bytes())
    return dest


def test_nan_weights_are_named_with_the_last_finite_checkpoint(smoke, tmp_path, capsys):
    run = copy_run(smoke, tmp_path / "runs" / "nan")
    state = torch.load(run / "last.pt", weights_only=True)
    first = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][first] = state["model"][first] * math.nan
    torch.save(state, run / "last.pt")
    expected = (f"checkpoint {run / 'last.pt'} (step 6) holds NaN or infinite weights in 1 of "
                f"{len(state['model'])} tensors ({first})")
    good = f"the last checkpoint with finite weights, {run / 'step-0000003.pt'} (step 3)"
    err = refused(["evaluate", "--checkpoint", str(run / "last.pt"), "--data-root", str(smoke["data"])], capsys, run)
    assert expected in err and good in err
    sets = ["--data-root", str(smoke["data"]), "--set", f"train.run_root={tmp_path / 'runs'}"]
    err = refused(["train", "--profile", "smoke", "--name", "nan", "--resume", *sets], capsys, run)
    assert expected in err and good in err and "last good" not in err
    err = refused(["train", "--profile", "smoke", "--name", "branch", "--objective", "ssync", "--init-from",
                   str(run / "last.pt"), *sets], capsys, tmp_path)
    assert expected in err and not (tmp_path / "runs" / "branch").exists()
    (run / "step-0000003.pt").unlink()
    err = refused(["evaluate", "--checkpoint", str(run / "last.pt"), "--data-root", str(smoke["data"])], capsys, run)
    assert f"no checkpoint in {run} has finite weights" in err


@pytest.mark.parametrize("size", [0, 1000])
def test_a_truncated_checkpoint_is_called_truncated(smoke, tmp_path, capsys, size):
    path = tmp_path / "last.pt"
    path.write_bytes((smoke["runs"] / "four" / "last.pt").read_bytes()[:size])
    err = refused(["evaluate", "--checkpoint", str(path)], capsys, tmp_path)
    reason = "an empty file" if size == 0 else f"{size} bytes; RuntimeError: PytorchStreamReader failed"
    assert f"checkpoint {path} is truncated ({reason}" in err and "was cut short" in err


# ----------------------------------------------------------------------------- evaluate: never over a run's own (issue 32)

def test_a_partial_or_otherwise_configured_evaluation_writes_beside_the_runs_metrics(smoke, capsys):
    run = smoke["runs"] / "four"
    own = (run / "metrics.json").read_bytes()
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--max-videos", "1", "--no-progress"]) == 0
    assert (run / "metrics.json").read_bytes() == own
    assert json.loads((run / "metrics-first1.json").read_text())["metrics"]["num_videos"] == 1
    err = capsys.readouterr().err
    assert f"metrics written to {run / 'metrics-first1.json'} (another setting than the run's own evaluation: " \
           f"videos: all -> 1; its own metrics are kept)" in err
    assert main(["evaluate", "--run", str(run), "--max-videos", "1", "--no-progress", "--set", "model.iters=3"]) == 0
    beside = sorted(run.glob("metrics-first1-config-*.json"))
    assert len(beside) == 1 and (run / "metrics.json").read_bytes() == own
    assert "model.iters: 2 -> 3" in capsys.readouterr().err


@pytest.mark.parametrize("count", ["-1", "0"])
@pytest.mark.parametrize("out", [False, True])
def test_max_videos_below_one_is_refused(smoke, tmp_path, capsys, count, out):
    extra = ["--out", str(tmp_path / "F.json")] if out else []
    err = refused(["evaluate", "--run", str(smoke["runs"] / "four"), "--max-videos", count, *extra], capsys,
                  smoke["runs"], tmp_path)
    assert f"--max-videos {count}: must be an integer >= 1" in err and not (tmp_path / "F.json").exists()


@pytest.mark.parametrize("target,expected", [
    ("last.pt", "is an existing file inside the run folder"),
    ("metrics.json", "is an existing file inside the run folder"),
    ("notes.txt", "is not a .json file inside the run folder"),
    ("", "is an existing folder"),
])
def test_out_never_writes_over_a_runs_files_or_a_folder(smoke, capsys, target, expected):
    run = smoke["runs"] / "four"
    out = run / target if target else run
    err = refused(["evaluate", "--run", str(run), "--out", str(out), "--no-progress"], capsys, smoke["runs"])
    assert expected in err and not (run / "notes.txt").exists()


def test_out_as_a_new_json_inside_the_run_is_allowed(smoke, tmp_path):
    run = copy_run(smoke, tmp_path / "copy")
    assert main(["evaluate", "--run", str(run), "--out", str(run / "mine.json"), "--max-videos", "1",
                 "--no-progress", "--data-root", str(smoke["data"])]) == 0
    assert json.loads((run / "mine.json").read_text())["metrics"]["num_videos"] == 1


def deny_writes(monkeypatch, folder: Path):
    """Make ``folder`` read-only: chmod, and for root (whom permission bits do not stop) os.access says so."""
    import os

    folder.chmod(0o555)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == folder and mode & os.W_OK
                        else real(p, mode, **kw))


def test_a_read_only_run_folder_or_a_full_disk_is_refused_before_the_work(smoke, tmp_path, capsys, monkeypatch):
    import shutil as shutil_module
    import ssync_lib.evaluate as evaluate_module

    run = copy_run(smoke, tmp_path / "runs" / "ro")
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: pytest.fail("evaluated before the check"))
    deny_writes(monkeypatch, run)
    try:
        err = refused(["evaluate", "--run", str(run), "--data-root", str(smoke["data"])], capsys, run)
        assert f"cannot write {run / 'metrics.json'}: the folder {run} is read-only" in err
        err = refused(["train", "--profile", "smoke", "--name", "ro", "--resume", "--set", "max_steps=9",
                       "train.run_root=" + str(tmp_path / "runs"), "--data-root", str(smoke["data"]),
                       "--allow-config-change"], capsys, run)
        assert f"the folder {run} is read-only" in err or f"cannot write in the run folder {run}" in err
    finally:
        run.chmod(0o755)
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: shutil_module._ntuple_diskusage(10**9, 10**9, 1000))
    err = refused(["evaluate", "--run", str(run), "--data-root", str(smoke["data"]), "--out", str(tmp_path / "m.json")],
                  capsys, run)
    assert "the disk of" in err and "is full (0.0 MiB free" in err and not (tmp_path / "m.json").exists()
    err = refused(["train", "--profile", "smoke", "--name", "full", "--data-root", str(smoke["data"]), "--set",
                   f"train.run_root={tmp_path / 'runs'}"], capsys, tmp_path)
    assert f"cannot write {tmp_path / 'runs' / 'full' / 'last.pt'}: the disk of" in err and "another train.run_root" in err
    assert not (tmp_path / "runs" / "full").exists()  # nothing written, no run folder left


# ----------------------------------------------------------------------------- data folders (issue 32)

def test_a_data_root_that_is_empty_a_file_unreadable_or_relative(smoke, tmp_path, capsys, monkeypatch):
    sets = ["--set", f"train.run_root={tmp_path / 'runs'}"]
    empty = tmp_path / "empty"
    empty.mkdir()
    err = refused(["train", "--profile", "cpu", "--name", "x", "--data-root", str(empty), *sets], capsys, tmp_path)
    assert f"synthetic data folder {empty} is empty" in err and "--profile cpu" in err
    err = refused(["train", "--profile", "smoke", "--name", "x", "--data-root", str(empty), *sets], capsys, tmp_path)
    assert "make_synthetic.py --profile smoke" in err
    (empty / "junk").write_text("x")
    err = refused(["train", "--profile", "smoke", "--name", "x", "--data-root", str(empty), *sets], capsys, tmp_path)
    assert "holds no meta.json of a generated data set (it holds junk)" in err
    afile = tmp_path / "afile"
    afile.write_text("x")
    err = refused(["train", "--profile", "smoke", "--name", "x", "--data-root", str(afile), *sets], capsys, tmp_path)
    assert "is a file, not a folder" in err
    monkeypatch.chdir(tmp_path)
    err = refused(["train", "--profile", "smoke", "--name", "x", "--data-root", "empty", *sets], capsys, tmp_path)
    assert f"a relative data.root is relative to the project root {project_root()}, not to the current folder" in err
    assert f"--data-root {empty.resolve()}" in err
    import os
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == smoke["data"] else real(p, mode, **kw))
    err = refused(["evaluate", "--run", str(smoke["runs"] / "four"), "--data-root", str(smoke["data"])], capsys,
                  smoke["runs"])
    assert "cannot be read (permission denied)" in err
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- sweeps (issue 32)

def test_a_sweep_rerun_with_another_config_is_refused_or_trained_again(smoke, tmp_path, capsys):
    args = ["experiment", "--profile", "smoke", "--objectives", "baseline", "--seeds", "0", "--branch", "",
            "--no-progress", "--data-root", str(smoke["data"]), "--set", f"train.run_root={tmp_path}", "max_steps=2"]
    assert main(args) == 0
    folder = tmp_path / "experiments" / "smoke"
    run = folder / "baseline-s4-seed0"
    err = refused([*args, "max_steps=4"], capsys, folder)
    assert f"1 run(s) of the sweep {folder} were made with another config" in err
    assert "baseline-s4-seed0: train.max_steps: 2 -> 4" in err and "--on-change rerun" in err
    (run / "metrics.json").unlink()  # an interrupted run answers the same
    err = refused([*args, "max_steps=4"], capsys, folder)
    assert "baseline-s4-seed0: train.max_steps: 2 -> 4" in err
    assert main([*args, "max_steps=4", "--on-change", "rerun"]) == 0
    assert json.loads((run / "metrics.json").read_text())["config"]["train"]["max_steps"] == 4
    assert (folder / "replaced" / "baseline-s4-seed0-0" / "last.pt").exists()
    # a partial metrics.json (written by evaluate before issue 32) is left out of the summary, with a warning
    record = json.loads((run / "metrics.json").read_text())
    record["metrics"]["num_videos"] = 1
    (run / "metrics.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="a partial evaluation, left out of the summary"):
        assert main([*args, "max_steps=4", "--summary-only"]) == 2  # no finished run left: refused


# ----------------------------------------------------------------------------- evaluate --official (issue 32)

LIKE_FIXTURE = ["model.backbone=vit_small_patch14_dinov2", "model.feature_layer=last",
                'model.backbone_kwargs={"embed_dim": 48, "depth": 2, "num_heads": 3}', "model.slot_dim=32",
                "model.slot_init=learned", "model.decoder_hidden=64", "model.decoder_layers=3", "data.input_size=56"]


def public_state() -> dict:
    with np.load(Path(__file__).parent / "fixtures" / "ssync_parity.npz") as z:
        return {k[len("state/"):]: torch.from_numpy(z[k]) for k in z.files if k.startswith("state/")}


def official_file(tmp_path: Path, kind: str) -> Path:
    from ssync_lib.models import create_model

    state = public_state()
    path = tmp_path / ("public.safetensors" if kind == "safetensors" else "public.ckpt")
    if kind == "ours":
        model = create_model(get_config("smoke").model, input_size=32)
        torch.save(model.state_dict(), path)
    elif kind == "project":
        path.write_bytes((project_root() / "checkpoints" / "cpu" / "cpu-baseline-s5-seed0" / "last.pt").read_bytes())
    elif kind == "shapes":
        torch.save({"state_dict": dict(state, **{"initializer.slots": torch.zeros(1, 7, 32)})}, path)
    elif kind == "missing":
        torch.save({"state_dict": {k: v for k, v in state.items() if not k.startswith("decoder.")}}, path)
    elif kind == "safetensors":
        path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    elif kind == "pickled":
        torch.save({"state_dict": state, "hparams": Exotic()}, path)
    elif kind == "profile":
        torch.save({"state_dict": state}, path)
    return path


@pytest.mark.parametrize("kind,expected", [
    ("ours", "is a state dict of this library's model"),
    ("project", "is a checkpoint written by this project (python -m ssync_lib train), not a public one"),
    ("shapes", "shapes that differ (check model.num_slots / slot_dim / backbone / decoder_hidden / decoder_layers / "
               "data.input_size): initializer.slots (1, 7, 32) -> slot_init.slots (1, 4, 32)"),
    ("missing", "model keys the file does not fill: decoder.pos_emb"),
    ("safetensors", "is not a readable .safetensors file (SafetensorError"),
    ("pickled", "torch.load(weights_only=True) refused it (UnpicklingError"),
    ("profile", "shapes that differ"),
])
def test_malformed_official_checkpoints_get_one_message(smoke, tmp_path, capsys, kind, expected):
    path = official_file(tmp_path, kind)
    sets = [] if kind == "profile" else LIKE_FIXTURE
    err = refused(["evaluate", "--official", str(path), "--profile", "smoke", "--no-progress", "--data-root",
                   str(smoke["data"]), "--set", "model.num_slots=4", *sets], capsys, tmp_path)
    assert expected in err and str(path) in err
    assert "slot_init=gaussian" not in err and "fewer ViT blocks" not in err  # hints only where the file says so
    # the smoke profile's Gaussian init against the file's learned slots: the one hint that holds
    assert ("set model.slot_init=learned" in err) == (kind == "profile")


# ----------------------------------------------------------------------------- python -m ssync_lib.lab.bench (issue 32)

@pytest.mark.parametrize("argv,expected", [
    (["gradients", "--checkpoint", "W/missing.pt"], "checkpoint W/missing.pt does not exist"),
    (["alignment", "--sizes", "0"], "sizes [0] are not positive multiples of frames=4"),
    (["alignment", "--sizes", "-5"], "sizes [-5] are not positive multiples of frames=4"),
    (["alignment", "--sizes", "100000000", "--budget-gb", "8"], "size 100000000 (batch 1): the inputs alone take "
                                                               "more than the memory budget of 8 GB"),
    (["metrics", "--batch", "-1"], "--batch -1: must be an integer >= 1"),
    (["step", "--profile", "smoke", "--batch", "0"], "--batch 0: must be an integer >= 1"),
    (["labels", "--batch", "0"], "--batch 0: must be an integer >= 1"),
    (["labels", "--repeats", "0"], "--repeats 0: must be an integer >= 1"),
    (["metrics", "--out", "W/afile"], "--out W/afile is a file; it takes a folder"),
])
def test_the_benchmarks_answer_bad_input_with_one_message(tmp_path, capsys, argv, expected):
    from ssync_lib.lab.bench.cli import main as bench_main

    (tmp_path / "afile").write_text("x")
    argv = [a.replace("W/", f"{tmp_path}/") for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "bench")]
    before = hashes(tmp_path)
    capsys.readouterr()
    assert bench_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "fix: " in err, err
    assert expected.replace("W/", f"{tmp_path}/") in err and hashes(tmp_path) == before
    with pytest.raises(UserInputError):
        bench_main(["--traceback", *argv])


# ----------------------------------------------------------------------------- notebooks/run_all.py (issue 32)

def run_all_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all", project_root() / "notebooks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv,expected", [
    (["-p", "steps"], "-p steps: not of the form name=value"),
    (["--only", "99"], "--only 99: no notebook in"),
])
def test_run_all_answers_bad_arguments_with_one_message(tmp_path, capsys, argv, expected):
    run_all = run_all_module()
    assert run_all.main(["--profile", "smoke", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "fix: " in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # checked before anything is written
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--profile", "nope"])
    assert exit_info.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_run_all_reports_a_notebook_stopped_by_bad_input_without_a_traceback(tmp_path, capsys, monkeypatch):
    import papermill

    run_all = run_all_module()

    def stopped(*args, **kwargs):
        raise papermill.PapermillExecutionError(cell_index=3, exec_count=2, source="train(cfg)", ename="ConfigError",
                                                evalue="invalid config (profile 'smoke'):\n  model.num_slots=0: must be "
                                                       "an integer >= 1\nfix: change these values", traceback=[])
    monkeypatch.setattr(papermill, "execute_notebook", stopped)
    assert run_all.main(["--profile", "smoke", "--only", "02", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ConfigError: invalid config") and "notebook cell 2" in err and "Traceback" not in err
    with pytest.raises(papermill.PapermillExecutionError):
        run_all.main(["--traceback", "--profile", "smoke", "--only", "02", "--out", str(tmp_path)])


# ----------------------------------------------------------------------------- scripts/* (issue 32)

def load_script(name: str):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(f"script_{name}", project_root() / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize("script,argv,expected", [
    ("level_probes", ["--profile", "nope"], "invalid choice: 'nope'"),
    ("level_probes", ["--steps", "0"], "--steps 0: must be an integer >= 1"),
    ("browser_check", ["--profile", "nope"], "--profile nope: not one of"),
    ("browser_check", ["--notebook", "W/none.ipynb"], "--notebook W/none.ipynb does not exist"),
])
def test_scripts_answer_bad_arguments_with_one_message(tmp_path, capsys, script, argv, expected):
    argv = [a.replace("W/", f"{tmp_path}/") for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        load_script(script).main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and expected.replace("W/", f"{tmp_path}/") in err and "Traceback" not in err


def test_level_probes_answer_bad_input_from_the_library_with_one_message(smoke, tmp_path, capsys, monkeypatch):
    probes = load_script("level_probes")
    def probe_with_a_typo(*args):
        return get_config("smoke", ["num_slot=3"])  # raises ConfigKeyError, as a probe's bad override would
    monkeypatch.setattr(probes, "run_probe", probe_with_a_typo)
    with pytest.raises(SystemExit) as exit_info:
        probes.main(["--out", str(tmp_path), "--steps", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: unknown config key 'num_slot'") and "fix: " in err


# ----------------------------------------------------------------------------- input size, shipped runs, sweeps (issue 32)

def test_an_input_smaller_than_a_patch_is_refused_and_one_not_a_multiple_warns(smoke, capsys):
    err = refused(["train", "--profile", "smoke", "--name", "small", *smoke["sets"], "data.input_size=8"], capsys,
                  smoke["runs"])
    assert "data.input_size=8 is smaller than the backbone's patch size 16" in err
    assert not (smoke["runs"] / "small").exists()
    with pytest.warns(UserWarning, match=r"data.input_size=40 is not a multiple of the backbone's patch size 16: the "
                                         r"2x2 patch grid covers 32 px, the last 8 px of each side are never seen"):
        assert main(["train", "--profile", "smoke", "--name", "forty", "--no-progress", *smoke["sets"],
                     "data.input_size=40", "max_steps=1"]) == 0


def test_resuming_a_shipped_run_is_refused(capsys):
    err = refused(["train", "--profile", "cpu", "--name", "cpu-baseline-s5-seed0", "--resume", "--set",
                   f"train.run_root={SHIPPED}"], capsys, SHIPPED)
    assert f"run folder {SHIPPED / 'cpu-baseline-s5-seed0'} is inside checkpoints/" in err
    assert "training never writes there" in err and "--init-from" in err


def test_ctrl_c_in_a_sweep_says_to_run_it_again(smoke, tmp_path, capsys, monkeypatch):
    import ssync_lib.train as train_module

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_module, "_train", ctrl_c)
    argv = ["experiment", "--profile", "smoke", "--objectives", "baseline", "--seeds", "0", "--branch", "",
            "--no-progress", "--data-root", str(smoke["data"]), "--set", f"train.run_root={tmp_path}"]
    capsys.readouterr()
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted: stopped by Ctrl-C") and "Traceback" not in err
    assert f"fix: continue the sweep with the same command (finished runs are kept, an interrupted one resumes): " \
           f"python -m ssync_lib {shlex.join(argv)}" in err  # --branch '' quoted
    assert not (tmp_path / "experiments" / "smoke" / "baseline-s4-seed0").exists()  # lock released, no half folder


# ----------------------------------------------------------------------------- timm weights offline (issue 32)

def fake_hub_cache(root: Path, repo: str, filename: str, state: dict) -> Path:
    """A Hugging Face cache holding ``repo``'s ``filename`` (the layout huggingface_hub writes)."""
    from safetensors.torch import save_file

    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / filename))
    return snapshot / filename


def test_timm_weights_come_from_the_cache_first_and_offline_fails_at_once(smoke, tmp_path, capsys, monkeypatch):
    import timm
    from huggingface_hub import constants

    from ssync_lib.models.encoder import create_vit

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    real = timm.create_model

    def no_download(name, pretrained=False, **kwargs):
        assert not pretrained or "pretrained_cfg_overlay" in kwargs, "asked the hub"
        return real(name, pretrained=pretrained, **kwargs)
    monkeypatch.setattr(timm, "create_model", no_download)
    err = refused(["train", "--profile", "smoke", "--name", "timm", *smoke["sets"], "model.weights=timm"], capsys,
                  smoke["runs"])
    assert "pretrained weights for 'vit_small_patch16_224.dino' (Hugging Face hub 'timm/vit_small_patch16_224.dino') " \
           "are not available (HF_HUB_OFFLINE is set and they are not cached)" in err
    import ssync_lib.models.encoder as encoder_module

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # online, but the hub cannot be reached
    monkeypatch.setattr(encoder_module, "weights_host_reachable", lambda name: False)
    err = refused(["train", "--profile", "smoke", "--name", "timm", *smoke["sets"], "model.weights=timm"], capsys,
                  smoke["runs"])
    assert "are not available (not cached, and Hugging Face hub 'timm/vit_small_patch16_224.dino' cannot be reached " \
           "(no network?))" in err
    weights = real("vit_small_patch16_224.dino", pretrained=False, num_classes=0, img_size=32, depth=1).state_dict()
    weights = {k: torch.randn_like(v) for k, v in weights.items()}
    fake_hub_cache(tmp_path / "hub", "timm/vit_small_patch16_224.dino", "model.safetensors", weights)
    vit = create_vit("vit_small_patch16_224.dino", "timm", 32, depth=1)
    assert torch.equal(vit.state_dict()["blocks.0.attn.qkv.weight"], weights["blocks.0.attn.qkv.weight"])


def test_a_disk_that_fills_during_training_stops_with_the_last_checkpoint(smoke, tmp_path, capsys, monkeypatch):
    import errno
    import ssync_lib.checkpoint.training_state as checkpoint_module  # where save_training_state saves

    real = checkpoint_module.save_checkpoint

    def full_at_step_6(path, state):
        if state["step"] == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, state)
    monkeypatch.setattr(checkpoint_module, "save_checkpoint", full_at_step_6)
    capsys.readouterr()
    assert main(["train", "--profile", "smoke", "--name", "full", "--no-progress", "--data-root", str(smoke["data"]),
                 "--set", f"train.run_root={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: step 6: cannot write in {tmp_path / 'full'} (OSError: No space left on device); "
                          f"the last checkpoint is {tmp_path / 'full' / 'last.pt'} (step 3)") and "--resume" in err
    assert torch.load(tmp_path / "full" / "last.pt", weights_only=True)["step"] == 3


def test_ctrl_c_message_of_other_commands_that_resume():
    import argparse

    from ssync_lib.__main__ import interrupted_message

    args = argparse.Namespace(command="pretrain", resume=False)  # before its loop (in it: test_pretrain.py)
    text = interrupted_message(KeyboardInterrupt(), args, ["pretrain", "--profile", "cpu_movi"])
    assert text == "stopped by Ctrl-C\nfix: run it again: python -m ssync_lib pretrain --profile cpu_movi"
    args = argparse.Namespace(command="evaluate")
    assert interrupted_message(KeyboardInterrupt(), args, ["evaluate"]).endswith("run it again: python -m ssync_lib "
                                                                                  "evaluate")


def test_two_real_trainings_of_one_run_at_once_one_is_refused(smoke, tmp_path, capsys):
    """The issue's case itself: a training runs (a child process); the same command, and a --resume, started while
    it runs are refused with its PID and command; the first trains on undisturbed and its files are its own."""
    import os
    import subprocess
    import sys
    import time

    argv = ["train", "--profile", "smoke", "--name", "twice", "--no-progress", "--data-root", str(smoke["data"]),
            "--set", f"train.run_root={tmp_path}", "max_steps=400", "ckpt_every=50", "log_every=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(project_root()))
    child = subprocess.Popen([sys.executable, "-m", "ssync_lib", *argv], env=env, cwd=project_root(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = tmp_path / "twice"
    try:
        deadline = time.monotonic() + 120
        while not (run / "log.csv").exists() and time.monotonic() < deadline:  # it holds the lock and trains
            time.sleep(0.2)
        assert (run / "log.csv").exists() and child.poll() is None
        for extra in ([], ["--resume"]):
            capsys.readouterr()
            assert main([*argv, *extra]) == 2
            err = capsys.readouterr().err
            assert f"run folder {run} is in use by another process: PID {child.pid}: " in err
            assert "-m ssync_lib train --profile smoke --name twice" in err
        assert child.poll() is None  # still training, undisturbed
    finally:
        child.kill()
        child.wait()
    steps = [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps))  # one writer: no step twice, none going backwards


@pytest.mark.parametrize("argv,expected", [
    (["--profile", "nope"], "unknown profile 'nope'"),
    (["--profile", "smoke", "data.num_slot=3"], "unknown config key 'data.num_slot'"),
    (["--profile", "smoke", "--root", "W/afile/data"], "cannot write W/afile/data/meta.json: W/afile is a file"),
    (["--profile", "smoke", "--root", "W/foreign"], "holds train/ or val/ but no synthetic meta.json"),
])
def test_make_synthetic_answers_bad_input_with_one_message(tmp_path, capsys, monkeypatch, argv, expected):
    import runpy
    import sys

    (tmp_path / "afile").write_text("x")
    (tmp_path / "foreign" / "train").mkdir(parents=True)
    argv = [a.replace("W/", f"{tmp_path}/") for a in argv]
    monkeypatch.setattr(sys, "argv", ["make_synthetic.py", *argv, "--workers", "1"])
    before = hashes(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(project_root() / "data_scripts" / "make_synthetic.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert expected.replace("W/", f"{tmp_path}/") in err and hashes(tmp_path) == before
