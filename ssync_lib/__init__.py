"""ssync_lib: the SSync companion.

The pipeline, folder by folder:
    data/        synthetic benchmark and readers (MOVi, YouTube-VIS, DAVIS) -> video clips
    models/      frozen timm ViT encoder -> slot attention + predictor -> MLP broadcast decoder
    objectives/  reconstruction, slot-slot contrast, dense alignment (SRL), SSync
    metrics.py   FG-ARI, mBO, mIoU
    train.py     the one training loop (CLI and notebooks); evaluate.py, checkpoint.py
    viz.py, widgets.py, bench.py
"""
from ssync_lib.config import Config, get_config

__all__ = ["Config", "get_config"]
__version__ = "0.1.0"
