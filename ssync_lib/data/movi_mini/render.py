"""movi-mini's rendering: one video of a split, simulated and drawn by Bullet's CPU renderer, with its instance masks
and annotations; a scene where an object is too small in frame 0 is drawn again."""
from __future__ import annotations

import numpy as np

from ssync_lib.data.movi_mini.level import FPS, SPLIT_CODES, SUBSTEPS, UNIT, Level
from ssync_lib.data.movi_mini.scene import Simulator, _build_scene, _hemisphere, _rounded

MAX_RESAMPLES = 100  # scene redraws per video before giving up
LIGHT_DISTANCE = 2.0


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
