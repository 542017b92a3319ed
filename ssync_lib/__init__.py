"""ssync_lib: the SSync companion.

The pipeline, in the order a clip goes through it (README's "Where things are" has a line per module):
    config.py        settings and profiles            runtime.py   device, processes, seeds, commit
    data/            synthetic benchmark and readers (MOVi, YouTube-VIS, DAVIS) -> video clips; data order
    models/          frozen timm ViT encoder -> slot attention + predictor -> MLP broadcast decoder
    objectives/      reconstruction, slot-slot contrast, dense alignment (SRL), SSync (+ its loop reference)
    metrics.py       FG-ARI, mBO, mIoU                diagnostics.py  SSync's premises against ground truth
    optim.py, run_log.py, checkpoint.py  ->  train.py (the one loop)  ->  evaluate.py, experiment.py
    official.py      the public checkpoints           run_cache.py, notebook.py, widgets.py  for the notebooks
    viz/             all plotting                     bench/       benchmarks, one CLI
Imports go one way, down this list (tests/test_layering.py).
"""
from ssync_lib.config import Config, get_config

__all__ = ["Config", "get_config"]
__version__ = "0.1.0"
