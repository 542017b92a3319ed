"""movi-mini (ssync_lib/data/movi_mini/): a tiny level generated with PyBullet and read back through the MOVi
reader; the same bytes twice (in- and out-of-process, any worker count); resumption; the held-out test split;
textures reloaded after every reset; the error without pybullet."""
import builtins
import dataclasses
import io
import json
import tarfile

import numpy as np
import pytest

from ssync_lib.config import get_config
from ssync_lib.data import MoviDataset, build_dataset, movi_mini
from ssync_lib.errors import MissingInputError

TINY = dict(num_train=3, num_val=2, num_test=2, resolution=32, num_frames=4, progress=False)


def shard_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob("*/*.tar"))}


def samples(shard):
    """{key: {field: bytes}} of a shard."""
    out = {}
    with tarfile.open(shard) as tar:
        for info in tar.getmembers():
            key, field = info.name.split(".", 1)
            out.setdefault(key, {})[field] = tar.extractfile(info).read()
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("movi-mini")
    assert movi_mini.generate(root, workers=1, **TINY) is False
    return root


def test_the_tiny_level_reads_back_through_the_movi_reader(tiny):
    meta = json.loads((tiny / "meta.json").read_text())
    assert meta["counts"] == {"train": 3, "val": 2, "test": 2} and not (tiny / "partial.json").exists()
    cfg = get_config("cpu_movi", {"data.root": str(tiny), "data.input_size": 16, "data.chunk_len": 2})
    for split, count in (("train", 3), ("val", 2), ("test", 2)):
        ds = build_dataset(cfg, split)
        assert isinstance(ds, MoviDataset) and len(ds) == count and ds.has_masks
        item = ds[0]
        frames = 2 if split == "train" else 4
        assert item["video"].shape == (frames, 3, 16, 16) and item["masks"].shape == (frames, 16, 16)


def test_masks_instances_and_camera_agree(tiny):
    level = movi_mini.LEVELS["movi-mini"]
    for split in ("train", "val", "test"):
        for key, fields in samples(tiny / split / "shard-000000.tar").items():
            video = np.load(io.BytesIO(fields["video.npy"]))
            masks = np.load(io.BytesIO(fields["segmentations.npy"]))[..., 0]
            instances = json.loads(fields["instances.json"])
            metadata = json.loads(fields["metadata.json"])
            camera = json.loads(fields["camera.json"])
            assert video.shape == (4, 32, 32, 3) and video.dtype == np.uint8 and masks.shape == (4, 32, 32)
            k = len(instances)
            assert level.num_objects[0] <= k <= level.num_objects[1] and metadata["num_instances"] == k
            assert [o["id"] for o in instances] == list(range(1, k + 1))
            assert set(np.unique(masks)) <= set(range(k + 1))  # 0 = floor and sky, 1..K objects
            area = np.bincount(masks[0].ravel(), minlength=k + 1)[1:]
            assert area.min() >= level.min_area * (32 / 128) ** 2  # every object visible in frame 0
            assert (masks == 0).any() and len(camera["view_matrix"]) == 16 and metadata["split"] == split
            # shading and textures: an object's pixels are not one colour
            colours = {tuple(c) for c in video[0][masks[0] == int(np.argmax(area)) + 1]}
            assert len(colours) > 1


def test_test_split_holds_out_meshes_primitives_and_textures(tiny):
    level = movi_mini.LEVELS["movi-mini"]
    train_meshes, test_meshes = set(movi_mini.meshes("train")), set(movi_mini.meshes("test"))
    assert not train_meshes & test_meshes and len(train_meshes | test_meshes) == movi_mini.NUM_MESHES
    assert not set(level.test_textures) & set(level.train_textures)
    assert not {s for s in level.test_shapes if s != "mesh"} & set(level.train_shapes)
    for split in ("train", "val", "test"):
        for fields in samples(tiny / split / "shard-000000.tar").values():
            for obj in json.loads(fields["instances.json"]):
                held_out = split == "test"
                assert obj["texture"] in (level.test_textures if held_out else level.train_textures)
                assert obj["shape"] in (level.test_shapes if held_out else level.train_shapes)
                if obj["shape"] == "mesh":
                    assert int(obj["category"].split("-")[1]) in (test_meshes if held_out else train_meshes)


def test_same_bytes_twice_with_any_number_of_workers(tiny, tmp_path):
    assert movi_mini.generate(tmp_path, workers=2, **TINY) is False
    assert shard_bytes(tmp_path) == shard_bytes(tiny)
    assert movi_mini.generate(tmp_path, workers=2, **TINY) is True  # meta.json matches: reused


def test_textures_are_reloaded_after_every_reset(tiny):
    """A video rendered in a simulator that already made others (resetSimulation drops loaded textures) equals the
    same video from a fresh simulator."""
    level = movi_mini.LEVELS["movi-mini"]
    fresh = movi_mini.Simulator()
    try:
        first = movi_mini.render_video(fresh, level, 32, 4, 0, "val", 1)
    finally:
        fresh.close()
    used = movi_mini.Simulator()
    try:
        movi_mini.render_video(used, level, 32, 4, 0, "train", 0)
        again = movi_mini.render_video(used, level, 32, 4, 0, "val", 1)
    finally:
        used.close()
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_an_interrupted_generation_picks_up_where_it_stopped(tiny, tmp_path, monkeypatch):
    build = movi_mini.build  # the driver: generate reads its shard size and sample maker there
    monkeypatch.setattr(build, "SHARD_SIZE", 2)
    made = []
    real = movi_mini.make_video_sample

    def interrupted(job):
        if len(made) == 2:  # after train shard 0 (videos 0-1) is written
            raise KeyboardInterrupt
        made.append(job[4:])
        return real(job)

    monkeypatch.setattr(build, "make_video_sample", interrupted)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        movi_mini.generate(run, workers=1, **TINY)
    assert (run / "partial.json").exists() and not (run / "meta.json").exists()
    assert [p.name for p in sorted((run / "train").iterdir())] == ["shard-000000.tar"]  # whole shards only
    made.clear()

    def counted(job):
        made.append(job[4:])
        return real(job)

    monkeypatch.setattr(build, "make_video_sample", counted)
    assert movi_mini.generate(run, workers=1, **TINY) is False
    assert ("train", 0) not in made and ("train", 1) not in made and len(made) == 7 - 2  # videos 0-1 were kept
    reference = tmp_path / "reference"
    movi_mini.generate(reference, workers=1, **TINY)  # the same shard size, uninterrupted
    assert shard_bytes(run) == shard_bytes(reference) and len(shard_bytes(run)) == 4


def test_foreign_data_is_refused_and_a_custom_level_is_used(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileExistsError, match="no movi-mini meta.json"):
        movi_mini.generate(tmp_path, workers=1, **TINY)
    custom = dataclasses.replace(movi_mini.LEVELS["movi-mini"], num_objects=(3, 3))
    movi_mini.LEVELS["movi-mini-3"] = custom
    try:
        root = tmp_path / "other"
        movi_mini.generate(root, level="movi-mini-3", workers=1, **dict(TINY, num_train=1, num_test=0, num_val=1))
        for fields in samples(root / "val" / "shard-000000.tar").values():
            assert len(json.loads(fields["instances.json"])) == 3
    finally:
        del movi_mini.LEVELS["movi-mini-3"]


def test_without_pybullet_one_line_names_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_pybullet(name, *args, **kwargs):
        if name.split(".")[0] in ("pybullet", "pybullet_data", "pybullet_utils"):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pybullet)
    with pytest.raises(MissingInputError, match="needs PyBullet") as err:
        movi_mini.Simulator()
    assert "pip install pybullet==3.2.7" in err.value.fix and "\n" not in err.value.message


@pytest.mark.parametrize("kind", movi_mini.TEXTURES)
def test_each_texture_uses_its_colours(kind):
    colours = np.array([[200.0, 30, 30], [30, 200, 30], [30, 30, 200]])
    image = movi_mini.texture(kind, colours, np.random.default_rng(0))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert len(np.unique(image.reshape(-1, 3), axis=0)) >= 2
    again = movi_mini.texture(kind, colours, np.random.default_rng(0))
    assert np.array_equal(image, again)


def test_the_floor_is_low_contrast_and_coarser_than_a_patch():
    level = movi_mini.LEVELS["movi-mini"]
    floor = movi_mini.floor_texture(np.random.default_rng(0), level).astype(float)  # 256 256 3, spans 30 m
    brightness = floor.mean(-1)
    assert brightness.max() / brightness.min() <= (1 + level.floor_contrast) / (1 - level.floor_contrast) + 0.02
    step = np.abs(np.diff(brightness, axis=1)).max()  # neighbouring texels: a smooth texture changes slowly
    assert step < 2.0


def test_primitive_meshes_are_closed_and_outward():
    """Each primitive mesh encloses its volume with outward faces (divergence theorem: the signed volume of its
    triangles is positive and matches the solid's)."""
    for shape, volume in (("cube", 8.0), ("sphere", 4 / 3 * np.pi), ("cylinder", 2 * np.pi),
                          ("capsule", np.pi * 0.25 * (1 + 4 / 3 * 0.5))):
        (verts, idx, uvs), _ = movi_mini.geometry._primitive(shape, 1.0, np.ones(3))
        tri = verts[idx.reshape(-1, 3)]
        signed = np.einsum("fi,fi->f", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
        assert signed == pytest.approx(volume, rel=0.06), shape
        assert uvs.shape == (len(verts), 2) and uvs.min() >= 0 and uvs.max() <= 1


def test_train_and_evaluate_the_test_split_from_the_command_line(tiny, tmp_path, capsys):
    import torch

    from ssync_lib.__main__ import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--profile", "smoke", "--name", "mini", "--no-progress", "--set", "data.source=movi",
                     f"data.root={tiny}", "data.level=movi-mini", f"train.run_root={tmp_path}", "max_steps=2",
                     "train.batch_size=2"]) == 0
        capsys.readouterr()
        assert main(["evaluate", "--run", str(tmp_path / "mini"), "--split", "test", "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    printed = json.loads(capsys.readouterr().out)
    assert printed["num_videos"] == 2 and 0 <= printed["decoder/video/fg_ari"] <= 1
    assert json.loads((tmp_path / "mini" / "metrics-test.json").read_text())["metrics"] == printed
