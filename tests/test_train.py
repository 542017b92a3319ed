import json
import math

import pandas as pd
import pytest
import torch

import ssync_lib.train as train_module
from ssync_lib.checkpoint import CheckpointMismatchError, ConfigChangeError, load_checkpoint
from ssync_lib.config import apply_overrides, get_config
from ssync_lib.data import synthetic
from ssync_lib.optim import WarmupExpDecay
from ssync_lib.run_log import read_metrics
from ssync_lib.train import NonFiniteLossError, _check_finite, train
from tests.helpers import exactly, poison_objective


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke profile on freshly generated smoke data, runs under a temporary folder, one thread
    (2 threads on a shared 2-core machine spin-wait; results are checked bit for bit)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = get_config("smoke", {"data.root": str(tmp_path_factory.mktemp("smoke-data")),
                               "train.run_root": str(tmp_path_factory.mktemp("runs"))})
    synthetic.generate_from_config(cfg, workers=1, progress=False)
    yield cfg
    torch.set_num_threads(threads)


def _cfg(smoke, **overrides):
    return apply_overrides(get_config("smoke", {"data.root": smoke.data.root, "train.run_root": smoke.train.run_root}),
                           overrides)


@pytest.fixture(scope="module")
def base_run(smoke):
    """One smoke run (baseline objective) shared by the tests below."""
    return train(_cfg(smoke, **{"train.name": "base", "train.keep_every": 3}), progress=False)


def test_non_finite_values_name_the_step_and_the_term(tmp_path):
    _check_finite({"loss": 1.0, "recon": 1.0, "grad_norm": 2.0}, 5, (None, None))
    with pytest.raises(NonFiniteLossError, match=r"step 7: loss term 'ssync_dec' is nan.*last.pt \(step 6\)"):
        _check_finite({"loss": math.nan, "recon": 1.0, "ssync_dec": math.nan, "grad_norm": math.nan}, 7,
                      (tmp_path / "last.pt", 6))
    with pytest.raises(NonFiniteLossError, match="step 2: the gradient norm is inf.*no checkpoint"):
        _check_finite({"loss": 1.0, "recon": 1.0, "grad_norm": math.inf}, 2, (None, None))


# ----------------------------------------------------------------------------- the loop on the smoke profile

def test_smoke_run_writes_logs_config_checkpoints_and_metrics(base_run, smoke):
    run = base_run.run_dir
    assert sorted(p.name for p in run.iterdir() if p.name != "tb") == [
        "config.json", "eval.csv", "last.pt", "log.csv", "metrics.json", "step-0000003.pt", "step-0000006.pt"]
    assert json.loads((run / "config.json").read_text())["train"]["name"] == "base"
    hist = base_run.history
    assert list(hist["step"]) == [2, 4, 6] and list(hist["epoch"]) == [0, 0, 0]  # log_every=2, 12 batches/epoch
    assert {"loss", "recon", "slot_contrast", "lr", "grad_norm", "sec_per_step"} <= set(hist.columns)
    assert hist[["recon", "slot_contrast"]].sum(axis=1).tolist() == pytest.approx(hist["loss"].tolist(), rel=1e-6)
    # the lr of each logged row is the one used for that row's last update (step - 1), §1.8 (test_optim.py)
    assert hist["lr"].tolist() == pytest.approx([1e-3 * WarmupExpDecay(2, 6)(s - 1) for s in hist["step"]])
    on_disk = pd.read_csv(run / "log.csv")
    assert on_disk["loss"].tolist() == hist["loss"].tolist()
    ckpt = load_checkpoint(run / "last.pt")
    assert (ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]) == (6, 0, 6)
    assert load_checkpoint(run / "step-0000003.pt")["step"] == 3
    record = read_metrics(run / "metrics.json")
    assert record["step"] == 6 and record["metrics"] == exactly(base_run.metrics) and "commit" in record
    assert record["config"]["model"]["num_slots"] == smoke.model.num_slots
    assert base_run.metrics["decoder/video/fg_ari_valid"] + base_run.metrics["decoder/video/fg_ari_skipped"] == 8


def test_fresh_start_refuses_an_existing_run_and_auto_resume_reuses_it(base_run, smoke):
    with pytest.raises(FileExistsError, match="base.*already holds a checkpoint"):
        train(_cfg(smoke, **{"train.name": "base"}), progress=False)
    again = train(_cfg(smoke, **{"train.name": "base", "train.keep_every": 3}), resume="auto", progress=False)
    assert again.metrics == base_run.metrics  # finished run: nothing to train, same evaluation
    assert again.history["loss"].tolist() == base_run.history["loss"].tolist()
    with pytest.raises(FileNotFoundError, match="cannot resume.*nothing-here"):
        train(_cfg(smoke, **{"train.name": "nothing-here"}), resume=True, progress=False)


def test_branching_from_a_checkpoint_continues_the_run_exactly(base_run, smoke):
    """init_from (full) takes model, Adam state, step and RNG: with the same objective the branch ends
    bit-identical to the base run; under another objective its terms appear from that step on."""
    same = train(_cfg(smoke, **{"train.name": "branch-same"}), init_from=base_run.run_dir / "step-0000003.pt",
                 progress=False)
    assert list(same.history["step"]) == [4, 6]
    for key, value in base_run.model.state_dict().items():
        assert torch.equal(same.model.state_dict()[key], value), key
    assert same.metrics == base_run.metrics
    ssync = train(_cfg(smoke, **{"train.name": "branch-ssync", "objective.name": "ssync"}),
                  init_from=base_run.run_dir / "step-0000003.pt", progress=False)
    assert {"ssync_dec", "ssync_enc"} <= set(ssync.history.columns) and list(ssync.history["step"]) == [4, 6]
    assert json.loads((ssync.run_dir / "config.json").read_text())["train"]["init_from"].endswith("step-0000003.pt")
    weights_only = train(_cfg(smoke, **{"train.name": "branch-model", "train.init_mode": "model"}),
                         init_from=base_run.run_dir / "last.pt", progress=False)
    assert list(weights_only.history["step"]) == [2, 4, 6]


def test_incompatible_checkpoint_names_the_keys(base_run, smoke):
    with pytest.raises(ConfigChangeError, match=r"(?s)cannot resume.*model\.slot_dim: 16 -> 24.*--allow-config-change"):
        train(_cfg(smoke, **{"train.name": "base", "model.slot_dim": 24}), resume=True, progress=False)
    with pytest.warns(UserWarning, match="slot_dim"), \
            pytest.raises(CheckpointMismatchError, match=r"(?s)slot_attention.*model\.slot_dim: 16 -> 24"):
        train(_cfg(smoke, **{"train.name": "base", "model.slot_dim": 24}), resume=True, progress=False,
              allow_config_change=True)  # allowed, but the parameter shapes cannot load


def test_resume_and_branch_compare_the_config_field_by_field(base_run, smoke):
    """Changes that alter results are refused before anything is written (tests/test_bad_input.py checks the
    files); the free ones (paths, logging, cadence, device, objective values the run's objective does not read)
    pass; a branch may change the objective."""
    with pytest.raises(ConfigChangeError, match=r"(?s)objective\.name.*train\.lr: 0\.001 -> 0\.002"):
        train(_cfg(smoke, **{"train.name": "base", "train.lr": 2e-3, "objective.name": "ssync"}), resume=True,
              progress=False)
    with pytest.raises(ConfigChangeError, match=r"(?s)cannot branch from.*model\.num_slots: 4 -> 5"):
        train(_cfg(smoke, **{"train.name": "branch-slots", "model.num_slots": 5}),
              init_from=base_run.run_dir / "step-0000003.pt", progress=False)
    assert not (base_run.run_dir.parent / "branch-slots").exists()
    # of the objective, only the values the baseline reads are compared (objectives.OBJECTIVE_KEYS)
    with pytest.raises(ConfigChangeError, match=r"(?s)cannot resume.*:\n  objective\.w_slot_contrast: 0\.5 -> 0\.25\n"
                                                r"nothing was written"):
        train(_cfg(smoke, **{"train.name": "base", "objective.w_slot_contrast": 0.25,
                             "objective.ssync_warmup_frac": 0.625}), resume=True, progress=False)
    free = train(_cfg(smoke, **{"train.name": "base", "train.log_every": 3, "train.eval_every": 5,
                                "data.num_workers": 0, "train.device": "cpu", "objective.ssync_warmup_frac": 0.625,
                                "objective.w_ssync_enc": 0.0, "objective.dense_topk": 3}), resume=True, progress=False)
    assert free.metrics == exactly(base_run.metrics)


def test_missing_data_names_path_and_profile_before_building_the_model(smoke, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "create_model", lambda *a, **k: pytest.fail("model built before the check"))
    cfg = _cfg(smoke, **{"data.root": str(tmp_path / "no-such-data")})
    with pytest.raises(FileNotFoundError, match=r"(?s)no-such-data.*profile 'smoke'.*make_synthetic.py --profile smoke"):
        train(cfg, progress=False)


def test_nan_loss_stops_with_step_and_term_and_keeps_the_last_checkpoint(smoke, monkeypatch):
    poison_objective(monkeypatch, "slot_contrast", at_step=4)
    cfg = _cfg(smoke, **{"train.name": "nan"})
    with pytest.raises(NonFiniteLossError, match=r"step 4: loss term 'slot_contrast' is nan.*last.pt \(step 3\)"):
        train(cfg, progress=False)
    assert load_checkpoint(smoke.train.run_root + "/nan/last.pt")["step"] == 3
