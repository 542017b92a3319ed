import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ssync_lib.checkpoint import (FREE_KEYS, CheckpointMismatchError, config_changes, config_differences,
                                  load_checkpoint, load_module_state, remove_stale_tmp, rng_state, save_checkpoint,
                                  set_rng_state)
from ssync_lib.config import ObjectiveConfig, get_config, project_root
from ssync_lib.data import synthetic
from ssync_lib.objectives import OBJECTIVE_KEYS, OBJECTIVES
from ssync_lib.run_log import read_metrics
from ssync_lib.train import train
from tests.helpers import exactly


def _draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(1).tolist(), \
        [random.random() for _ in range(3)], random.gauss(0, 1)


def test_rng_states_survive_a_weights_only_file(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn(1)  # numpy caches the second Gaussian of a pair: part of the state
    random.gauss(0, 1)  # so does python's random
    save_checkpoint(tmp_path / "c.pt", {"format": 1, "rng": [rng_state()]})
    expected = _draws()
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"][0])
    assert _draws() == expected


def test_roundtrip_of_modules_and_optimiser(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.pt", {"format": 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                        "config": {"train": {"lr": 0.1, "name": ""}}, "step": 7})
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["step"] == 7 and state["config"]["train"]["lr"] == 0.1
    assert torch.equal(state["model"]["weight"], model.weight)
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], opt.state[model.weight]["exp_avg"])
    assert list(tmp_path.iterdir()) == [tmp_path / "c.pt"]  # no temporary file left


class _FailsWhenPickled:
    def __reduce__(self):
        raise OSError("disk full (simulated)")


def test_failure_while_saving_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"format": 1, "step": 3, "w": torch.ones(10)})
    before = path.read_bytes()
    # a large tensor is written first, then pickling raises half-way through the file
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"format": 1, "step": 6, "w": torch.zeros(100_000), "boom": _FailsWhenPickled()})
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 3
    assert list(tmp_path.iterdir()) == [path]


def test_stale_temporary_files_are_removed(tmp_path):
    (tmp_path / ".tmp-last.pt.1234").write_bytes(b"half a checkpoint")
    (tmp_path / "last.pt").write_bytes(b"x")
    assert [p.name for p in remove_stale_tmp(tmp_path)] == [".tmp-last.pt.1234"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_load_refuses_arbitrary_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "obj": _Plain()}, path)
    with pytest.raises(RuntimeError, match="evil.pt.*weights_only"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"step": 1}, tmp_path / "other.pt")
    with pytest.raises(RuntimeError, match="other.pt is not an ssync_lib checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


class _Plain:
    pass


def test_mismatched_state_names_keys_and_config_values():
    small, big = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)), nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 2))
    saved = {**small.state_dict(), "extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointMismatchError) as err:
        load_module_state(big, saved, what="model", path="runs/x/last.pt",
                          saved_config={"model": {"slot_dim": 8, "num_slots": 4}},
                          config={"model": {"slot_dim": 16, "num_slots": 4}})
    msg = str(err.value)
    assert "runs/x/last.pt" in msg and "shape of 0.weight: (8, 4) in checkpoint vs (16, 4) in model" in msg
    assert "unexpected in checkpoint: extra.weight" in msg and "model.slot_dim: 8 -> 16" in msg
    assert "num_slots" not in msg
    load_module_state(small, small.state_dict(), what="model", path="p")  # compatible: loads silently


def test_config_differences():
    a = {"profile": "smoke", "model": {"d": 1, "s": 2}, "train": {"lr": 0.1}}
    b = {"profile": "cpu", "model": {"d": 1, "s": 3}, "train": {"lr": 0.1}}
    assert config_differences(a, b) == ["model.s: 2 -> 3", "profile: 'smoke' -> 'cpu'"]
    assert config_differences(a, b, sections=("train",)) == []


def _changes(saved: dict, requested: dict) -> list[str]:
    """``config_changes`` from a smoke run made with overrides ``saved`` to the smoke config with ``requested``."""
    return config_changes(get_config("smoke", saved).to_dict(), get_config("smoke", requested))


def test_a_run_keeps_its_objective_whatever_the_values_it_does_not_read():
    """A baseline run computes the same whatever SSync's or the dense alignment's values say: changing them is no
    change (resume, the sweep); its own values are, merge_iou too (its evaluation's pseudo-label statistics), and
    every value is on a change of objective (a branch), as before."""
    base, ssync, dense = ({"objective.name": name} for name in ("baseline", "ssync", "dense"))
    ssync_values = {"objective.ssync_warmup_frac": 0.625, "objective.w_ssync_enc": 0.0, "objective.w_ssync_dec": 0.0}
    dense_values = {"objective.dense_topk": 3, "objective.dense_from_frac": 0.5, "objective.w_redundancy": 0.0,
                    "objective.dense_tau": 0.2}
    assert _changes(base, {**base, **ssync_values, **dense_values}) == []
    assert _changes(base, {**base, **ssync_values, "objective.w_recon": 2.0, "objective.w_slot_contrast": 0.25,
                           "objective.slot_contrast_tau": 0.2, "objective.merge_iou": 0.5, "train.lr": 0.002}) == [
        "objective.merge_iou: 0.7 -> 0.5", "objective.slot_contrast_tau: 0.1 -> 0.2",
        "objective.w_recon: 1.0 -> 2.0", "objective.w_slot_contrast: 0.5 -> 0.25", "train.lr: 0.001 -> 0.002"]
    assert _changes(ssync, {**ssync, **ssync_values, **dense_values}) == [
        "objective.ssync_warmup_frac: 0.3 -> 0.625", "objective.w_ssync_dec: 1.0 -> 0.0",
        "objective.w_ssync_enc: 1.0 -> 0.0"]
    assert _changes(dense, {**dense, **ssync_values, **dense_values}) == [
        "objective.dense_from_frac: 0.2 -> 0.5", "objective.dense_tau: 0.1 -> 0.2", "objective.dense_topk: 2 -> 3",
        "objective.w_redundancy: 0.1 -> 0.0"]
    assert _changes(base, {**ssync, "objective.ssync_warmup_frac": 0.625, "objective.dense_topk": 3}) == [
        "objective.dense_topk: 2 -> 3", "objective.name: 'baseline' -> 'ssync'",
        "objective.ssync_warmup_frac: 0.3 -> 0.625"]
    # a run saved before a value existed: the value at its default, compared only when the objective reads it
    saved = get_config("smoke", ssync).to_dict()
    del saved["objective"]["ssync_warmup_frac"]
    assert config_changes(saved, get_config("smoke", {**ssync, "objective.ssync_warmup_frac": 0.5})) == [
        "objective.ssync_warmup_frac: 0.3 -> 0.5"]


@pytest.mark.parametrize("name", OBJECTIVES)
def test_each_objective_value_is_compared_exactly_when_the_objective_reads_it(name):
    for key, value in ObjectiveConfig().__dict__.items():
        if key == "name" or key in FREE_KEYS["objective"]:
            continue
        changed = _changes({"objective.name": name}, {"objective.name": name, f"objective.{key}": value + 1})
        assert bool(changed) == (key in OBJECTIVE_KEYS[name]), (key, changed)


# ----------------------------------------------------------------------------- bit-exact resume after SIGKILL

RESUME_SETTINGS = {"train.max_steps": 16, "train.ckpt_every": 4, "train.log_every": 1, "train.deterministic": True}


def _train_command(data_root, run_root, name):
    sets = [f"{k}={v}" for k, v in {**RESUME_SETTINGS, "data.root": data_root, "train.run_root": run_root}.items()]
    return [sys.executable, "-m", "ssync_lib", "train", "--profile", "smoke", "--name", name, "--no-progress",
            "--set", *sets]


def _last_logged_step(log) -> int:
    try:
        lines = log.read_text().splitlines()
        return int(lines[-1].split(",")[0]) if len(lines) > 1 else 0
    except (FileNotFoundError, ValueError, IndexError):  # not written yet, or a line half-written
        return 0


def test_run_killed_at_a_random_step_resumes_bit_identical(tmp_path):
    """An uninterrupted run against one SIGKILLed after a checkpoint and resumed with --resume:
    parameters, optimiser state, logged losses and final metrics agree bit for bit."""
    data_root, run_root = tmp_path / "data", tmp_path / "runs"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cfg = get_config("smoke", {**RESUME_SETTINGS, "data.root": str(data_root), "train.run_root": str(run_root),
                               "train.name": "uninterrupted"})
    synthetic.generate_from_config(cfg, workers=1, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1): same kernels, same bits
    try:
        reference = train(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)

    target = random.randint(5, 13)  # after the first checkpoint (step 4), before the end (16)
    stderr = open(tmp_path / "killed.stderr", "w")
    proc = subprocess.Popen(_train_command(data_root, run_root, "killed"), cwd=project_root(), env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr)
    log, deadline = run_root / "killed" / "log.csv", time.monotonic() + 300
    while proc.poll() is None and _last_logged_step(log) < target and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stderr.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "killed.stderr").read_text()[-3000:]
    killed_log = pd.read_csv(log)
    resumed_from = load_checkpoint(run_root / "killed" / "last.pt")["step"]
    assert 4 <= resumed_from < 16 and killed_log["step"].max() >= target, (target, resumed_from)

    subprocess.run(_train_command(data_root, run_root, "killed") + ["--resume"], cwd=project_root(), env=env,
                   check=True, capture_output=True)
    ours, theirs = load_checkpoint(run_root / "killed" / "last.pt"), load_checkpoint(reference.run_dir / "last.pt")
    assert ours["step"] == theirs["step"] == 16
    for part in ("model", "objective"):
        for key, value in theirs[part].items():
            assert torch.equal(ours[part][key], value), (part, key, target, resumed_from)
    for index, state in theirs["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(ours["optimizer"]["state"][index][key], value), (index, key)
    assert read_metrics(run_root / "killed" / "metrics.json")["metrics"] == exactly(reference.metrics)
    resumed_log = pd.read_csv(run_root / "killed" / "log.csv").drop(columns="sec_per_step")
    pd.testing.assert_frame_equal(resumed_log, reference.history.drop(columns="sec_per_step"), check_exact=True)


def test_load_trained_from_a_run_folder_or_a_file_with_overrides(tmp_path):
    """The one loader: a run folder means its last.pt; weights equal the saved ones, eval mode, the overrides in
    the config it returns; the objective's state too (dense alignment's projections); a mismatch names the keys."""
    from ssync_lib.checkpoint import FORMAT, load_trained, save_checkpoint
    from ssync_lib.models import create_model
    from ssync_lib.objectives import build_objective

    torch.manual_seed(0)
    cfg = get_config("smoke", {"objective.name": "dense"})
    model = create_model(cfg.model, cfg.data.input_size)
    objective = build_objective(cfg.objective, model.feature_dim, cfg.model.slot_dim, cfg.train.max_steps)
    path = save_checkpoint(tmp_path / "run" / "last.pt", {"format": FORMAT, "config": cfg.to_dict(), "step": 5,
                                                          "model": model.state_dict(),
                                                          "objective": objective.state_dict()})
    trained = load_trained(tmp_path / "run", {"objective.w_dense_dec": 0.5})
    assert trained.path == path and trained.step == 5 and trained.saved_config == cfg.to_dict()
    assert trained.cfg.objective.w_dense_dec == 0.5 and not trained.model.training and not trained.objective.training
    for saved, loaded in ((model, trained.model), (objective, trained.objective)):
        assert saved.state_dict().keys() == loaded.state_dict().keys()
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in saved.state_dict().items())
    assert load_trained(path, objective=False).objective is None
    with pytest.raises(CheckpointMismatchError, match="model.decoder_hidden"):
        load_trained(path, {"model.decoder_hidden": 16})
