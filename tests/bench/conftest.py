"""The benchmarks at tiny sizes: every subcommand writes its CSV and PNG, and the tables hold sane values (no
assertion on time: speed targets live in the benchmark output, not in tests)."""
import pandas as pd
import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def written():
    """written(folder, name) -> the CSV as a DataFrame, after checking that the PNG beside it is one."""
    def read(folder, name):
        assert (folder / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
        return pd.read_csv(folder / f"{name}.csv")
    return read
