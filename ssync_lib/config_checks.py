"""Config values checked before anything is built or written: ``validate(cfg)`` (train, evaluate and experiment
call it). Overrides are checked as they are applied (``config.apply_overrides``: unknown keys, with suggestions)."""
from __future__ import annotations

import warnings
from pathlib import Path

from ssync_lib.config import Config
from ssync_lib.errors import ConfigError

# (section, key, smallest allowed value): sizes, counts and steps
LOWER_BOUNDS = (
    ("data", "num_train", 1), ("data", "num_val", 1), ("data", "num_frames", 1), ("data", "resolution", 1),
    ("data", "chunk_len", 1), ("data", "input_size", 1), ("data", "num_workers", 0), ("data", "max_val_videos", 0),
    ("data", "ytvis_val_last", 1),
    ("model", "num_slots", 1), ("model", "slot_dim", 1), ("model", "iters_first", 1), ("model", "iters", 1),
    ("model", "mlp_hidden_factor", 1), ("model", "predictor_heads", 1), ("model", "decoder_hidden", 1),
    ("model", "decoder_layers", 0), ("model", "chunk_frames", 0),
    ("objective", "dense_group", 1), ("objective", "dense_topk", 1), ("objective", "redundancy_slots", 0),
    ("objective", "dense_chunk", 0),
    ("train", "batch_size", 1), ("train", "warmup_steps", 0), ("train", "max_steps", 1), ("train", "log_every", 1),
    ("train", "ckpt_every", 1), ("train", "keep_every", 0), ("train", "eval_every", 0), ("train", "eval_batch_size", 1),
)
POSITIVE = (("train", "lr"), ("train", "grad_clip"), ("objective", "slot_contrast_tau"), ("objective", "dense_tau"))
CHOICES = (("model", "slot_init", ("learned", "gaussian")), ("model", "input_pos_embed", ("none", "linear")),
           ("model", "decoder_pos_embed", ("learned", "linear")), ("train", "init_mode", ("full", "model")))


def validate(cfg: Config) -> Config:
    """Refuse values that cannot train or evaluate, before anything is built or written: sizes, counts and
    steps below their minimum, non-positive rates, unknown choices, slot dimension not divisible by the
    predictor's heads. One slot is allowed with a warning. Raises ``ConfigError`` listing every problem."""
    problems = []
    for section, key, low in LOWER_BOUNDS:
        value = getattr(getattr(cfg, section), key)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"{section}.{key}={value!r}: must be an integer >= {low}")
    for section, key in POSITIVE:
        value = getattr(getattr(cfg, section), key)
        if not isinstance(value, (int, float)) or not value > 0:
            problems.append(f"{section}.{key}={value!r}: must be a number > 0")
    for section, key, allowed in CHOICES:
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            problems.append(f"{section}.{key}={value!r}: must be one of {list(allowed)}")
    name = cfg.train.name
    if name and (Path(name).name != name or name in (".", "..")):
        problems.append(f"train.name={name!r}: must be a plain folder name (no '/', not '..'): the run folder is "
                        f"<train.run_root>/<train.name>; set train.run_root to write elsewhere")
    m = cfg.model
    if isinstance(m.slot_dim, int) and isinstance(m.predictor_heads, int) and m.predictor_heads > 0 \
            and m.slot_dim % m.predictor_heads:
        problems.append(f"model.slot_dim={m.slot_dim} is not divisible by model.predictor_heads={m.predictor_heads}")
    if problems:
        raise ConfigError("invalid config (profile '" + cfg.profile + "'):\n  " + "\n  ".join(problems),
                          fix="change these values with --set key=value")
    if m.num_slots == 1:
        warnings.warn("model.num_slots=1: a single slot takes every pixel, so there is no object decomposition "
                      "(FG-ARI 0); use 2 or more slots unless that is what you want to see", UserWarning, stacklevel=2)
    return cfg
