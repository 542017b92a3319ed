"""The objective values each objective declares it reads (``objectives.OBJECTIVE_KEYS``, the ones resume, branch and
the sweep compare: ``checkpoint.config_changes``) against the values a run of it reads: a smoke run trained (every
schedule phase: max_steps 6, SSync on from step 2, dense alignment from step 2, the regulariser at step 0) and
evaluated mid-run and at the end by ``train()``, with an ``objective`` section that records every read. A value
read but not declared fails (resume would let it change although the run computes something else), and so does
a value declared but never read (resume would refuse a change that changes nothing)."""
import dataclasses
import sys
from typing import ClassVar

import pytest

from ssync_lib.config import ObjectiveConfig, get_config
from ssync_lib.data import synthetic
from ssync_lib.objectives import OBJECTIVE_KEYS, OBJECTIVES
from ssync_lib.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

FIELDS = {f.name for f in dataclasses.fields(ObjectiveConfig)}
# Reads that compute nothing: serialising (config.json, checkpoints, metrics.json: dataclasses.asdict) and
# validating (config_checks.validate checks every bound, whatever the objective)
NOT_COMPUTING = {"dataclasses", "ssync_lib.config_checks"}


class RecordingObjectiveConfig(ObjectiveConfig):
    """An ``ObjectiveConfig`` that records the names of the fields read, except by ``NOT_COMPUTING`` callers (its
    copies record too: ``train()`` deep-copies its config)."""
    reads: ClassVar[set[str]] = set()

    def __getattribute__(self, key):
        if key in FIELDS and sys._getframe(1).f_globals.get("__name__") not in NOT_COMPUTING:
            RecordingObjectiveConfig.reads.add(key)
        return super().__getattribute__(key)


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke-data")
    synthetic.generate_from_config(get_config("smoke", {"data.root": str(root)}), workers=1, progress=False)
    return root


def test_the_recorder_records_reads_and_leaves_serialising_out():
    cfg = RecordingObjectiveConfig(name="ssync")
    RecordingObjectiveConfig.reads.clear()
    assert dataclasses.asdict(cfg)["name"] == "ssync" and RecordingObjectiveConfig.reads == set()
    assert cfg.merge_iou == 0.7 and RecordingObjectiveConfig.reads == {"merge_iou"}


@pytest.mark.parametrize("name", OBJECTIVES)
def test_a_run_reads_exactly_the_objective_values_its_objective_declares(smoke_data, tmp_path, name):
    cfg = get_config("smoke", {"data.root": str(smoke_data), "train.run_root": str(tmp_path),
                               "objective.name": name, "train.eval_every": 3})
    cfg.objective = RecordingObjectiveConfig(**dataclasses.asdict(cfg.objective))
    RecordingObjectiveConfig.reads.clear()
    result = train(cfg, progress=False)
    assert result.metrics["num_videos"] == cfg.data.num_val and len(result.history) == 3  # trained and evaluated
    reads, declared = RecordingObjectiveConfig.reads, set(OBJECTIVE_KEYS[name])
    assert not reads - declared, f"{name} reads objective values it does not declare in OBJECTIVE_KEYS"
    assert not declared - reads, f"{name} declares objective values in OBJECTIVE_KEYS that no part of its run reads"
