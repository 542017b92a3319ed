"""runtime.py: the device, the process group's helpers, seeding, the commit."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ssync_lib.runtime import resolve_device, seed_everything

# A parent that starts a child which asks to die with it (exit_with_parent), prints the child's pid, then waits.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "from ssync_lib.runtime import exit_with_parent; import time; ok = exit_with_parent(); print(ok, flush=True); "
    "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (dead, not yet reaped by init) counts as gone
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_worker_ends_when_its_launcher_is_killed():
    """The torchrun case: the launcher gets SIGKILL (nothing can be forwarded); the worker must not live on."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child_pid, requested = parent.stdout.readline().split()
        child_pid = int(child_pid)
        assert requested == "True" and _alive(child_pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while _alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child_pid), "the child outlived its killed parent"
    finally:
        parent.kill()


def test_resolve_device_names_the_bad_value():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="train.device='tpu'"):
        resolve_device("tpu")


def test_seed_everything_repeats_torch_numpy_and_random():
    import random

    import numpy as np

    draws = []
    for _ in range(2):
        seed_everything(3)
        draws.append((torch.rand(2).tolist(), np.random.rand(), random.random()))
    assert draws[0] == draws[1]
