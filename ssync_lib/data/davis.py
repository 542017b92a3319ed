"""DAVIS 2017: JPEG frames and palette-PNG instance masks per frame (docs/method.md §5).

Layout (the official DAVIS-2017 trainval archive)::

    {root}/JPEGImages/480p/<video>/00000.jpg ...
    {root}/Annotations/480p/<video>/00000.png ...   palette ("P") PNGs: index = instance id, 0 = background
    {root}/ImageSets/2017/train.txt, val.txt        one video name per line

Index 255 (void, used at some object borders) is mapped to 0 so the metrics ignore it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ssync_lib.data.common import DataError, Record, VideoDataset, load_frame
from ssync_lib.errors import MissingInputError

VOID = 255


def load_mask(path: Path, size: tuple[int, int], sample: str) -> np.ndarray:
    """One instance-id mask (H,W) uint8 from a palette (or greyscale index) PNG."""
    try:
        with Image.open(path) as img:
            mode = img.mode
            mask = np.array(img)
    except OSError as err:
        raise DataError(f"{path}: sample '{sample}': cannot read annotation ({err})") from None
    if mode not in ("P", "L"):
        raise DataError(f"{path}: sample '{sample}': annotation PNG has mode '{mode}'; expected a palette ('P') "
                        "PNG whose indices are instance ids")
    if mask.shape != size:
        raise DataError(f"{path}: sample '{sample}': annotation is {mask.shape} but its frame is {size}")
    mask[mask == VOID] = 0  # void -> ignored like background
    return mask


class DavisDataset(VideoDataset):
    """Map-style dataset over DAVIS 2017 train or val (see the module docstring)."""

    def __init__(self, root: str | Path, split: str, chunk_len: int, input_size: int, seed: int = 0,
                 max_val_videos: int = 0, resolution: str = "480p", resize: str = "bilinear"):
        super().__init__(split, chunk_len, input_size, seed, max_val_videos, resize)
        root = Path(root)
        list_path = root / "ImageSets" / "2017" / f"{split}.txt"
        if not list_path.exists():
            raise MissingInputError(f"DAVIS video list not found: {list_path}")
        names = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
        self.has_masks = True
        records = []
        for name in names:
            frames = sorted((root / "JPEGImages" / resolution / name).glob("*.jpg"))
            if not frames:
                self._bad(f"{root / 'JPEGImages' / resolution / name}: sample '{name}': no .jpg frames")
                continue
            pngs = [root / "Annotations" / resolution / name / f"{f.stem}.png" for f in frames]
            missing = [p for p in pngs if not p.exists()]
            if missing:
                self._bad(f"{missing[0]}: sample '{name}': annotation file missing "
                          f"({len(missing)} of {len(frames)} frames have no annotation)")
                continue
            records.append(Record(id=name, num_frames=len(frames), source=list_path,
                                  info={"frames": frames, "masks": pngs}))
        self.records = records
        self._finish_index(str(list_path))

    def _load(self, record: Record, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        frames, masks = [], []
        for jpg, png in zip(record.info["frames"][start:stop], record.info["masks"][start:stop]):
            frames.append(load_frame(jpg, record.id))
            masks.append(load_mask(png, frames[-1].shape[:2], record.id))
        return np.stack(frames), np.stack(masks)  # t H W 3, t H W
