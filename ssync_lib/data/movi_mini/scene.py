"""movi-mini's scenes: one PyBullet client (``Simulator``) and the random draw of a scene into it (floor, objects of
random shape, scale, texture, colour, pose and motion)."""
from __future__ import annotations

import math
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from ssync_lib.data.movi_mini.geometry import _mesh, _normals, _primitive
from ssync_lib.data.movi_mini.level import FPS, SUBSTEPS, UNIT, Level, meshes
from ssync_lib.data.movi_mini.textures import floor_texture, object_colours, texture
from ssync_lib.errors import MissingInputError

PYBULLET_FIX = "pip install pybullet==3.2.7 (or `make venv`, which installs the project's 'sim' extra)"


def _pybullet():
    try:
        import pybullet
        import pybullet_data
        from pybullet_utils import bullet_client
    except ImportError:
        raise MissingInputError("the movi-mini generator needs PyBullet, which is not installed",
                                fix=PYBULLET_FIX) from None
    return pybullet, pybullet_data, bullet_client


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
