"""Models: frozen timm ViT encoder -> slot attention + predictor -> MLP broadcast decoder."""
from ssync_lib.models.encoder import FrozenViT
from ssync_lib.models.output import ModelOutput
from ssync_lib.models.video_model import VideoSlotModel, create_model

__all__ = ["FrozenViT", "ModelOutput", "VideoSlotModel", "create_model"]
