"""`python -m ssync_lib pretrain` at smoke size: the run folder, bit-exact resume after SIGKILL, torchrun on gloo,
the exported weights in the encoder, collapse detection, bad input, and the pieces of the method against plain
references."""
import json
import math
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

from ssync_lib.__main__ import main
from ssync_lib.checkpoint import load_checkpoint
from ssync_lib.config import get_config, project_root
from ssync_lib.data import denormalize, synthetic
from ssync_lib.errors import TrainingCollapseError
from ssync_lib.models.encoder import FrozenViT
from ssync_lib.pretrain import get_pretrain_config, pretrain
from ssync_lib.pretrain.config import DinoConfig
from ssync_lib.pretrain.dino import DinoLoss, teacher_temp_at
from ssync_lib.pretrain.features import feature_sets, pretrained_encoder
from ssync_lib.pretrain.views import block_mask, make_views
from tests.helpers import hold_lock

ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Smoke data in a temporary folder, runs beside it, one thread (results are compared bit for bit)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data = tmp_path_factory.mktemp("smoke-data")
    synthetic.generate_from_config(get_config("smoke", {"data.root": str(data)}), workers=1, progress=False)
    yield {"data.root": str(data), "train.run_root": str(tmp_path_factory.mktemp("runs"))}
    torch.set_num_threads(threads)


def _cfg(smoke, **overrides):
    return get_pretrain_config("smoke", {**smoke, **overrides})


@pytest.fixture(scope="module")
def base_run(smoke):
    return pretrain(_cfg(smoke, **{"train.name": "base"}), progress=False)


# ----------------------------------------------------------------------------- views

def test_views_depend_on_seed_step_and_clip_only():
    d = DinoConfig(local_crops=2, local_size=16)
    clips = torch.randn(3, 4, 3, 32, 32)
    both = make_views(clips, [5, 9, 2], step=7, seed=0, dcfg=d, patch_size=4)
    alone = make_views(clips[1:2], [9], step=7, seed=0, dcfg=d, patch_size=4)
    assert both.globals_.shape == (6, 3, 32, 32) and both.locals_.shape == (6, 3, 16, 16)
    assert both.masks.shape == (6, 8, 8) and both.masks.dtype == torch.bool
    for v in range(2):  # row v * B + b
        assert torch.equal(both.globals_[v * 3 + 1], alone.globals_[v])
        assert torch.equal(both.masks[v * 3 + 1], alone.masks[v])
        assert torch.equal(both.locals_[v * 3 + 1], alone.locals_[v])
    other = make_views(clips[1:2], [9], step=8, seed=0, dcfg=d, patch_size=4)
    assert not torch.equal(other.globals_, alone.globals_)


@pytest.mark.parametrize("temporal", [True, False])
def test_temporal_views_take_the_global_crops_from_two_frames(temporal):
    """Frames of one flat grey level each (no jitter): a global crop's value names its frame."""
    d = DinoConfig(local_crops=0, temporal=temporal, jitter_prob=0.0, gray_prob=0.0)
    clips = 0.1 * torch.arange(4.0).view(1, 4, 1, 1, 1).expand(8, 4, 3, 32, 32).contiguous()  # B T 3 S S
    views = make_views(clips, list(range(8)), step=0, seed=0, dcfg=d, patch_size=4)
    frames = views.globals_.mean((1, 2, 3)).view(2, 8) / 0.1  # the frame of each crop
    assert torch.allclose(frames, frames.round(), atol=1e-4)
    frames = frames.round()
    assert bool((frames[0] != frames[1]).all()) == temporal and bool((frames[0] == frames[1]).all()) != temporal


def test_block_mask_covers_about_the_ratio():
    rng = np.random.default_rng(0)
    for ratio in (0.1, 0.3, 0.5):
        shares = [block_mask(rng, 16, ratio).mean() for _ in range(50)]
        assert ratio - 0.02 <= np.mean(shares) <= ratio + 0.15, (ratio, np.mean(shares))


# ----------------------------------------------------------------------------- the losses

def test_dino_and_ibot_losses_match_plain_loops():
    torch.manual_seed(0)
    d = DinoConfig(out_dim=7, patch_out_dim=5)
    loss = DinoLoss(d)
    loss.centre.normal_()
    loss.patch_centre.normal_()
    centre, patch_centre = loss.centre.clone(), loss.patch_centre.clone()
    B, L, N = 3, 2, 4
    masks = torch.zeros(2 * B, 2, 2, dtype=torch.bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[4, 0, 1] = True  # crop 0: 2 patches, crop 4: 1 patch
    M = int(masks.sum())
    s_cls, t_cls = torch.randn((2 + L) * B, 7), torch.randn(2 * B, 7)
    s_patch, t_patch = torch.randn(M, 5), torch.randn(M, 5)
    out = loss(s_cls, s_patch, t_cls, t_patch, masks, step=10, max_steps=100)
    tau = teacher_temp_at(10, 100, d)

    pairs, total = 0, 0.0
    for a in range(2):
        for v in range(2 + L):
            if v == a:
                continue
            for b in range(B):
                p = torch.softmax((t_cls[a * B + b] - centre[0]) / tau, -1)
                total += -(p * torch.log_softmax(s_cls[v * B + b] / d.student_temp, -1)).sum()
            pairs += 1
    torch.testing.assert_close(out.terms["dino"], total / (pairs * B))

    ce = [-(torch.softmax((t_patch[i] - patch_centre[0]) / tau, -1)
            * torch.log_softmax(s_patch[i] / d.student_temp, -1)).sum() for i in range(M)]
    torch.testing.assert_close(out.terms["ibot"], ((ce[0] + ce[1]) / 2 + ce[2]) / 2)  # per crop, then over crops
    torch.testing.assert_close(loss.centre, 0.9 * centre + 0.1 * t_cls.mean(0, keepdim=True))


def test_teacher_mutual_information_is_zero_for_both_kinds_of_collapse():
    d = DinoConfig(out_dim=16, patch_out_dim=4, teacher_temp=0.04, warmup_teacher_temp=0.04)
    masks = torch.ones(8, 1, 1, dtype=torch.bool)
    s, sp = torch.randn(12, 16), torch.randn(8, 4)

    def mi(t_cls):
        return float(DinoLoss(d)(s, sp, t_cls, torch.randn(8, 4), masks, 0, 10).monitors["teacher_mi"])

    assert abs(mi(torch.zeros(8, 16))) < 1e-6  # uniform teacher
    assert abs(mi(torch.zeros(8, 16).index_fill_(1, torch.tensor([3]), 50.0))) < 1e-6  # one prototype for all
    assert mi(torch.eye(16)[:8] * 50) > math.log(8) - 1e-3  # a different prototype per crop: log(batch)


# ----------------------------------------------------------------------------- the loop

def test_smoke_run_writes_its_folder_and_weights_the_encoder_reads(base_run):
    run = base_run.run_dir
    assert {"config.json", "log.csv", "last.pt", "vit.safetensors", "vit.json"} <= {p.name for p in run.iterdir()}
    log = pd.read_csv(run / "log.csv")
    assert list(log["step"]) == [1, 2, 3, 4, 5, 6]
    for column in ("loss", "dino", "ibot", "teacher_entropy", "teacher_mi", "kl", "kl_patch", "lr", "momentum"):
        assert log[column].notna().all(), column
    state = load_checkpoint(run / "last.pt")
    assert state["kind"] == "pretrain" and state["step"] == 6
    enc = pretrained_encoder(run / "vit.safetensors", "last")  # the encoder's own loading (model.weights=file)
    images = torch.randn(2, 3, 32, 32)
    vit = base_run.teacher.vit  # the exported network is the teacher
    with torch.no_grad():
        x = vit.norm_pre(vit._pos_embed(vit.patch_embed(images)))
        expected = vit.blocks(x)[:, 1:]  # last block, before the final norm, CLS dropped
    torch.testing.assert_close(enc(images), expected)
    assert not torch.equal(base_run.teacher.vit.blocks[0].attn.qkv.weight, base_run.student.vit.blocks[0].attn.qkv.weight)


def test_a_relative_weights_path_is_relative_to_the_project_root(base_run, tmp_path, monkeypatch):
    """A shipped file named relative to the repository (checkpoints/...) loads from any working folder."""
    folder = project_root() / "runs" / "test-pretrain-relative"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for name in ("vit.safetensors", "vit.json"):
            (folder / name).write_bytes((base_run.run_dir / name).read_bytes())
        monkeypatch.chdir(tmp_path)
        meta = json.loads((folder / "vit.json").read_text())
        enc = FrozenViT(meta["model.backbone"], weights="runs/test-pretrain-relative/vit.safetensors",
                        input_size=32, **meta["model.backbone_kwargs"])  # the encoder's own loading, cwd elsewhere
        images = torch.randn(1, 3, 32, 32)
        torch.testing.assert_close(enc(images), pretrained_encoder(base_run.run_dir / "vit.safetensors")(images))
    finally:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


def test_run_killed_at_a_random_step_resumes_bit_identical(smoke, tmp_path):
    sets = {**smoke, "train.run_root": str(tmp_path), "train.max_steps": 12, "train.ckpt_every": 3,
            "train.deterministic": True}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = pretrain(get_pretrain_config("smoke", {**sets, "train.name": "uninterrupted"}), progress=False)
    finally:
        torch.set_num_threads(threads)
    command = [sys.executable, "-m", "ssync_lib", "pretrain", "--profile", "smoke", "--name", "killed",
               "--no-progress", "--set", *[f"{k}={v}" for k, v in sets.items()]]
    target = random.randint(4, 10)  # after the first checkpoint (3), before the end (12)
    proc = subprocess.Popen(command, cwd=project_root(), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log, deadline = tmp_path / "killed" / "log.csv", time.monotonic() + 300
    while proc.poll() is None and _last_step(log) < target and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-3000:]
    resumed_from = load_checkpoint(tmp_path / "killed" / "last.pt")["step"]
    assert 3 <= resumed_from < 12, (target, resumed_from)
    subprocess.run(command + ["--resume"], cwd=project_root(), env=ENV, check=True, capture_output=True)
    ours, theirs = load_checkpoint(tmp_path / "killed" / "last.pt"), load_checkpoint(reference.run_dir / "last.pt")
    assert ours["step"] == theirs["step"] == 12
    for part in ("student", "teacher", "loss"):
        for key, value in theirs[part].items():
            assert torch.equal(ours[part][key], value), (part, key, target, resumed_from)
    for index, state in theirs["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(ours["optimizer"]["state"][index][key], value), (index, key)
    resumed = pd.read_csv(tmp_path / "killed" / "log.csv").drop(columns="sec_per_step")
    pd.testing.assert_frame_equal(resumed, reference.history.drop(columns="sec_per_step"), check_exact=True)


def _last_step(log) -> int:
    try:
        lines = log.read_text().splitlines()
        return int(lines[-1].split(",")[0]) if len(lines) > 1 else 0
    except (FileNotFoundError, ValueError, IndexError):
        return 0


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(smoke, tmp_path):
    """The views are drawn per clip, the centres and monitors averaged over processes: 2 x batch 2 under torchrun
    computes what 1 x batch 4 does, up to float rounding."""
    sets = {**smoke, "train.run_root": str(tmp_path), "train.deterministic": True}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = pretrain(get_pretrain_config("smoke", {**sets, "train.name": "one", "train.batch_size": 4}),
                       progress=False)
    finally:
        torch.set_num_threads(threads)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "ssync_lib", "pretrain", "--profile", "smoke", "--name", "two", "--no-progress",
                           "--set", *[f"{k}={v}" for k, v in {**sets, "train.batch_size": 2}.items()]],
                          cwd=project_root(), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    two = load_checkpoint(tmp_path / "two" / "last.pt")
    assert two["world_size"] == 2 and two["step"] == 6
    for part, module in (("student", one.student), ("teacher", one.teacher)):
        for key, value in module.state_dict().items():
            # Adam divides each gradient by its own magnitude, so elements whose gradient is ~0 move by float
            # rounding noise of size ~lr (1e-3), which legitimately differs between 1 and 2 processes
            torch.testing.assert_close(two[part][key], value, rtol=0, atol=1e-3, msg=f"{part} {key}")
    log_one, log_two = one.history, pd.read_csv(tmp_path / "two" / "log.csv")
    assert list(log_two["step"]) == list(log_one["step"]) == [1, 2, 3, 4, 5, 6]
    for column in ("loss", "dino", "ibot", "teacher_entropy", "teacher_mi", "kl", "kl_patch"):
        np.testing.assert_allclose(log_two[column][0], log_one[column][0], rtol=1e-5, err_msg=column)  # same weights
        np.testing.assert_allclose(log_two[column], log_one[column], rtol=2e-3, err_msg=column)


def test_a_collapsed_teacher_stops_the_run_with_a_message(smoke):
    cfg = _cfg(smoke, **{"train.name": "collapse", "dino.collapse_mi": 1e9, "dino.collapse_from_frac": 0.5,
                         "dino.collapse_patience": 2})
    with pytest.raises(TrainingCollapseError) as err:
        pretrain(cfg, progress=False)
    msg = str(err.value)
    assert "step 4: the DINO teacher has collapsed" in msg and "dino.collapse_mi=1000000000.0 for 2 log rows" in msg
    assert "last checkpoint is" in msg and "(step 3)" in msg and "fix:" in msg


# ----------------------------------------------------------------------------- bad input

def test_bad_input_gets_one_message(smoke, tmp_path, capsys, base_run):
    cases = [
        (["pretrain", "--profile", "smoke", "--set", f"data.root={tmp_path / 'nope'}"], "does not exist"),
        (["pretrain", "--profile", "smoke", "--set", "dino.mask_prb=0.5"], "did you mean 'dino.mask_prob'"),
        (["pretrain", "--profile", "movi_c"], "no pretraining recipe for profile 'movi_c'"),
        (["pretrain", "--profile", "smoke", "--set", "dino.local_size=10", *[f"{k}={v}" for k, v in smoke.items()]],
         "multiples of the ViT's patch size 4"),
        (["pretrain", "--profile", "smoke", "--resume", "--name", "none", *["--set", f"train.run_root={tmp_path}"]],
         "cannot resume"),
        (["features", "--weights", str(tmp_path / "vit.safetensors")], "expected the .safetensors file"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err and "Traceback" not in err, (argv, err)
    # a config that changes the run is refused on resume, naming the key
    assert main(["pretrain", "--profile", "smoke", "--name", "base", "--resume", "--set",
                 *[f"{k}={v}" for k, v in smoke.items()], "dino.out_dim=32"]) == 2
    assert "dino.out_dim: 64 -> 32" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="train.max_steps: 6 -> 4"):  # allowed: a warning, and nothing to do
        pretrain(_cfg(smoke, **{"train.name": "base", "train.max_steps": 4}), resume=True, progress=False,
                 allow_config_change=True)


# ----------------------------------------------------------------------------- feature quality

def test_pixel_feature_sets_match_plain_loops(base_run):
    sets = feature_sets("smoke", base_run.run_dir / "vit.safetensors")
    assert list(sets)[:3] == ["pixels: mean colour", "pixels: flat patch", "random: smoke"]
    assert [k for k in sets if k.startswith("pretrained")] == ["pretrained: patch_embed", "pretrained: block 0",
                                                              "pretrained: block 1"]
    video = torch.randn(2, 3, 32, 32)
    pixels = denormalize(video).numpy()  # T H W 3
    p = 16  # smoke: patch 16 at 32 px
    mean = sets["pixels: mean colour"](video).numpy()
    flat = sets["pixels: flat patch"](video).numpy()
    for t in range(2):
        for i in range(2):
            for j in range(2):
                block = pixels[t, i * p:(i + 1) * p, j * p:(j + 1) * p]  # p p 3
                np.testing.assert_allclose(mean[t, i, j], block.mean((0, 1)), rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(np.sort(flat[t, i, j]), np.sort(block.ravel()), rtol=1e-6)
    block1 = FrozenViT(**{"name": "vit_small_patch16_224.dino", "weights": str(base_run.run_dir / "vit.safetensors"),
                          "feature_layer": 1, "input_size": 32, "patch_size": 4, "embed_dim": 32, "depth": 2,
                          "num_heads": 2})
    torch.testing.assert_close(sets["pretrained: block 1"](video), block1(video).reshape(2, 8, 8, 32))


def test_features_command_writes_the_table_and_figures(base_run, smoke, tmp_path, capsys):
    out = tmp_path / "features"
    assert main(["features", "--profile", "smoke", "--weights", str(base_run.run_dir / "vit.safetensors"),
                 "--levels", smoke["data.root"], "--max-videos", "2", "--out", str(out), "--no-progress"]) == 0
    rows = pd.read_csv(out / "features.csv")
    assert len(rows) == 2 * 6 and rows["fg_ari"].between(-1, 1).all()
    table = pd.read_csv(out / "table.csv", index_col=0)
    assert list(table.index) == list(dict.fromkeys(rows["features"]))
    level = os.path.basename(smoke["data.root"])
    assert (out / f"attention-{level}.png").stat().st_size > 0 and (out / f"pca-{level}.png").stat().st_size > 0
    assert "pretrained: block 1" in capsys.readouterr().out


def test_export_writes_weights_json_and_curves_from_last_pt(base_run, smoke, tmp_path, capsys):
    out = tmp_path / "shipped" / "vit-smoke.safetensors"
    assert main(["pretrain", "--profile", "smoke", "--name", "base", "--export", str(out), "--set",
                 *[f"{k}={v}" for k, v in smoke.items()]]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["step"] == 6 and meta["model.weights"] == str(out) and meta["model.feature_layer"] == "last"
    assert out.with_name("vit-smoke-curves.png").stat().st_size > 0
    images = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(pretrained_encoder(out)(images),
                               pretrained_encoder(base_run.run_dir / "vit.safetensors")(images))
    assert str(out) in capsys.readouterr().out


# ----------------------------------------------------------------------------- one writer, Ctrl-C (as train)

def test_a_second_pretrain_of_a_busy_run_folder_is_refused_with_the_holders_pid(smoke, capsys):
    run = __import__("pathlib").Path(smoke["train.run_root"]) / "busy"
    sets = ["--set", *[f"{k}={v}" for k, v in smoke.items()]]
    proc = hold_lock(run, command="python -m ssync_lib pretrain --name busy")
    try:
        for extra in ([], ["--resume"]):
            assert main(["pretrain", "--profile", "smoke", "--name", "busy", "--no-progress", *extra, *sets]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"error: run folder {run} is in use by another process: PID {proc.pid}: python -m "
                                  f"ssync_lib pretrain --name busy") and "--resume" in err, err
        # --export would write vit.safetensors into the folder that the run exports into at its end
        assert main(["pretrain", "--profile", "smoke", "--name", "busy", "--export", *sets]) == 2
        err = capsys.readouterr().err
        assert f"cannot write {run / 'vit.safetensors'}: run folder {run} is in use by another process" in err
        assert "--export OUT" in err
    finally:
        proc.kill()
        proc.wait()
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written by the refused ones


def test_ctrl_c_in_the_loop_says_where_the_checkpoint_is_and_the_resume_continues(smoke, tmp_path, capsys,
                                                                                   monkeypatch, base_run):
    import ssync_lib.pretrain.loop as loop
    from ssync_lib.errors import RunBusyError
    from ssync_lib.run_lock import RunLock

    run = tmp_path / "cc"
    real = loop.make_views

    def views_or_ctrl_c(video, index, step, *args):
        if step == 4:  # after the checkpoint of step 3 (smoke: ckpt_every 3 of 6)
            with pytest.raises(RunBusyError):  # the loop holds the folder's lock
                RunLock(run).acquire()
            raise KeyboardInterrupt
        return real(video, index, step, *args)

    monkeypatch.setattr(loop, "make_views", views_or_ctrl_c)
    argv = ["pretrain", "--profile", "smoke", "--name", "cc", "--no-progress", "--set",
            *[f"{k}={v}" for k, v in {**smoke, "train.run_root": str(tmp_path)}.items()]]
    capsys.readouterr()
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err == (f"interrupted: interrupted at step 4 of 6 in {run}: the last checkpoint is {run / 'last.pt'} "
                   f"(step 3), written whole (atomic save)\nfix: resume with python -m ssync_lib "
                   f"{' '.join(argv)} --resume\n"), err
    assert load_checkpoint(run / "last.pt")["step"] == 3 and not (run / ".lock").exists()
    assert not (run / "vit.safetensors").exists()
    monkeypatch.setattr(loop, "make_views", real)
    assert main([*argv, "--resume"]) == 0  # the command the message gives
    ours, theirs = load_checkpoint(run / "last.pt"), load_checkpoint(base_run.run_dir / "last.pt")
    assert ours["step"] == theirs["step"] == 6 and (run / "vit.safetensors").exists()
    for part in ("student", "teacher", "loss"):  # the same run as the uninterrupted one (one thread, CPU)
        for key, value in theirs[part].items():
            assert torch.equal(ours[part][key], value), (part, key)


def test_ctrl_c_before_the_first_checkpoint_says_to_start_again(smoke, tmp_path, capsys, monkeypatch):
    import ssync_lib.pretrain.loop as loop

    def ctrl_c(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "make_views", ctrl_c)
    argv = ["pretrain", "--profile", "smoke", "--name", "early", "--no-progress", "--set",
            *[f"{k}={v}" for k, v in {**smoke, "train.run_root": str(tmp_path)}.items()]]
    capsys.readouterr()
    assert main(argv) == 130
    assert capsys.readouterr().err == (f"interrupted: interrupted at step 0 of 6 in {tmp_path / 'early'}: no "
                                       f"checkpoint was written yet\nfix: run it again: python -m ssync_lib "
                                       f"{' '.join(argv)}\n")
    assert not (tmp_path / "early" / "last.pt").exists() and not (tmp_path / "early" / ".lock").exists()


# ----------------------------------------------------------------------------- notebook 01: what the encoder sees

def _flat_squares(num_frames: int = 3, shift: int = 0) -> dict:
    """A 64 px clip (the shipped ViT's input size, patch 4): two flat-coloured squares aligned to the 4 px patch
    grid on a grey floor, normalised as the readers normalise; masks (T, 64, 64) ids 1 and 2."""
    from ssync_lib.data.common import preprocess_video

    frames = np.full((num_frames, 64, 64, 3), 90, np.uint8)
    masks = np.zeros((num_frames, 64, 64), np.int64)
    for t in range(num_frames):
        y = 8 + 4 * t + shift
        frames[t, y:y + 16, 8:24], masks[t, y:y + 16, 8:24] = (220, 30, 30), 1
        frames[t, 36:52, 40 - shift:56 - shift], masks[t, 36:52, 40 - shift:56 - shift] = (30, 60, 220), 2
    return {"video": preprocess_video(frames, 64, "bilinear"), "masks": torch.from_numpy(masks), "id": f"sq{shift}"}


def test_encoder_views_score_both_encoders_on_the_same_clips():
    from ssync_lib.metrics import grid_fg_ari, kmeans_fg_ari, kmeans_labels
    from ssync_lib.pretrain.features import (LAST_BLOCK, SHIPPED_WEIGHTS, cls_attention, encoder_views,
                                             random_encoder)

    clips = [_flat_squares(3, 0), _flat_squares(4, 4)]
    views = encoder_views(clips, SHIPPED_WEIGHTS)
    assert list(views) == ["random: cpu", LAST_BLOCK]
    rand, last = views["random: cpu"], views[LAST_BLOCK]
    # flat colours on patch-aligned squares: the random patch embedding's clusters are the objects exactly
    assert rand.fg_ari == [1.0, 1.0] and rand.attention is None
    enc = pretrained_encoder(SHIPPED_WEIGHTS, "last")  # what model.feature_layer=last reads
    for clip, feats, labels, score in zip(clips, last.features, last.labels, last.fg_ari):
        torch.testing.assert_close(feats, enc(clip["video"]).reshape(len(clip["video"]), 16, 16, 64))
        assert torch.equal(labels, kmeans_labels(feats, 3, seed=0))  # K = 2 objects + 1
        assert score == grid_fg_ari(labels, clip["masks"]) == kmeans_fg_ari(feats, clip["masks"], 3, seed=0)
    torch.testing.assert_close(rand.features[1], random_encoder("cpu")(clips[1]["video"]).reshape(4, 16, 16, 64))
    middle = torch.stack([clips[0]["video"][1], clips[1]["video"][2]])  # T // 2 of 3 and of 4 frames
    torch.testing.assert_close(last.attention, cls_attention(enc, middle))
    assert last.attention.shape == (2, 2, 16, 16)
    small = {**clips[0], "video": clips[0]["video"][:, :, :32, :32]}
    with pytest.raises(ValueError, match=r"the clips are \[32\] px, the encoders read \[64\] px"):
        encoder_views([small], SHIPPED_WEIGHTS)
