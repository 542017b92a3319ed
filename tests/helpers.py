"""Small assertions and fixtures' helpers the tests share."""
import contextlib
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ssync_lib.config import project_root


def exactly(metrics):
    """Compare a flat metrics dict for exact equality, NaN equal to NaN (an empty set of patches or clips gives a
    NaN mean, and NaN != NaN would fail an otherwise identical result)."""
    return pytest.approx(metrics, rel=0, abs=0, nan_ok=True)


def poison_objective(monkeypatch, term: str = "slot_contrast", at_step: int = 0) -> None:
    """Make loss term ``term`` NaN at step ``at_step`` in every objective ``ssync_lib.train`` builds."""
    import ssync_lib.train as train_module

    real = train_module.build_objective

    def poisoned(*args, **kwargs):
        objective = real(*args, **kwargs)
        forward = objective.forward

        def forward_with_nan(out, step):
            loss = forward(out, step)
            if step == at_step:
                loss.terms[term] = loss.terms[term] * math.nan
                loss.total = sum(loss.terms.values())
            return loss

        objective.forward = forward_with_nan
        return objective

    monkeypatch.setattr(train_module, "build_objective", poisoned)


def hold_lock(run: Path, command: str = "holder-cmd --name four") -> subprocess.Popen:
    """A process holding ``run``'s lock (as a training in it would; ``command`` is what its lock file says), started
    and holding when this returns. The caller kills it."""
    code = ("import sys, time; from ssync_lib.run_lock import RunLock; RunLock(sys.argv[1], command=sys.argv[2])"
            ".acquire(); print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run), command], stdout=subprocess.PIPE, text=True,
                            cwd=project_root())
    assert proc.stdout.readline().strip() == "held"
    return proc


@contextlib.contextmanager
def script_module(name: str):
    """``scripts/<name>.py`` imported as a module (scripts are not a package), removed again afterwards."""
    spec = importlib.util.spec_from_file_location(name, project_root() / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]
