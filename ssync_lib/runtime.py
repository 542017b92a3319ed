"""Where and how a run executes: the device, the torchrun process group, the seeds, the commit.

    device = resolve_device("auto")          # cuda:<LOCAL_RANK> when available, else cpu
    info = init_distributed(device)          # DistInfo(rank, world_size, ...); one process: no group
    seed_everything(0)                       # torch, numpy and random
    commit_hash()                            # "<sha>" or "<sha>-dirty", None outside git
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import random
import signal
import subprocess
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ssync_lib.config import project_root
from ssync_lib.errors import ConfigError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` = CUDA (``cuda:<local_rank>``) when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device='{name}' but CUDA is not available", fix="--set train.device=cpu (or auto)")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name != "cpu":
        raise ConfigError(f"train.device='{name}': expected auto, cpu, cuda or cuda:<index>",
                          fix="--set train.device=cpu (or auto, cuda, cuda:<index>)")
    return torch.device("cpu")


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created_group: bool = False  # this call initialised the process group (and destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): the signal this process gets when its parent dies


def exit_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``), so
    that a torchrun worker does not live on, waiting for its peers, when torchrun itself is killed (SIGKILL cannot
    be forwarded). A parent already gone (re-parented to init) ends this process at once. Returns False where the
    call is not available (not Linux), True otherwise."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent or parent == 1:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)
    return True


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group (gloo on CPU, nccl on CUDA); one process = no group. A worker ends when
    torchrun does (``exit_with_parent``)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    exit_with_parent()
    info = DistInfo(rank=int(os.environ["RANK"]), world_size=world_size,
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        info.created_group = True
    return info


@contextlib.contextmanager
def run_process(device: torch.device, deterministic: bool = False):
    """The process a training run executes in: its CUDA device selected, the torchrun group joined
    (``init_distributed``; yields its ``DistInfo``), deterministic algorithms on when asked; all undone on exit."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    info = init_distributed(device)
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    try:
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        yield info
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
        if info.created_group:
            dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def commit_hash() -> str | None:
    """The project's git commit (with ``-dirty`` when the tree has changes), None outside git."""
    try:
        root = project_root()
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
