"""movi-mini's geometry: triangle meshes with texture coordinates (vertices (V,3) float, triangle indices (F*3,) int,
texture coordinates (V,2) float) of the primitives and of ``pybullet_data``'s procedural meshes, and their
collision shapes."""
from __future__ import annotations

import functools
import os

import numpy as np


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
