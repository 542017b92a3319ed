import pytest

from ssync_lib.lab import bench, viz

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_metrics_cli(tmp_path, written):
    assert bench.main(["metrics", "--batch", "2", "--frames", "2", "--repeats", "1", "--out", str(tmp_path)]) == 0
    df = written(tmp_path, "metrics")
    assert len(df) == 7 and (df["time_ms"] > 0).all() and df["function"].is_unique
    assert (df[["batch", "frames", "size"]].iloc[0] == [2, 2, 128]).all()


def test_plots_return_figures_and_save_to_a_path(tmp_path):
    df = bench.run_metrics(batch=1, frames=1, size=32, repeats=1)
    fig = viz.plot_metrics(df, tmp_path / "m.png")
    assert fig.axes and (tmp_path / "m.png").read_bytes()[:8] == PNG_MAGIC
