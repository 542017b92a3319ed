"""Config values checked before anything is built or written: ``validate(cfg)`` (train, evaluate and experiment
call it). Overrides are checked as they are applied (``config.apply_overrides``: unknown keys, with suggestions).
The allowed choices (``CHOICES``) are checked here only: the model classes that take one call ``check_choice``."""
from __future__ import annotations

import re
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
CHOICES = (("data", "resize", ("bilinear", "bicubic")), ("model", "slot_init", ("learned", "gaussian")), ("model", "input_pos_embed", ("none", "linear")),
           ("model", "decoder_pos_embed", ("learned", "linear")), ("train", "init_mode", ("full", "model")))


def choice_problem(section: str, key: str, value) -> str | None:
    """What is wrong with ``value`` as ``section.key`` (one of ``CHOICES``), None when it is allowed."""
    allowed = next(a for s, k, a in CHOICES if (s, k) == (section, key))
    return None if value in allowed else f"{section}.{key}={value!r}: must be one of {list(allowed)}"


def check_choice(section: str, key: str, value) -> None:
    """ConfigError unless ``value`` is allowed for ``section.key``: the guard of the classes built from a choice."""
    problem = choice_problem(section, key, value)
    if problem:
        raise ConfigError(problem, fix=f"--set {section}.{key}=VALUE with one of the values above")


def patch_size(cfg: Config) -> int | None:
    """The ViT's patch size: ``model.backbone_kwargs["patch_size"]``, else the ``patch<N>`` of the timm name (None
    when neither says)."""
    given = cfg.model.backbone_kwargs.get("patch_size") if isinstance(cfg.model.backbone_kwargs, dict) else None
    if isinstance(given, int):
        return given
    found = re.search(r"patch(\d+)", str(cfg.model.backbone))
    return int(found.group(1)) if found else None


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
    for section, key, _ in CHOICES:
        problem = choice_problem(section, key, getattr(getattr(cfg, section), key))
        if problem:
            problems.append(problem)
    name = cfg.train.name
    if name and (Path(name).name != name or name in (".", "..")):
        problems.append(f"train.name={name!r}: must be a plain folder name (no '/', not '..'): the run folder is "
                        f"<train.run_root>/<train.name>; set train.run_root to write elsewhere")
    m = cfg.model
    if isinstance(m.slot_dim, int) and isinstance(m.predictor_heads, int) and m.predictor_heads > 0 \
            and m.slot_dim % m.predictor_heads:
        problems.append(f"model.slot_dim={m.slot_dim} is not divisible by model.predictor_heads={m.predictor_heads}")
    patch = patch_size(cfg)
    size = cfg.data.input_size
    if patch and isinstance(size, int) and 0 < size < patch:
        problems.append(f"data.input_size={size} is smaller than the backbone's patch size {patch} "
                        f"(model.backbone={m.backbone!r}): the patch grid would be empty; use {patch} or a multiple")
    if problems:
        raise ConfigError("invalid config (profile '" + cfg.profile + "'):\n  " + "\n  ".join(problems),
                          fix="change these values with --set key=value")
    if patch and size % patch:
        grid = size // patch
        warnings.warn(f"data.input_size={size} is not a multiple of the backbone's patch size {patch}: the "
                      f"{grid}x{grid} patch grid covers {grid * patch} px, the last {size - grid * patch} px of each "
                      f"side are never seen; use {grid * patch} or {(grid + 1) * patch}", UserWarning, stacklevel=2)
    if m.num_slots == 1:
        warnings.warn("model.num_slots=1: a single slot takes every pixel, so there is no object decomposition "
                      "(FG-ARI 0); use 2 or more slots unless that is what you want to see", UserWarning, stacklevel=2)
    return cfg
