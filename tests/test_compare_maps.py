"""scripts/compare_maps.py: two smoke runs drawn side by side on one validation clip; the rows it draws are each
run's own argmax maps (checked against run_on_clip), and a --run without NAME= is refused."""
import pytest
import torch

from ssync_lib.checkpoint import load_trained
from ssync_lib.config import get_config
from ssync_lib.data import build_dataset, synthetic
from ssync_lib.lab.notebook import run_on_clip
from ssync_lib.train import train
from tests.helpers import script_module


@pytest.fixture(scope="module")
def compare_maps():
    with script_module("compare_maps") as module:
        yield module


def test_two_runs_on_one_clip(compare_maps, tmp_path, monkeypatch, one_thread):
    runs = []
    for seed in (0, 1):
        cfg = get_config("smoke", {"data.root": str(tmp_path / "data"), "train.run_root": str(tmp_path / "runs"),
                                   "train.name": f"seed{seed}", "train.seed": seed, "train.max_steps": 2})
        if seed == 0:
            synthetic.generate_from_config(cfg, workers=1, progress=False)
        runs.append(train(cfg, progress=False).run_dir)
    drawn = {}

    def record(frames, rows, num_labels, **kwargs):
        drawn.update(rows=rows, num_labels=num_labels, title=kwargs.get("title"))
        return real(frames, rows, num_labels, **kwargs)

    real = compare_maps.plot_map_rows
    monkeypatch.setattr(compare_maps, "plot_map_rows", record)
    compare_maps.main(["--run", f"a={runs[0]}", "--run", f"b={runs[1]}", "--videos", "1", "--frames", "0,1,99",
                       "--out", str(tmp_path / "maps")])
    clip = build_dataset(get_config("smoke", {"data.root": str(tmp_path / "data")}), "val")[1]
    assert (tmp_path / "maps" / f"val_{clip['id']}.png").stat().st_size > 0
    assert list(drawn["rows"]) == ["ground truth", "a\ndecoder", "a\nattention", "b\ndecoder", "b\nattention"]
    assert torch.equal(torch.as_tensor(drawn["rows"]["ground truth"]), torch.as_tensor(clip["masks"]))
    trained = load_trained(runs[1], ["train.device=cpu"], objective=False)
    out = run_on_clip(trained.model, clip["video"])
    h, w = out.grid
    assert torch.equal(drawn["rows"]["b\ndecoder"], out.masks[0].argmax(1).reshape(-1, h, w))
    assert torch.equal(drawn["rows"]["b\nattention"], out.attn[0].argmax(1).reshape(-1, h, w))
    assert drawn["num_labels"] == trained.cfg.model.num_slots and "b: step 2" in drawn["title"]
    with pytest.raises(SystemExit):
        compare_maps.main(["--run", str(runs[0]), "--out", str(tmp_path / "maps")])
