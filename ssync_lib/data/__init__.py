"""Video clips with instance masks: the synthetic benchmark and readers for MOVi, YouTube-VIS and DAVIS.

    ds = build_dataset(get_config("cpu"), "train")   # map-style torch Dataset
    ds.set_epoch(epoch)                              # selects each video's training chunk
    item = ds[0]   # {"video": float32 (T,3,S,S) normalised, "masks": int64 (T,S,S), "id": str}

See common.py for the item contract and the bad-input policy, synthetic.py for the benchmark levels.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ssync_lib.config import Config, project_root, resolve_path
from ssync_lib.data import movi_mini, synthetic
from ssync_lib.data.common import DataError, DataWarning, VideoDataset, denormalize
from ssync_lib.data.davis import DavisDataset
from ssync_lib.data.movi import MoviDataset
from ssync_lib.data.ytvis import YTVISDataset
from ssync_lib.errors import ConfigError, MissingInputError

SOURCES = ("synthetic", "movi", "ytvis", "davis")

__all__ = ["build_dataset", "check_data_root", "denormalize", "object_stats", "pixel_kmeans_reference", "DataError", "DataWarning", "VideoDataset",
           "MoviDataset", "YTVISDataset", "DavisDataset", "SOURCES", "synthetic", "movi_mini"]


def check_data_root(cfg: Config) -> Path:
    """Fail early, before building anything, when the data folder is missing, is a file, cannot be read, or (for
    synthetic data) holds no generated data set. A relative ``data.root`` is relative to the project root, not to
    the current folder; the message says so when it is missing."""
    root = resolve_path(cfg.data.root)
    where = f"data folder {root} (data.root='{cfg.data.root}', profile '{cfg.profile}')"
    if cfg.data.source == "synthetic" or cfg.data.level in movi_mini.LEVELS:
        hint = (f"generate it with `make data PROFILE={cfg.profile}` or "
                f"`python data_scripts/make_synthetic.py --profile {cfg.profile} --root {root}`")
    else:
        hint = f"download the {cfg.data.source} data set there or point data.root at it"
    if not root.exists():
        rule = ""
        if not Path(cfg.data.root).expanduser().is_absolute():
            rule = f"; a relative data.root is relative to the project root {project_root()}, not to the current folder"
            if (Path.cwd() / cfg.data.root).exists():
                hint = f"give the absolute path: --data-root {(Path.cwd() / cfg.data.root).resolve()}"
        raise MissingInputError(f"{where} does not exist{rule}", fix=f"{hint} (--data-root PATH)")
    if not root.is_dir():
        raise DataError(f"{where} is a file, not a folder", fix=f"point data.root at the data set's folder; {hint}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"{where} cannot be read (permission denied)",
                        fix=f"give this user read access (chmod -R u+rX {root}) or copy the data elsewhere")
    if cfg.data.source == "synthetic":
        synthetic.check_root(root, cfg.data, cfg.profile)
    return root


def build_dataset(cfg: Config, split: str) -> VideoDataset:
    """The `split` ("train" | "val" | "test") dataset of `cfg.data.source` under `resolve_path(cfg.data.root)`;
    test exists for MOVi-layout data with a `test/` folder (movi-mini)."""
    d = cfg.data
    if split == "test" and d.source not in ("movi", "synthetic"):
        raise ConfigError(f"the test split exists for MOVi-layout data only (data.source 'movi'), not '{d.source}'",
                          fix="evaluate --split val")
    root = resolve_path(d.root)
    common = dict(split=split, chunk_len=d.chunk_len, input_size=d.input_size, seed=cfg.train.seed,
                  max_val_videos=d.max_val_videos, resize=d.resize)
    if d.source == "synthetic":
        synthetic.check_root(root, d, cfg.profile)
        return MoviDataset(root, **common)
    if d.source == "movi":
        return MoviDataset(root, **common)
    if d.source == "ytvis":
        return YTVISDataset(root, val_last=d.ytvis_val_last, **common)
    if d.source == "davis":
        return DavisDataset(root, **common)
    raise ConfigError(f"unknown data.source '{d.source}'; choose one of {SOURCES}")


def object_stats(dataset: VideoDataset, max_videos: int | None = None) -> pd.DataFrame:
    """Per-object statistics of the masks the dataset yields (at its input size), for plotting.

    One row per (video, object) with columns id, num_objects (objects in that clip), object,
    frames_visible, area_px (mean pixels per visible frame) and area_frac (area_px / S^2); a clip
    without objects gives one row with num_objects 0 and object <NA>."""
    if not dataset.has_masks:
        raise ValueError(f"{dataset!r} has no masks to take statistics of")
    rows = []
    for index in range(len(dataset) if max_videos is None else min(max_videos, len(dataset))):
        item = dataset[index]
        masks = item["masks"].numpy()  # T S S
        pixels = masks.shape[-2] * masks.shape[-1]
        area = np.stack([np.bincount(m.ravel(), minlength=masks.max() + 1) for m in masks])  # T K+1, id -> pixels
        objects = [k for k in range(1, area.shape[1]) if area[:, k].any()]
        if not objects:
            rows.append({"id": item["id"], "num_objects": 0, "object": pd.NA, "frames_visible": 0,
                         "area_px": float("nan"), "area_frac": float("nan")})
        for k in objects:
            visible = area[:, k] > 0  # T
            mean_area = float(area[visible, k].mean())
            rows.append({"id": item["id"], "num_objects": len(objects), "object": k,
                         "frames_visible": int(visible.sum()), "area_px": mean_area,
                         "area_frac": mean_area / pixels})
    frame = pd.DataFrame(rows, columns=["id", "num_objects", "object", "frames_visible", "area_px", "area_frac"])
    return frame.astype({"object": "Int64"})


def pixel_kmeans_reference(dataset: VideoDataset, patch: int, max_videos: int | None = None,
                           seed: int = 0) -> pd.DataFrame:
    """The raw-pixel reference of a data level (issue 34): per video, k-means of the mean colour of each
    ``patch`` x ``patch`` patch (the profile's patch grid at the dataset's input size) with K = objects + 1,
    scored by video FG-ARI (``metrics.kmeans_fg_ari``). One row per video: id, num_objects, fg_ari. A level whose
    objects colour alone separates scores near 1; the calibration target of movi-mini is 0.45-0.65."""
    from ssync_lib.metrics import kmeans_fg_ari

    if not dataset.has_masks:
        raise ValueError(f"{dataset!r} has no masks to score against")
    rows = []
    for index in range(len(dataset) if max_videos is None else min(max_videos, len(dataset))):
        item = dataset[index]
        video = torch.as_tensor(denormalize(item["video"])).movedim(-1, 1)  # T 3 S S in [0, 1]
        colour = torch.nn.functional.avg_pool2d(video, patch).movedim(1, -1)  # T h w 3: mean colour per patch
        masks = item["masks"]  # T S S
        objects = int((masks.unique() > 0).sum())
        rows.append({"id": item["id"], "num_objects": objects,
                     "fg_ari": kmeans_fg_ari(colour, masks, objects + 1, seed) if objects else float("nan")})
    return pd.DataFrame(rows, columns=["id", "num_objects", "fg_ari"])
