"""YouTube-VIS reader on a folder fabricated here: JPEG frames and an instances.json whose RLEs are
written by pycocotools (compressed) or by a plain column-major run-length loop (uncompressed, as in
the official file)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from ssync_lib.data import DataError, DataWarning, YTVISDataset

H, W = 6, 9


def rle_compressed(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def rle_uncompressed(mask):
    """Run lengths over the column-major pixels, starting with a (possibly empty) run of zeros."""
    counts, current, run = [], 0, 0
    for value in mask.flatten(order="F"):
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def fabricate(root, folder="train", num_videos=3, with_annotations=True, lengths=(4, 3, 5)):
    """Videos v0.. with random frames; instance masks (ids in annotation order) returned per video."""
    rng = np.random.default_rng(0)
    videos, annotations, expected = [], [], {}
    ann_id = 1
    for v in range(num_videos):
        name, length = f"vid{v}", lengths[v]
        (root / folder / "JPEGImages" / name).mkdir(parents=True)
        frames, files = [], []
        for t in range(length):
            image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            path = root / folder / "JPEGImages" / name / f"{5 * t:05d}.jpg"
            Image.fromarray(image).save(path, quality=95)
            frames.append(np.asarray(Image.open(path).convert("RGB")))  # what a JPEG decoder gives back
            files.append(f"{name}/{5 * t:05d}.jpg")
        videos.append({"id": 10 + v, "file_names": files, "height": H, "width": W, "length": length})
        masks = np.zeros((length, H, W), np.int64)
        for instance in range(1, 3 if v != 1 else 2):
            segs = []
            for t in range(length):
                if t == 1 and instance == 2:
                    segs.append(None)  # absent in this frame
                    continue
                m = np.zeros((H, W), bool)
                m[t % 3: t % 3 + 3, instance + t: instance + t + 4] = True  # instance 2 overlaps instance 1
                masks[t][m] = instance
                segs.append(rle_uncompressed(m) if v == 2 else rle_compressed(m))
            annotations.append({"id": ann_id, "video_id": 10 + v, "category_id": 1, "segmentations": segs,
                                "iscrowd": 0})
            ann_id += 1
        expected[name] = (np.stack(frames), masks)
    data = {"videos": videos, "categories": [{"id": 1, "name": "thing"}]}
    if with_annotations:
        data["annotations"] = annotations
    (root / folder / "instances.json").write_text(json.dumps(data))
    return expected


def test_reads_frames_and_rle_masks_exactly(tmp_path):
    expected = fabricate(tmp_path)
    ds = YTVISDataset(tmp_path, "val", chunk_len=2, input_size=H, val_last=2)
    assert len(ds) == 2 and ds.has_masks and [r.id for r in ds.records] == ["vid1", "vid2"]
    rows = np.floor((np.arange(H) + 0.5) * H / H).astype(int)  # nearest neighbour at pixel centres
    cols = np.floor((np.arange(H) + 0.5) * W / H).astype(int)
    for i, name in enumerate(["vid1", "vid2"]):
        item = ds[i]
        frames, masks = expected[name]
        assert item["id"] == name
        assert item["video"].dtype == torch.float32 and item["video"].shape == (len(frames), 3, H, H)
        assert item["masks"].dtype == torch.int64
        np.testing.assert_array_equal(item["masks"].numpy(), masks[:, rows][:, :, cols])
    raw_frames, raw_masks = ds._load(ds.records[1], 0, 5)  # native size: exact frames and masks
    np.testing.assert_array_equal(raw_frames, expected["vid2"][0])
    np.testing.assert_array_equal(raw_masks, expected["vid2"][1])


def test_common_split_and_train_chunks(tmp_path):
    expected = fabricate(tmp_path)
    train = YTVISDataset(tmp_path, "train", chunk_len=2, input_size=W, val_last=2)
    assert [r.id for r in train.records] == ["vid0"]
    start, stop = train.clip_range(0)
    frames, masks = train._load(train.records[0], start, stop)
    np.testing.assert_array_equal(frames, expected["vid0"][0][start:stop])
    np.testing.assert_array_equal(masks, expected["vid0"][1][start:stop])
    assert train[0]["video"].shape == (2, 3, W, W)
    with pytest.raises(DataError, match=r"instances\.json: data\.ytvis_val_last=3 but the file lists only 3"):
        YTVISDataset(tmp_path, "val", chunk_len=2, input_size=W, val_last=3)


def test_official_valid_split_has_no_masks(tmp_path):
    fabricate(tmp_path, folder="valid", num_videos=2, with_annotations=False)
    ds = YTVISDataset(tmp_path, "val", chunk_len=2, input_size=4, val_last=0)
    assert not ds.has_masks and len(ds) == 2
    item = ds[0]
    assert "masks" not in item and item["video"].shape == (4, 3, 4, 4) and item["id"] == "vid0"


# -- bad input (issue item 6) -------------------------------------------------------------------------------


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train/instances\.json"):
        YTVISDataset(tmp_path, "train", chunk_len=2, input_size=4)


def edit_json(root, change):
    path = root / "train" / "instances.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_rle_of_the_wrong_size(tmp_path):
    fabricate(tmp_path)
    edit_json(tmp_path, lambda d: d["annotations"][-1]["segmentations"][3].update(size=[H + 1, W]))
    with pytest.raises(DataError, match=r"instances\.json: sample 'vid2' \(video id 12\): annotation 5: "
                                        r"'segmentations'\[3\] RLE size \[7, 9\] != video \(height, width\) \[6, 9\]"):
        YTVISDataset(tmp_path, "val", chunk_len=2, input_size=4, val_last=1)
    with pytest.warns(DataWarning, match=r"sample 'vid2' .*annotation 5: 'segmentations'\[3\] RLE size"):
        ds = YTVISDataset(tmp_path, "train", chunk_len=2, input_size=4, val_last=0)
    assert ds.skipped == 1 and [r.id for r in ds.records] == ["vid0", "vid1"]


def test_rle_counts_that_do_not_cover_the_frame(tmp_path):
    fabricate(tmp_path)
    edit_json(tmp_path, lambda d: d["annotations"][-1]["segmentations"][2]["counts"].append(3))
    ds = YTVISDataset(tmp_path, "val", chunk_len=2, input_size=4, val_last=1)
    with pytest.raises(DataError, match=r"sample 'vid2': annotation 5: 'segmentations'\[2\]: cannot decode RLE"):
        ds[0]


def test_annotation_with_missing_frames_and_bad_video_entry(tmp_path):
    fabricate(tmp_path)
    edit_json(tmp_path, lambda d: d["annotations"][-1]["segmentations"].pop())
    with pytest.raises(DataError, match=r"sample 'vid2' \(video id 12\): annotation 5: 'segmentations' 4 entries"):
        YTVISDataset(tmp_path, "val", chunk_len=2, input_size=4, val_last=1)
    edit_json(tmp_path, lambda d: d["videos"][1].pop("height"))
    with pytest.warns(DataWarning) as caught:
        ds = YTVISDataset(tmp_path, "train", chunk_len=2, input_size=4, val_last=0)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and ds.skipped == 2
    assert "instances.json: video 11: missing keys ['height']" in messages[0]
    assert "sample 'vid2' (video id 12): annotation 5: 'segmentations' 4 entries" in messages[1]


def test_frame_size_differs_from_annotation(tmp_path):
    fabricate(tmp_path)
    Image.new("RGB", (W + 2, H)).save(tmp_path / "train" / "JPEGImages" / "vid2" / "00005.jpg")
    ds = YTVISDataset(tmp_path, "val", chunk_len=2, input_size=4, val_last=1)
    with pytest.raises(DataError, match=r"vid2/00005\.jpg: sample 'vid2': frame is \(6, 11\)"):
        ds[0]
    (tmp_path / "train" / "JPEGImages" / "vid2" / "00010.jpg").unlink()
    with pytest.raises(DataError, match=r"vid2/00010\.jpg: sample 'vid2': cannot read frame"):
        ds._load(ds.records[0], 2, 3)


def test_short_video_and_video_without_objects(tmp_path):
    fabricate(tmp_path, lengths=(4, 1, 5))
    with pytest.warns(DataWarning, match=r"instances\.json: sample 'vid1': 1 frames, shorter than chunk_len=2"):
        ds = YTVISDataset(tmp_path, "train", chunk_len=2, input_size=4, val_last=0)
    assert ds.skipped == 1 and len(ds) == 2
    edit_json(tmp_path, lambda d: d.update(annotations=[a for a in d["annotations"] if a["video_id"] != 12]))
    val = YTVISDataset(tmp_path, "val", chunk_len=2, input_size=4, val_last=1)
    with pytest.warns(DataWarning, match=r"sample 'vid2': masks have no object"):
        assert val[0]["masks"].sum() == 0
