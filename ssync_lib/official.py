"""Load the public SSync and SlotContrast checkpoints into this library's model (issue 20).

    model, report = load_official("movi_c.ckpt", get_config("movi_c").model, input_size=336)
    print(report.summary())

SSync (Moon & Heo) and SlotContrast (Manasyan et al.) share one model code (VideoSAUR's modules), so their
Lightning checkpoints use the same parameter names: ``initializer.*``, ``encoder.module.backbone.model.*`` (the
timm ViT inside torchvision's feature extractor), ``encoder.module.output_transform.*``,
``processor.module.corrector.*`` (slot attention), ``processor.module.predictor.blocks.0.*`` and
``decoder.module.*`` (``module.`` is the MapOverTime / ScanOverTime wrapper of video models; image models such as
SSync's COCO one have none). ``KEY_MAP`` maps every one of them to a key of ``VideoSlotModel``, first matching
pattern wins; any key of the file that no pattern maps, any key of the model that nothing fills and any shape
that differs is an ``OfficialCheckpointError`` naming the file and the keys.

Three values are transformed on the way, each bit-exact or within float rounding (tests/test_official.py checks
the whole forward pass against the public code's outputs on the same weights):

* ``pos_embed``: the public encoder runs timm with ``dynamic_img_size=True``, so its checkpoint keeps DINOv2's
  37x37 position embedding and resamples it at every call (bicubic, antialiased, timm's
  ``resample_abs_pos_embed``); this library builds the ViT at the input size, so the converter resamples once,
  with the same function.
* the predictor's ``qkv``: the public ``networks.Attention`` divides the queries by ``scale = head_dim ** -0.5``,
  i.e. its logits are ``q.k * sqrt(head_dim)``, where ``torch.nn.MultiheadAttention`` (this library) computes
  ``q.k / sqrt(head_dim)``: the query rows of the weight and bias are multiplied by ``head_dim`` (16 for
  MOVi-C/YTVIS, 32 for MOVi-E: powers of two, so the scaling is exact). A model trained from scratch here keeps
  torch's scaling: see docs/official-configs.md.
* the decoder's ``pos_emb``: (1, 1, N, d) there, (1, N, d) here.

Not in the public checkpoints, kept from this library's own initialisation: the ViT's final norm (and timm's
head / fc_norm where present). Neither is used: the features are the last block's output before the final norm
(docs/method.md §1.1), as in the public feature extractor, which drops those modules.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch

from ssync_lib.config import ModelConfig
from ssync_lib.errors import MissingInputError, UserInputError, short_reason
from ssync_lib.models import VideoSlotModel, create_model


class OfficialCheckpointError(UserInputError, ValueError):
    """A public checkpoint that cannot be read or does not fit the model: names the file, the keys and the
    shapes (the command line prints it with its fix, exit 2)."""

    default_fix = ("give a public SSync / SlotContrast checkpoint (Lightning .ckpt, or its state dict as .pth / "
                   ".safetensors) with the --profile it was trained with (and --set model.* for its values); a "
                   "checkpoint written by this project goes to evaluate --checkpoint PATH")


_W = r"(?:module\.)?"  # MapOverTime / ScanOverTime wrapper of the public video model (absent for images)

# (public key pattern, library key template, transform). First match wins; every pattern is anchored.
KEY_MAP: tuple[tuple[str, str, str], ...] = (
    # slot initialisation: FixedLearnedInit (SlotContrast, SSync) / RandomInit (VideoSAUR)
    (r"initializer\.slots", "slot_init.slots", "copy"),
    (r"initializer\.(mean|log_std)", r"slot_init.\1", "copy"),
    # frozen timm ViT (TimmExtractor -> torchvision feature extractor keeps the timm names)
    (rf"encoder\.{_W}backbone\.model\.pos_embed", "encoder.vit.pos_embed", "resample_pos_embed"),
    (rf"encoder\.{_W}backbone\.model\.(cls_token|reg_token)", r"encoder.vit.\1", "copy"),
    (rf"encoder\.{_W}backbone\.model\.patch_embed\.proj\.(weight|bias)", r"encoder.vit.patch_embed.proj.\1", "copy"),
    (rf"encoder\.{_W}backbone\.model\.blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)",
     r"encoder.vit.blocks.\1.\2.\3", "copy"),
    (rf"encoder\.{_W}backbone\.model\.blocks\.(\d+)\.(ls1|ls2)\.gamma", r"encoder.vit.blocks.\1.\2.gamma", "copy"),
    (rf"encoder\.{_W}backbone\.model\.(norm|fc_norm)\.(weight|bias)", r"encoder.vit.\1.\2", "copy"),
    # projection: networks.two_layer_mlp with layer_norm = LayerNorm, Linear, ReLU, Linear
    (rf"encoder\.{_W}output_transform\.layers\.([013])\.(weight|bias)", r"projection.net.\1.\2", "copy"),
    # slot attention (groupers.SlotAttention)
    (rf"processor\.{_W}corrector\.(to_k|to_v|to_q)\.weight", r"slot_attention.\1.weight", "copy"),
    (rf"processor\.{_W}corrector\.gru\.(weight_ih|weight_hh|bias_ih|bias_hh)", r"slot_attention.gru.\1", "copy"),
    (rf"processor\.{_W}corrector\.mlp\.layers\.([013])\.(weight|bias)", r"slot_attention.mlp.\1.\2", "copy"),
    (rf"processor\.{_W}corrector\.norm_features\.(weight|bias)", r"slot_attention.norm_inputs.\1", "copy"),
    (rf"processor\.{_W}corrector\.norm_slots\.(weight|bias)", r"slot_attention.norm_slots.\1", "copy"),
    # predictor: networks.TransformerEncoder with one pre-norm block (n_blocks > 1 has no counterpart here)
    (rf"processor\.{_W}predictor\.blocks\.0\.self_attn\.qkv\.(weight|bias)", r"predictor.block.self_attn.in_proj_\1",
     "predictor_qkv"),
    (rf"processor\.{_W}predictor\.blocks\.0\.self_attn\.out_proj\.(weight|bias)",
     r"predictor.block.self_attn.out_proj.\1", "copy"),
    (rf"processor\.{_W}predictor\.blocks\.0\.(linear1|linear2|norm1|norm2)\.(weight|bias)", r"predictor.block.\1.\2",
     "copy"),
    # MLP broadcast decoder (decoders.MLPDecoder): Linear, ReLU, ..., Linear -> D + 1
    (rf"decoder\.{_W}pos_emb", "decoder.pos_emb", "squeeze_pos_emb"),
    (rf"decoder\.{_W}mlp\.layers\.(\d+)\.(weight|bias)", r"decoder.mlp.\1.\2", "copy"),
)

# Library keys that a public checkpoint does not hold and that stay as initialised here: unused modules
# (the features are taken before the ViT's final norm; timm's classifier head is Identity with num_classes=0).
UNUSED_LIBRARY_KEYS = re.compile(r"encoder\.vit\.(norm|fc_norm|head)\.(weight|bias)")
# The predictor's qkv bias when the public one was built with qkv_bias=False: zero is the same function.
ZERO_IF_ABSENT = ("predictor.block.self_attn.in_proj_bias",)

# What to tell the user when a key of the model is not filled: (model key prefix, public key pattern that must be
# in the file for the hint to hold (None: always), hint).
_HINTS = (
    ("slot_init.slots", r"initializer\.(mean|log_std)",
     "the checkpoint has a sampled slot initialisation (RandomInit): set model.slot_init=gaussian"),
    ("slot_init.mean", r"initializer\.slots",
     "the checkpoint has a learned slot tensor (FixedLearnedInit): set model.slot_init=learned"),
    ("input_pos", None, "model.input_pos_embed='linear' (cpu profile) has no counterpart in the public model: use 'none'"),
    ("decoder.pos_linear", None,
     "model.decoder_pos_embed='linear' has no counterpart in the public model: use 'learned'"),
    ("encoder.vit.blocks", rf"encoder\.{_W}backbone\.model\.blocks\.\d+\..*",
     "the checkpoint has fewer ViT blocks than model.backbone / model.feature_layer"),
)


@dataclass
class ConversionReport:
    """What the converter did: public key -> library key, transformed values, library keys left as they were."""
    source: str
    mapped: dict[str, str] = field(default_factory=dict)  # public key -> library key
    transformed: dict[str, str] = field(default_factory=dict)  # library key -> what was done
    kept: list[str] = field(default_factory=list)  # library keys not in the file (unused modules)

    def summary(self) -> str:
        lines = [f"{self.source}: {len(self.mapped)} public keys mapped onto the model"]
        lines += [f"  {key}: {what}" for key, what in self.transformed.items()]
        if self.kept:
            lines.append(f"  not in the file, unused by the forward pass, left as initialised: {', '.join(self.kept)}")
        return "\n".join(lines)


def read_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a public checkpoint: a Lightning ``.ckpt`` (its ``state_dict``), a plain state dict
    (``.pt`` / ``.pth`` / ``.bin``, read with ``weights_only=True``) or a ``.safetensors`` file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingInputError(f"official checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path), device="cpu")
        except Exception as err:  # SafetensorError: a broken header or a truncated file
            raise OfficialCheckpointError(f"{path} is not a readable .safetensors file ({short_reason(err)})",
                                          fix="download or export it again (safetensors.torch.save_file of the "
                                              "state dict)") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickled objects beyond tensors and containers, or not a torch file at all
        raise OfficialCheckpointError(
            f"{path}: torch.load(weights_only=True) refused it ({short_reason(err)})",
            fix="save its state dict alone in the public code's environment: "
                "torch.save(torch.load(PATH)['state_dict'], OUT), then evaluate --official OUT") from None
    if isinstance(obj, Mapping) and obj.get("format") is not None and isinstance(obj.get("model"), Mapping):
        raise OfficialCheckpointError(f"{path} is a checkpoint written by this project (python -m ssync_lib train), "
                                      f"not a public one", fix=f"evaluate it with evaluate --checkpoint {path}")
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]  # Lightning checkpoint
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise OfficialCheckpointError(f"{path}: neither a state dict nor a Lightning checkpoint with a 'state_dict'")
    return dict(obj)


def _match(key: str) -> tuple[str, str] | None:
    for pattern, template, transform in KEY_MAP:
        m = re.fullmatch(pattern, key)
        if m:
            return m.expand(template), transform
    return None


def _resample_pos_embed(value: torch.Tensor, model: VideoSlotModel) -> tuple[torch.Tensor, str]:
    vit = model.encoder.vit
    target = vit.pos_embed
    if value.shape == target.shape:
        return value, ""
    prefix = 0 if getattr(vit, "no_embed_class", False) else vit.num_prefix_tokens
    old = value.shape[1] - prefix
    side = math.isqrt(old)
    if value.dim() != 3 or value.shape[2] != target.shape[2] or side * side != old:
        return value, ""  # reported as a shape mismatch
    from timm.layers import resample_abs_pos_embed  # the public encoder's own run-time resampling
    out = resample_abs_pos_embed(value.float(), new_size=list(model.grid), old_size=[side, side],
                                 num_prefix_tokens=prefix, verbose=False).to(value.dtype)
    return out, f"resampled from a {side}x{side} to a {model.grid[0]}x{model.grid[1]} grid (bicubic, antialiased)"


def _predictor_qkv(value: torch.Tensor, model: VideoSlotModel) -> tuple[torch.Tensor, str]:
    attn = model.predictor.block.self_attn
    head_dim = attn.embed_dim // attn.num_heads
    out = value.clone()
    out[:attn.embed_dim] *= head_dim  # query rows: public logits are q.k * sqrt(hd), torch's q.k / sqrt(hd)
    return out, f"query rows x {head_dim} (public attention scale sqrt(head_dim) instead of 1/sqrt(head_dim))"


def _squeeze_pos_emb(value: torch.Tensor, model: VideoSlotModel) -> tuple[torch.Tensor, str]:
    if value.dim() == 4 and value.shape[:2] == (1, 1):
        return value[:, 0], ""  # 1 1 N d -> 1 N d
    return value, ""


_TRANSFORMS: dict[str, Callable[[torch.Tensor, VideoSlotModel], tuple[torch.Tensor, str]]] = {
    "copy": lambda value, model: (value, ""),
    "resample_pos_embed": _resample_pos_embed,
    "predictor_qkv": _predictor_qkv,
    "squeeze_pos_emb": _squeeze_pos_emb,
}


def _short(keys, n: int = 12) -> str:
    keys = list(keys)
    return ", ".join(keys[:n]) + (f" ... ({len(keys)} in all)" if len(keys) > n else "")


def convert_state_dict(state: Mapping[str, torch.Tensor], model: VideoSlotModel,
                       source: str = "<state dict>") -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """A public state dict -> a full state dict for ``model`` and a report. OfficialCheckpointError if a key of
    ``state`` maps to nothing, a key of the model stays unfilled or a shape differs (all of them listed)."""
    own = model.state_dict()
    ours = [k for k in state if k in own and _match(k) is None]  # this library's names (decoder.pos_emb is shared)
    if len(ours) > len(state) // 2:
        raise OfficialCheckpointError(f"{source} is a state dict of this library's model (keys such as "
                                      f"{_short(list(state), 3)}), not of the public code",
                                      fix="load it with VideoSlotModel.load_state_dict, or evaluate a checkpoint "
                                          "written by this project with evaluate --checkpoint PATH")
    report = ConversionReport(source=source)
    converted: dict[str, torch.Tensor] = {}
    unmapped, no_target, shapes, misfit = [], [], [], set()
    for key, value in state.items():
        hit = _match(key)
        if hit is None:
            unmapped.append(f"{key} {tuple(value.shape)}")
            continue
        target, transform = hit
        if target not in own:
            no_target.append(f"{key} -> {target}")
            continue
        new, what = _TRANSFORMS[transform](value, model)
        if new.shape != own[target].shape:
            shapes.append(f"{key} {tuple(value.shape)} -> {target} {tuple(own[target].shape)}")
            misfit.add(target)
            continue
        converted[target] = new.to(own[target].dtype)
        report.mapped[key] = target
        if what:
            report.transformed[target] = what
    for key in ZERO_IF_ABSENT:
        if key in own and key not in converted and key.replace("in_proj_bias", "in_proj_weight") in converted:
            converted[key] = torch.zeros_like(own[key])
            report.transformed[key] = "zero (the public qkv has no bias)"
    # a file without the frozen ViT (none of the public ones): the encoder keeps the weights of model.weights
    keep = (lambda k: k.startswith("encoder.vit.")) if not has_backbone(state) else UNUSED_LIBRARY_KEYS.fullmatch
    missing = [k for k in own if k not in converted and k not in misfit and not keep(k)]  # misfits: in `shapes`
    report.kept = [k for k in own if k not in converted and keep(k)]
    for key in report.kept:
        converted[key] = own[key]
    problems = []
    if unmapped:
        problems.append(f"keys with no counterpart in ssync_lib (no pattern of official.KEY_MAP): {_short(unmapped)}")
    if no_target:
        problems.append(f"keys whose counterpart the configured model lacks: {_short(no_target)}")
    if shapes:
        problems.append(f"shapes that differ (check model.num_slots / slot_dim / backbone / decoder_hidden / "
                        f"decoder_layers / data.input_size): {_short(shapes)}")
    if missing:
        hints = sorted({h for k in missing for prefix, evidence, h in _HINTS if k.startswith(prefix)
                        and (evidence is None or any(re.fullmatch(evidence, key) for key in state))})
        problems.append(f"model keys the file does not fill: {_short(missing)}" + "".join(f"; {h}" for h in hints))
    if problems:
        raise OfficialCheckpointError(f"{source} does not fit VideoSlotModel:\n  " + "\n  ".join(problems))
    return converted, report


def has_backbone(state: Mapping[str, torch.Tensor]) -> bool:
    return any(re.match(rf"encoder\.{_W}backbone\.model\.", k) for k in state)


def load_official(path: str | Path, cfg: ModelConfig, input_size: int) -> tuple[VideoSlotModel, ConversionReport]:
    """A public SSync / SlotContrast checkpoint -> this library's model (eval mode) and the conversion report.

    ``cfg`` is the model configuration it was trained with (``get_config("movi_c").model`` for the official
    MOVi-C checkpoint). The frozen ViT's weights come from the checkpoint, so no pretrained download is needed
    (``cfg.weights`` is used only when the file holds no encoder)."""
    state = read_official_state(path)
    if has_backbone(state):
        cfg = dataclasses.replace(cfg, weights="random")  # overwritten by the checkpoint's own ViT weights
    model = create_model(cfg, input_size)
    converted, report = convert_state_dict(state, model, source=str(path))
    model.load_state_dict(converted, strict=True)
    return model.eval(), report
