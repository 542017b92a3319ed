"""The settings of a pretraining run, as a table: the data (the project's ``DataConfig``), the ViT, the DINO +
iBOT objective and the schedule (the project's ``TrainConfig``).

    cfg = get_pretrain_config("cpu", ["dino.mix=data/synth-easy,data/movi-mini", "train.max_steps=2000"])

``--profile P`` takes P's data section (root, level, frames, input size) and a ViT whose patch grid is P's
(patch 4 at 64 px: the `cpu` recipe's 16x16 grid). Overrides are the project's ``key=value`` strings
(``config.apply_overrides``); the sections are ``data``, ``vit``, ``dino`` and ``train``.

Of ``TrainConfig`` pretraining reads seed, batch_size (clips per process; each gives 2 global and
``dino.local_crops`` local crops), lr (peak, AdamW), warmup_steps, max_steps, grad_clip, log_every, ckpt_every,
keep_every, device, amp_bf16 (CUDA), deterministic, run_root and name; the others are unused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ssync_lib.config import DataConfig, Sections, TrainConfig, apply_overrides, get_config
from ssync_lib.errors import ConfigKeyError


@dataclass
class ViTConfig:
    """The timm VisionTransformer trained; exactly the encoder's ``model.backbone`` / ``model.backbone_kwargs``."""
    backbone: str = "vit_small_patch16_224.dino"  # timm name whose architecture backbone_kwargs adjust
    backbone_kwargs: dict = field(default_factory=lambda: {"patch_size": 4, "embed_dim": 64, "depth": 4,
                                                           "num_heads": 2})


@dataclass
class DinoConfig:
    mix: str = ""  # comma-separated data folders to pretrain on ("" = data.root); "source:folder" for a reader
    # other than data.source (synthetic levels and MOVi-style shards are read by the same reader)
    temporal: bool = True  # the two global crops come from two different frames of one clip (data.chunk_len >= 2)
    local_crops: int = 4  # small crops per clip, seen by the student only (multi-crop)
    local_size: int = 32  # pixels of a local crop (a multiple of the patch size)
    global_scale_min: float = 0.4  # global crop area in [min, 1] of the frame
    local_scale_min: float = 0.1  # local crop area in [min, max]
    local_scale_max: float = 0.4
    jitter: float = 0.4  # colour jitter strength (brightness, contrast, saturation factors in [1-j, 1+j])
    jitter_prob: float = 0.8
    gray_prob: float = 0.2
    out_dim: int = 256  # prototypes of the CLS head (DINO's K)
    patch_out_dim: int = 256  # prototypes of the patch head (iBOT)
    head_hidden: int = 256
    head_bottleneck: int = 64
    student_temp: float = 0.1
    teacher_temp: float = 0.04  # after the warm-up below (DINO 0.04-0.07: higher drifted to uniform here)
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_frac: float = 0.3  # of max_steps
    centre_momentum: float = 0.9
    momentum: float = 0.996  # teacher EMA momentum at step 0, cosine to 1 at max_steps
    weight_decay: float = 0.04  # cosine to weight_decay_end
    weight_decay_end: float = 0.4
    min_lr_frac: float = 0.01  # the cosine lr ends at lr * min_lr_frac
    freeze_last_layer_steps: int = 0  # the heads' prototype layers stay fixed this long
    w_dino: float = 1.0  # image-level (CLS) self-distillation
    w_ibot: float = 1.0  # masked patch-token self-distillation
    mask_prob: float = 0.8  # share of global crops whose patches the student sees masked
    mask_ratio_min: float = 0.1  # share of patches masked in a masked crop, uniform in [min, max]
    mask_ratio_max: float = 0.5
    collapse_from_frac: float = 0.3  # collapse is checked from this share of max_steps on (after the temp warm-up)
    collapse_mi: float = 0.02  # nats: a teacher whose batch mutual information stays below this in both heads ...
    collapse_patience: int = 3  # ... for this many consecutive log rows stop the run


@dataclass
class PretrainConfig(Sections):
    SECTIONS = ("data", "vit", "dino", "train")  # data and train: the project's sections (module docstring)

    profile: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    vit: ViTConfig = field(default_factory=ViTConfig)
    dino: DinoConfig = field(default_factory=DinoConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def run_name(self) -> str:
        return self.train.name or f"pretrain-{self.profile}-seed{self.train.seed}"

    @property
    def patch_size(self) -> int:
        return int(self.vit.backbone_kwargs.get("patch_size", 16))


def _cpu(profile: str) -> PretrainConfig:
    # Width 64, depth 4, 2 heads at patch 4 / 64 px (the cpu recipe's 16x16 grid and its feature width): 1.0 CPU s
    # per step at batch 32 against 1.8 for width 96 and 2.6 for width 128 (scripts/pretrain_step_time.py,
    # results/pretrain/step_time.csv), so about twice the steps of width 96 in the same hour. Batch 32 clips of 4
    # frames (64 global + 128 local crops), lr 5e-4 with a 10% warm-up, one thread.
    data = get_config(profile).data
    data.chunk_len = 4  # the two global crops come from 2 of 4 frames
    return PretrainConfig(
        profile=profile, data=data,
        train=TrainConfig(batch_size=32, lr=5e-4, warmup_steps=300, max_steps=3000, grad_clip=3.0, log_every=20,
                          ckpt_every=100, device="cpu"))


def _smoke() -> PretrainConfig:
    return PretrainConfig(
        profile="smoke", data=get_config("smoke").data,
        vit=ViTConfig(backbone_kwargs={"patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2}),
        dino=DinoConfig(local_crops=2, local_size=16, out_dim=64, patch_out_dim=64, head_hidden=32,
                        head_bottleneck=16),
        train=TrainConfig(batch_size=4, lr=1e-3, warmup_steps=2, max_steps=6, grad_clip=3.0, log_every=1,
                          ckpt_every=3, device="cpu"))


PRETRAIN_PROFILES = {"smoke": _smoke, "cpu": lambda: _cpu("cpu"), "cpu_tex": lambda: _cpu("cpu_tex"),
                     "cpu_tex_mild": lambda: _cpu("cpu_tex_mild"), "cpu_movi": lambda: _cpu("cpu_movi")}


def get_pretrain_config(profile: str = "cpu", overrides=()) -> PretrainConfig:
    """A fresh pretraining config for a profile, overrides applied."""
    if profile not in PRETRAIN_PROFILES:
        raise ConfigKeyError(f"pretrain: no pretraining recipe for profile '{profile}'; choose one of "
                             f"{sorted(PRETRAIN_PROFILES)}",
                             fix="use --profile cpu (any level: --set dino.mix=FOLDER,...) or add a recipe to "
                                 "ssync_lib/pretrain/config.py PRETRAIN_PROFILES")
    return apply_overrides(PRETRAIN_PROFILES[profile](), overrides)
