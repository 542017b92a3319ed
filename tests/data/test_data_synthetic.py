"""The synthetic benchmark: determinism, masks that agree with the frames (re-rendered here with plain
loops), bouncing, level properties, the shard output and the make_synthetic.py script."""
import dataclasses
import json
import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ssync_lib.config import get_config
from ssync_lib.data import DataError, build_dataset, denormalize
from ssync_lib.data.scenes import LEVELS, SHAPES, bounce
from ssync_lib.data.synthetic import (check_root, expected_meta, generate, generate_from_config, make_video,
                                      read_meta)

SCRIPT = Path(__file__).resolve().parents[2] / "data_scripts" / "make_synthetic.py"


def contains(shape, extent, du, dv):
    """Plain-float shape test (independent of scenes.inside)."""
    if shape == "circle":
        return du * du + dv * dv <= extent * extent
    if shape == "square":
        return max(abs(du), abs(dv)) <= extent
    if shape == "diamond":
        return abs(du) + abs(dv) <= extent
    c = math.sqrt(3) / 2  # triangle, apex up: three edges at distance extent/2 from the centre
    return dv <= extent / 2 and -c * du - 0.5 * dv <= extent / 2 and c * du - 0.5 * dv <= extent / 2


def texture_colour(tex, u, v):
    if tex.kind == "flat":
        k = 0
    elif tex.kind == "stripes":
        k = math.floor((u * tex.direction[0] + v * tex.direction[1]) / tex.period) % 2
    else:
        k = (math.floor(u / tex.period) + math.floor(v / tex.period)) % 2
    colour = [int(c) for c in tex.colours[k]]
    base, gu, gv = tex.shade  # synth-tex: brightness factor = shading ramp + gratings
    factor = base + gu * u + gv * v + sum(a * math.sin(ku * u + kv * v + phase) for ku, kv, phase, a in tex.waves)
    if tex.shade != (1.0, 0.0, 0.0) or tex.waves:
        colour = [min(max(round(c * factor), 0), 255) for c in colour]
    return tuple(colour)


def reference_render(scene, resolution, num_frames):
    """Pixel by pixel: the nearest object (largest depth) containing the pixel centre, else background; then
    the sensor noise, if any."""
    video = np.zeros((num_frames, resolution, resolution, 3), np.uint8)
    masks = np.zeros((num_frames, resolution, resolution), np.uint8)
    for t in range(num_frames):
        for y in range(resolution):
            for x in range(resolution):
                px, py = x + 0.5, y + 0.5
                front, colour = 0, texture_colour(scene.background, px, py)
                best_depth = -1
                for k, obj in enumerate(scene.objects):
                    du, dv = px - obj.centres[t, 0], py - obj.centres[t, 1]
                    if contains(obj.shape, obj.extent, du, dv) and obj.depth > best_depth:
                        best_depth, front, colour = obj.depth, k + 1, texture_colour(obj.texture, du, dv)
                masks[t, y, x] = front
                if scene.noise is not None:
                    colour = [min(max(round(c + n), 0), 255) for c, n in zip(colour, scene.noise[t, y, x])]
                video[t, y, x] = colour
    return video, masks


def simulate_bounce(start, velocity, lo, hi, num_frames):
    """Step-by-step motion with reflection at the borders."""
    pos, vel, out = list(start), list(velocity), [list(start)]
    for _ in range(num_frames - 1):
        for a in range(2):
            pos[a] += vel[a]
            while pos[a] < lo or pos[a] > hi:
                if pos[a] > hi:
                    pos[a], vel[a] = 2 * hi - pos[a], -vel[a]
                if pos[a] < lo:
                    pos[a], vel[a] = 2 * lo - pos[a], -vel[a]
        out.append(list(pos))
    return np.array(out)


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_masks_agree_with_frames(level):
    for index in range(4):
        video, masks, scene = make_video(level, 24, 3, seed=5, split="val", index=index)
        ref_video, ref_masks = reference_render(scene, 24, 3)
        np.testing.assert_array_equal(masks, ref_masks)
        # synth-tex: numpy's and math's sine may differ in the last bit, which can move a rounding by one
        diff = np.abs(video.astype(int) - ref_video)
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_motion_is_constant_velocity_with_bounces(level):
    bounced = 0
    for index in range(10):
        _, _, scene = make_video(level, 32, 12, seed=1, split="train", index=index)
        for obj in scene.objects:
            ref = simulate_bounce(obj.start, obj.velocity, obj.extent, 32 - obj.extent, 12)
            np.testing.assert_allclose(obj.centres, ref, atol=1e-9)
            bounced += int(np.any(np.sign(np.diff(obj.centres, axis=0)) != np.sign(obj.velocity)))
    assert bounced > 0  # the check above did see reflections


def test_bounce_hand_example():
    centres = bounce(np.array([5.0, 5.0]), np.array([3.0, -1.0]), lo=2.0, hi=10.0, num_frames=6)
    np.testing.assert_allclose(centres[:, 0], [5, 8, 9, 6, 3, 4])  # 11 -> 9, 0 -> 4
    np.testing.assert_allclose(centres[:, 1], [5, 4, 3, 2, 3, 4])


@pytest.mark.parametrize("level", ["synth-hard", "synth-tex"])
def test_same_seed_same_arrays_other_seed_other_arrays(level):
    a = make_video(level, 32, 5, seed=3, split="train", index=7)
    b = make_video(level, 32, 5, seed=3, split="train", index=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for other in (dict(seed=4, split="train", index=7), dict(seed=3, split="val", index=7),
                  dict(seed=3, split="train", index=8)):
        c = make_video(level, 32, 5, **other)
        assert not np.array_equal(a[0], c[0])


def test_earlier_levels_unchanged_by_the_texture_fields():
    """synth-easy and synth-hard draw the same numbers and write the same meta.json as before synth-tex existed
    (checksums of generator version 1, taken before the shading / pattern / noise fields were added)."""
    import hashlib

    for level, expected in (("synth-easy", "bd93119d445d4707"), ("synth-hard", "1f3b21391fa4fa18")):
        h = hashlib.sha256()
        for index in range(3):
            video, masks, _ = make_video(level, 32, 4, seed=0, split="val", index=index)
            h.update(video.tobytes())
            h.update(masks.tobytes())
        assert h.hexdigest()[:16] == expected
        assert set(expected_meta(level, 0, 1, 1, 32, 4)["level_params"]) == {
            "num_objects", "radius", "speed", "shapes", "colours", "textures", "background", "min_separation"}
    assert expected_meta("synth-tex", 0, 1, 1, 32, 4)["level_params"]["shading"] == 0.5


def test_tex_level_properties():
    """3-8 objects per video (both ends reached), distinct base colours, pixels that vary inside every object
    (shading, gratings, noise), a noisy plain background, masks consistent with the drawn scene."""
    params = LEVELS["synth-tex"]
    counts = set()
    for index in range(40):
        video, masks, scene = make_video("synth-tex", 64, 3, seed=0, split="val", index=index)
        counts.add(len(scene.objects))
        assert params.num_objects[0] <= len(scene.objects) <= params.num_objects[1]
        assert len({tuple(o.texture.colours[0]) for o in scene.objects}) == len(scene.objects)
        assert set(np.unique(masks)) <= set(range(len(scene.objects) + 1))
        for k, obj in enumerate(scene.objects, start=1):
            assert obj.texture.shade != (1.0, 0.0, 0.0) and len(obj.texture.waves) == 2
            assert math.sqrt((masks == k).sum(axis=(1, 2)).max() / math.pi) <= 0.15 * 64 + 0.5
            pixels = video[masks == k].astype(float)  # visible pixels x 3
            if len(pixels) >= 20:
                assert pixels.std(axis=0).max() > 8  # varies inside (a flat object has std 0)
        background = video[masks == 0].astype(float)
        assert 3 < background.std(axis=0).mean() < 9  # sensor noise of std 6 (clipped at 0 on dark greys)
        assert scene.noise is not None and scene.noise.shape == (3, 64, 64, 3)
    assert min(counts) == 3 and max(counts) == 8



def test_tex_mild_level_varies_less_than_tex():
    """synth-tex-mild: 3-5 objects of synth-easy's sizes whose pixels vary inside, less than synth-tex's."""
    def inside_std(level):
        stds, counts = [], set()
        for index in range(30):
            video, masks, scene = make_video(level, 64, 3, seed=0, split="val", index=index)
            counts.add(len(scene.objects))
            for k in range(1, len(scene.objects) + 1):
                pixels = video[masks == k].astype(float)
                if len(pixels) >= 20:
                    stds.append(pixels.std(axis=0).max())
        return float(np.median(stds)), counts

    mild, counts = inside_std("synth-tex-mild")
    tex, _ = inside_std("synth-tex")
    assert min(counts) == 3 and max(counts) == 5
    assert 2 < mild < 0.6 * tex  # varies inside, but much less than synth-tex's objects

def test_easy_level_properties():
    params = LEVELS["synth-easy"]
    shapes = set()
    for index in range(30):
        video, masks, scene = make_video("synth-easy", 64, 4, seed=0, split="train", index=index)
        assert video.shape == (4, 64, 64, 3) and video.dtype == np.uint8
        assert masks.shape == (4, 64, 64) and masks.dtype == np.uint8
        assert params.num_objects[0] <= len(scene.objects) <= params.num_objects[1]
        colours = {tuple(o.texture.colours[0]) for o in scene.objects}
        assert len(colours) == len(scene.objects)  # distinct flat colours
        assert all(o.texture.kind == "flat" for o in scene.objects)
        background = video[masks == 0]  # pixels 3
        assert (background == background[0]).all()  # plain background
        assert set(np.unique(masks)) <= set(range(len(scene.objects) + 1))
        for k, obj in enumerate(scene.objects, start=1):  # 8-16 px radius at 64 px
            r = math.sqrt((masks == k).sum(axis=(1, 2)).max() / math.pi)
            assert r <= 16.5
        shapes.update(o.shape for o in scene.objects)
    assert shapes == set(SHAPES)


def test_hard_level_properties():
    textures, counts = set(), set()
    for index in range(30):
        video, masks, scene = make_video("synth-hard", 64, 2, seed=0, split="train", index=index)
        counts.add(len(scene.objects))
        textures.update(o.texture.kind for o in scene.objects)
        background = video[masks == 0] @ np.array([1, 256, 65536])  # one integer per colour
        assert len(np.unique(background)) == 2  # two-colour textured background
    assert max(counts) == 6 and min(counts) >= 3
    assert textures == {"flat", "stripes", "checker"}


def read_split(root, split):
    cfg = get_config("smoke", {"data.root": str(root), "data.num_frames": 4, "data.resolution": 24,
                               "data.input_size": 24, "data.chunk_len": 2})
    return build_dataset(cfg, split)


def test_generate_writes_shards_meta_and_reuses(tmp_path):
    kwargs = dict(level="synth-easy", seed=2, num_train=5, num_val=3, resolution=24, num_frames=4, progress=False)
    assert generate(tmp_path / "a", workers=1, **kwargs) is False
    assert generate(tmp_path / "b", workers=2, **kwargs) is False
    assert generate(tmp_path / "a", workers=1, **kwargs) is True  # reused
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert {k: meta[k] for k in ("level", "seed", "num_train", "num_val", "resolution", "num_frames")} == {
        "level": "synth-easy", "seed": 2, "num_train": 5, "num_val": 3, "resolution": 24, "num_frames": 4}
    assert meta["generator_version"] >= 1 and meta["level_params"]["num_objects"] == [2, 4]
    assert sorted(p.name for p in (tmp_path / "a" / "train").iterdir()) == ["shard-000000.tar"]
    val_a, val_b = read_split(tmp_path / "a", "val"), read_split(tmp_path / "b", "val")
    assert [val_a[i]["id"] for i in range(3)] == ["000000", "000001", "000002"]
    for i in range(3):  # 1 and 2 processes give the same data, equal to make_video
        video, masks, _ = make_video("synth-easy", 24, 4, seed=2, split="val", index=i)
        a, b = val_a[i], val_b[i]
        assert a["video"].dtype == torch.float32 and a["video"].shape == (4, 3, 24, 24)
        assert a["masks"].dtype == torch.int64 and a["masks"].shape == (4, 24, 24)
        np.testing.assert_array_equal(a["masks"].numpy(), masks)
        np.testing.assert_array_equal(b["masks"].numpy(), masks)
        np.testing.assert_allclose(denormalize(a["video"]).numpy(), video / 255.0, atol=1e-6)
    train = read_split(tmp_path / "a", "train")
    assert len(train) == 5 and train.has_masks  # segmentations are written for train too
    item = train[4]
    start, stop = train.clip_range(4)
    _, masks, _ = make_video("synth-easy", 24, 4, seed=2, split="train", index=4)
    np.testing.assert_array_equal(item["masks"].numpy(), masks[start:stop])
    assert generate(tmp_path / "a", workers=1, **{**kwargs, "num_val": 4}) is False  # settings changed
    assert read_meta(tmp_path / "a")["num_val"] == 4


def test_generate_refuses_to_overwrite_other_data(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "precious.tar").write_bytes(b"x")
    with pytest.raises(FileExistsError, match=r"holds train/ or val/ but no synthetic meta.json"):
        generate(tmp_path, "synth-easy", 0, 2, 1, 24, 3, workers=1, progress=False)
    assert (tmp_path / "train" / "precious.tar").exists()
    assert generate(tmp_path, "synth-easy", 0, 2, 1, 24, 3, workers=1, force=True, progress=False) is False
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["shard-000000.tar"]


def test_check_root_names_missing_or_mismatching_meta(tmp_path):
    cfg = get_config("smoke", {"data.root": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="synthetic data folder .* is empty(.|\n)*--profile smoke"):
        check_root(tmp_path, cfg.data, "smoke")
    generate(tmp_path, "synth-easy", 0, 2, 1, cfg.data.resolution, cfg.data.num_frames, workers=1, progress=False)
    cfg.data.level = "synth-hard"
    with pytest.raises(DataError, match=r"meta.json: 'level'"):
        build_dataset(cfg, "train")


def test_make_synthetic_script(tmp_path, monkeypatch, capsys):
    argv = [str(SCRIPT), "--profile", "smoke", "--root", str(tmp_path / "s"), "--workers", "1",
            "data.num_train=4", "data.num_val=2"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(SCRIPT), run_name="__main__")
    assert "wrote" in capsys.readouterr().out
    runpy.run_path(str(SCRIPT), run_name="__main__")
    assert "reused" in capsys.readouterr().out
    meta = read_meta(tmp_path / "s")
    cfg = get_config("smoke")
    assert (meta["num_train"], meta["resolution"], meta["num_frames"]) == (4, cfg.data.resolution, cfg.data.num_frames)
    default_root = runpy.run_path(str(SCRIPT))["default_root"]
    assert default_root("data/synth-easy", "synth-easy", "synth-hard") == "data/synth-hard"
    assert default_root("data/smoke", "synth-easy", "synth-hard") == "data/smoke-synth-hard"
    assert default_root("data/smoke", "synth-easy", "synth-easy") == "data/smoke"
    assert default_root("data/synth-easy", "synth-easy", "synth-tex") == "data/synth-tex"


def test_make_synthetic_script_tex_level(tmp_path, monkeypatch, capsys):
    argv = [str(SCRIPT), "--profile", "cpu", "--level", "synth-tex", "--root", str(tmp_path / "t"), "--workers", "1",
            "data.num_train=3", "data.num_val=2", "data.num_frames=3"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(SCRIPT), run_name="__main__")
    assert "synth-tex" in capsys.readouterr().out
    meta = read_meta(tmp_path / "t")
    assert meta["level"] == "synth-tex" and meta["level_params"]["num_objects"] == [3, 8]
    cfg = get_config("cpu", {"data.root": str(tmp_path / "t"), "data.level": "synth-tex", "data.num_frames": 3})
    item = build_dataset(cfg, "val")[1]
    _, masks, _ = make_video("synth-tex", 64, 3, seed=0, split="val", index=1)
    np.testing.assert_array_equal(item["masks"].numpy(), masks)


def test_generate_from_config(tmp_path):
    cfg = get_config("smoke", {"data.root": str(tmp_path), "data.num_train": 3, "data.num_val": 1,
                               "data.synth_seed": 9})
    assert generate_from_config(cfg, workers=1, progress=False) is False
    assert read_meta(tmp_path)["seed"] == 9
    assert len(build_dataset(cfg, "train")) == 3


def test_custom_level_in_generator_processes(tmp_path, monkeypatch):
    big = dataclasses.replace(LEVELS["synth-easy"], num_objects=(1, 1), radius=(0.3, 0.3))
    monkeypatch.setitem(LEVELS, "synth-big", big)
    generate(tmp_path, "synth-big", 0, 4, 2, 32, 2, workers=2, progress=False)
    assert read_meta(tmp_path)["level_params"]["radius"] == [0.3, 0.3]
    cfg = get_config("smoke", {"data.root": str(tmp_path), "data.level": "synth-big", "data.resolution": 32,
                               "data.num_frames": 2, "data.chunk_len": 2})
    ds = build_dataset(cfg, "train")
    for i in range(4):
        masks = ds[i]["masks"]
        _, expected, scene = make_video(big, 32, 2, seed=0, split="train", index=i)
        assert len(scene.objects) == 1
        np.testing.assert_array_equal(masks.numpy(), expected)
