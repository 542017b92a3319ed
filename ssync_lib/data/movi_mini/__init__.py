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

Modules, one job each: ``level`` (the knobs, shapes, texture kinds, meshes per split, units), ``geometry``
(meshes), ``textures`` (textures and colours made in code), ``scene`` (the simulator and the scene draw),
``render`` (one video), ``shards`` (samples, shards, one process's simulator), ``build`` (``generate``, the
driver). The names below are importable from ``ssync_lib.data.movi_mini`` as before.
"""
from ssync_lib.data.movi_mini.build import GENERATOR_VERSION, SHARD_SIZE, expected_meta, generate
from ssync_lib.data.movi_mini.level import (FPS, LEVELS, NUM_MESHES, PRIMITIVES, SPLIT_CODES, SUBSTEPS, TEXTURES, UNIT,
                                            Level, level_params, meshes)
from ssync_lib.data.movi_mini.render import LIGHT_DISTANCE, MAX_RESAMPLES, render_video
from ssync_lib.data.movi_mini.scene import PYBULLET_FIX, Simulator
from ssync_lib.data.movi_mini.shards import make_video_sample, read_sample_json
from ssync_lib.data.movi_mini.textures import floor_texture, object_colours, texture

__all__ = ["GENERATOR_VERSION", "SHARD_SIZE", "expected_meta", "generate", "FPS", "LEVELS", "NUM_MESHES", "PRIMITIVES",
           "SPLIT_CODES", "SUBSTEPS", "TEXTURES", "UNIT", "Level", "level_params", "meshes", "LIGHT_DISTANCE",
           "MAX_RESAMPLES", "render_video", "PYBULLET_FIX", "Simulator", "make_video_sample", "read_sample_json",
           "floor_texture", "object_colours", "texture"]
