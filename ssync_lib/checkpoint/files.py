"""Checkpoint files: atomic writes (a temporary file in the same folder, flushed, fsync'ed, renamed with
``os.replace``, the folder fsync'ed), safe loads (``torch.load(weights_only=True)``, errors that name the file),
the refusal of weights that hold NaN or infinities, and kept copies (``step-<N>.pt``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ssync_lib.errors import CheckpointError, MissingInputError, short_reason

FORMAT = 1
LAST = "last.pt"  # a run folder's latest checkpoint
SHIPPED_DIR = "checkpoints"  # the shipped models and their metrics, below the project root: never written over
TMP_PREFIX = ".tmp-"


class NonFiniteWeightsError(CheckpointError):
    """A checkpoint whose model weights hold NaN or infinities."""


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Atomically write ``state`` to ``path``; on any failure the old file is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_tmp(folder: str | Path) -> list[Path]:
    """Delete temporary files left by a save that was killed (SIGKILL cannot run cleanup)."""
    stale = sorted(Path(folder).glob(f"{TMP_PREFIX}*"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", check_finite: bool = True) -> dict:
    """Load a checkpoint with ``weights_only=True``; errors name the file. ``check_finite``: refuse model weights
    that hold NaN or infinities (``NonFiniteWeightsError`` naming the last checkpoint beside it whose weights
    are finite)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"checkpoint {path} does not exist",
                                fix="check the path; a run folder's checkpoint is <run>/last.pt")
    size = path.stat().st_size
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        if size == 0 or "central directory" in str(err) or isinstance(err, EOFError):
            reason = "an empty file" if size == 0 else f"{size} bytes; {short_reason(err)}"
            raise CheckpointError(f"checkpoint {path} is truncated ({reason}): the file "
                                  f"was cut short (a copy or download that did not finish, a full disk)",
                                  fix="copy or download it again; a run's own saves are atomic, so its "
                                      "step-<N>.pt files beside it are whole") from err
        raise CheckpointError(f"cannot load checkpoint {path} safely (weights_only=True): {short_reason(err)}",
                              fix=NOT_OURS_FIX) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ssync_lib checkpoint of format {FORMAT}", fix=NOT_OURS_FIX)
    if check_finite:
        check_finite_weights(state, path)
    return state


def nonfinite_weights(state: Mapping[str, Any]) -> list[str]:
    """The names of the model's floating-point tensors that hold NaN or infinities."""
    return [k for k, v in state.get("model", {}).items()
            if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def last_finite_checkpoint(path: Path) -> tuple[Path, int] | None:
    """The latest other checkpoint in ``path``'s folder (``last.pt``, ``step-<N>.pt``) whose weights are all
    finite, with its step; None if there is none."""
    candidates = []
    for other in path.parent.glob("*.pt"):
        if other.resolve() == path.resolve() or other.name.startswith(TMP_PREFIX):
            continue
        try:
            state = load_checkpoint(other, check_finite=False)
        except CheckpointError:
            continue
        if not nonfinite_weights(state):
            candidates.append((int(state.get("step", -1)), other))
    if not candidates:
        return None
    step, other = max(candidates, key=lambda c: (c[0], c[1].name == "last.pt"))
    return other, step


def check_finite_weights(state: Mapping[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose model weights hold NaN or infinities, naming the tensors and the last
    checkpoint beside it with finite weights."""
    bad = nonfinite_weights(state)
    if not bad:
        return
    good = last_finite_checkpoint(path)
    named = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    if good:
        fix = (f"use the last checkpoint with finite weights, {good[0]} (step {good[1]}): evaluate it (--checkpoint "
               f"{good[0]}) or train on from it (--init-from {good[0]} --name NEW), with a lower train.lr or "
               f"train.grad_clip")
    else:
        fix = (f"no checkpoint in {path.parent} has finite weights: train again with a lower train.lr or "
               f"train.grad_clip")
    raise NonFiniteWeightsError(f"checkpoint {path} (step {state.get('step')}) holds NaN or infinite weights in "
                                f"{len(bad)} of {len(state['model'])} tensors ({named}): the model diverged before "
                                f"this save", fix=fix)


NOT_OURS_FIX = ("give a last.pt or step-<N>.pt written by `python -m ssync_lib train` (this project never unpickles "
                "code); a public SSync / SlotContrast checkpoint goes to `evaluate --official PATH --profile P`")


def keep_copy(src: Path, dst: Path) -> None:
    """Atomically give ``dst`` the content of ``src`` (a hard link where possible)."""
    tmp = dst.with_name(f"{TMP_PREFIX}{dst.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        save_checkpoint(dst, torch.load(src, map_location="cpu", weights_only=True))
        return
    os.replace(tmp, dst)
