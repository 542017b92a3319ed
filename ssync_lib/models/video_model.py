"""The video slot model: VideoSAUR's architecture, trained as in SlotContrast (docs/method.md §1).

    model = create_model(cfg.model, cfg.data.input_size)
    out = model(video)  # video (B, T, 3, H, W) normalised -> ModelOutput

Shapes: B batch, T frames, S slots, N = H*W patches, D backbone dim, d slot dim.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssync_lib.config import ModelConfig
from ssync_lib.config_checks import check_choice
from ssync_lib.models.decoder import MLPBroadcastDecoder
from ssync_lib.models.encoder import FrozenViT
from ssync_lib.models.output import ModelOutput
from ssync_lib.models.position import LinearPositionEmbedding
from ssync_lib.models.predictor import SlotPredictor
from ssync_lib.models.slot_attention import ProjectionMLP, SlotAttention, SlotInit


def _chunked(fn, x: torch.Tensor, chunk: int):
    """fn applied to ``x`` (M, ...) in pieces of ``chunk`` rows along dim 0 (0 = all at once);
    outputs (a tensor or a tuple of tensors) concatenated back along dim 0."""
    if chunk <= 0 or x.shape[0] <= chunk:
        return fn(x)
    parts = [fn(piece) for piece in x.split(chunk)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(p) for p in zip(*parts))
    return torch.cat(parts)


class VideoSlotModel(nn.Module):
    """Frozen ViT -> projection MLP -> per-frame slot attention with a transformer predictor
    carrying slots across frames -> MLP broadcast decoder (§1.1-§1.6).

    Attributes: ``grid`` (H, W), ``feature_dim`` D, ``num_slots`` S, ``slot_dim`` d, ``encoder``
    (frozen; stays in eval mode and never receives gradients).
    """

    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__()
        self.encoder = FrozenViT(cfg.backbone, cfg.weights, cfg.feature_layer, input_size, cfg.use_keys,
                                 **cfg.backbone_kwargs)
        self.grid: tuple[int, int] = self.encoder.grid
        self.feature_dim = self.encoder.feature_dim
        self.num_slots, self.slot_dim = cfg.num_slots, cfg.slot_dim
        self.iters_first, self.iters = cfg.iters_first, cfg.iters
        self.chunk_frames = cfg.chunk_frames
        self.projection = ProjectionMLP(self.feature_dim, cfg.slot_dim)
        self.slot_init = SlotInit(cfg.num_slots, cfg.slot_dim, cfg.slot_init)
        self.slot_attention = SlotAttention(cfg.slot_dim, cfg.mlp_hidden_factor)
        self.predictor = SlotPredictor(cfg.slot_dim, cfg.predictor_heads)
        check_choice("model", "input_pos_embed", cfg.input_pos_embed)
        # cpu profile only: random backbone features carry no position, so add a linear map of the patch
        # coordinates before the projection (SAVi-style); the published configurations use "none"
        self.input_pos = LinearPositionEmbedding(self.grid, self.feature_dim) if cfg.input_pos_embed == "linear" else None
        self.decoder = MLPBroadcastDecoder(cfg.slot_dim, self.feature_dim, self.grid, cfg.decoder_hidden,
                                           cfg.decoder_layers, cfg.decoder_pos_embed)

    def encode(self, video: torch.Tensor, with_keys: bool = False):
        """video (B,T,3,H,W) -> features (B,T,N,D) [, keys (B,T,N,D) or None].

        All B*T frames go through the encoder at once, or ``chunk_frames`` at a time when set."""
        if video.dim() != 5 or video.shape[2] != 3:
            raise ValueError(f"VideoSlotModel: expected a video (B, T, 3, H, W), got shape {tuple(video.shape)}")
        b, t = video.shape[:2]
        out = _chunked(self.encoder, video.flatten(0, 1), self.chunk_frames)  # (B*T N D) [, keys]
        features, keys = out if self.encoder.use_keys else (out, None)
        features = features.unflatten(0, (b, t))  # B T N D
        keys = None if keys is None else keys.unflatten(0, (b, t))  # B T N D
        return (features, keys) if with_keys else features

    def forward(self, video: torch.Tensor) -> ModelOutput:
        """video (B,T,3,H,W) normalised -> ModelOutput."""
        return self.forward_from_features(*self.encode(video, with_keys=True))

    def slots_from_features(self, features: torch.Tensor, return_iterations: bool = False):
        """features (B,T,N,D) -> projected (B,T,N,d), slots (B,T,S,d), attn and attn_logits (B,T,S,N):
        the projection, then slot attention frame by frame with the predictor between frames. With
        ``return_iterations=True`` a fifth output: per frame, every slot-attention iteration's attention
        (a list of T tensors (B,iters,S,N); 3 iterations on frame 0, 2 later), the same computation."""
        b, t = features.shape[:2]
        inputs = features if self.input_pos is None else features + self.input_pos()  # B T N D
        projected = self.projection(inputs)  # B T N d   (§1.2)
        k, v = self.slot_attention.keys_values(projected)  # B T N d each, once for all frames
        slots = self.slot_init(b)  # B S d   (§1.3)
        per_frame = []
        for i in range(t):  # sequential over frames (§1.4, §1.5)
            if i > 0:
                slots = self.predictor(slots)  # B S d   frame i's initial slots from frame i-1 (§1.5)
            iters = self.iters_first if i == 0 else self.iters  # 3 on frame 0, 2 later (§1.4)
            per_frame.append(self.slot_attention(slots, k[:, i], v[:, i], iters, return_iterations))
            slots = per_frame[-1][0]
        slots, attn, logits = (torch.stack(x, dim=1) for x in list(zip(*per_frame))[:3])  # B T S d, B T S N x2
        if return_iterations:
            return projected, slots, attn, logits, [f[3] for f in per_frame]
        return projected, slots, attn, logits

    def forward_from_features(self, features: torch.Tensor, keys: Optional[torch.Tensor] = None) -> ModelOutput:
        """Everything after the encoder, on precomputed features (B,T,N,D)."""
        b, t, n, _ = features.shape
        if (n, features.shape[-1]) != (self.encoder.num_patches, self.feature_dim):
            raise ValueError(f"VideoSlotModel: features of shape {tuple(features.shape)} do not match the "
                             f"encoder (N={self.encoder.num_patches}, D={self.feature_dim})")
        features = features.detach()  # B T N D   reconstruction target, no grad (§1.7)
        projected, slots, attn, logits = self.slots_from_features(features)
        recon, alpha, masks = _chunked(self.decoder, slots.flatten(0, 1), self.chunk_frames)  # (B*T) ...
        return ModelOutput(
            slots=slots,
            attn=attn,
            attn_logits=logits,
            alpha=alpha.unflatten(0, (b, t)),  # B T S N
            masks=masks.unflatten(0, (b, t)),  # B T S N
            recon=recon.unflatten(0, (b, t)),  # B T N D
            features=features,
            projected=projected,
            grid=self.grid,
            keys=keys,
        )


def create_model(cfg: ModelConfig, input_size: int) -> VideoSlotModel:
    """The one entry point: the video slot model of ``cfg`` for frames of ``input_size`` px."""
    return VideoSlotModel(cfg, input_size)
