"""Self-supervised pretraining of the encoder's ViT: DINO self-distillation with iBOT's masked patch loss.

    python -m ssync_lib pretrain --profile cpu --set dino.mix=data/synth-easy,data/movi-mini
    python -m ssync_lib pretrain --profile cpu --resume                 # continues bit-exactly from last.pt
    python -m ssync_lib pretrain --profile cpu --export                 # last.pt -> vit.safetensors + vit.json
    python -m ssync_lib features --weights runs/pretrain-cpu-seed0/vit.safetensors   # k-means feature table

The method is ``dino.py`` (student, EMA teacher, centring, sharpening, multi-crop, masked patch loss), the views
``views.py``, the settings ``config.py``, the loop ``loop.py`` (the project's checkpoints, logs and run folders),
the feature-quality table and figures ``features.py``.
"""
from ssync_lib.pretrain.config import PretrainConfig, get_pretrain_config
from ssync_lib.pretrain.loop import PretrainResult, export_weights, pretrain

__all__ = ["PretrainConfig", "get_pretrain_config", "PretrainResult", "export_weights", "pretrain"]
