"""Small assertions the tests share."""
import pytest


def exactly(metrics):
    """Compare a flat metrics dict for exact equality, NaN equal to NaN (an empty set of patches or clips gives a
    NaN mean, and NaN != NaN would fail an otherwise identical result)."""
    return pytest.approx(metrics, rel=0, abs=0, nan_ok=True)
