"""movi-mini's levels: the knobs of a level (``Level``, ``LEVELS``), the shapes and texture kinds, the meshes each
split draws from, and the simulation's units and clock."""
from __future__ import annotations

from dataclasses import dataclass

from ssync_lib.errors import ConfigKeyError

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
FPS, SUBSTEPS = 12, 20  # 12 frames per second (MOVi), Bullet at 240 Hz: 20 physics steps per frame

PRIMITIVES = ("cube", "sphere", "cylinder", "capsule")
TEXTURES = ("stripes", "spots", "noise", "gradient", "checks", "rings", "waves")
NUM_MESHES = 1000  # pybullet_data/random_urdfs/000 ... 999
# Bullet units per scene metre. TinyRenderer's shadow map covers only a few units around the origin (a scene of
# metres casts no shadows), so the simulation is a uniformly scaled copy: lengths, speeds and gravity times UNIT.
UNIT = 0.3


@dataclass(frozen=True)
class Level:
    """Parameters of a movi-mini level; lengths in metres, angles in degrees, areas in pixels at 128 px."""

    num_objects: tuple[int, int]  # inclusive range per video
    scale: tuple[float, float]  # an object's largest half-extent
    static_frac: float  # probability that an object is placed at rest on the floor (else tossed)
    spawn_radius: float  # object centres start within this distance of the origin (x, y)
    toss_height: tuple[float, float]  # tossed objects start this high above the floor (their centre)
    toss_speed: tuple[float, float]  # horizontal speed, aimed near the origin
    camera_distance: tuple[float, float]
    camera_elevation: tuple[float, float]
    fov: float  # vertical field of view
    light_elevation: tuple[float, float]
    texture_contrast: float  # 0: an object is one colour; 1: its 2-3 texture colours are independent
    floor_contrast: float  # +- brightness of the floor's smooth texture around its base colour
    floor_cells: int  # value-noise cells across the 30 m floor (3.75 m each at 8: far coarser than a patch)
    min_area: int  # pixels every object covers in frame 0 at 128 px (scaled by (resolution / 128)^2)
    distinct_hues: bool  # the objects' base hues spread evenly around the colour wheel (else independent)
    ambient: float  # the light's ambient share (the rest is diffuse, plus a 0.05 specular term)
    train_shapes: tuple[str, ...]  # primitives, plus "mesh" for the training meshes
    test_shapes: tuple[str, ...]
    train_textures: tuple[str, ...]
    test_textures: tuple[str, ...]


LEVELS = {
    # Version 2 (the default): version 1 with 3-4 objects instead of 3-6, the camera closer (3.3-4.2 m instead of
    # 4-5 m: larger objects) and every object at least 120 px in frame 0 (60 px). Made when the cpu recipe looked
    # stuck on version 1 (decoder FG-ARI 0.109 / 0.087 at steps 1,000 / 2,000); that run then reached 0.467 (val)
    # and 0.394 (test) at 8,000 steps. No run has trained on version 2 (results/movi-mini/README.md).
    "movi-mini": Level(num_objects=(3, 4), scale=(0.3, 0.55), static_frac=0.5, spawn_radius=1.3,
                       toss_height=(0.6, 1.4), toss_speed=(0.5, 2.0), camera_distance=(3.3, 4.2),
                       camera_elevation=(30.0, 60.0), fov=40.0, light_elevation=(35.0, 75.0), texture_contrast=0.3,
                       floor_contrast=0.06, floor_cells=8, min_area=120, distinct_hues=True, ambient=0.5,
                       train_shapes=("cube", "sphere", "cylinder", "mesh"), test_shapes=("capsule", "mesh"),
                       train_textures=("stripes", "spots", "noise", "gradient"),
                       test_textures=("checks", "rings", "waves")),
    # Version 1, calibrated on the raw-pixel reference (30 val videos each: independent hues, contrast 0.5, camera
    # 5-6.5 m, ambient 0.45: 0.37; contrast 0.25, camera 4-5 m: 0.44; with distinct hues: 0.53; ambient 0.55 and
    # contrast 0.3: 0.62; ambient 0.6: 0.63-0.66. Chosen: ambient 0.5, contrast 0.3; 250 val videos: 0.560).
    "movi-mini-v1": Level(num_objects=(3, 6), scale=(0.3, 0.55), static_frac=0.5, spawn_radius=1.3,
                          toss_height=(0.6, 1.4), toss_speed=(0.5, 2.0), camera_distance=(4.0, 5.0),
                          camera_elevation=(30.0, 60.0), fov=40.0, light_elevation=(35.0, 75.0),
                          texture_contrast=0.3, floor_contrast=0.06, floor_cells=8, min_area=60,
                          distinct_hues=True, ambient=0.5,
                          train_shapes=("cube", "sphere", "cylinder", "mesh"), test_shapes=("capsule", "mesh"),
                          train_textures=("stripes", "spots", "noise", "gradient"),
                          test_textures=("checks", "rings", "waves")),
}


def level_params(level: str | Level) -> Level:
    if isinstance(level, Level):
        return level
    if level not in LEVELS:
        raise ConfigKeyError(f"unknown movi-mini level '{level}'; choose one of {sorted(LEVELS)}")
    return LEVELS[level]


def meshes(split: str) -> list[int]:
    """The procedural meshes a split draws from: every tenth held out for test."""
    return [i for i in range(NUM_MESHES) if (i % 10 == 9) == (split == "test")]
