"""movi-mini's shards: a video as a sample of the MOVi shard layout (``movi.make_sample`` plus its instances, camera
and metadata JSON), made with one simulator per process; a shard written whole; a JSON member read back."""
from __future__ import annotations

import atexit
import io
import json
import os
from pathlib import Path

import webdataset as wds

from ssync_lib.data.movi import make_sample
from ssync_lib.data.movi_mini.render import render_video
from ssync_lib.data.movi_mini.scene import Simulator
from ssync_lib.errors import MissingInputError

_SIM: Simulator | None = None


def _simulator() -> Simulator:
    global _SIM
    if _SIM is None:
        _SIM = Simulator()
        atexit.register(_SIM.close)  # disconnect before the interpreter tears pybullet down
    return _SIM


def _forget_simulator() -> None:  # pool initializer: a forked worker makes its own client
    global _SIM
    _SIM = None


def make_video_sample(job: tuple) -> tuple[dict, int]:
    """A shard sample (``movi.make_sample`` plus instances/camera/metadata JSON) and its resample count."""
    level, resolution, num_frames, seed, split, index = job
    video, masks, info = render_video(_simulator(), level, resolution, num_frames, seed, split, index)
    sample = make_sample(f"{index:06d}", video, masks)
    sample.update({f"{name}.json": value for name, value in info.items()})
    return sample, info["metadata"]["resamples"]


def _write_shard(path: Path, samples: list[dict]) -> None:
    """Write a complete shard under a temporary name, then rename it (a shard on disk is always whole)."""
    tmp = path.with_suffix(".tar.tmp")
    with open(tmp, "wb") as stream:
        with wds.TarWriter(stream, mtime=0.0) as sink:
            for sample in samples:
                sink.write(sample)
    os.replace(tmp, path)


def read_sample_json(shard: str | Path, key: str, name: str) -> dict | list:
    """One JSON member (``instances``, ``camera``, ``metadata``) of sample ``key`` in a shard."""
    import tarfile

    with tarfile.open(shard) as tar:
        member = tar.extractfile(f"{key}.{name}.json")
        if member is None:
            raise MissingInputError(f"{shard}: no member '{key}.{name}.json'")
        return json.load(io.TextIOWrapper(member))
