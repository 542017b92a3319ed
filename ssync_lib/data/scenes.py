"""The synthetic scenes, drawn: difficulty levels (``LEVELS``, the fields of ``Level``), sampling a scene (objects,
their shapes, colours, textures, paths) and rendering its frames and instance masks. ``synthetic.py`` writes them
to disk as a data set; its docstring describes the levels.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ssync_lib.errors import ConfigKeyError

SHAPES = ("square", "circle", "triangle", "diamond")
# Well separated saturated colours (Trubetskoy's list, near-duplicates such as lime and pink left out).
DISTINCT_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                    (145, 30, 180), (70, 240, 240), (240, 50, 230))
SQRT3_2 = math.sqrt(3) / 2
# Shape parameter (the `extent` of SceneObject) of equal area pi r^2 for a radius r:
# circle radius, square half side, diamond half diagonal, equilateral-triangle circumradius.
EXTENT_PER_RADIUS = {"circle": 1.0, "square": math.sqrt(math.pi) / 2, "diamond": math.sqrt(math.pi / 2),
                     "triangle": math.sqrt(4 * math.pi / (3 * math.sqrt(3)))}


@dataclass(frozen=True)
class Level:
    """Parameters of a difficulty level (see the module docstring); sizes are fractions of the frame."""

    num_objects: tuple[int, int]
    radius: tuple[float, float]
    speed: tuple[float, float]
    shapes: tuple[str, ...]
    colours: str  # distinct | similar
    textures: tuple[str, ...]  # any of flat, stripes, checker
    background: str  # plain | textured
    min_separation: float
    shading: float = 0.0  # brightness ramp across each object: factor from 1 down to 1 - shading
    pattern: float = 0.0  # amplitude of each of two object-local sinusoidal gratings (brightness factor)
    noise: float = 0.0  # standard deviation of per-pixel Gaussian sensor noise (0-255 scale), every frame


# fields added after generator version 1, with their "off" value: left out of meta.json when off
LATER_FIELDS = {"shading": 0.0, "pattern": 0.0, "noise": 0.0}


LEVELS = {
    "synth-easy": Level(num_objects=(2, 4), radius=(0.125, 0.25), speed=(0.02, 0.06), shapes=SHAPES,
                        colours="distinct", textures=("flat",), background="plain", min_separation=0.6),
    "synth-hard": Level(num_objects=(3, 6), radius=(0.09, 0.2), speed=(0.02, 0.08), shapes=SHAPES,
                        colours="similar", textures=("flat", "stripes", "checker"), background="textured",
                        min_separation=0.4),
    "synth-tex": Level(num_objects=(3, 8), radius=(0.08, 0.15), speed=(0.02, 0.06), shapes=SHAPES,
                       colours="distinct", textures=("flat",), background="plain", min_separation=0.5,
                       shading=0.5, pattern=0.12, noise=6.0),
    # synth-tex's variation at about a third of its strength on synth-easy's object sizes, 3-5 objects: the
    # textured level the cpu recipe still learns (docs/results.md, "The textured levels"; synth-tex itself defeats it)
    "synth-tex-mild": Level(num_objects=(3, 5), radius=(0.125, 0.25), speed=(0.02, 0.06), shapes=SHAPES,
                            colours="distinct", textures=("flat",), background="plain", min_separation=0.5,
                            shading=0.2, pattern=0.05, noise=3.0),
}


@dataclass
class Texture:
    """A two-colour pattern evaluated at coordinates (u, v) (object-local for objects, frame for background)."""

    kind: str  # flat | stripes | checker
    colours: np.ndarray  # 2 3 uint8; flat uses the first
    direction: tuple[float, float]  # (cos, sin) of the stripe normal
    period: float  # pixels
    # brightness factor at (u, v): base + gu u + gv v + sum of a sin(ku u + kv v + phase) over the waves
    shade: tuple[float, float, float] = (1.0, 0.0, 0.0)  # (base, gu, gv)
    waves: tuple[tuple[float, float, float, float], ...] = ()  # (ku, kv, phase, a) per grating


@dataclass
class SceneObject:
    shape: str
    extent: float  # shape parameter in pixels (EXTENT_PER_RADIUS); the centre stays in [extent, R - extent]
    start: np.ndarray  # 2: (x, y) centre at frame 0
    velocity: np.ndarray  # 2: pixels per frame before bouncing
    centres: np.ndarray  # T 2: (x, y) centre per frame, after bouncing
    depth: int  # drawing order: larger is nearer (drawn later, occludes smaller)
    texture: Texture


@dataclass
class Scene:
    objects: list[SceneObject]  # object k has instance id k + 1
    background: Texture
    noise: np.ndarray | None = None  # T R R 3 float64 sensor noise added to every frame, or None


def level_params(level: str) -> Level:
    if level not in LEVELS:
        raise ConfigKeyError(f"unknown synthetic level '{level}'; choose one of {sorted(LEVELS)}")
    return LEVELS[level]


def bounce(start: np.ndarray, velocity: np.ndarray, lo: float, hi: float, num_frames: int) -> np.ndarray:
    """Centres (T,2) of a point moving at `velocity` from `start`, reflected at lo and hi on each axis."""
    t = np.arange(num_frames, dtype=np.float64)[:, None]  # T 1
    span = hi - lo
    y = np.mod(start[None] - lo + velocity[None] * t, 2 * span)  # position on the unfolded path, T 2
    return lo + np.where(y > span, 2 * span - y, y)  # fold back: reflection at the borders


def inside(shape: str, extent: float, du: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """Boolean mask of the points (du, dv) relative to the centre that lie in the shape (image axes, y down)."""
    if shape == "circle":
        return du * du + dv * dv <= extent * extent
    if shape == "square":
        return np.maximum(np.abs(du), np.abs(dv)) <= extent
    if shape == "diamond":
        return np.abs(du) + np.abs(dv) <= extent
    if shape == "triangle":  # equilateral, apex up; the three edges are at distance extent/2 from the centre
        half = extent / 2
        return (dv <= half) & (-SQRT3_2 * du - 0.5 * dv <= half) & (SQRT3_2 * du - 0.5 * dv <= half)
    raise ValueError(f"unknown shape '{shape}'; choose one of {SHAPES}")


def paint(texture: Texture, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colours (...,3) uint8 of the texture at coordinates u, v (same shape)."""
    if texture.kind == "flat":
        return _shaded(texture, np.broadcast_to(texture.colours[0], u.shape + (3,)), u, v)
    if texture.kind == "stripes":
        cos, sin = texture.direction
        parity = np.floor((u * cos + v * sin) / texture.period).astype(np.int64) % 2
    elif texture.kind == "checker":
        parity = (np.floor(u / texture.period) + np.floor(v / texture.period)).astype(np.int64) % 2
    else:
        raise ValueError(f"unknown texture '{texture.kind}'; choose flat, stripes or checker")
    return _shaded(texture, texture.colours[parity], u, v)


def brightness(texture: Texture, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The texture's brightness factor at (u, v): shading ramp plus gratings (1 where it has neither)."""
    base, gu, gv = texture.shade
    factor = base + gu * u + gv * v
    for ku, kv, phase, amplitude in texture.waves:
        factor = factor + amplitude * np.sin(ku * u + kv * v + phase)
    return factor


def _shaded(texture: Texture, colours: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """colours (...,3) uint8 times the brightness factor, rounded and clipped; as is without shading/waves."""
    if texture.shade == (1.0, 0.0, 0.0) and not texture.waves:
        return colours
    shaded = colours * brightness(texture, u, v)[..., None]
    return np.clip(np.round(shaded), 0, 255).astype(np.uint8)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array([round(255 * c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v)], dtype=np.uint8)


def _texture(rng: np.random.Generator, kind: str, first: np.ndarray, second: np.ndarray, period: float) -> Texture:
    angle = float(rng.uniform(0, math.pi))
    return Texture(kind, np.stack([first, second]), (math.cos(angle), math.sin(angle)), period)


def sample_scene(level: Level, resolution: int, num_frames: int, rng: np.random.Generator) -> Scene:
    """Draw the objects, their motion and appearance, and the background of one video."""
    count = int(rng.integers(level.num_objects[0], level.num_objects[1] + 1))
    scale = resolution / 64  # texture periods are given for 64 px frames
    base_hue = float(rng.uniform())
    if level.colours == "distinct":
        if count > len(DISTINCT_COLOURS):
            raise ValueError(f"{count} objects but only {len(DISTINCT_COLOURS)} distinct colours")
        palette = [np.array(DISTINCT_COLOURS[i], np.uint8) for i in rng.permutation(len(DISTINCT_COLOURS))[:count]]
    elif level.colours == "similar":
        palette = [_hsv(base_hue + rng.uniform(-0.08, 0.08), rng.uniform(0.45, 0.9), rng.uniform(0.55, 1.0))
                   for _ in range(count)]
    else:
        raise ValueError(f"unknown colour scheme '{level.colours}'; choose distinct or similar")
    depths = rng.permutation(count)
    objects: list[SceneObject] = []
    placed: list[tuple[np.ndarray, float]] = []  # (frame-0 centre, radius) of the objects so far
    for k in range(count):
        shape = level.shapes[int(rng.integers(len(level.shapes)))]
        radius = rng.uniform(*level.radius) * resolution
        extent = EXTENT_PER_RADIUS[shape] * radius  # also the half size of the shape's bounding box
        if 2 * extent >= resolution:
            raise ValueError(f"a {shape} of radius {radius:.1f} px does not fit a {resolution} px frame; "
                             "lower Level.radius")
        lo, hi = extent, resolution - extent  # the centre's range: the object stays inside the frame
        start = _place(rng, lo, hi, radius, placed, level.min_separation)
        placed.append((start, radius))
        speed = rng.uniform(*level.speed) * resolution
        angle = rng.uniform(0, 2 * math.pi)
        velocity = np.array([speed * math.cos(angle), speed * math.sin(angle)])
        kind = level.textures[int(rng.integers(len(level.textures)))]
        colour = palette[k]
        shade = (colour.astype(np.float64) * 0.6).round().astype(np.uint8)
        texture = _texture(rng, kind, colour, shade, rng.uniform(3, 6) * scale)
        objects.append(SceneObject(shape, extent, start, velocity, bounce(start, velocity, lo, hi, num_frames),
                                   int(depths[k]), texture))
    if level.background == "plain":
        grey = np.full(3, rng.integers(16, 80), np.uint8)
        background = Texture("flat", np.stack([grey, grey]), (1.0, 0.0), 1.0)
    elif level.background == "textured":
        h, s, v = base_hue + rng.uniform(-0.12, 0.12), rng.uniform(0.2, 0.5), rng.uniform(0.3, 0.55)
        kind = ("stripes", "checker")[int(rng.integers(2))]
        background = _texture(rng, kind, _hsv(h, s, v), _hsv(h, s, 0.7 * v), rng.uniform(3, 8) * scale)
    else:
        raise ValueError(f"unknown background '{level.background}'; choose plain or textured")
    for obj in objects:  # variation inside objects (synth-tex); nothing is drawn for a level without it
        _vary(obj, level, scale, rng)
    noise = rng.normal(0.0, level.noise, (num_frames, resolution, resolution, 3)) if level.noise > 0 else None
    return Scene(objects, background, noise)


def _vary(obj: SceneObject, level: Level, scale: float, rng: np.random.Generator) -> None:
    """Give an object its shading ramp (one light direction per object, factor 1 down to 1 - shading across
    it) and two sinusoidal gratings (period 3-8 px at 64 px), in object-local coordinates."""
    if level.shading > 0:
        angle = float(rng.uniform(0, 2 * math.pi))
        half = level.shading / 2
        obj.texture.shade = (1.0 - half, half * math.cos(angle) / obj.extent, half * math.sin(angle) / obj.extent)
    if level.pattern > 0:
        waves = []
        for _ in range(2):
            angle, period = float(rng.uniform(0, math.pi)), float(rng.uniform(3, 8)) * scale
            k = 2 * math.pi / period
            waves.append((k * math.cos(angle), k * math.sin(angle), float(rng.uniform(0, 2 * math.pi)), level.pattern))
        obj.texture.waves = tuple(waves)


def _place(rng: np.random.Generator, lo: float, hi: float, radius: float, placed: list, min_separation: float):
    """A frame-0 centre at least min_separation x (r + r_other) from the placed objects (best of 50 draws)."""
    best, best_gap = None, -math.inf
    for _ in range(50):
        start = rng.uniform(lo, hi, size=2)
        gap = min((np.linalg.norm(start - c) / (radius + r) for c, r in placed), default=math.inf)
        if gap > best_gap:
            best, best_gap = start, gap
        if gap >= min_separation:
            break
    return best


def render(scene: Scene, resolution: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T,R,R,3) uint8 and instance masks (T,R,R) uint8 (0 background, k+1 object k)."""
    ys, xs = np.mgrid[0:resolution, 0:resolution] + 0.5  # pixel centres, R R
    video = np.array(np.broadcast_to(paint(scene.background, xs, ys), (num_frames, resolution, resolution, 3)))
    masks = np.zeros((num_frames, resolution, resolution), np.uint8)  # T R R
    for k in sorted(range(len(scene.objects)), key=lambda i: scene.objects[i].depth):  # back to front
        obj = scene.objects[k]
        du = xs[None] - obj.centres[:, 0, None, None]  # T R R, object-local coordinates
        dv = ys[None] - obj.centres[:, 1, None, None]
        hit = inside(obj.shape, obj.extent, du, dv)  # T R R
        video[hit] = paint(obj.texture, du[hit], dv[hit])
        masks[hit] = k + 1
    if scene.noise is not None:
        video = np.clip(np.round(video + scene.noise), 0, 255).astype(np.uint8)
    return video, masks
