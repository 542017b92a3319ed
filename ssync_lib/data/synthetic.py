"""Synthetic video benchmark with instance masks, generated offline and deterministically in seconds.

Each video shows a few objects moving with constant velocity, bouncing off the frame borders (they
always stay fully inside) and occluding each other in a fixed depth order, over a plain or textured
static background. Masks hold instance ids 1..K per pixel (0 = background). There is no antialiasing:
every pixel belongs to exactly one object or to the background, and a visible object's pixels are
exactly its colour/texture, shading and pattern, plus the frame's sensor noise where a level has them
(tests/data/test_data_synthetic.py re-renders them).

Levels (`scenes.LEVELS`; the fields of `scenes.Level` are the knobs to tune; a change alters meta.json, so the
next `make_synthetic.py` run regenerates the data):

=================  =====================================  =========================================
field              synth-easy                             synth-hard
=================  =====================================  =========================================
num_objects        (2, 4)  inclusive range per video      (3, 6)
radius             (0.125, 0.25) x resolution: 8-16 px    (0.09, 0.2) x resolution: 6-13 px at 64
                   at 64 px (radius of the equal-area
                   circle: every shape covers pi r^2)
speed              (0.02, 0.06) x resolution per frame    (0.02, 0.08)
shapes             square, circle, triangle, diamond      same
colours            "distinct": one of 8 well separated    "similar": hues within +-0.08 of a base
                   saturated colours each, no repeats     hue shared by the video's objects
textures           flat                                   flat, stripes, checker (two shades)
background         "plain": one dark grey                 "textured": stripes or checker in two
                                                          low-saturation shades near the base hue
min_separation     0.6: initial centres at least 0.6 x    0.4
                   (r_i + r_j) apart (best of 50 draws)
shading            0 (none)                               0
pattern            0 (none)                               0
noise              0 (none)                               0
=================  =====================================  =========================================

`synth-tex` (closer to MOVi: objects whose pixels vary inside, more of them) is `synth-easy` with
3-8 objects of radius (0.08, 0.15) x resolution (5-10 px at 64; distinct colours, so at most 8),
min_separation 0.5, and three sources of variation inside each object:

- shading 0.5: a directional brightness ramp across each object, factor 1 at the lit edge down to
  0.5 at the far edge (a random light direction per object); formally the factor
  is 1 - s/2 + (s/2) (d . l) / extent at object-local offset d for light direction l;
- pattern 0.12: two object-local sinusoidal gratings (period 3-8 px at 64, random direction and
  phase) each adding +-0.12 to the brightness factor: a texture that moves with the object;
- noise 6.0: Gaussian sensor noise of standard deviation 6 (of 255) on every pixel of every frame,
  background included (drawn from the video's generator, so still deterministic).

`synth-tex-mild` keeps synth-tex's three sources at about a third of their strength (shading 0.2,
pattern 0.05, noise 3.0) on synth-easy's object sizes (radius 0.125-0.25), 3-5 objects, min_separation 0.5:
the textured level that the `cpu` recipe still learns (synth-tex's small objects and strong variation each
stop it; docs/results.md, "The textured levels").

The colour of a pixel is round(clip(colour x factor + noise, 0, 255)). The masks are unchanged by
all three. The fields default to 0, and a field at 0 draws no random numbers and is left out of
meta.json, so the videos and meta.json of synth-easy and synth-hard are exactly those of before.

A custom level is one more entry, e.g. `LEVELS["synth-big"] = dataclasses.replace(LEVELS["synth-easy"],
radius=(0.2, 0.3))` with `data.level=synth-big` (its parameters are recorded in meta.json and sent
to the generator processes).

Determinism: video `index` of `split` is drawn from `np.random.default_rng((seed, split_code, index))`,
so videos can be generated in any order by any number of processes and come out identical.

Written in the MOVi shard layout (`ssync_lib.data.movi`): `{root}/train/shard-*.tar`,
`{root}/val/shard-*.tar`, samples `video.npy` (T,R,R,3) uint8 and `segmentations.npy` (T,R,R,1)
uint8 in both splits, plus `{root}/meta.json` (level and its parameters, seed, counts, resolution,
frames, generator version). `generate` reuses a root whose meta.json matches.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ssync_lib.config import Config, DataConfig, resolve_path
from ssync_lib.data.common import DataError
from ssync_lib.data.movi import make_sample, write_shards
from ssync_lib.data.scenes import LATER_FIELDS, Level, level_params, render, sample_scene
from ssync_lib.errors import MissingInputError

GENERATOR_VERSION = 1
SHARD_SIZE = 256
SPLIT_CODES = {"train": 0, "val": 1}
def make_video(level: str | Level, resolution: int, num_frames: int, seed: int, split: str, index: int):
    """Video `index` of `split` of a level (name or parameters): (frames (T,R,R,3) uint8, masks (T,R,R)
    uint8, Scene)."""
    rng = np.random.default_rng((seed, SPLIT_CODES[split], index))
    params = level if isinstance(level, Level) else level_params(level)
    scene = sample_scene(params, resolution, num_frames, rng)
    video, masks = render(scene, resolution, num_frames)
    return video, masks, scene


def _sample(job: tuple) -> dict:
    level, resolution, num_frames, seed, split, index = job
    video, masks, _ = make_video(level, resolution, num_frames, seed, split, index)
    return make_sample(f"{index:06d}", video, masks)


def level_meta(params: Level) -> dict:
    """A level's parameters as meta.json records them: fields added later (``LATER_FIELDS``) only when set, so
    that roots generated before they existed still match."""
    return {k: v for k, v in asdict(params).items() if LATER_FIELDS.get(k, object()) != v}


def expected_meta(level: str, seed: int, num_train: int, num_val: int, resolution: int, num_frames: int) -> dict:
    """The meta.json that a root generated with these settings holds."""
    return {"generator_version": GENERATOR_VERSION, "level": level, "level_params": level_meta(level_params(level)),
            "seed": seed, "num_train": num_train, "num_val": num_val, "resolution": resolution,
            "num_frames": num_frames, "shard_size": SHARD_SIZE}


def read_meta(root: str | Path) -> dict | None:
    """The meta.json of a generated root without its timing entry, None when there is none."""
    path = Path(root) / "meta.json"
    if not path.exists():
        return None
    meta = json.loads(path.read_text())
    meta.pop("seconds", None)
    return meta


def clear_outputs(root: Path, names) -> None:
    """Delete the files and folders ``names`` under ``root`` (a generation that starts over)."""
    for name in names:
        target = root / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def generate(root: str | Path, level: str, seed: int, num_train: int, num_val: int, resolution: int,
             num_frames: int, workers: int = 2, force: bool = False, progress: bool = True) -> bool:
    """Write the benchmark to `root` unless its meta.json already matches; returns True if reused."""
    root = Path(root)
    meta = json.loads(json.dumps(expected_meta(level, seed, num_train, num_val, resolution, num_frames)))
    existing = read_meta(root)
    if not force and existing == meta:
        return True
    if not force and existing is None and any((root / name).exists() for name in ("train", "val")):
        raise FileExistsError(f"{root} holds train/ or val/ but no synthetic meta.json (another data set, or an "
                              "interrupted generation); pass force=True (--force) to overwrite it")
    clear_outputs(root, ("meta.json", "train", "val"))
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    params = level_params(level)  # sent to the workers, so custom levels work under any start method
    pool = multiprocessing.Pool(workers) if workers > 1 else None
    try:
        for split, count in (("train", num_train), ("val", num_val)):
            jobs = [(params, resolution, num_frames, seed, split, i) for i in range(count)]
            samples = pool.imap(_sample, jobs, chunksize=16) if pool else map(_sample, jobs)
            bar = tqdm(samples, total=count, desc=f"{level} {split} -> {root}", unit="video", disable=not progress)
            write_shards(bar, root / split, SHARD_SIZE)
    finally:
        if pool:
            pool.close()
            pool.join()
    meta["seconds"] = round(time.perf_counter() - start, 2)
    (root / "meta.json").write_text(json.dumps(meta, indent=2))
    return False


def generate_from_config(cfg: Config, workers: int = 2, force: bool = False, progress: bool = True) -> bool:
    """`generate` with the settings of `cfg.data` into `resolve_path(cfg.data.root)`; True if reused."""
    d = cfg.data
    return generate(resolve_path(d.root), d.level, d.synth_seed, d.num_train, d.num_val, d.resolution,
                    d.num_frames, workers=workers, force=force, progress=progress)


def check_root(root: Path, data: DataConfig, profile: str = "cpu") -> None:
    """Refuse a synthetic root that is missing, empty, holds something else, or was generated for another level,
    size or length; the fix names ``profile``."""
    meta = read_meta(root)
    if meta is None:
        held = sorted(p.name for p in root.iterdir())[:5] if root.is_dir() else []
        what = "is empty" if not held else f"holds no meta.json of a generated data set (it holds {', '.join(held)})"
        raise MissingInputError(f"synthetic data folder {root} {what}",
                                fix=f"generate the synthetic data there: `python data_scripts/make_synthetic.py "
                                    f"--profile {profile} --root {root}` (or `make data PROFILE={profile}`), or "
                                    f"point --data-root at a generated folder")
    for key in ("level", "resolution", "num_frames"):
        if meta.get(key) != getattr(data, key):
            raise DataError(f"{root / 'meta.json'}: '{key}' is {meta.get(key)!r} but data.{key} is "
                            f"{getattr(data, key)!r}; regenerate (make_synthetic.py) or fix the config")
