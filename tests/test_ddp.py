import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from ssync_lib.checkpoint import load_checkpoint
from ssync_lib.config import get_config, project_root
from ssync_lib.data import build_dataset, synthetic
from ssync_lib.train import train

# What differs between 1 and 2 processes on purpose is switched off: the slot-slot contrast uses the
# other videos of the (per-process) batch as negatives, and the Gaussian slot init draws per-process noise.
SETTINGS = {"model.slot_init": "learned", "objective.w_slot_contrast": 0.0, "train.max_steps": 6,
            "train.log_every": 1, "train.deterministic": True}


def _rounding_noise(run, cfg) -> dict[str, torch.Tensor]:
    """Masks of the parameter elements whose gradient is zero up to rounding: the alpha logits' bias
    (shared by all slots under the softmax over slots) and attention key biases (shared by all keys
    under the softmax over keys). Adam divides a gradient by its own magnitude, so these elements move
    by rounding noise of size ~lr, which legitimately differs between 1 and 2 processes."""
    data = build_dataset(cfg, "train")
    video = torch.stack([data[i]["video"] for i in range(cfg.train.batch_size)])
    run.model.zero_grad()
    run.objective(run.model(video), 0).total.backward()
    grads = {k: p.grad.abs() for k, p in run.model.named_parameters() if p.grad is not None}
    return {k: (g > 0) & (g <= 1e-6 * g.max()) for k, g in grads.items()}  # exact zeros (dead ReLUs) stay in


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    data_root, run_root = tmp_path / "data", tmp_path / "runs"
    cfg = get_config("smoke", {**SETTINGS, "data.root": str(data_root), "train.run_root": str(run_root),
                               "train.name": "one", "train.batch_size": 4})
    synthetic.generate_from_config(cfg, workers=1, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = train(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)

    sets = [f"{k}={v}" for k, v in {**SETTINGS, "data.root": data_root, "train.run_root": run_root,
                                    "train.batch_size": 2}.items()]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "ssync_lib", "train", "--profile", "smoke", "--name", "two", "--no-progress",
                           "--set", *sets], cwd=project_root(), env=dict(os.environ, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    two = load_checkpoint(run_root / "two" / "last.pt")
    assert two["world_size"] == 2 and len(two["rng"]) == 2 and two["step"] == 6
    noise = _rounding_noise(one, cfg)
    assert 0 < sum(int(m.sum()) for m in noise.values()) < 1e-3 * sum(m.numel() for m in noise.values())
    for key, value in one.model.state_dict().items():
        keep = ~noise.get(key, torch.zeros_like(value, dtype=torch.bool))
        torch.testing.assert_close(two["model"][key][keep], value[keep], rtol=1e-4, atol=1e-6, msg=key)
    log_one, log_two = one.history, pd.read_csv(run_root / "two" / "log.csv")
    assert list(log_two["step"]) == list(log_one["step"]) == [1, 2, 3, 4, 5, 6]
    for column in ("loss", "recon", "grad_norm", "lr"):  # rank 0 logs the mean over both processes
        assert log_two[column].tolist() == pytest.approx(log_one[column].tolist(), rel=1e-5), column
    assert (run_root / "two" / "metrics.json").exists()
