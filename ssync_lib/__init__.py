"""ssync_lib: the SSync companion.

The core, in the order a clip goes through it (README's "Where things are" has a line per module):
    config.py        settings and profiles            runtime.py   device, processes, seeds, commit
    data/            synthetic benchmark and readers (MOVi, YouTube-VIS, DAVIS) -> video clips; data order
    models/          frozen timm ViT encoder -> slot attention + predictor -> MLP broadcast decoder
    objectives/      reconstruction, slot-slot contrast, dense alignment (SRL), SSync (+ its loop reference)
    metrics.py       FG-ARI, mBO, mIoU                diagnostics.py  SSync's premises against ground truth
    optim.py, run_log.py, checkpoint/  ->  train.py (the one loop)  ->  evaluate.py
    official.py      the public checkpoints
The lab around it (lab/: the run cache, notebook helpers, widgets, the sweep, claims, gradients, plots,
benchmarks) builds on the core; the core never imports the lab. Imports go one way, down this list
(tests/test_layering.py; docs/architecture.md).
"""
from ssync_lib.config import Config, get_config

__all__ = ["Config", "get_config"]
__version__ = "0.1.0"
