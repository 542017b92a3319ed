"""build_dataset (source dispatch, config fields) and object_stats."""
import numpy as np
import pandas as pd
import pytest

from ssync_lib.config import get_config
from ssync_lib.data import DataWarning, MoviDataset, build_dataset, object_stats
from ssync_lib.data.movi import make_sample, write_shards


def movi_root(root):
    """Val: video a with object 1 (4 px in frames 0 and 1) and object 3 (6 px in frame 2); video b empty."""
    masks = np.zeros((3, 6, 6, 1), np.uint8)
    masks[0, :2, :2] = 1
    masks[1, 2:4, 2:4] = 1
    masks[2, :2, :3] = 3
    video = np.zeros((3, 6, 6, 3), np.uint8)
    write_shards([make_sample("a", video, masks), make_sample("b", video, np.zeros_like(masks))], root / "val")
    write_shards([make_sample(f"t{i}", video, masks) for i in range(3)], root / "train")


def test_build_dataset_uses_the_config(tmp_path):
    movi_root(tmp_path)
    cfg = get_config("smoke", {"data.source": "movi", "data.root": str(tmp_path), "data.chunk_len": 2,
                               "data.input_size": 12, "train.seed": 4})
    train = build_dataset(cfg, "train")
    assert isinstance(train, MoviDataset) and len(train) == 3 and train.seed == 4
    item = train[0]
    assert item["video"].shape == (2, 3, 12, 12) and item["masks"].shape == (2, 12, 12)
    cfg.data.max_val_videos = 1
    assert len(build_dataset(cfg, "val")) == 1
    cfg.data.source = "kitti"
    with pytest.raises(ValueError, match=r"unknown data.source 'kitti'"):
        build_dataset(cfg, "train")
    cfg.data.source = "movi"
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'val', 'test'\), got 'valid'"):
        build_dataset(cfg, "valid")
    with pytest.raises(FileNotFoundError, match=r"no test shards"):  # this root has no test/ folder
        build_dataset(cfg, "test")
    cfg.data.source = "ytvis"
    with pytest.raises(ValueError, match=r"the test split exists for MOVi-layout data only"):
        build_dataset(cfg, "test")


def test_object_stats(tmp_path):
    movi_root(tmp_path)
    ds = MoviDataset(tmp_path, "val", chunk_len=2, input_size=6)
    with pytest.warns(DataWarning, match="sample 'b': masks have no object"):
        stats = object_stats(ds)
    assert list(stats.columns) == ["id", "num_objects", "object", "frames_visible", "area_px", "area_frac"]
    assert stats["id"].tolist() == ["a", "a", "b"]
    assert stats["num_objects"].tolist() == [2, 2, 0]
    assert stats["object"].tolist()[:2] == [1, 3] and stats["object"].isna().tolist() == [False, False, True]
    assert stats["frames_visible"].tolist() == [2, 1, 0]
    np.testing.assert_allclose(stats["area_px"].tolist()[:2], [4.0, 6.0])
    np.testing.assert_allclose(stats["area_frac"].tolist()[:2], [4 / 36, 6 / 36])
    assert pd.isna(stats["area_px"].iloc[2])
    assert len(object_stats(ds, max_videos=1)) == 2
    write_shards([make_sample("x", np.zeros((3, 6, 6, 3), np.uint8))], tmp_path / "nomask" / "train")
    with pytest.raises(ValueError, match="has no masks"):
        object_stats(MoviDataset(tmp_path / "nomask", "train", chunk_len=2, input_size=6))
