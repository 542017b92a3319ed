"""Every RNG state of a process (torch, Python, NumPy, CUDA) as tensors and plain values, so that a checkpoint
holding them loads with ``weights_only=True``."""
from __future__ import annotations

import random
from typing import Any, Mapping

import numpy as np
import torch


def rng_state() -> dict:
    """Every RNG state of this process as tensors and plain values (weights_only-loadable)."""
    py_version, py_keys, py_gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python_version": py_version,
        "python_keys": torch.tensor(py_keys, dtype=torch.int64),  # 625 ints < 2**32
        "python_gauss": py_gauss,
        "numpy_keys": torch.from_numpy(np_keys.astype(np.int64)),  # 624 uint32
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate((state["python_version"], tuple(int(k) for k in state["python_keys"].tolist()),
                     state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())
