import pytest

from ssync_lib.config import get_config
from ssync_lib.data import synthetic
from ssync_lib.lab import bench
from ssync_lib.lab.gradients import TERMS
from ssync_lib.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_gradients_cli_reports_every_term_on_both_sides(tmp_path, written):
    cfg = get_config("smoke", {"data.root": str(tmp_path / "data"), "train.run_root": str(tmp_path / "runs"),
                               "train.max_steps": 2, "train.name": "tiny"})
    synthetic.generate_from_config(cfg, workers=1, progress=False)
    run = train(cfg, progress=False)
    assert bench.main(["gradients", "--checkpoint", str(run.run_dir / "last.pt"), "--clips", "2",
                       "--out", str(tmp_path / "out")]) == 0
    df = written(tmp_path / "out", "gradients_tiny")
    assert sorted(zip(df["group"], df["term"])) == sorted((g, t) for g in ("decoder", "encoder") for t in TERMS)
    assert (df["step"] == 2).all() and (df["clips"] == 2).all()
    own = df.set_index(["group", "term"])
    for term in TERMS:  # a term's gradient has cosine 1 with itself wherever it is not zero
        norm, cos = own.loc[("encoder", term), "norm"], own.loc[("encoder", term), f"cos_{term}"]
        assert norm == 0 or cos == pytest.approx(1.0)
    assert own.loc[("encoder", "recon"), "norm"] > 0 and own.loc[("decoder", "recon"), "norm"] > 0
