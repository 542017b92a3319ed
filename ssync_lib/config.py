"""Configuration: one dataclass per stage of the pipeline and named profiles.

    cfg = get_config("cpu", ["model.num_slots=7", "train.max_steps=500"])

Profiles
--------
smoke   seconds per notebook; CI. Tiny synthetic data, tiny model.
cpu     teaching on a laptop (2 cores): the CPU recipe on the synthetic data (synth-easy).
cpu_tex the same recipe on synth-tex, the textured level (3-8 objects that vary inside).
cpu_tex_mild the same recipe on synth-tex-mild (3-5 larger objects, a third of synth-tex's variation).
cpu_movi the same recipe on movi-mini, the MOVi-style 3D level rendered with PyBullet (data/movi_mini/).
movi_c, movi_e, ytvis, coco
        the published configurations (docs/method.md, the §1 table) for GPU servers.

Overrides are ``key=value`` strings. A key is either dotted (``model.num_slots``) or a
field name that is unique across the sections (``num_slots``). Values are parsed with
the type of the field they replace.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ssync_lib.errors import ConfigError, ConfigKeyError

# ImageNet statistics, used by DINO and DINOv2 alike.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | movi | ytvis | davis
    root: str = "data/synth-easy"  # folder of the data set (shards, frames, annotations)
    level: str = "synth-easy"  # synthetic level: synth-easy | synth-hard | synth-tex | synth-tex-mild (data/scenes.py LEVELS); movi-mini (data/movi_mini/)
    synth_seed: int = 0  # synthetic generator seed (independent of train.seed)
    num_train: int = 2000  # synthetic videos generated for training
    num_val: int = 200  # synthetic videos generated for validation
    num_frames: int = 12  # synthetic video length
    resolution: int = 64  # synthetic frame size (pixels, square)
    chunk_len: int = 4  # frames per training sample (one random aligned chunk per video)
    input_size: int = 64  # frames are resized to this before the encoder
    resize: str = "bilinear"  # bilinear: normalise, then bilinear (antialiased) | bicubic: the public pipeline (bicubic, clamp to [0, 1], normalise; data/common.py)
    num_workers: int = 0
    ytvis_val_last: int = 300  # YouTube-VIS: last N training videos form the validation split
    max_val_videos: int = 0  # 0 = all validation videos


@dataclass
class ModelConfig:
    backbone: str = "vit_small_patch14_dinov2"  # any timm ViT name
    weights: str = "random"  # "timm" (pretrained=True, HF cache), "random", or a path (.safetensors/.pth)
    feature_layer: str = "last"  # "last" (last block, before the final norm), "patch_embed", or a block index
    backbone_kwargs: dict = field(default_factory=dict)  # passed to timm.create_model (e.g. depth for tests)
    use_keys: bool = False  # also return the last block's attention keys
    num_slots: int = 11
    slot_dim: int = 64
    slot_init: str = "learned"  # "learned" (SlotContrast) or "gaussian" (VideoSAUR)
    iters_first: int = 3  # slot-attention iterations on frame 0
    iters: int = 2  # on later frames
    mlp_hidden_factor: int = 4  # slot-attention residual MLP hidden = factor * slot_dim
    predictor_heads: int = 4
    decoder_hidden: int = 1024
    decoder_layers: int = 3  # hidden layers of the MLP broadcast decoder
    # Position information for random (untrained) backbones, whose features carry none (cpu profile,
    # docs/cpu_recipe.md). The defaults are the published behaviour.
    input_pos_embed: str = "none"  # "none" | "linear": add Linear(2, D)(patch-centre coordinates) to the features before the projection (SAVi)
    decoder_pos_embed: str = "learned"  # "learned": a (1, N, d) parameter (published) | "linear": Linear(2, d)(patch-centre coordinates)
    chunk_frames: int = 0  # frames per encoder / decoder call (0 = all B*T at once); bounds memory on long videos


@dataclass
class ObjectiveConfig:
    name: str = "baseline"  # baseline | dense | ssync
    w_recon: float = 1.0
    w_slot_contrast: float = 0.5
    slot_contrast_tau: float = 0.1
    # SSync (docs/method.md §4)
    merge_iou: float = 0.7
    w_ssync_dec: float = 1.0  # decoder alpha at boundaries vs merged encoder labels
    w_ssync_enc: float = 1.0  # slot-attention logits at interiors vs merged decoder labels
    ssync_warmup_frac: float = 0.3  # SSync losses off for the first 30% of steps
    # Dense alignment, SRL (docs/method.md §3). Schedules are fractions of max_steps
    # (MOVi-C: regulariser for steps 0-10k, contrastive losses from 20k, of 100k).
    dense_group: int = 4  # g frames per group, M = g * N tokens
    dense_tau: float = 0.1
    dense_scale: float = 0.1 / 0.07
    dense_topk: int = 8  # per frame; positives K_i = topk * g
    w_dense_dec: float = 0.1
    w_dense_enc: float = 0.1
    w_redundancy: float = 0.1
    redundancy_slots: int = 1  # k redundant slots pushed towards uniform attention
    redundancy_until_frac: float = 0.1
    dense_from_frac: float = 0.2
    dense_chunk: int = 0  # 0 = direct (materialise B x M x M); > 0 = rows per chunk


@dataclass
class TrainConfig:
    seed: int = 0
    batch_size: int = 64  # per process (under torchrun the global batch is batch_size * processes)
    lr: float = 4e-4
    warmup_steps: int = 2500
    max_steps: int = 100_000
    grad_clip: float = 0.05
    log_every: int = 50
    ckpt_every: int = 1000
    keep_every: int = 0  # also keep step-<N>.pt every N steps (0 = only last.pt)
    eval_every: int = 0  # 0 = only at the end
    eval_batch_size: int = 8  # validation videos (of equal length) per forward pass
    device: str = "auto"  # auto | cpu | cuda | cuda:<index>
    amp_bf16: bool = False  # bf16 autocast (CUDA only)
    compile: bool = False  # torch.compile (CUDA only)
    deterministic: bool = False  # torch.use_deterministic_algorithms (bit-exact resume tests)
    init_from: str = ""  # start from this checkpoint (another run's), see train.py
    init_mode: str = "full"  # full: model + its Adam state + step + RNG | model: weights only, step 0
    run_root: str = "runs"
    name: str = ""  # run folder name; empty = derived from profile and objective


class Sections:
    """What a config of named sections (dataclasses) shares: ``SECTIONS`` names them (``apply_overrides`` resolves
    ``section.key`` against it), and it serialises to a dict and to JSON. ``Config`` here, ``PretrainConfig`` in
    ``ssync_lib/pretrain/config.py``."""

    SECTIONS: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclass
class Config(Sections):
    profile: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    SECTIONS = ("data", "model", "objective", "train")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        cfg = cls(profile=d.get("profile", "custom"))
        unknown = set(d) - set(cls.SECTIONS) - {"profile"}
        if unknown:
            raise ConfigKeyError(f"unknown config sections {sorted(unknown)}; expected {cls.SECTIONS}")
        for section in cls.SECTIONS:
            sub = getattr(cfg, section)
            for key, value in d.get(section, {}).items():
                if not hasattr(sub, key):
                    raise ConfigKeyError(f"unknown config key '{section}.{key}'{_suggest(cfg, f'{section}.{key}')}")
                setattr(sub, key, value)
        return cfg

    @property
    def run_name(self) -> str:
        return self.train.name or f"{self.profile}-{self.objective.name}-s{self.model.num_slots}-seed{self.train.seed}"


def _profile_smoke() -> Config:
    return Config(
        profile="smoke",
        data=DataConfig(root="data/smoke", num_train=48, num_val=8, num_frames=6, resolution=32,
                        chunk_len=3, input_size=32),
        model=ModelConfig(backbone="vit_small_patch16_224.dino", weights="random", feature_layer="patch_embed",
                          backbone_kwargs={"depth": 1}, num_slots=4, slot_dim=16, slot_init="gaussian",
                          decoder_hidden=32, decoder_layers=2),
        objective=ObjectiveConfig(dense_topk=2),
        train=TrainConfig(batch_size=4, lr=1e-3, warmup_steps=2, max_steps=6, grad_clip=1.0, log_every=2,
                          ckpt_every=3, device="cpu"),
    )


def _profile_cpu() -> Config:
    # The CPU recipe (docs/cpu_recipe.md, issue 10): a 16x16 grid (patch 4 at 64 px; an 8x8 grid caps video
    # FG-ARI at ~0.73 even for perfect masks), random 64-dim patch-embedding features, position information
    # on both sides (input and decoder linear coordinate embeddings: without them the loss stays on the
    # background plateau), small slots and decoder, learned slot init, batch 8 of 3-frame chunks (the
    # predictor then also learns the frame-1 -> frame-2 step it repeats on whole videos), lr 2e-3.
    return Config(
        profile="cpu",
        data=DataConfig(root="data/synth-easy", num_train=2000, num_val=200, num_frames=12, resolution=64,
                        chunk_len=3, input_size=64),
        model=ModelConfig(backbone="vit_small_patch16_224.dino", weights="random", feature_layer="patch_embed",
                          backbone_kwargs={"patch_size": 4, "embed_dim": 64, "depth": 1, "num_heads": 1},
                          num_slots=5, slot_dim=32, slot_init="learned", decoder_hidden=64, decoder_layers=2,
                          input_pos_embed="linear", decoder_pos_embed="linear"),
        objective=ObjectiveConfig(dense_topk=4),
        train=TrainConfig(batch_size=8, lr=2e-3, warmup_steps=200, max_steps=8_000, grad_clip=1.0,
                          log_every=50, ckpt_every=500, device="cpu"),
    )


def _profile_cpu_tex() -> Config:
    # The CPU recipe on synth-tex, the textured level (3-8 objects whose pixels vary inside: shading, gratings,
    # noise): the same model and schedule as `cpu`, only the data differ, so the two premise tables compare.
    cfg = _profile_cpu()
    cfg.profile = "cpu_tex"
    cfg.data.root, cfg.data.level = "data/synth-tex", "synth-tex"
    return cfg


def _profile_cpu_tex_mild() -> Config:
    # The CPU recipe on synth-tex-mild: synth-tex's variation at a third of its strength on synth-easy's object
    # sizes (the recipe learns no objects on synth-tex itself), again only the data differ from `cpu`.
    cfg = _profile_cpu()
    cfg.profile = "cpu_tex_mild"
    cfg.data.root, cfg.data.level = "data/synth-tex-mild", "synth-tex-mild"
    return cfg


def _profile_cpu_movi() -> Config:
    # The CPU recipe on movi-mini (issue 34): 3D scenes simulated and rendered with PyBullet in the MOVi layout,
    # read by the MOVi reader; 24 frames at 128 px, resized to the recipe's 64 px input. Only the data differ.
    cfg = _profile_cpu()
    cfg.profile = "cpu_movi"
    cfg.data.source, cfg.data.root, cfg.data.level = "movi", "data/movi-mini", "movi-mini"
    cfg.data.num_train, cfg.data.num_val, cfg.data.num_frames, cfg.data.resolution = 1000, 250, 24, 128
    return cfg


@dataclass(frozen=True)
class Published:
    """One published configuration, a row of docs/method.md's §1 table: what differs between data sets.
    Everything else (batch 64 of 4-frame chunks, warm-up 2,500 steps, clip 0.05, learned slot init, DINOv2
    features of the last block) is shared and set in ``published_config``."""
    source: str  # data reader: movi | ytvis | coco
    root: str  # default data folder
    backbone: str  # timm DINOv2 model name
    input_size: int  # pixels (square)
    num_slots: int
    slot_dim: int
    max_steps: int
    lr: float
    merge_iou: float  # SSync's merge threshold (§4.2)
    dense_topk: int  # SRL's top-k positives per frame (§3)
    chunk_len: int = 4  # frames per training clip (1: images)
    batch_size: int = 64
    decoder_hidden: int | None = None  # None: ModelConfig's default
    w_slot_contrast: float | None = None  # None: ObjectiveConfig's default


# Method notes §1 table. lr: SSync and SRL use 8e-4.
PUBLISHED = {
    "movi_c": Published(source="movi", root="data/movi_c", backbone="vit_small_patch14_dinov2", input_size=336,
                        num_slots=11, slot_dim=64, max_steps=100_000, lr=8e-4, merge_iou=0.7, dense_topk=8),
    "movi_e": Published(source="movi", root="data/movi_e", backbone="vit_base_patch14_dinov2", input_size=336,
                        num_slots=15, slot_dim=128, max_steps=300_000, lr=8e-4, merge_iou=0.65, dense_topk=24),
    "ytvis": Published(source="ytvis", root="data/ytvis2021", backbone="vit_base_patch14_dinov2", input_size=518,
                       num_slots=7, slot_dim=64, max_steps=100_000, lr=8e-4, merge_iou=0.6, dense_topk=16),
    # Images: 1-frame "clips"; slot contrast is identically 0 at T=1 in the public config, so it is dropped.
    "coco": Published(source="coco", root="data/coco", backbone="vit_small_patch14_dinov2", input_size=224,
                      num_slots=7, slot_dim=64, max_steps=100_000, lr=8e-4, merge_iou=0.9, dense_topk=8,
                      chunk_len=1, batch_size=128, decoder_hidden=2048, w_slot_contrast=0.0),
}


def published_config(profile: str) -> Config:
    """The Config of a published profile: its ``PUBLISHED`` row plus the settings all of them share."""
    row = PUBLISHED[profile]
    model_extra = {} if row.decoder_hidden is None else {"decoder_hidden": row.decoder_hidden}
    objective_extra = {} if row.w_slot_contrast is None else {"w_slot_contrast": row.w_slot_contrast}
    return Config(
        profile=profile,
        data=DataConfig(source=row.source, root=row.root, chunk_len=row.chunk_len, input_size=row.input_size,
                        resize="bicubic", num_workers=8),
        model=ModelConfig(backbone=row.backbone, weights="timm", feature_layer="last", num_slots=row.num_slots,
                          slot_dim=row.slot_dim, slot_init="learned", **model_extra),
        objective=ObjectiveConfig(merge_iou=row.merge_iou, dense_topk=row.dense_topk, **objective_extra),
        train=TrainConfig(batch_size=row.batch_size, lr=row.lr, warmup_steps=2500, max_steps=row.max_steps,
                          grad_clip=0.05, log_every=100, ckpt_every=2500, device="auto"),
    )


PROFILES = {
    "smoke": _profile_smoke,
    "cpu": _profile_cpu,
    "cpu_tex": _profile_cpu_tex,
    "cpu_tex_mild": _profile_cpu_tex_mild,
    "cpu_movi": _profile_cpu_movi,
    **{name: functools.partial(published_config, name) for name in PUBLISHED},
}


def _parse_value(text: str, current: Any) -> Any:
    if isinstance(current, bool):
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean (true/false), got '{text}'")
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"'{text}' is not an integer") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
    if isinstance(current, dict):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"'{text}' is not a JSON object") from None
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got '{text}'")
        return value
    return text


KEYS_FIX = "the keys are the fields of the dataclasses in ssync_lib/config.py (sections data, model, objective, train)"


def config_keys(cfg: Config) -> list[str]:
    """Every dotted key of a config (``data.root``, ``model.num_slots``, ...)."""
    return [f"{s}.{f.name}" for s in cfg.SECTIONS for f in dataclasses.fields(getattr(cfg, s))]


def _suggest(cfg: Config, key: str) -> str:
    """``"; did you mean 'model.num_slots'?"`` for the keys close to ``key`` (dotted or bare), or ""."""
    keys = config_keys(cfg)
    names = {k.split(".", 1)[1]: k for k in keys}
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.75)
    close += [names[n] for n in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(names), n=3, cutoff=0.75)]
    close = list(dict.fromkeys(close))[:3]
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _resolve_key(cfg: Config, key: str) -> tuple[Any, str]:
    if "." in key:
        section, name = key.split(".", 1)
        if section not in cfg.SECTIONS or not hasattr(getattr(cfg, section), name):
            raise ConfigKeyError(f"unknown config key '{key}'{_suggest(cfg, key)}",
                                 fix=KEYS_FIX)
        return getattr(cfg, section), name
    owners = [s for s in cfg.SECTIONS if hasattr(getattr(cfg, s), key)]
    if len(owners) > 1:
        raise ConfigKeyError(f"ambiguous config key '{key}': use one of {[f'{s}.{key}' for s in owners]}")
    if not owners:
        raise ConfigKeyError(f"unknown config key '{key}'{_suggest(cfg, key)}",
                             fix=KEYS_FIX)
    return getattr(cfg, owners[0]), key


def apply_overrides(cfg: Config, overrides: Iterable[str] | Mapping[str, Any] = ()) -> Config:
    """Apply ``key=value`` strings (CLI) or a ``{key: value}`` mapping (notebooks) in place."""
    items = overrides.items() if isinstance(overrides, Mapping) else (_split(o) for o in overrides)
    for key, value in items:
        section, name = _resolve_key(cfg, key)
        current = getattr(section, name)
        try:
            new = _parse_value(value, current) if isinstance(value, str) else value
        except ValueError as err:
            raise ConfigError(f"config key '{key}': {err}",
                              fix=f"give {key} a value of type {type(current).__name__} (now {current!r})") from None
        setattr(section, name, new)
    return cfg


def _split(override: str) -> tuple[str, str]:
    if "=" not in override:
        raise ConfigError(f"override '{override}' is not of the form key=value",
                          fix="write it as --set key=value, e.g. --set model.num_slots=7")
    key, value = override.split("=", 1)
    return key.strip(), value.strip()


def get_config(profile: str = "cpu", overrides: Iterable[str] | Mapping[str, Any] = ()) -> Config:
    """A fresh copy of a named profile with overrides applied."""
    if profile not in PROFILES:
        raise ConfigKeyError(f"unknown profile '{profile}'; choose one of {sorted(PROFILES)}")
    return apply_overrides(PROFILES[profile](), overrides)


def project_root() -> Path:
    """The folder that holds pyproject.toml above this package (an editable install), else the cwd."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def resolve_path(path: str | Path) -> Path:
    """Relative paths in configs (data roots, run folders) are relative to the project root,
    so notebooks (cwd ``notebooks/``), the CLI and the tests all find the same files."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path
