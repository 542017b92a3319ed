"""MOVi reader on tar shards fabricated here with `tarfile` (.npy members), the shard writer and the
TFDS conversion, and every bad-input case of issue item 6 for shards."""
import hashlib
import io
import runpy
import sys
import tarfile
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ssync_lib.data import DataError, DataWarning, MoviDataset, denormalize
from ssync_lib.data.common import chunk_start
from ssync_lib.data.movi import make_sample, sample_from_tfds, write_shards

T, H, W = 6, 8, 10


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def write_tar(path, members):
    """A plain tar of (name, bytes) members, as any tool would write it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def arrays(seed, num_frames=T):
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 256, (num_frames, H, W, 3), dtype=np.uint8)
    seg = rng.integers(0, 4, (num_frames, H, W, 1), dtype=np.uint8)
    seg[0, 0, 0] = 1  # never empty
    return video, seg


def members(key, video, seg=None):
    out = [(f"{key}.video.npy", npy(video))]
    return out + ([(f"{key}.segmentations.npy", npy(seg))] if seg is not None else [])


@pytest.fixture
def movi_root(tmp_path):
    """Two val shards (3 + 2 samples) and one train shard without segmentations."""
    data = {f"{i:06d}": arrays(i) for i in range(5)}
    keys = sorted(data)
    write_tar(tmp_path / "val" / "shard-000000.tar", [m for k in keys[:3] for m in members(k, *data[k])])
    write_tar(tmp_path / "val" / "shard-000001.tar", [m for k in keys[3:] for m in members(k, *data[k])])
    write_tar(tmp_path / "train" / "shard-000000.tar", [m for k in keys for m in members(k, data[k][0])])
    return tmp_path, data


def test_val_reads_whole_videos_exactly(movi_root):
    root, data = movi_root
    ds = MoviDataset(root, "val", chunk_len=2, input_size=H)
    assert len(ds) == 5 and ds.has_masks and ds.skipped == 0
    for i, key in enumerate(sorted(data)):
        item = ds[i]
        video, seg = data[key]
        assert item["id"] == key
        assert item["video"].dtype == torch.float32 and item["video"].shape == (T, 3, H, H)
        assert item["masks"].dtype == torch.int64 and item["masks"].shape == (T, H, H)
        rows = np.floor((np.arange(H) + 0.5) * H / H).astype(int)  # nearest neighbour at pixel centres
        cols = np.floor((np.arange(H) + 0.5) * W / H).astype(int)
        np.testing.assert_array_equal(item["masks"].numpy(), seg[:, rows][:, :, cols, 0])


def test_val_values_at_native_size(tmp_path):
    video, seg = arrays(0)
    video, seg = video[:, :, :H], seg[:, :, :H]  # square, so no resize
    write_tar(tmp_path / "validation" / "a.tar", members("clip", video, seg))  # validation/ is accepted
    item = MoviDataset(tmp_path, "val", chunk_len=2, input_size=H)[0]
    np.testing.assert_array_equal(item["masks"].numpy(), seg[..., 0].astype(np.int64))
    np.testing.assert_allclose(denormalize(item["video"]).numpy(), video / 255.0, atol=1e-6)


def test_train_chunks_aligned_deterministic_and_maskless(movi_root):
    root, data = movi_root
    ds = MoviDataset(root, "train", chunk_len=2, input_size=H, seed=3)
    assert not ds.has_masks and "masks" not in ds[0]
    starts = set()
    again = MoviDataset(root, "train", chunk_len=2, input_size=H, seed=3)
    for epoch in range(4):
        ds.set_epoch(epoch)
        again.set_epoch(epoch)
        for i in range(len(ds)):
            start, stop = ds.clip_range(i)
            assert start == chunk_start(3, epoch, i, T, 2) and start % 2 == 0 and stop == start + 2
            starts.add(start)
            assert torch.equal(again[i]["video"], ds[i]["video"])
    assert starts == {0, 2, 4}


def test_train_chunk_values(tmp_path):
    video, seg = arrays(1)
    write_tar(tmp_path / "train" / "s.tar", members("k", video[:, :, :H], seg[:, :, :H]))
    ds = MoviDataset(tmp_path, "train", chunk_len=3, input_size=H)
    for epoch in range(3):
        ds.set_epoch(epoch)
        start, stop = ds.clip_range(0)
        item = ds[0]
        np.testing.assert_array_equal(item["masks"].numpy(), seg[start:stop, :, :H, 0])
        np.testing.assert_allclose(denormalize(item["video"]).numpy(), video[start:stop, :, :H] / 255.0, atol=1e-6)


def test_dataloader_workers_see_the_epoch(movi_root):
    root, _ = movi_root
    ds = MoviDataset(root, "train", chunk_len=2, input_size=4, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2, persistent_workers=True)
    for epoch in range(2):
        ds.set_epoch(epoch)
        (batch,) = list(loader)
        expected = torch.stack([ds[i]["video"] for i in range(len(ds))])
        assert torch.equal(batch["video"], expected)
        assert batch["id"] == [f"{i:06d}" for i in range(5)]


def test_write_shards_roundtrip_and_tfds_conversion(tmp_path):
    video, seg = arrays(2)
    video, seg = video[:, :, :H], seg[:, :, :H]
    examples = [{"video": video, "segmentations": seg, "metadata": {"video_name": 0}},
                {"video": video[::-1].copy(), "segmentations": seg[::-1].copy()}]
    samples = [sample_from_tfds(ex, i, with_segmentations=True) for i, ex in enumerate(examples)]
    assert sorted(samples[0]) == ["__key__", "segmentations.npy", "sha256.json", "video.npy"]
    assert samples[1]["__key__"] == "000001"
    assert write_shards(samples, tmp_path / "val", shard_size=1) == 2
    assert sorted(p.name for p in (tmp_path / "val").iterdir()) == ["shard-000000.tar", "shard-000001.tar"]
    ds = MoviDataset(tmp_path, "val", chunk_len=2, input_size=H)
    assert [ds[i]["id"] for i in range(2)] == ["000000", "000001"]
    np.testing.assert_array_equal(ds[1]["masks"].numpy(), seg[::-1, ..., 0])
    np.testing.assert_allclose(denormalize(ds[1]["video"]).numpy(), video[::-1] / 255.0, atol=1e-6)
    only_video = sample_from_tfds(examples[0], 7, with_segmentations=False)
    assert sorted(only_video) == ["__key__", "sha256.json", "video.npy"] and only_video["__key__"] == "000007"


def test_tfds_conversion_names_bad_examples():
    video, seg = arrays(0)
    with pytest.raises(DataError, match=r"TFDS example 4: missing \['segmentations'\]"):
        sample_from_tfds({"video": video}, 4, with_segmentations=True)
    with pytest.raises(DataError, match=r"sample '000003': 'video.npy': dtype float32"):
        sample_from_tfds({"video": video.astype(np.float32)}, 3, with_segmentations=False)
    with pytest.raises(DataError, match=r"'segmentations.npy': dtype int64"):
        make_sample("k", video, seg.astype(np.int64))


# -- bad input (issue item 6) -------------------------------------------------------------------------------


def good_shard(path, count=3, num_frames=T, first=0):
    keys = range(first, first + count)
    return write_tar(path, [m for i in keys for m in members(f"{i:06d}", *arrays(i, num_frames))])


@pytest.mark.parametrize("cut", ["inside_member", "after_members"])
def test_truncated_shard_warns_in_train_and_raises_in_val(tmp_path, cut):
    shard = good_shard(tmp_path / "train" / "shard-000000.tar")
    good_shard(tmp_path / "train" / "shard-000001.tar", first=3)
    raw = shard.read_bytes()
    with tarfile.open(shard) as tar:
        infos = tar.getmembers()
    last = infos[-1]
    size = last.offset_data + last.size // 2 if cut == "inside_member" else last.offset_data + last.size
    shard.write_bytes(raw[:size])
    with pytest.warns(DataWarning, match=r"shard-000000\.tar: truncated or corrupt"):
        ds = MoviDataset(tmp_path, "train", chunk_len=2, input_size=4)
    # cut inside the last member: the third sample lost bytes and is dropped; cut after it: every byte of the
    # three samples is there (only the end-of-archive marker is missing), all are read
    assert ds.skipped == (1 if cut == "inside_member" else 0)
    assert [r.id for r in ds.records][:2] == ["000000", "000001"] and len(ds) == 6 - ds.skipped
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "shard-000000.tar").write_bytes(raw[:size])
    with pytest.raises(DataError, match=r"val/shard-000000\.tar: truncated or corrupt"):
        MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)


def test_corrupt_shard(tmp_path):
    good_shard(tmp_path / "train" / "a.tar")
    (tmp_path / "train" / "b.tar").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.warns(DataWarning, match=r"b\.tar: not a readable tar file.*cannot be counted"):
        ds = MoviDataset(tmp_path, "train", chunk_len=2, input_size=4)
    assert len(ds) == 3 and ds.skipped == 0  # skipped counts videos: none of b.tar's can be identified
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "b.tar").write_bytes(b"")
    with pytest.raises(DataError, match=r"val/b\.tar: not a readable tar file"):
        MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)


def test_corrupt_header_in_the_middle(tmp_path):
    shard = good_shard(tmp_path / "val" / "s.tar")
    raw = bytearray(shard.read_bytes())
    with tarfile.open(shard) as tar:
        third = tar.getmembers()[2]
    raw[third.offset: third.offset + 100] = b"x" * 100  # garbage where a header should be
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"s\.tar: truncated or corrupt at byte"):
        MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)


@pytest.mark.parametrize("hit", [4, 5])  # the first or the second member of sample 2 (two members per sample)
def test_damage_in_the_middle_of_a_training_shard_skips_only_the_damaged_videos(tmp_path, hit):
    shard = good_shard(tmp_path / "train" / "s.tar", count=6)
    raw = bytearray(shard.read_bytes())
    with tarfile.open(shard) as tar:
        member = tar.getmembers()[hit]
    raw[member.offset: member.offset + 100] = b"x" * 100  # its header destroyed
    shard.write_bytes(bytes(raw))
    with pytest.warns(DataWarning, match=r"s\.tar: truncated or corrupt at bytes \d+-\d+: 5 intact videos read, "
                                         r"1 damaged videos skipped \(000002\)"):
        ds = MoviDataset(tmp_path, "train", chunk_len=2, input_size=4)
    assert [r.id for r in ds.records] == ["000000", "000001", "000003", "000004", "000005"] and ds.skipped == 1
    assert ds[2]["video"].shape == (2, 3, 4, 4)  # the samples after the damage read fine


def test_checksums_written_by_make_sample_catch_a_corrupt_array_in_an_intact_tar(tmp_path):
    video, seg = arrays(0)
    write_shards([make_sample("a", video, seg), make_sample("b", video, seg)], tmp_path / "val")
    shard = tmp_path / "val" / "shard-000000.tar"
    with tarfile.open(shard) as tar:
        names = tar.getnames()
        member = tar.getmember("b.video.npy")
    assert "a.sha256.json" in names
    raw = bytearray(shard.read_bytes())
    raw[member.offset_data + member.size - 1] ^= 0xFF  # one byte of the last frame
    shard.write_bytes(bytes(raw))
    ds = MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)
    assert ds[0]["video"].shape[0] == T  # the intact sample checks fine
    with pytest.raises(DataError, match=rf"sample 'b': 'video\.npy' frame {T - 1}: sha256 .* does not match"):
        ds[1]
    assert make_sample("c", video)["sha256.json"] == {"video.npy": [hashlib.sha256(f.tobytes()).hexdigest() for f in video]}


@pytest.mark.parametrize("split", ["train", "val"])
def test_sample_without_video(tmp_path, split):
    video, seg = arrays(0)
    write_tar(tmp_path / split / "s.tar", members("good", video, seg) + [("nov.segmentations.npy", npy(seg))])
    if split == "val":
        with pytest.raises(DataError, match=r"s\.tar: sample 'nov': missing 'video\.npy'"):
            MoviDataset(tmp_path, split, chunk_len=2, input_size=4)
    else:
        with pytest.warns(DataWarning, match=r"s\.tar: sample 'nov': missing 'video\.npy'"):
            ds = MoviDataset(tmp_path, split, chunk_len=2, input_size=4)
        assert ds.skipped == 1 and [r.id for r in ds.records] == ["good"]


def test_val_sample_without_segmentations(tmp_path):
    video, seg = arrays(0)
    write_tar(tmp_path / "val" / "s.tar", members("a", video, seg) + members("b", video))
    with pytest.raises(DataError, match=r"s\.tar: sample 'b': missing 'segmentations\.npy'"):
        MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)


@pytest.mark.parametrize("name,array,problem", [
    ("video.npy", np.zeros((T, H, W, 3), np.float32), "dtype float32"),
    ("video.npy", np.zeros((T, H, W), np.uint8), r"shape \(6, 8, 10\)"),
    ("segmentations.npy", np.zeros((T, H, W + 1, 1), np.uint8), r"shape \(6, 8, 11, 1\)"),
    ("segmentations.npy", np.zeros((T, H, W, 1), np.float32), "dtype float32"),
])
def test_wrong_dtype_or_shape(tmp_path, name, array, problem):
    video, seg = arrays(0)
    good = {"video.npy": video, "segmentations.npy": seg}
    good[name] = array
    write_tar(tmp_path / "val" / "s.tar", [(f"bad.{k}", npy(v)) for k, v in good.items()])
    with pytest.raises(DataError, match=rf"s\.tar: sample 'bad': '{name}': .*{problem}"):
        MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "s.tar").write_bytes((tmp_path / "val" / "s.tar").read_bytes())
    good_shard(tmp_path / "train" / "t.tar", first=1)
    with pytest.warns(DataWarning, match=rf"sample 'bad': '{name}'"):
        assert MoviDataset(tmp_path, "train", chunk_len=2, input_size=4).skipped == 1


def test_unreadable_npy_member(tmp_path):
    video, seg = arrays(0)
    write_tar(tmp_path / "val" / "s.tar", [("bad.segmentations.npy", npy(seg)), ("bad.video.npy", b"not an npy")])
    with pytest.raises(DataError, match=r"sample 'bad': 'video\.npy': unreadable \.npy"):
        MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)
    payload = npy(video)[:-10]  # header promises more bytes than the member holds
    write_tar(tmp_path / "val" / "s.tar", [("bad.segmentations.npy", npy(seg)), ("bad.video.npy", payload)])
    with pytest.raises(DataError, match=r"sample 'bad': 'video\.npy': unreadable \.npy .*data bytes"):
        MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)


def test_video_shorter_than_chunk(tmp_path):
    good_shard(tmp_path / "train" / "a.tar", count=2, num_frames=T)
    write_tar(tmp_path / "train" / "b.tar", members("short", *arrays(0, num_frames=2)))
    with pytest.warns(DataWarning, match=r"b\.tar: sample 'short': 2 frames, shorter than chunk_len=3"):
        ds = MoviDataset(tmp_path, "train", chunk_len=3, input_size=4)
    assert ds.skipped == 1 and len(ds) == 2
    write_tar(tmp_path / "val" / "b.tar", members("short", *arrays(0, num_frames=2)))
    assert MoviDataset(tmp_path, "val", chunk_len=3, input_size=4)[0]["video"].shape[0] == 2  # whole video


def test_masks_with_no_object_warn(tmp_path):
    video, seg = arrays(0)
    write_tar(tmp_path / "val" / "s.tar", members("empty", video, np.zeros_like(seg)))
    ds = MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)
    with pytest.warns(DataWarning, match=r"s\.tar: sample 'empty': masks have no object"):
        item = ds[0]
    assert item["masks"].sum() == 0


def test_only_bad_samples_and_duplicates(tmp_path):
    write_tar(tmp_path / "train" / "s.tar", members("short", *arrays(0, num_frames=1)))
    with pytest.raises(DataError, match=r"train: no usable train videos \(skipped 1 video\)"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        MoviDataset(tmp_path, "train", chunk_len=2, input_size=4)
    good_shard(tmp_path / "val" / "a.tar", count=1)
    good_shard(tmp_path / "val" / "b.tar", count=1)
    with pytest.raises(DataError, match=r"sample key '000000' appears in .*a\.tar and .*b\.tar"):
        MoviDataset(tmp_path, "val", chunk_len=2, input_size=4)
    with pytest.raises(FileNotFoundError, match="no .tar shards"):
        (tmp_path / "empty" / "val").mkdir(parents=True)
        MoviDataset(tmp_path / "empty", "val", chunk_len=2, input_size=4)
    with pytest.raises(FileNotFoundError, match=r"missing/val"):
        MoviDataset(tmp_path / "missing", "val", chunk_len=2, input_size=4)


def test_convert_movi_script_with_a_stand_in_for_tfds(tmp_path, monkeypatch):
    """The script end to end, with a minimal module standing in for tensorflow_datasets."""
    examples = {"train": [{"video": arrays(i)[0], "segmentations": arrays(i)[1]} for i in range(3)],
                "validation": [{"video": arrays(9)[0], "segmentations": arrays(9)[1]}]}

    class Builder:
        info = types.SimpleNamespace(splits={k: types.SimpleNamespace(num_examples=len(v))
                                             for k, v in examples.items()})

        def as_dataset(self, split, shuffle_files):
            return examples[split]

    fake = types.ModuleType("tensorflow_datasets")
    fake.builder = lambda name, data_dir: Builder()
    fake.as_numpy = lambda ds: iter(ds)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    script = Path(__file__).resolve().parents[2] / "data_scripts" / "convert_movi.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(tmp_path), "--shard-size", "2"])
    runpy.run_path(str(script), run_name="__main__")
    train = MoviDataset(tmp_path, "train", chunk_len=2, input_size=H)
    val = MoviDataset(tmp_path, "val", chunk_len=2, input_size=H)
    assert len(train) == 3 and not train.has_masks and len(list((tmp_path / "train").glob("*.tar"))) == 2
    assert len(val) == 1 and val.has_masks and val[0]["id"] == "000000"
    np.testing.assert_array_equal(val._load(val.records[0], 0, T)[1], arrays(9)[1][..., 0])
