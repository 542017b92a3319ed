"""MOVi-C/E (and the synthetic benchmark): webdataset tar shards of `.npy` members (docs/method.md §5).

Layout::

    {root}/train/shard-000000.tar ...   samples: {key}.video.npy          (T,H,W,3) uint8
    {root}/val/shard-000000.tar ...              {key}.segmentations.npy  (T,H,W,1) uint8, 0 = background
    {root}/test/shard-000000.tar ... (optional)  (required in val and test, optional in train)

(`validation/` is accepted for `val/`; the test split is read like val.) Train items carry masks only when every training sample has
`segmentations.npy` (the synthetic benchmark writes them; the MOVi release does not).

Checksums (optional): shards this project writes (`make_sample`: the synthetic benchmark, `convert_movi.py`)
carry a `{key}.sha256.json` member per sample, `{"video.npy": [sha256 of frame 0's bytes, ...],
"segmentations.npy": [...]}`; the frames an item reads are checked against it (a `DataError` names the
sample, member and frame). Shards without it (other MOVi conversions, older synthetic data) are read
unchecked: a corrupt array inside an intact tar then goes unnoticed. Member names
are split into sample key and field with webdataset's own rule; shards are written with
`webdataset.ShardWriter` (`write_shards`).

Random access (map-style, needed by DistributedSampler and exact resumption): each shard is indexed
once with `tarfile` (member data offsets) and each `.npy` header is parsed at its offset, which also
checks dtype and shape before training starts. An item then reads only the bytes of its frames.
"""
from __future__ import annotations

import hashlib
import json
import math
import tarfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import webdataset as wds
from webdataset.tariterators import base_plus_ext

from ssync_lib.data.common import DataError, Record, VideoDataset
from ssync_lib.errors import MissingInputError

VIDEO = "video.npy"
MASKS = "segmentations.npy"
CHECKSUMS = "sha256.json"  # optional: {member: [sha256 of each frame's bytes]}, written by make_sample
SPLIT_DIRS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}


@dataclass(frozen=True)
class NpyMember:
    """Where one `.npy` array lives inside a shard: its data start and its header."""

    shard: Path
    offset: int  # byte offset of the array data in the shard file
    shape: tuple[int, ...]
    dtype: np.dtype

    def read_frames(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) along the first axis, read straight from the shard."""
        row = math.prod(self.shape[1:]) * self.dtype.itemsize
        buf = bytearray((stop - start) * row)  # writable, so torch.from_numpy needs no copy
        with open(self.shard, "rb") as f:
            f.seek(self.offset + start * row)
            got = f.readinto(buf)
        if got != len(buf):
            raise DataError(f"{self.shard}: array at byte {self.offset}: read {got} of "
                            f"{(stop - start) * row} bytes for frames {start}:{stop} (file changed or truncated?)")
        return np.frombuffer(buf, dtype=self.dtype).reshape((stop - start,) + self.shape[1:])


def index_shard(path: Path) -> tuple[dict[str, dict[str, tuple[int, int]]], str | None, int]:
    """Members of one shard grouped by sample key: {key: {field: (data offset, size)}}.

    Returns (samples, problem, lost). A sound shard gives problem None and lost 0. A damaged one (a corrupt
    header, garbage, a truncation) gives a description of the damage: reading resumes at the next valid member
    header after it, so that only the samples the damage took members (or bytes) from are dropped; ``lost``
    counts them (videos). Samples wholly inside a damaged stretch leave no trace and cannot be counted."""
    size = path.stat().st_size
    order: list[tuple[str, str, int, int]] = []  # (key, field, data offset, size) in file order
    damaged: list[tuple[int, int]] = []  # (first bad byte, where reading resumed) per damaged stretch
    suspects: set[str] = set()  # samples next to damage: kept only if they have every field the others have
    ending = ""  # how the file ends when not with an end-of-archive marker
    with open(path, "rb") as f:
        pos = 0
        while True:
            first = len(order)
            stop, cut = _read_members(f, pos, size, order)
            if damaged and len(order) > first:  # the first member after a damaged stretch
                suspects.add(order[first][0])
            if cut:  # the last member's data runs past the end of the file
                suspects.add(order.pop()[0])
                ending = f"a member runs past the end of the file ({size} bytes)"
                break
            f.seek(stop)
            marker = f.read(1024)
            if not any(marker):  # the end-of-archive marker (two zero blocks), or the end of the file
                ending = "" if len(marker) == 1024 else "no end-of-archive marker"
                break
            if order:
                suspects.add(order[-1][0])
            resume = _next_header(f, stop + 512, size)
            damaged.append((stop, resume))
            if resume >= size:
                break
            pos = resume
    samples: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for key, field, offset, length in order:
        samples[key][field] = (offset, length)
    if not damaged and not ending:
        return dict(samples), None, 0
    fields = Counter(frozenset(v) for v in samples.values()).most_common(1)
    complete = fields[0][0] if fields else frozenset()
    lost = sorted(k for k in suspects if k in samples and frozenset(samples[k]) != complete)
    for key in lost:
        del samples[key]
    if not order:
        problem = "not a readable tar file (no valid member header; its videos cannot be counted)"
    else:
        where = [f"bytes {a}-{b}" for a, b in damaged if b < size] + \
                [f"byte {a} to the end (no member header after it: the videos there cannot be counted)"
                 for a, b in damaged if b >= size]
        problem = ("truncated or corrupt" + (f" at {', '.join(where)}" if where else "")
                   + (f" ({ending})" if ending else "")
                   + f": {len(samples)} intact videos read, {len(lost)} damaged videos skipped"
                   + (f" ({', '.join(lost)})" if lost else ""))
    return dict(samples), problem, len(lost)


def _read_members(f, start: int, size: int, order: list) -> tuple[int, bool]:
    """Append the regular members from byte ``start`` on to ``order``; returns (the byte where reading stopped:
    an end marker, damage or the end of the file; whether the last member's data runs past the end)."""
    f.seek(start)
    try:
        tar = tarfile.TarFile(fileobj=f, mode="r")
    except tarfile.ReadError:  # no valid header at start
        return start, False
    while True:
        try:
            info = tar.next()
        except tarfile.ReadError:
            return tar.offset, False
        if info is None:
            return tar.offset, False
        if not info.isreg():
            continue
        key, field = base_plus_ext(info.name)
        if key is None:
            continue
        order.append((key, field, info.offset_data, info.size))
        if info.offset_data + info.size > size:
            return size, True


def _next_header(f, start: int, size: int) -> int:
    """The first 512-byte block at or after ``start`` that parses as a tar header (checksum included), or
    ``size`` when none does."""
    block = start - start % 512 if start % 512 else start
    while block + 512 <= size:
        f.seek(block)
        buf = f.read(512)
        if any(buf):
            try:
                tarfile.TarInfo.frombuf(buf, tarfile.ENCODING, "surrogateescape")
                return block
            except tarfile.HeaderError:
                pass
        block += 512
    return size


def read_npy_header(shard: Path, offset: int, size: int) -> NpyMember:
    """Parse the `.npy` header of a member (data at `offset`, `size` bytes) and check its length."""
    with open(shard, "rb") as f:
        f.seek(offset)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        data_offset = f.tell()
    if fortran_order:
        raise ValueError("array is stored in Fortran order; expected C order")
    expected = math.prod(shape) * dtype.itemsize
    if offset + size - data_offset != expected:
        raise ValueError(f"member holds {offset + size - data_offset} data bytes but header says {shape} {dtype} "
                         f"= {expected} bytes")
    return NpyMember(shard, data_offset, tuple(shape), dtype)


def check_video(shape: tuple, dtype: np.dtype) -> str | None:
    """Why a `video.npy` header is wrong, or None."""
    if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
        return f"dtype {dtype} shape {shape}; expected uint8 (T,H,W,3)"
    return None


def check_masks(shape: tuple, dtype: np.dtype, video_shape: tuple) -> str | None:
    """Why a `segmentations.npy` header is wrong for a video of `video_shape`, or None."""
    if dtype.kind not in "ui" or tuple(shape[:3]) != tuple(video_shape[:3]) or shape[3:] not in ((), (1,)):
        return f"dtype {dtype} shape {shape}; expected an integer array (T,H,W,1) with (T,H,W) = {video_shape[:3]}"
    return None


def split_dir(root: Path, split: str) -> Path:
    for name in SPLIT_DIRS[split]:
        if (root / name).is_dir():
            return root / name
    raise MissingInputError(f"no {split} shards: none of {[str(root / n) for n in SPLIT_DIRS[split]]} exists")


class MoviDataset(VideoDataset):
    """Map-style dataset over MOVi-style shards `{root}/{split}/*.tar` (see the module docstring)."""

    def __init__(self, root: str | Path, split: str, chunk_len: int, input_size: int, seed: int = 0,
                 max_val_videos: int = 0, resize: str = "bilinear"):
        super().__init__(split, chunk_len, input_size, seed, max_val_videos, resize)
        folder = split_dir(Path(root), split)
        shards = sorted(folder.glob("*.tar"))
        if not shards:
            raise MissingInputError(f"no .tar shards in {folder}")
        records = []
        for shard in shards:
            samples, problem, lost = index_shard(shard)
            if problem is not None:
                self._bad(f"{shard}: {problem}", count=lost)
            for key, fields in samples.items():
                rec = self._index_sample(shard, key, fields)
                if rec is not None:
                    records.append(rec)
        self.records = records
        self._check_unique_ids(folder)
        self.has_masks = bool(records) and all("masks" in r.info for r in records)
        self._finish_index(str(folder))

    def _index_sample(self, shard: Path, key: str, fields: dict[str, tuple[int, int]]) -> Record | None:
        where = f"{shard}: sample '{key}'"
        if VIDEO not in fields:
            return self._bad(f"{where}: missing '{VIDEO}' (has {sorted(fields)})")
        if self.split != "train" and MASKS not in fields:
            return self._bad(f"{where}: missing '{MASKS}' (required for {self.split}; has {sorted(fields)})")
        members = {}
        for name, check in ((VIDEO, check_video), (MASKS, check_masks)):
            if name not in fields:
                continue
            try:
                member = read_npy_header(shard, *fields[name])
            except ValueError as err:
                return self._bad(f"{where}: '{name}': unreadable .npy ({err})")
            args = (members[VIDEO].shape,) if name == MASKS else ()
            problem = check(member.shape, member.dtype, *args)
            if problem is not None:
                return self._bad(f"{where}: '{name}': {problem}")
            members[name] = member
        info = {"video": members[VIDEO]}
        if MASKS in members:
            info["masks"] = members[MASKS]
        if CHECKSUMS in fields:
            info["checksums"] = (shard, *fields[CHECKSUMS])
        return Record(id=key, num_frames=members[VIDEO].shape[0], source=shard, info=info)

    def _check_unique_ids(self, folder: Path) -> None:
        seen: dict[str, Path] = {}
        for rec in self.records:
            if rec.id in seen:
                raise DataError(f"{folder}: sample key '{rec.id}' appears in {seen[rec.id]} and {rec.source}")
            seen[rec.id] = rec.source

    def _load(self, record: Record, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        frames = record.info["video"].read_frames(start, stop)  # t H W 3
        masks = None
        if self.has_masks:
            masks = record.info["masks"].read_frames(start, stop)
        if "checksums" in record.info:
            _verify(record, start, {VIDEO: frames, **({MASKS: masks} if masks is not None else {})})
        return frames, None if masks is None else masks.reshape(frames.shape[:3])  # t H W


def frame_checksums(array: np.ndarray) -> list[str]:
    """sha256 of each frame's bytes (first axis) of a C-contiguous array."""
    return [hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest() for frame in array]


def _verify(record: Record, start: int, arrays: dict[str, np.ndarray]) -> None:
    """Check frames ``start...`` of ``arrays`` against the sample's ``sha256.json``."""
    shard, offset, size = record.info["checksums"]
    with open(shard, "rb") as f:
        f.seek(offset)
        raw = f.read(size)
    try:
        sums = json.loads(raw)
    except ValueError:
        raise DataError(f"{shard}: sample '{record.id}': '{CHECKSUMS}' is not valid JSON (damaged member)") from None
    for name, array in arrays.items():
        expected = sums.get(name, [])[start:start + len(array)]
        for t, (got, want) in enumerate(zip(frame_checksums(array), expected)):
            if got != want:
                raise DataError(f"{shard}: sample '{record.id}': '{name}' frame {start + t}: sha256 {got[:12]}... "
                                f"does not match the recorded {want[:12]}... (the array is corrupt)")


# -- writing ----------------------------------------------------------------------------------------------


def make_sample(key: str, video: np.ndarray, segmentations: np.ndarray | None = None) -> dict:
    """A shard sample from arrays: video (T,H,W,3) uint8, segmentations (T,H,W) or (T,H,W,1) uint8."""
    problem = check_video(video.shape, video.dtype)
    if problem is not None:
        raise DataError(f"sample '{key}': '{VIDEO}': {problem}")
    sample = {"__key__": key, VIDEO: np.ascontiguousarray(video)}
    if segmentations is not None:
        problem = check_masks(segmentations.shape, segmentations.dtype, video.shape)
        if problem is None and segmentations.dtype != np.uint8:
            problem = f"dtype {segmentations.dtype}; expected uint8"
        if problem is not None:
            raise DataError(f"sample '{key}': '{MASKS}': {problem}")
        sample[MASKS] = np.ascontiguousarray(segmentations.reshape(video.shape[:3] + (1,)))
    sample[CHECKSUMS] = {name: frame_checksums(sample[name]) for name in (VIDEO, MASKS) if name in sample}
    return sample


def sample_from_tfds(example: dict, index: int, with_segmentations: bool) -> dict:
    """The numpy part of `data_scripts/convert_movi.py`: one TFDS MOVi example (a dict of numpy arrays,
    as given by `tfds.as_numpy`) -> a shard sample keyed by its position `index` in the split."""
    key = f"{index:06d}"
    needed = ["video"] + (["segmentations"] if with_segmentations else [])
    missing = [k for k in needed if k not in example]
    if missing:
        raise DataError(f"TFDS example {index}: missing {missing} (has {sorted(example)})")
    video = np.asarray(example["video"])
    segmentations = np.asarray(example["segmentations"]) if with_segmentations else None
    return make_sample(key, video, segmentations)


def write_shards(samples: Iterable[dict], folder: str | Path, shard_size: int = 256) -> int:
    """Write samples (from `make_sample`) to `{folder}/shard-%06d.tar`; returns the number written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with wds.ShardWriter(str(folder / "shard-%06d.tar"), maxcount=shard_size, verbose=0, mtime=0.0) as sink:
        for sample in samples:
            sink.write(sample)
            count += 1
    return count

