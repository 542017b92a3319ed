"""scripts/level_probes.py: each probe changes what its docstring says, and one probe runs end to end at tiny
sizes (smoke profile, 2 steps) and writes its row with the level's parameters and the scores."""
import json
import math

import pandas as pd
import pytest

from ssync_lib.data import scenes
from tests.helpers import script_module


@pytest.fixture(scope="module")
def probes():
    with script_module("level_probes") as module:
        yield module


def test_each_probe_changes_one_property_of_synth_tex(probes):
    tex, easy = scenes.LEVELS["synth-tex"], scenes.LEVELS["synth-easy"]
    flat, _ = probes.PROBES["tex-flat"]
    assert (flat.shading, flat.pattern, flat.noise) == (0.0, 0.0, 0.0)
    assert (flat.num_objects, flat.radius) == (tex.num_objects, tex.radius)
    big, _ = probes.PROBES["tex-big"]
    assert big.radius == easy.radius and (big.shading, big.pattern, big.noise) == (tex.shading, tex.pattern, tex.noise)
    assert probes.PROBES["tex-flat-9slots"][1] == {"model.num_slots": 9}
    assert probes.PROBES["synth-tex-mild"][0] == scenes.LEVELS["synth-tex-mild"]


def test_a_probe_runs_end_to_end(probes, tmp_path, monkeypatch):
    monkeypatch.setattr(scenes, "LEVELS", dict(scenes.LEVELS))  # the probe's level is registered on a copy
    table = probes.main(["tex-flat", "--profile", "smoke", "--steps", "2", "--val-videos", "2",
                         "--out", str(tmp_path)])
    row = pd.read_csv(tmp_path / "probes.csv").iloc[0]
    assert row["probe"] == "tex-flat" and row["shading"] == 0.0 and len(table) == 1
    assert all(-1 <= row[k] <= 1 and math.isfinite(row[k]) for k in probes.SCORES)
    meta = json.loads((tmp_path / "data" / "tex-flat" / "meta.json").read_text())
    assert meta["level"] == "probe-tex-flat" and meta["level_params"]["num_objects"] == [3, 8]
    with pytest.raises(SystemExit):
        probes.main(["no-such-probe", "--out", str(tmp_path)])
