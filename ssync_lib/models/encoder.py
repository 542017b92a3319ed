"""Frozen timm ViT backbone (docs/method.md §1.1).

    enc = FrozenViT("vit_small_patch14_dinov2", weights="timm", input_size=336)
    feats = enc(images)  # (B, N, D) with N = 24 * 24, D = 384

Weights: "timm" (``pretrained=True`` through the Hugging Face cache, so it works offline with
HF_HUB_OFFLINE=1 once cached), "random" (the smoke / cpu profiles), or a path to a local
``.safetensors`` / ``.pth`` file (a relative path is relative to the project root, like every path in a
config: ``checkpoints/pretrain/.../vit.safetensors`` works from the notebooks' folder too). The grid (H, W) and the feature dim D come from the model at
the input size, never from a table.
"""
from __future__ import annotations

import difflib
import os
import socket
import sys
from pathlib import Path
from typing import Optional

import torch
import timm
from torch import nn

from ssync_lib.config import resolve_path
from ssync_lib.errors import ConfigError, MissingInputError, WeightsError, short_reason


def _close_names(name: str, n: int = 8) -> list[str]:
    """timm names (with and without pretrained tags) that look like ``name``."""
    candidates = sorted(set(timm.list_models()) | set(timm.list_models(pretrained=True)))
    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)


def _weights_source(name: str) -> str:
    """Where timm fetches ``name``'s pretrained weights (HF hub id or URL), for error messages."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return "no pretrained weights are registered in timm"
    return f"Hugging Face hub '{cfg.hf_hub_id}'" if cfg.hf_hub_id else f"URL {cfg.url}"


def _cache_dirs() -> str:
    from huggingface_hub import constants
    return f"Hugging Face cache {constants.HF_HUB_CACHE} (torch hub dir {torch.hub.get_dir()})"


WEIGHTS_FIX = ("set model.weights to a .safetensors or .pth file holding the ViT's state dict (e.g. saved with "
               "safetensors.torch.save_file(timm.create_model(NAME, pretrained=True).state_dict(), PATH)), "
               "'timm' or 'random'")
# The encoder reads patch tokens of a timm VisionTransformer (patch_embed, _pos_embed, blocks): the timm modules
# whose models are one
VIT_MODULES = ("timm.models.vision_transformer", "timm.models.deit")


def vit_families() -> list[str]:
    """The name prefixes (``vit_*``, ``deit_*``, ...) of the timm models this encoder supports."""
    names = [n for module in VIT_MODULES for n in timm.list_models(module=module.rsplit(".", 1)[1])]
    return sorted({n.split("_")[0] + "_*" for n in names} - {"test_*"})


def check_backbone(name: str) -> None:
    """Refuse a timm name that is not a VisionTransformer before building it (timm would fail with
    ``TypeError: ResNet.__init__() got an unexpected keyword argument 'img_size'``)."""
    module = timm.models.model_entrypoint(timm.models.get_arch_name(name)).__module__
    if module not in VIT_MODULES:
        raise WeightsError(f"model.backbone='{name}' is a timm {module.rsplit('.', 1)[1]} model, not a Vision "
                           f"Transformer: this encoder reads ViT patch tokens. Supported families: "
                           f"{', '.join(vit_families())} (DINO: vit_small_patch16_224.dino, vit_base_patch8_224.dino; "
                           f"DINOv2: vit_small_patch14_dinov2, vit_base_patch14_dinov2)",
                           fix="set model.backbone to one of these, e.g. --set model.backbone=vit_small_patch14_dinov2")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or ``.pth`` (read with ``weights_only=True``)."""
    if not path.is_file():
        raise MissingInputError(f"model.weights: checkpoint file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path), device="cpu")
        except Exception as err:  # safetensors' SafetensorError ("header too small", ...) names no file
            raise WeightsError(f"model.weights: {path} is not a readable .safetensors file ({short_reason(err)}); "
                               f"expected tensors written by safetensors.torch.save_file", fix=WEIGHTS_FIX) from None
    if path.suffix in (".pth", ".pt", ".bin"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # UnpicklingError (pickled code, or not a torch file at all), zip errors, ...
            raise WeightsError(f"model.weights: {path} is not a weights-only torch file ({short_reason(err)}); "
                               f"expected a state dict of tensors saved with torch.save (read with "
                               f"weights_only=True: pickled code is never run)", fix=WEIGHTS_FIX) from None
        for key in ("state_dict", "model"):  # common training-checkpoint wrappers
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise WeightsError(f"model.weights: {path} holds a {type(state).__name__}, not a state dict of tensors",
                               fix=WEIGHTS_FIX)
        return state
    raise WeightsError(f"model.weights: unsupported checkpoint type '{path.suffix}' for {path}; "
                       f"use .safetensors or .pth", fix=WEIGHTS_FIX)


def _load_file(vit: nn.Module, path: Path) -> None:
    """Load a local checkpoint into ``vit``, passing it through timm's own converter (original
    DINO/DINOv2 layouts, position-embedding resampling to this input size) when the model has one."""
    state = _read_state_dict(path)
    filter_fn = getattr(sys.modules[type(vit).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, vit)
    own = vit.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith("head.")}  # classifier dropped
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(f"model.weights: {path} does not fit {type(vit).__name__} "
                           f"(missing {missing[:8]}, unexpected {unexpected[:8]})")
    try:
        vit.load_state_dict(state)
    except RuntimeError as err:  # same keys, other shapes: check model.backbone / model.backbone_kwargs
        raise WeightsError(f"model.weights: {path} does not fit {type(vit).__name__}: {err}") from None


def hub_offline() -> bool:
    """Whether the Hugging Face hub must not be asked (``HF_HUB_OFFLINE`` in the environment or huggingface_hub's
    own setting)."""
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def cached_weights(name: str) -> Path | None:
    """The local file of ``name``'s pretrained timm weights if they are cached: the Hugging Face cache
    (``model.safetensors`` or ``pytorch_model.bin`` of its hub id, as timm fetches them) or torch hub's
    ``checkpoints/`` for a URL; None otherwise."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache
        repo = cfg.hf_hub_id.split("@")[0]
        for filename in ([cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]):
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
        return None
    if cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        return path if path.is_file() else None
    return None


def weights_host_reachable(name: str, timeout: float = 3.0) -> bool:
    """Whether the host timm would download ``name``'s weights from answers a TCP connection within ``timeout``
    seconds (the hub's endpoint, or the URL's host): a quick check before a download whose retries take a minute."""
    from urllib.parse import urlparse

    from huggingface_hub import constants
    cfg = timm.models.get_pretrained_cfg(name)
    url = constants.ENDPOINT if cfg is None or cfg.hf_hub_id else cfg.url
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)),
                                 timeout=timeout).close()
        return True
    except OSError:
        return False


def _not_available(name: str, why: str) -> MissingInputError:
    return MissingInputError(
        f"model.weights='timm': pretrained weights for '{name}' ({_weights_source(name)}) are not available "
        f"({why}): looked in the {_cache_dirs()}",
        fix=f"download them once on a machine with network (python -c \"import timm; timm.create_model('{name}', "
            f"pretrained=True)\") and copy the cache folder, or save the weights to a .safetensors/.pth file and "
            f"set model.weights=/path/to/file")


def create_vit(name: str, weights: str, input_size: int, **backbone_kwargs) -> nn.Module:
    """A timm ViT at ``input_size`` px with no classifier head, weights as in the module docstring."""
    if not timm.is_model(name):
        raise WeightsError(f"model.backbone: unknown timm model '{name}'; close timm names: {_close_names(name)}")
    check_backbone(name)
    if "img_size" in backbone_kwargs:
        raise ConfigError("model.backbone_kwargs: do not set 'img_size'; it comes from data.input_size")
    kwargs = dict(num_classes=0, img_size=input_size, **backbone_kwargs)
    if weights == "timm":
        cached = cached_weights(name)
        if cached is None and hub_offline():  # HF_HUB_OFFLINE: no download tried (and no minute of retries)
            raise _not_available(name, "HF_HUB_OFFLINE is set and they are not cached")
        if cached is None and not weights_host_reachable(name):  # no network: say so at once, not after retries
            raise _not_available(name, f"not cached, and {_weights_source(name)} cannot be reached (no network?)")
        try:
            if cached is not None:  # from the local cache, without asking the hub
                vit = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)}, **kwargs)
            else:
                vit = timm.create_model(name, pretrained=True, **kwargs)
        except OSError as err:  # no network, or the download failed
            raise _not_available(name, f"{type(err).__name__}: {err}") from None
        return vit
    vit = timm.create_model(name, pretrained=False, **kwargs)
    if weights != "random":
        _load_file(vit, resolve_path(weights))  # relative to the project root, as every path in a config
    return vit


class FrozenViT(nn.Module):
    """A frozen timm ViT returning patch tokens of one block (docs/method.md §1.1).

    Args:
        name: timm model name (``vit_small_patch14_dinov2``, ``vit_base_patch8_224.dino``, ...).
        weights: "timm", "random" or a path to a .safetensors / .pth file.
        feature_layer: "last" (output of the last block, before the final norm), a block index
            (int or its string), or "patch_embed" (tokens right after patch + position embedding).
        input_size: square input size in pixels; the grid is derived from it.
        use_keys: also return the keys of the attention of the feature block (the last block for
            "last"), taken from the fused qkv projection as the public VideoSAUR code does.
        backbone_kwargs: passed to ``timm.create_model`` (e.g. ``depth=1`` for tests).

    Input (B, 3, H, W) normalised images; output (B, N, D) features, or a pair with keys (B, N, D).
    Always in eval mode, no parameter requires grad, runs under ``torch.no_grad``. The blocks after
    the feature block are deleted after loading (the final norm and head are kept but unused).
    """

    def __init__(self, name: str, weights: str = "random", feature_layer: str | int = "last",
                 input_size: int = 224, use_keys: bool = False, **backbone_kwargs):
        super().__init__()
        self.vit = create_vit(name, weights, input_size, **backbone_kwargs)
        for attr in ("patch_embed", "blocks", "_pos_embed", "num_prefix_tokens"):
            if not hasattr(self.vit, attr):
                raise WeightsError(f"model.backbone: '{name}' is not a timm VisionTransformer (no '{attr}')")
        self.name = name
        self.input_size = input_size
        self.num_blocks = self._block_count(feature_layer)  # blocks run: 0 = patch embedding only
        if use_keys and self.num_blocks == 0:
            raise ConfigError("model.use_keys needs a transformer block; feature_layer='patch_embed' has none")
        if use_keys and not hasattr(self.vit.blocks[self.num_blocks - 1].attn, "qkv"):
            raise ConfigError(f"model.use_keys: the attention of '{name}' has no fused qkv projection")
        self.use_keys = use_keys
        self.feature_layer = feature_layer
        del self.vit.blocks[self.num_blocks:]  # blocks after the feature block are never run: freed
        self.grid = tuple(int(g) for g in self.vit.patch_embed.grid_size)  # (H, W) at input_size
        self.feature_dim = int(self.vit.embed_dim)  # D
        self.requires_grad_(False)
        self.eval()

    def _block_count(self, feature_layer: str | int) -> int:
        depth = len(self.vit.blocks)
        if feature_layer == "last":
            return depth
        if feature_layer == "patch_embed":
            return 0
        try:
            index = int(feature_layer)
        except ValueError:
            raise ConfigError(f"model.feature_layer: '{feature_layer}' is not 'last', 'patch_embed' or a "
                             f"block index") from None
        if not -depth <= index < depth:
            raise ConfigError(f"model.feature_layer: block {index} out of range for {depth} blocks")
        return index % depth + 1

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def train(self, mode: bool = True) -> "FrozenViT":
        """Frozen: stays in eval mode whatever the caller asks."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, H, W) -> features (B, N, D) [, keys (B, N, D)]."""
        if images.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"FrozenViT({self.name}): expected images of {self.input_size}x{self.input_size} "
                             f"px (data.input_size), got shape {tuple(images.shape)}")
        vit = self.vit
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))  # B P+N D
        keys: Optional[torch.Tensor] = None
        for i, block in enumerate(vit.blocks):
            if self.use_keys and i == self.num_blocks - 1:
                qkv = block.attn.qkv(block.norm1(x))  # B P+N 3D
                keys = qkv.unflatten(-1, (3, -1))[:, :, 1]  # B P+N D (heads concatenated)
            x = block(x)  # B P+N D
        prefix = vit.num_prefix_tokens  # CLS and register tokens, dropped (§1.1)
        features = x[:, prefix:]  # B N D
        return (features, keys[:, prefix:]) if self.use_keys else features
