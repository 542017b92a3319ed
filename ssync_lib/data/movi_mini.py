"""movi-mini: a MOVi-style 3D level simulated and rendered here with PyBullet (issue 34).

Every video is a MOVi-A/C-like scene: 3-4 objects (3-6 in version 1, ``movi-mini-v1``; primitives and
``pybullet_data``'s procedural meshes) of random scale, pose and colour, each with a texture made in code, some
placed at rest on the floor and the rest
tossed in with initial velocities; a low-contrast floor whose texture varies far more slowly than a patch; a
camera at a random point of a hemisphere, looking at the scene, static over the video (MOVi-C); a random light
direction with shadows. Bullet simulates 2 s at 240 Hz and its CPU renderer (``ER_TINY_RENDERER``) draws 24
frames (12 fps) at 128 px with a per-pixel body-id mask.

Written in the MOVi shard layout that ``ssync_lib.data.movi`` reads (no special case)::

    {root}/train/shard-000000.tar ...  {key}.video.npy          (T,R,R,3) uint8
    {root}/val/...                     {key}.segmentations.npy  (T,R,R,1) uint8: 0 = floor and sky, 1..K objects
    {root}/test/...                    {key}.sha256.json        per-frame checksums (movi.make_sample)
    {root}/meta.json                   {key}.instances.json     per object: id, shape, category, scale, static,
                                                                texture, colours (what MOVi's `instances` holds)
                                       {key}.camera.json        position, look_at, field of view, view and
                                                                projection matrices (MOVi's `camera`)
                                       {key}.metadata.json      light direction, resamples, objects, split

Instance ids are the order objects were added, so they are stable over time; occlusion comes from the renderer's
mask. A scene where an object covers less than ``Level.min_area`` pixels in frame 0 is drawn again (``resamples``
in metadata.json counts the redraws, meta.json their total per split).

Splits: ``train`` and ``val`` draw from the same shapes and texture kinds; ``test`` uses procedural meshes
(every tenth of ``random_urdfs``), a primitive (the capsule) and texture kinds (checks, rings, waves) that never
occur in train or val, like MOVi's held-out-asset splits.

Determinism: video ``index`` of ``split`` draws everything from ``np.random.default_rng((seed, split code,
index))`` and builds its own simulation from scratch, so any number of processes, in any order, write the same
bytes. Generation is resumable: shards are written complete (to a temporary name, then renamed) and a run whose
``partial.json`` matches picks up at the first missing shard.

The knobs are the fields of ``Level`` (``LEVELS``); a change alters meta.json and the next run regenerates.
"""
from __future__ import annotations

import atexit
import colorsys
import functools
import io
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image
from tqdm.auto import tqdm

from ssync_lib.data.movi import make_sample
from ssync_lib.data.synthetic import clear_outputs
from ssync_lib.errors import ConfigKeyError, MissingInputError

GENERATOR_VERSION = 1
SHARD_SIZE = 50  # videos per shard: the unit of resumption
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
FPS, SUBSTEPS = 12, 20  # 12 frames per second (MOVi), Bullet at 240 Hz: 20 physics steps per frame
PYBULLET_FIX = "pip install pybullet==3.2.7 (or `make venv`, which installs the project's 'sim' extra)"

PRIMITIVES = ("cube", "sphere", "cylinder", "capsule")
TEXTURES = ("stripes", "spots", "noise", "gradient", "checks", "rings", "waves")
MAX_RESAMPLES = 100  # scene redraws per video before giving up
NUM_MESHES = 1000
# Bullet units per scene metre. TinyRenderer's shadow map covers only a few units around the origin (a scene of
# metres casts no shadows), so the simulation is a uniformly scaled copy: lengths, speeds and gravity times UNIT.
UNIT = 0.3
LIGHT_DISTANCE = 2.0  # pybullet_data/random_urdfs/000 ... 999


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


def _pybullet():
    try:
        import pybullet
        import pybullet_data
        from pybullet_utils import bullet_client
    except ImportError:
        raise MissingInputError("the movi-mini generator needs PyBullet, which is not installed",
                                fix=PYBULLET_FIX) from None
    return pybullet, pybullet_data, bullet_client


# -- geometry: triangle meshes with texture coordinates (V,3) float, (F*3,) int, (V,2) float ----------------


def _box(half: np.ndarray):
    """A box of half-extents ``half`` (3,): 4 vertices per face so that each face has the whole texture."""
    verts, uvs, idx = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            a, b = [ax for ax in range(3) if ax != axis]
            base = len(verts)
            for u, v in ((0, 0), (1, 0), (1, 1), (0, 1)):
                p = np.zeros(3)
                p[axis], p[a], p[b] = sign, 2 * u - 1, 2 * v - 1
                verts.append(p * half)
                uvs.append((u, v))
            # counter-clockwise seen from outside: (a, b, axis) is right-handed for axis 0, 2 and left for 1
            flip = (sign < 0) != (axis == 1)
            quad = (0, 2, 1, 0, 3, 2) if flip else (0, 1, 2, 0, 2, 3)
            idx += [base + q for q in quad]
    return np.array(verts), np.array(idx), np.array(uvs, float)


def _lathe(profile: np.ndarray, segments: int = 24):
    """A surface of revolution about z from a profile of (radius, z) points (P,2), bottom to top; u goes
    around, v along the profile."""
    angles = np.linspace(0, 2 * np.pi, segments + 1)  # the seam repeats its vertices (u = 0 and 1)
    r, z = profile[:, 0], profile[:, 1]
    verts = np.stack([np.outer(r, np.cos(angles)), np.outer(r, np.sin(angles)),
                      np.repeat(z[:, None], segments + 1, 1)], -1).reshape(-1, 3)
    arc = np.concatenate([[0], np.cumsum(np.hypot(np.diff(r), np.diff(z)))])
    uvs = np.stack(np.meshgrid(angles / (2 * np.pi), arc / arc[-1]), -1).reshape(-1, 2)
    idx = []
    n = segments + 1
    for i in range(len(profile) - 1):
        for j in range(segments):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j + 1, (i + 1) * n + j
            idx += [a, b, c, a, c, d]
    return verts, np.array(idx), uvs


def _primitive(shape: str, size: float, aspect: np.ndarray):
    """Mesh and collision parameters of a primitive whose largest half-extent is ``size``."""
    if shape == "cube":
        half = size * aspect
        return _box(half), {"shapeType": "GEOM_BOX", "halfExtents": half.tolist()}
    if shape == "sphere":
        t = np.linspace(-np.pi / 2, np.pi / 2, 13)
        return _lathe(np.stack([size * np.cos(t), size * np.sin(t)], 1)), {"shapeType": "GEOM_SPHERE", "radius": size}
    if shape == "cylinder":
        radius, half = size * aspect[0], size * aspect[2]
        profile = np.array([[0, -half], [radius, -half], [radius, half], [0, half]])
        profile = np.concatenate([profile[:2], np.linspace(profile[1], profile[2], 6)[1:-1], profile[2:]])
        return _lathe(profile), {"shapeType": "GEOM_CYLINDER", "radius": radius, "height": 2 * half}
    if shape == "capsule":
        radius = size * 0.5
        half = size - radius  # half the length of the straight part
        t = np.linspace(-np.pi / 2, np.pi / 2, 14)
        z = radius * np.sin(t) + np.where(t < 0, -half, half)
        return _lathe(np.stack([radius * np.cos(t), z], 1)), \
            {"shapeType": "GEOM_CAPSULE", "radius": radius, "height": 2 * half}
    raise ValueError(f"unknown primitive '{shape}'")


@functools.lru_cache(maxsize=None)
def _read_obj(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V,3) and triangle indices (F*3,) of a Wavefront .obj (faces fanned into triangles)."""
    verts, idx = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("f "):
                face = [int(tok.split("/")[0]) - 1 for tok in line.split()[1:]]
                for k in range(1, len(face) - 1):
                    idx += [face[0], face[k], face[k + 1]]
    return np.array(verts), np.array(idx)


def _mesh(data_path: str, number: int, size: float):
    """A ``random_urdfs`` mesh centred and scaled to largest half-extent ``size``, with spherical texture
    coordinates (the files have none)."""
    verts, idx = _read_obj(os.path.join(data_path, "random_urdfs", f"{number:03d}", f"{number:03d}.obj"))
    verts = verts - (verts.max(0) + verts.min(0)) / 2
    verts = verts * (size / np.abs(verts).max())
    d = verts / np.maximum(np.linalg.norm(verts, axis=1, keepdims=True), 1e-9)
    uvs = np.stack([np.arctan2(d[:, 1], d[:, 0]) / (2 * np.pi) + 0.5, np.arccos(np.clip(d[:, 2], -1, 1)) / np.pi], 1)
    return (verts, idx, uvs), {"shapeType": "GEOM_MESH", "vertices": verts.tolist()}


def _normals(verts: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (V,3)."""
    tri = verts[idx.reshape(-1, 3)]  # F 3 3
    face = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # F 3, length = 2 * area
    normals = np.zeros_like(verts)
    for k in range(3):
        np.add.at(normals, idx.reshape(-1, 3)[:, k], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


# -- textures made in code: (S,S,3) uint8 images from 2-3 colours ----------------------------------------------


def _smooth_noise(rng: np.random.Generator, cells: int, size: int) -> np.ndarray:
    """Value noise in [0, 1]: a (cells+1)^2 random grid, bicubic-upsampled to (size, size)."""
    grid = rng.random((cells + 1, cells + 1))
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.asarray(img, np.float32) / 255


def texture(kind: str, colours: np.ndarray, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A texture image (size,size,3) uint8 of kind ``kind`` from ``colours`` (C,3) float in [0,255], C = 2 or 3."""
    u, v = np.meshgrid(np.linspace(0, 1, size, endpoint=False), np.linspace(0, 1, size, endpoint=False))
    angle = rng.uniform(0, np.pi)
    along = u * np.cos(angle) + v * np.sin(angle)
    c = len(colours)
    if kind == "stripes":  # bands cycling through the colours
        label = np.floor(along * rng.integers(2, 6) * c) % c
    elif kind == "spots":  # discs of the other colours on the first
        label = np.zeros((size, size))
        for _ in range(rng.integers(3, 8)):
            cu, cv, r = rng.random(), rng.random(), rng.uniform(0.06, 0.16)
            du, dv = np.abs(u - cu), np.abs(v - cv)
            du, dv = np.minimum(du, 1 - du), np.minimum(dv, 1 - dv)  # wraps around like the texture
            label[du ** 2 + dv ** 2 < r ** 2] = rng.integers(1, c)
    elif kind == "noise":  # blobs: smooth noise cut into c levels
        label = np.minimum(np.floor(_smooth_noise(rng, 4, size) * c), c - 1)
    elif kind == "gradient":  # a continuous blend through the colours
        t = (along - along.min()) / max(np.ptp(along), 1e-9) * (c - 1)
        lo = np.minimum(np.floor(t), c - 2).astype(int)
        frac = (t - lo)[..., None]
        return np.round(colours[lo] * (1 - frac) + colours[lo + 1] * frac).astype(np.uint8)
    elif kind == "checks":  # held out: a checkerboard of 2-4 cells per side
        n = rng.integers(2, 5)
        label = (np.floor(u * n) + np.floor(v * n)) % c
    elif kind == "rings":  # held out: concentric rings about a random centre
        r = np.hypot(u - rng.random(), v - rng.random())
        label = np.floor(r * rng.integers(4, 9)) % c
    elif kind == "waves":  # held out: wavy stripes
        across = -u * np.sin(angle) + v * np.cos(angle)
        label = np.floor((along + 0.08 * np.sin(2 * np.pi * 3 * across)) * rng.integers(3, 6) * c) % c
    else:
        raise ValueError(f"unknown texture kind '{kind}'")
    return np.round(colours[label.astype(int)]).astype(np.uint8)


def _colour(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    """A random colour (3,) in [0,255]: hue ``hue`` (else any), saturation 0.45-0.95, value 0.45-0.95."""
    hue = rng.random() if hue is None else hue
    return 255 * np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.95), rng.uniform(0.45, 0.95)))


def object_colours(rng: np.random.Generator, contrast: float, hue: float | None = None) -> np.ndarray:
    """2 or 3 texture colours (C,3): a base colour (of hue ``hue`` if given) and others moved ``contrast`` of the
    way to random colours."""
    base = _colour(rng, hue)
    others = [base + contrast * (_colour(rng) - base) for _ in range(rng.integers(1, 3))]
    return np.stack([base] + others)


def floor_texture(rng: np.random.Generator, level: Level, size: int = 256) -> np.ndarray:
    """A smooth, low-contrast floor: a pale, weakly saturated base colour times 1 +- floor_contrast of value noise."""
    base = 255 * np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.25), rng.uniform(0.55, 0.8)))
    factor = 1 + level.floor_contrast * (2 * _smooth_noise(rng, level.floor_cells, size) - 1)
    return np.round(np.clip(base * factor[..., None], 0, 255)).astype(np.uint8)


# -- one video -------------------------------------------------------------------------------------------------


class Simulator:
    """One PyBullet client (DIRECT: no window) and a scratch folder for texture files, reused across videos."""

    def __init__(self):
        pybullet, pybullet_data, bullet_client = _pybullet()
        self.pb = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self.p = pybullet
        self.data_path = pybullet_data.getDataPath()
        self.scratch = tempfile.mkdtemp(prefix="movi-mini-")
        self.count = 0

    def load_texture(self, image: np.ndarray) -> int:
        """Load an image as a texture (PyBullet reads textures from files; a fresh name each time, so that no
        texture cache can return an old image)."""
        self.count += 1
        path = os.path.join(self.scratch, f"{self.count}.png")
        Image.fromarray(image).save(path)
        tex = self.pb.loadTexture(path)
        os.remove(path)
        return tex

    def close(self):
        self.pb.disconnect()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _rounded(x) -> list:
    return [round(float(v), 6) for v in np.ravel(x)]


def _hemisphere(rng: np.random.Generator, distance: tuple, elevation: tuple) -> np.ndarray:
    az, el = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(*elevation))
    return rng.uniform(*distance) * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def _add_object(sim: Simulator, rng: np.random.Generator, level: Level, split: str, instance: int, floor: int,
                hue: float | None) -> dict:
    """Draw one object (shape, scale, texture, colours, pose, motion), add it to the simulation; its record."""
    pb, p = sim.pb, sim.p
    shapes = level.test_shapes if split == "test" else level.train_shapes
    kinds = level.test_textures if split == "test" else level.train_textures
    shape = shapes[rng.integers(len(shapes))]
    size = rng.uniform(*level.scale)
    if shape == "mesh":
        pool = meshes(split)
        number = pool[rng.integers(len(pool))]
        (verts, idx, uvs), collision = _mesh(sim.data_path, number, size * UNIT)
        category = f"mesh-{number:03d}"
    else:
        aspect = np.ones(3) if shape in ("sphere", "capsule") else rng.uniform(0.6, 1.0, 3)
        aspect[np.argmax(aspect)] = 1.0  # size stays the largest half-extent
        (verts, idx, uvs), collision = _primitive(shape, size * UNIT, aspect)
        category = shape
    colours = object_colours(rng, level.texture_contrast, hue)
    kind = kinds[rng.integers(len(kinds))]
    image = texture(kind, colours, rng)
    static = bool(rng.random() < level.static_frac)
    collision = dict(collision, shapeType=getattr(p, collision["shapeType"]))
    col = pb.createCollisionShape(**collision)
    vis = pb.createVisualShape(p.GEOM_MESH, vertices=verts.tolist(), indices=idx.tolist(), uvs=uvs.tolist(),
                               normals=_normals(verts, idx).tolist())
    yaw = rng.uniform(0, 2 * np.pi)
    if static:  # upright, at a random yaw, resting on the floor
        orientation = pb.getQuaternionFromEuler([0, 0, yaw])
    else:
        orientation = pb.getQuaternionFromEuler(rng.uniform(0, 2 * np.pi, 3).tolist())
    body = pb.createMultiBody(baseMass=float(4 * size ** 3), baseCollisionShapeIndex=col,
                              baseVisualShapeIndex=vis, basePosition=[0, 0, 10], baseOrientation=orientation)
    pb.changeVisualShape(body, -1, textureUniqueId=sim.load_texture(image), rgbaColor=[1, 1, 1, 1])
    pb.changeDynamics(body, -1, lateralFriction=0.5, restitution=0.4)
    low, high = pb.getAABB(body)
    bottom = (10 - low[2]) / UNIT  # centre height above the lowest point, in metres
    for _ in range(30):  # a position where it touches no other object
        r, a = level.spawn_radius * math.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        z = bottom + 0.001 if static else max(bottom + 0.05, rng.uniform(*level.toss_height))
        position = [r * math.cos(a), r * math.sin(a), z]
        pb.resetBasePositionAndOrientation(body, [x * UNIT for x in position], orientation)
        pb.performCollisionDetection()
        if not [c for c in pb.getContactPoints(bodyA=body) if c[2] != floor and c[8] < 0.01]:
            break
    velocity = [0.0, 0.0, 0.0]
    if not static:  # tossed towards a point near the origin
        target = rng.uniform(-0.5, 0.5, 2) - np.array(position[:2])
        direction = target / max(np.linalg.norm(target), 1e-9)
        velocity = [*(direction * rng.uniform(*level.toss_speed)), rng.uniform(0, 1.5)]
        pb.resetBaseVelocity(body, [x * UNIT for x in velocity], rng.normal(0, 3, 3).tolist())
    return {"id": instance, "body": body, "shape": shape, "category": category, "scale": round(float(size), 6),
            "static": static, "texture": kind, "colours": [_rounded(c) for c in colours],
            "position": _rounded(position), "velocity": _rounded(velocity)}


def _build_scene(sim: Simulator, rng: np.random.Generator, level: Level, split: str) -> tuple[list[dict], int]:
    pb, p = sim.pb, sim.p
    pb.resetSimulation()  # drops loaded textures too: every texture is loaded after this
    pb.setGravity(0, 0, -9.81 * UNIT)
    pb.setPhysicsEngineParameter(fixedTimeStep=1 / (FPS * SUBSTEPS), deterministicOverlappingPairs=1)
    half = 15.0 * UNIT
    quad = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]])
    floor_vis = pb.createVisualShape(p.GEOM_MESH, vertices=quad.tolist(), indices=[0, 1, 2, 0, 2, 3],
                                     uvs=[[0, 0], [1, 0], [1, 1], [0, 1]], normals=[[0, 0, 1]] * 4)
    floor = pb.createMultiBody(0, pb.createCollisionShape(p.GEOM_PLANE), floor_vis)
    pb.changeVisualShape(floor, -1, textureUniqueId=sim.load_texture(floor_texture(rng, level)),
                         rgbaColor=[1, 1, 1, 1])
    pb.changeDynamics(floor, -1, lateralFriction=0.5, restitution=0.4)
    count = int(rng.integers(level.num_objects[0], level.num_objects[1] + 1))
    first = rng.random()
    hues = [(first + i / count) % 1 if level.distinct_hues else None for i in range(count)]
    objects = [_add_object(sim, rng, level, split, i + 1, floor, hues[i]) for i in range(count)]
    return objects, floor


def render_video(sim: Simulator, level: Level, resolution: int, num_frames: int, seed: int, split: str,
                 index: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Video ``index`` of ``split``: frames (T,R,R,3) uint8, instance masks (T,R,R) uint8 (0 = floor and sky,
    1..K the objects in the order they were added) and its annotations (instances, camera, metadata)."""
    rng = np.random.default_rng((seed, SPLIT_CODES[split], index))
    pb = sim.pb
    min_area = level.min_area * (resolution / 128) ** 2
    resamples = 0
    while True:
        if resamples == MAX_RESAMPLES:
            raise RuntimeError(f"{split} video {index}: no scene with every object visible in {MAX_RESAMPLES} draws; "
                               "lower Level.min_area or bring the camera closer")
        objects, floor = _build_scene(sim, rng, level, split)
        eye = _hemisphere(rng, level.camera_distance, level.camera_elevation)
        look_at = np.concatenate([rng.uniform(-0.3, 0.3, 2), [0.0]])
        light = _hemisphere(rng, (1.0, 1.0), level.light_elevation)
        view = pb.computeViewMatrix((eye * UNIT).tolist(), (look_at * UNIT).tolist(), [0, 0, 1])
        proj = pb.computeProjectionMatrixFOV(level.fov, 1.0, 0.1 * UNIT, 40.0 * UNIT)
        lut = np.zeros(max(o["body"] for o in objects) + 2, np.uint8)  # body id + 1 -> instance id (sky -1 -> 0)
        for o in objects:
            lut[o["body"] + 1] = o["id"]
        frames, masks = [], []
        for t in range(num_frames):
            if t:
                for _ in range(SUBSTEPS):
                    pb.stepSimulation()
            _, _, rgb, _, seg = pb.getCameraImage(resolution, resolution, view, proj, shadow=1,
                                                  lightDirection=light.tolist(), renderer=sim.p.ER_TINY_RENDERER,
                                                  lightDistance=LIGHT_DISTANCE, lightAmbientCoeff=level.ambient,
                                                  lightDiffuseCoeff=1 - level.ambient, lightSpecularCoeff=0.05)
            frames.append(np.asarray(rgb, np.uint8).reshape(resolution, resolution, 4)[..., :3])
            masks.append(lut[np.asarray(seg).reshape(resolution, resolution) + 1])
            if t == 0:
                area = np.bincount(masks[0].ravel(), minlength=len(objects) + 1)[1:]
                if area.min() < min_area:
                    break
        if len(frames) == num_frames:
            break
        resamples += 1
    camera = {"position": _rounded(eye), "look_at": _rounded(look_at), "up": [0.0, 0.0, 1.0],
              "fov_deg": level.fov, "near": 0.1, "far": 40.0, "bullet_units_per_metre": UNIT,
              "view_matrix": _rounded(view),
              "projection_matrix": _rounded(proj)}
    meta = {"split": split, "index": index, "num_instances": len(objects), "resamples": resamples,
            "light_direction": _rounded(light), "fps": FPS}
    instances = [{k: v for k, v in o.items() if k != "body"} for o in objects]
    return np.stack(frames), np.stack(masks), {"instances": instances, "camera": camera, "metadata": meta}


# -- the data set ----------------------------------------------------------------------------------------------

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


def expected_meta(level: str, seed: int, counts: dict[str, int], resolution: int, num_frames: int) -> dict:
    return json.loads(json.dumps({"generator": "movi-mini", "generator_version": GENERATOR_VERSION, "level": level,
                                  "level_params": asdict(level_params(level)), "seed": seed, "counts": counts,
                                  "resolution": resolution, "num_frames": num_frames, "shard_size": SHARD_SIZE}))


def _write_shard(path: Path, samples: list[dict]) -> None:
    """Write a complete shard under a temporary name, then rename it (a shard on disk is always whole)."""
    tmp = path.with_suffix(".tar.tmp")
    with open(tmp, "wb") as stream:
        with wds.TarWriter(stream, mtime=0.0) as sink:
            for sample in samples:
                sink.write(sample)
    os.replace(tmp, path)


def generate(root: str | Path, level: str = "movi-mini", seed: int = 0, num_train: int = 1000, num_val: int = 250,
             num_test: int = 250, resolution: int = 128, num_frames: int = 24, workers: int = 2, force: bool = False,
             progress: bool = True) -> bool:
    """Write the level to ``root`` unless its meta.json matches (returns True: reused). An interrupted run with the
    same settings (``partial.json``) keeps its finished shards and makes the rest."""
    root = Path(root)
    counts = {"train": num_train, "val": num_val, "test": num_test}
    meta = expected_meta(level, seed, counts, resolution, num_frames)
    done_path, partial_path = root / "meta.json", root / "partial.json"

    def read(path: Path) -> dict | None:
        if not path.exists():
            return None
        got = json.loads(path.read_text())
        for key in ("seconds", "resamples"):
            got.pop(key, None)
        return got

    if not force and read(done_path) == meta:
        return True
    resume = not force and read(partial_path) == meta
    if not resume:
        ours = done_path.exists() or partial_path.exists()  # movi-mini made with other settings: replaced
        if not force and not ours and any((root / s).exists() for s in counts):
            raise FileExistsError(f"{root} holds {'/'.join(counts)} folders but no movi-mini meta.json or "
                                  "partial.json (another data set?); pass force=True (--force) to overwrite it")
        clear_outputs(root, ("meta.json", "partial.json", *counts))
    root.mkdir(parents=True, exist_ok=True)
    partial_path.write_text(json.dumps(meta, indent=2))
    params = level_params(level)
    start = time.perf_counter()
    todo = []  # (split, shard path, video indices) of the missing shards
    for split, count in counts.items():
        (root / split).mkdir(exist_ok=True)
        for tmp in (root / split).glob("*.tmp"):
            tmp.unlink()
        for first in range(0, count, SHARD_SIZE):
            path = root / split / f"shard-{first // SHARD_SIZE:06d}.tar"
            if not path.exists():
                todo.append((split, path, range(first, min(first + SHARD_SIZE, count))))
    jobs = [(params, resolution, num_frames, seed, split, i) for split, _, indices in todo for i in indices]
    pool = multiprocessing.Pool(workers, initializer=_forget_simulator) if workers > 1 and jobs else None
    resamples = dict.fromkeys(counts, 0)
    try:
        results = pool.imap(make_video_sample, jobs, chunksize=1) if pool else map(make_video_sample, jobs)
        bar = tqdm(results, total=len(jobs), desc=f"{level} -> {root}", unit="video", disable=not progress)
        it = iter(bar)
        for split, path, indices in todo:
            samples = []
            for _ in indices:
                sample, redraws = next(it)
                samples.append(sample)
                resamples[split] += redraws
            _write_shard(path, samples)
        bar.close()
    finally:
        if pool:
            pool.close()
            pool.join()
    meta["seconds"] = round(time.perf_counter() - start, 2)
    meta["resamples"] = resamples  # redraws of the scenes generated by this run (a resumed run: its part only)
    done_path.write_text(json.dumps(meta, indent=2))
    partial_path.unlink()
    return False


def read_sample_json(shard: str | Path, key: str, name: str) -> dict | list:
    """One JSON member (``instances``, ``camera``, ``metadata``) of sample ``key`` in a shard."""
    import tarfile

    with tarfile.open(shard) as tar:
        member = tar.extractfile(f"{key}.{name}.json")
        if member is None:
            raise MissingInputError(f"{shard}: no member '{key}.{name}.json'")
        return json.load(io.TextIOWrapper(member))
