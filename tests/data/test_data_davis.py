"""DAVIS-2017 reader on a folder fabricated here: JPEG frames, palette PNG annotations, ImageSets lists."""
import numpy as np
import pytest
import torch
from PIL import Image

from ssync_lib.data import DataError, DataWarning, DavisDataset

H, W = 6, 10
PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (3 * 251) + [224, 224, 192]  # DAVIS-like


def palette_png(ids, path):
    img = Image.fromarray(ids.astype(np.uint8))
    img.putpalette(PALETTE)  # L -> P
    assert img.mode == "P"
    img.save(path)


def fabricate(root, videos=(("bear", 4), ("camel", 3)), split="val"):
    rng = np.random.default_rng(1)
    expected = {}
    for name, length in videos:
        (root / "JPEGImages" / "480p" / name).mkdir(parents=True)
        (root / "Annotations" / "480p" / name).mkdir(parents=True)
        frames, masks = [], []
        for t in range(length):
            jpg = root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg"
            Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(jpg, quality=95)
            frames.append(np.asarray(Image.open(jpg).convert("RGB")))
            ids = rng.integers(0, 3, (H, W))
            ids[0, t] = 255  # void
            palette_png(ids, root / "Annotations" / "480p" / name / f"{t:05d}.png")
            masks.append(np.where(ids == 255, 0, ids))
        expected[name] = (np.stack(frames), np.stack(masks))
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / f"{split}.txt").write_text("".join(f"{n}\n" for n, _ in videos))
    return expected


def test_reads_frames_and_palette_masks_exactly(tmp_path):
    expected = fabricate(tmp_path)
    ds = DavisDataset(tmp_path, "val", chunk_len=2, input_size=W)
    assert len(ds) == 2 and ds.has_masks and [r.id for r in ds.records] == ["bear", "camel"]
    rows = np.floor((np.arange(W) + 0.5) * H / W).astype(int)  # nearest neighbour at pixel centres
    for i, name in enumerate(["bear", "camel"]):
        item = ds[i]
        frames, masks = expected[name]
        assert item["id"] == name
        assert item["video"].dtype == torch.float32 and item["video"].shape == (len(frames), 3, W, W)
        assert item["masks"].dtype == torch.int64 and item["masks"].shape == (len(frames), W, W)
        np.testing.assert_array_equal(item["masks"].numpy(), masks[:, rows])
        raw_frames, raw_masks = ds._load(ds.records[i], 0, len(frames))
        np.testing.assert_array_equal(raw_frames, frames)
        np.testing.assert_array_equal(raw_masks, masks)  # void 255 -> 0
    assert int(ds[0]["masks"].max()) == 2


def test_train_chunks(tmp_path):
    expected = fabricate(tmp_path, split="train")
    ds = DavisDataset(tmp_path, "train", chunk_len=2, input_size=W, seed=1)
    for epoch in range(3):
        ds.set_epoch(epoch)
        start, stop = ds.clip_range(0)
        assert stop - start == 2 and start % 2 == 0
        assert ds[0]["masks"].shape == (2, W, W)
        np.testing.assert_array_equal(ds._load(ds.records[0], start, stop)[1], expected["bear"][1][start:stop])


# -- bad input (issue item 6) -------------------------------------------------------------------------------


def test_missing_image_set(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ImageSets/2017/val\.txt"):
        DavisDataset(tmp_path, "val", chunk_len=2, input_size=4)


def test_missing_annotation_png(tmp_path):
    fabricate(tmp_path)
    (tmp_path / "Annotations" / "480p" / "camel" / "00001.png").unlink()
    with pytest.raises(DataError, match=r"camel/00001\.png: sample 'camel': annotation file missing"):
        DavisDataset(tmp_path, "val", chunk_len=2, input_size=4)
    (tmp_path / "ImageSets" / "2017" / "train.txt").write_text("bear\ncamel\nmissing\n")
    with pytest.warns(DataWarning) as caught:
        ds = DavisDataset(tmp_path, "train", chunk_len=2, input_size=4)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "camel/00001.png: sample 'camel': annotation file missing" in messages[0]
    assert "JPEGImages/480p/missing: sample 'missing': no .jpg frames" in messages[1]
    assert ds.skipped == 2 and [r.id for r in ds.records] == ["bear"]  # camel and the folder-less 'missing'


def test_annotation_not_a_palette_png_or_wrong_size(tmp_path):
    fabricate(tmp_path)
    png = tmp_path / "Annotations" / "480p" / "bear" / "00002.png"
    Image.new("RGB", (W, H)).save(png)
    ds = DavisDataset(tmp_path, "val", chunk_len=2, input_size=4)
    with pytest.raises(DataError, match=r"bear/00002\.png: sample 'bear': annotation PNG has mode 'RGB'"):
        ds[0]
    palette_png(np.zeros((H + 1, W)), png)
    with pytest.raises(DataError, match=r"bear/00002\.png: sample 'bear': annotation is \(7, 10\) but its frame is "
                                        r"\(6, 10\)"):
        ds[0]
    png.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"bear/00002\.png: sample 'bear': cannot read annotation"):
        ds[0]


def test_short_video_and_empty_masks(tmp_path):
    fabricate(tmp_path, videos=(("bear", 4), ("dog", 1)), split="train")
    with pytest.warns(DataWarning, match=r"train\.txt: sample 'dog': 1 frames, shorter than chunk_len=2"):
        ds = DavisDataset(tmp_path, "train", chunk_len=2, input_size=4)
    assert ds.skipped == 1 and len(ds) == 1
    fabricate(tmp_path / "v", videos=(("cat", 2),))
    palette_png(np.zeros((H, W)), tmp_path / "v" / "Annotations" / "480p" / "cat" / "00000.png")
    palette_png(np.full((H, W), 255), tmp_path / "v" / "Annotations" / "480p" / "cat" / "00001.png")
    with pytest.warns(DataWarning, match=r"sample 'cat': masks have no object"):
        DavisDataset(tmp_path / "v", "val", chunk_len=2, input_size=4)[0]
