"""What every reader shares: the map-style clip dataset, resizing, normalisation, chunking, errors.

A reader (movi.py, ytvis.py, davis.py) lists its videos as `Record`s and implements
`_load(record, start, stop)` returning uint8 frames (t,H,W,3) and integer masks (t,H,W) or None.
`VideoDataset` turns them into items (docs/method.md §5; non-square frames are stretched to the square input
size, with one `DataWarning` per frame size that says so):

    {"video": float32 (T,3,S,S)  resized to S = input_size (data.resize), ImageNet-normalised,
     "masks": int64 (T,S,S)      nearest, 0 = background / unlabelled (only when the data has masks),
     "id": str}

Train split: one random aligned chunk `[k*L, (k+1)*L)` of L = chunk_len frames per video, k drawn
from (seed, epoch, index) only, so DataLoader workers, DistributedSampler and resumption all see the
same chunk. Validation split: the whole video.

Bad input: problems found while indexing go through `VideoDataset._bad`: in the train split the
sample is skipped with a `DataWarning` naming it and counted in `dataset.skipped`; in the val split
they raise `DataError`. Problems found while loading one item always raise `DataError`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from ssync_lib.config import IMAGENET_MEAN, IMAGENET_STD
from ssync_lib.config_checks import check_choice
from ssync_lib.errors import DataError

SPLITS = ("train", "val", "test")  # test: read like val (whole videos, masks required); MOVi-layout data only


class DataWarning(UserWarning):
    """A sample was skipped (train split) or is suspicious (e.g. masks with no object)."""


@dataclass
class Record:
    """One video of a data set, as listed by a reader."""

    id: str
    num_frames: int
    source: Any = None  # reader-specific: where the frames and masks live
    info: dict = field(default_factory=dict)  # reader-specific extras (sizes, annotations)


def chunk_start(seed: int, epoch: int, index: int, num_frames: int, chunk_len: int) -> int:
    """First frame of the aligned training chunk of video `index` in `epoch` (§5: one random chunk)."""
    num_chunks = num_frames // chunk_len
    k = np.random.default_rng((seed, epoch, index)).integers(num_chunks)
    return int(k) * chunk_len


def load_frame(path: Path, sample: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """One RGB image file -> (H,W,3) uint8, checked against the expected (height, width) when given."""
    try:
        with Image.open(path) as img:
            frame = np.asarray(img.convert("RGB"))
    except OSError as err:
        raise DataError(f"{path}: sample '{sample}': cannot read frame ({err})") from None
    if size is not None and frame.shape[:2] != tuple(size):
        raise DataError(f"{path}: sample '{sample}': frame is {frame.shape[:2]} but the annotation says "
                        f"(height, width) = {tuple(size)}")
    return frame


def preprocess_video(frames: np.ndarray, size: int, resize: str = "bilinear") -> torch.Tensor:
    """uint8 frames (T,H,W,3) -> float32 (T,3,size,size), ImageNet-normalised, resized by ``resize``:

    * "bilinear" (this project's own profiles): normalise, then bilinear resize. Normalising first is exact (a
      per-channel affine map commutes with interpolation) and runs in numpy: single-threaded, so item loading does
      not contend with torch's intra-op threads. Downsampling uses antialiasing (identical to plain bilinear when
      upsampling).
    * "bicubic" (the published profiles): the public pipeline's order, pixels in [0, 1] resized bicubic
      (``F.interpolate(mode="bicubic", align_corners=False)``), clamped to [0, 1] (bicubic overshoots at edges),
      then normalised. The clamp does not commute with the normalisation, so the order matters."""
    check_choice("data", "resize", resize)
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    if resize == "bicubic":
        video = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2), np.float32) / 255)  # T 3 H W
        if video.shape[-2:] != (size, size):
            video = F.interpolate(video, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 1)
        return (video - torch.from_numpy(mean)[:, None, None]) / torch.from_numpy(std)[:, None, None]
    video = torch.from_numpy(np.ascontiguousarray(((frames - mean * 255) / (std * 255)).transpose(0, 3, 1, 2),
                                                  np.float32))
    if video.shape[-2:] != (size, size):  # T 3 H W
        video = F.interpolate(video, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return video


def resize_masks(masks: np.ndarray, size: int) -> torch.Tensor:
    """Integer masks (T,H,W) -> int64 (T,size,size), nearest neighbour (pixel-centre aligned)."""
    out = torch.from_numpy(np.ascontiguousarray(masks).astype(np.int64))  # T H W
    if out.shape[-2:] != (size, size):
        out = F.interpolate(out[:, None].double(), size=(size, size), mode="nearest-exact")[:, 0].long()
    return out


def denormalize(video: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Normalised (T,3,H,W) or (B,T,3,H,W) -> float in [0,1], channels last (T,H,W,3) or (B,T,H,W,3).

    Returns the input's type (torch tensor on the CPU, or numpy array), ready for `plt.imshow`."""
    is_numpy = isinstance(video, np.ndarray)
    x = torch.as_tensor(video).detach().float().cpu()
    if x.ndim not in (4, 5) or x.shape[-3] != 3:
        raise ValueError(f"denormalize expects (T,3,H,W) or (B,T,3,H,W), got shape {tuple(x.shape)}")
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = (x * std + mean).clamp(0, 1).movedim(-3, -1)  # ... H W 3
    return x.numpy() if is_numpy else x


class VideoDataset(Dataset):
    """Map-style clip dataset over a reader's `records` (see the module docstring).

    Subclasses set `self.records`, `self.has_masks` and implement `_load`; they call `self._bad(msg)`
    for a bad sample found while indexing and `self._finish_index(where)` at the end of `__init__`.
    """

    def __init__(self, split: str, chunk_len: int, input_size: int, seed: int = 0, max_val_videos: int = 0,
                 resize: str = "bilinear"):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
        if chunk_len < 1 or input_size < 1:
            raise ValueError(f"chunk_len and input_size must be >= 1, got {chunk_len} and {input_size}")
        self.split = split
        self.chunk_len = chunk_len
        self.input_size = input_size
        self.resize = resize  # preprocess_video's mode (data.resize)
        self.seed = seed
        self.max_val_videos = max_val_videos  # 0 = all
        self.records: list[Record] = []
        self.has_masks = False
        self.skipped = 0  # videos skipped while indexing (train split only)
        self._warned_sizes: set[tuple[int, int]] = set()  # non-square frame sizes warned about
        self._epoch = torch.zeros((), dtype=torch.long).share_memory_()  # seen by persistent workers too

    # -- indexing helpers for subclasses --
    def _bad(self, message: str, count: int = 1) -> None:
        """A bad sample found while indexing: skip with a warning (train) or raise (val). ``count``: the videos
        the problem costs (a damaged shard: those it took members from; 0 when none was lost).

        Returns None, so a reader's indexing helper can `return self._bad(...)` for "no record"."""
        if self.split == "train":
            warnings.warn(f"skipping: {message}", DataWarning, stacklevel=3)
            self.skipped += count
        else:
            raise DataError(message)

    def _finish_index(self, where: str) -> None:
        """Drop training videos shorter than chunk_len, cap validation videos, refuse an empty set."""
        if self.split == "train":
            keep = []
            for rec in self.records:
                if rec.num_frames < self.chunk_len:
                    self._bad(f"{rec.source}: sample '{rec.id}': {rec.num_frames} frames, "
                              f"shorter than chunk_len={self.chunk_len}")
                else:
                    keep.append(rec)
            self.records = keep
        elif self.max_val_videos > 0:
            self.records = self.records[: self.max_val_videos]
        if not self.records:
            raise DataError(f"{where}: no usable {self.split} videos (skipped {self.skipped} video{'s' * (self.skipped != 1)})")

    def _load(self, record: Record, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Frames [start, stop): uint8 (t,H,W,3) and integer masks (t,H,W) or None."""
        raise NotImplementedError

    # -- the Dataset protocol --
    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the training chunks of `epoch` (call before iterating the DataLoader)."""
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def clip_range(self, index: int) -> tuple[int, int]:
        """Frames [start, stop) that item `index` returns in the current epoch."""
        rec = self.records[index]
        if self.split != "train":
            return 0, rec.num_frames
        start = chunk_start(self.seed, self.epoch, index, rec.num_frames, self.chunk_len)
        return start, start + self.chunk_len

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        start, stop = self.clip_range(index)
        frames, masks = self._load(rec, start, stop)
        self._check_square(rec, frames.shape[1:3])
        item = {"video": preprocess_video(frames, self.input_size, self.resize), "id": rec.id}
        if masks is not None:
            if self.split != "train" and not masks.any():
                warnings.warn(f"{rec.source}: sample '{rec.id}': masks have no object in any frame "
                              "(metrics skip this video)", DataWarning, stacklevel=2)
            item["masks"] = resize_masks(masks, self.input_size)
        return item

    def _check_square(self, rec: Record, size: tuple[int, int]) -> None:
        """Warn once per frame size (per process) that non-square frames are stretched to the square input."""
        h, w = size
        if h != w and (h, w) not in self._warned_sizes:
            self._warned_sizes.add((h, w))
            s = self.input_size
            warnings.warn(f"{rec.source}: sample '{rec.id}': frames are {h}x{w} (height x width), not square: "
                          f"frames and masks are resized to {s}x{s} (data.input_size), which scales them by "
                          f"{s / h:.3g} vertically and {s / w:.3g} horizontally; the aspect ratio is not kept (the "
                          f"model's patch grid is square) and metrics are computed on the stretched masks. Crop or "
                          f"pad the data to square to avoid it (warned once per frame size)", DataWarning, stacklevel=3)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.split}, videos={len(self)}, chunk_len={self.chunk_len}, "
                f"input_size={self.input_size}, masks={self.has_masks}, skipped={self.skipped})")
