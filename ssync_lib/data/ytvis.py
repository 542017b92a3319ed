"""YouTube-VIS 2021: JPEG frames per video folder and COCO-style RLE instance masks (docs/method.md §5).

Layout (as unpacked from the official archives)::

    {root}/train/instances.json           {"videos": [{"id", "file_names", "height", "width", ...}],
    {root}/train/JPEGImages/<video>/*.jpg  "annotations": [{"id", "video_id", "segmentations": [RLE | None
    {root}/valid/instances.json                              per frame], ...}], "categories": [...]}
    {root}/valid/JPEGImages/<video>/*.jpg

RLEs are decoded with pycocotools; both the uncompressed form of the official file (`counts` a list)
and the compressed form (`counts` a string) are read. Masks: instance ids 1..K in annotation order,
a later instance painted over an earlier one where they overlap; 0 = unlabelled (YouTube-VIS has no
background class; the metrics score labelled pixels only, docs/method.md §2).

Splits: with `val_last > 0` (the common practice, 300) the last `val_last` videos of the training
file form the validation split and the others the training split; with `val_last = 0` the splits are
`train/` and `valid/` (the official `valid/` file has no annotations, so items carry no masks).
"""
from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from ssync_lib.data.common import DataError, Record, VideoDataset, load_frame
from ssync_lib.errors import MissingInputError

VIDEO_KEYS = ("id", "file_names", "height", "width")


def decode_rle(rle: dict, size: tuple[int, int], where: str) -> np.ndarray:
    """A COCO RLE (compressed or uncompressed) -> bool mask (H,W)."""
    height, width = size
    try:
        if isinstance(rle["counts"], list):
            if sum(rle["counts"]) != height * width:
                raise ValueError(f"uncompressed counts sum to {sum(rle['counts'])}, expected {height}x{width}")
            rle = mask_utils.frPyObjects(rle, height, width)
        with warnings.catch_warnings():  # pycocotools' numpy-2 copy= DeprecationWarning, not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except (ValueError, TypeError, KeyError) as err:
        raise DataError(f"{where}: cannot decode RLE ({err})") from None


class YTVISDataset(VideoDataset):
    """Map-style dataset over YouTube-VIS 2021 (see the module docstring)."""

    def __init__(self, root: str | Path, split: str, chunk_len: int, input_size: int, seed: int = 0,
                 max_val_videos: int = 0, val_last: int = 300, resize: str = "bilinear"):
        super().__init__(split, chunk_len, input_size, seed, max_val_videos, resize)
        root = Path(root)
        folder = root / ("train" if val_last > 0 or split == "train" else "valid")
        self.ann_path = folder / "instances.json"
        if not self.ann_path.exists():
            raise MissingInputError(f"YouTube-VIS annotation file not found: {self.ann_path}")
        try:
            data = json.loads(self.ann_path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{self.ann_path}: not valid JSON ({err})") from None
        if "videos" not in data:
            raise DataError(f"{self.ann_path}: missing key 'videos' (has {sorted(data)})")
        videos = data["videos"]
        if val_last > 0:
            if val_last >= len(videos):
                raise DataError(f"{self.ann_path}: data.ytvis_val_last={val_last} but the file lists only "
                                f"{len(videos)} videos")
            videos = videos[:-val_last] if split == "train" else videos[-val_last:]
        self.has_masks = "annotations" in data
        by_video = defaultdict(list)
        for i, ann in enumerate(data.get("annotations", [])):
            if "video_id" not in ann:
                raise DataError(f"{self.ann_path}: annotations[{i}]: missing key 'video_id'")
            by_video[ann["video_id"]].append(ann)
        self.records = [rec for video in videos
                        if (rec := self._index_video(folder / "JPEGImages", video, by_video)) is not None]
        self._finish_index(str(self.ann_path))

    def _index_video(self, frame_root: Path, video: dict, by_video: dict) -> Record | None:
        missing = [k for k in VIDEO_KEYS if k not in video]
        if missing:
            return self._bad(f"{self.ann_path}: video {video.get('id', '?')}: missing keys {missing}")
        names = video["file_names"]
        sample = Path(names[0]).parent.name if names else str(video["id"])
        size = (int(video["height"]), int(video["width"]))
        where = f"{self.ann_path}: sample '{sample}' (video id {video['id']})"
        if not names:
            return self._bad(f"{where}: 'file_names' is empty")
        instances = []  # per instance: per frame RLE or None
        for ann in by_video.get(video["id"], []):
            segs = ann.get("segmentations")
            if segs is None or len(segs) != len(names):
                got = "missing" if segs is None else f"{len(segs)} entries"
                return self._bad(f"{where}: annotation {ann.get('id', '?')}: 'segmentations' {got}, "
                                 f"expected one per frame ({len(names)})")
            for t, rle in enumerate(segs):
                if rle is not None and list(rle.get("size", ())) != list(size):
                    return self._bad(f"{where}: annotation {ann.get('id', '?')}: 'segmentations'[{t}] RLE size "
                                     f"{rle.get('size')} != video (height, width) {list(size)}")
            instances.append((ann.get("id", "?"), segs))
        frames = [frame_root / name for name in names]
        return Record(id=sample, num_frames=len(names), source=self.ann_path,
                      info={"frames": frames, "size": size, "instances": instances})

    def _load(self, record: Record, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        size = record.info["size"]
        frames = np.stack([load_frame(p, record.id, size) for p in record.info["frames"][start:stop]])  # t H W 3
        if not self.has_masks:
            return frames, None
        masks = np.zeros((stop - start,) + size, np.int32)  # t H W, 0 = unlabelled
        for instance, (ann_id, segs) in enumerate(record.info["instances"], start=1):
            for t in range(start, stop):
                if segs[t] is not None:
                    where = f"{self.ann_path}: sample '{record.id}': annotation {ann_id}: 'segmentations'[{t}]"
                    masks[t - start][decode_rle(segs[t], size, where)] = instance
        return frames, masks
