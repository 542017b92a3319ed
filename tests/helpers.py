"""Small assertions and fixtures' helpers the tests share."""
import math

import pytest


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
