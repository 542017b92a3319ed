"""get_trained: reuse a finished run, else a shipped checkpoint, else train; notebook configs and metrics."""
import json
import math
import shutil

import pytest
import torch

import ssync_lib.lab.run_cache as run_cache
from ssync_lib.data import synthetic
from ssync_lib.lab.run_cache import get_trained, notebook_config, write_notebook_metrics


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Smoke data generated under a temporary folder; one thread (tiny models, shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data = tmp_path_factory.mktemp("smoke-data")
    synthetic.generate_from_config(notebook_config("smoke", data_root=str(data)), workers=1, progress=False)
    yield {"data": str(data), "runs": str(tmp_path_factory.mktemp("runs"))}
    torch.set_num_threads(threads)


def _cfg(folders, run_root=None, **overrides):
    return notebook_config("smoke", data_root=folders["data"], run_root=run_root or folders["runs"], **overrides)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def trained(folders):
    return get_trained(_cfg(folders), progress=False, verbose=False)


def test_notebook_config_maps_parameters_and_names_other_step_counts():
    cfg = notebook_config("smoke", objective="ssync", seed=3, num_slots=7, device="cpu", run_root="/tmp/r")
    assert (cfg.objective.name, cfg.train.seed, cfg.model.num_slots, cfg.train.device) == ("ssync", 3, 7, "cpu")
    assert cfg.run_name == "smoke-ssync-s7-seed3"
    assert notebook_config("smoke", steps=50).run_name == "smoke-baseline-s4-seed0-50steps"
    assert notebook_config("smoke", steps=6).run_name == "smoke-baseline-s4-seed0"  # the profile's own count
    assert notebook_config("smoke", num_slots=7, **{"model.num_slots": 5}).model.num_slots == 5  # overrides last


def test_trains_then_reuses_the_finished_run(folders, trained, capsys):
    assert (trained.run_dir / "last.pt").is_file() and not trained.model.training
    assert len(trained.history) > 0 and math.isfinite(trained.metrics["decoder/video/fg_ari"])
    again = get_trained(_cfg(folders), progress=False)
    assert "reusing the finished run smoke-baseline-s4-seed0" in capsys.readouterr().out
    assert _same_weights(again.model, trained.model)
    assert again.history.equals(trained.history.astype(again.history.dtypes.to_dict()))
    assert again.metrics["decoder/video/fg_ari"] == trained.metrics["decoder/video/fg_ari"]


def test_a_run_of_other_settings_is_never_silently_reused(folders, trained):
    other = _cfg(folders, **{"model.slot_dim": 8, "train.name": trained.run_dir.name})
    with pytest.raises(FileExistsError, match=r"model.slot_dim: 16 -> 8.*retrain=True"):
        get_trained(other, progress=False, verbose=False)


def test_keys_missing_from_an_older_checkpoint_count_as_defaults():
    cfg = notebook_config("smoke")
    saved = cfg.to_dict()
    del saved["model"]["chunk_frames"], saved["model"]["slot_init"]
    assert run_cache.reuse_differences(saved, cfg) == ["model.slot_init: 'learned' -> 'gaussian'"]


def test_train_missing_false_returns_none(folders, capsys):
    assert get_trained(_cfg(folders, num_slots=3), train_missing=False) is None
    assert "not training it" in capsys.readouterr().out


def test_shipped_checkpoint_is_loaded_with_its_log(folders, trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_cache, "project_root", lambda: tmp_path)
    shipped = tmp_path / "checkpoints" / "smoke"
    shipped.mkdir(parents=True)
    shutil.copy(trained.run_dir / "last.pt", shipped / "smoke-baseline-s4-seed0.pt")
    shutil.copy(trained.run_dir / "log.csv", shipped / "smoke-baseline-s4-seed0.log.csv")
    empty_runs = str(tmp_path / "runs")
    result = get_trained(_cfg(folders, run_root=empty_runs), progress=False)
    assert "loading the shipped checkpoint checkpoints/smoke/smoke-baseline-s4-seed0.pt" in capsys.readouterr().out
    assert _same_weights(result.model, trained.model) and len(result.history) == len(trained.history)
    assert result.metrics == {}  # no metrics.json shipped beside it
    # A shipped checkpoint of other settings is ignored with a note (here: nothing is trained instead).
    other = _cfg(folders, run_root=empty_runs, **{"train.lr": 0.5, "train.name": "smoke-baseline-s4-seed0"})
    assert get_trained(other, train_missing=False) is None
    assert "train.lr: 0.001 -> 0.5" in capsys.readouterr().out


def test_retrain_replaces_the_run(folders, tmp_path, capsys):
    cfg = _cfg(folders, run_root=str(tmp_path), **{"train.max_steps": 2, "train.name": "short"})
    first = get_trained(cfg, progress=False)
    (first.run_dir / "marker").write_text("old run")
    get_trained(cfg, retrain=True, progress=False)
    assert "retrain=True: removing the previous run short" in capsys.readouterr().out
    assert not (first.run_dir / "marker").exists() and (first.run_dir / "last.pt").is_file()


def test_write_notebook_metrics(folders, tmp_path):
    cfg = _cfg(folders, run_root=str(tmp_path))
    path = write_notebook_metrics("02", cfg, {"decoder/fg_ari": 0.5, "count": 3})
    assert path == tmp_path / "notebooks_metrics" / "02_smoke.json"
    assert json.loads(path.read_text()) == {"count": 3.0, "decoder/fg_ari": 0.5}
    with pytest.raises(ValueError, match="notebook 02.*'bad': nan"):
        write_notebook_metrics("02", cfg, {"bad": float("nan")})
