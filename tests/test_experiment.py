import json

import pandas as pd
import pytest

from ssync_lib.config import get_config
from ssync_lib.errors import MissingInputError
from ssync_lib.checkpoint import ConfigChangeError
from ssync_lib.lab.experiment import (COLUMN_SETS, LABEL_KEYS, SHARING_KEYS, Sweep, branch_step, changed_runs,
                                      check_changes, markdown_table, premise_rows, publish, run_configs, run_sweep,
                                      variant_rows)
from ssync_lib.run_log import read_metrics
from ssync_lib.train import train
from tests.helpers import exactly


pytestmark = pytest.mark.usefixtures("one_thread")


def smoke_sweep(tmp_path, **kw):
    args = dict(profile="smoke", objectives=["baseline", "ssync"], seeds=[0], slots=[3, 4], name="t",
                overrides=[f"train.run_root={tmp_path}", "train.deterministic=true"], branch=["ssync"])
    args.update(kw)
    return Sweep(**args)


def test_sweep_trains_every_combination_and_summarises(tmp_path):
    sweep = smoke_sweep(tmp_path)
    summary = run_sweep(sweep, progress=False)
    assert sorted(zip(summary.objective, summary.slots)) == [("baseline", 3), ("baseline", 4), ("ssync", 3), ("ssync", 4)]
    assert summary[[c for c in summary.columns if "/video/" in c]].notna().all().all()
    assert summary[SHARING_KEYS].notna().all().all() and summary[LABEL_KEYS].notna().all().all() and (summary["pseudo_labels/merged_slots"] <= summary.slots).all()
    folder = sweep.folder()
    assert (folder / "slot_robustness.png").stat().st_size > 0 and (folder / "curves.png").stat().st_size > 0
    table = (folder / "table.md").read_text()
    assert "| ssync | 4 | 1 |" in table and "| baseline | 3 | 1 |" in table
    assert "±" not in table  # one seed: no spread to show
    header, _, *rows = table.splitlines()
    assert "decoder objects_lost" in header and all(row.count("|") == header.count("|") for row in rows)
    branched = summary.set_index("run").loc["ssync-s3-seed0", "branched_from"]
    assert branched.endswith(f"step-{branch_step(sweep.config('ssync', 0, 3)):07d}.pt")

    # a second call redoes nothing
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*/metrics.json")}
    again = run_sweep(sweep, progress=False)
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*/metrics.json")} == stamps
    pd.testing.assert_frame_equal(again, summary)

    # publishing twice (e.g. a sweep run in parts) keeps every command and copies each run's small files
    results = tmp_path / "results"
    results.mkdir()
    (results / "provenance.json").write_text(json.dumps({"data": "made by hand", "commands": []}))
    publish(folder, results, "python -m ssync_lib experiment --objectives baseline")
    publish(folder, results, "python -m ssync_lib experiment --objectives ssync")
    provenance = json.loads((results / "provenance.json").read_text())
    assert provenance["data"] == "made by hand"  # what the folder's provenance said before is kept
    assert provenance["commands"] == ["python -m ssync_lib experiment --objectives baseline",
                                      "python -m ssync_lib experiment --objectives ssync"]
    assert sorted(p.parent.name for p in results.glob("runs/*/metrics.json")) == sorted(summary.run)
    assert (results / "summary.csv").read_text() == (folder / "summary.csv").read_text()


def test_branched_ssync_equals_ssync_trained_from_scratch(tmp_path):
    sweep = smoke_sweep(tmp_path, slots=[3])
    run_sweep(sweep, progress=False)
    branched = read_metrics(sweep.folder() / "ssync-s3-seed0" / "metrics.json")["metrics"]
    cfg = sweep.config("ssync", 0, 3)
    cfg.train.name = "from-scratch"
    scratch = train(cfg, progress=False).metrics
    assert branched == exactly(scratch)


def test_copied_baselines_fit_a_sweep_that_changes_ssync_values_only(tmp_path):
    """The recorded way to branch an ablation from a sweep's baselines (results/synth-easy-boundary-only/
    provenance.json): the baseline runs copied into a new sweep that changes SSync's values only. A baseline reads
    none of them (objectives.OBJECTIVE_KEYS): nothing is refused. An SSync run made with the old values is, and so
    is a baseline whose own values changed."""
    easy = smoke_sweep(tmp_path, slots=[4])
    for cfg in run_configs(easy):  # the config.json every run of `easy` writes, copied into the sweep `late`
        run = tmp_path / "experiments" / "late" / cfg.run_name
        run.mkdir(parents=True)
        (run / "config.json").write_text(cfg.to_json())

    def late(*sets, objectives=("baseline", "ssync")):
        return smoke_sweep(tmp_path, slots=[4], name="late", objectives=list(objectives),
                           overrides=[*easy.overrides, "objective.ssync_warmup_frac=0.625", *sets])
    assert branch_step(late().config("baseline", 0, 4)) != branch_step(easy.config("baseline", 0, 4))
    changed = {run.name: diffs for run, diffs in changed_runs(late()).items()}
    assert changed == {"ssync-s4-seed0": ["objective.ssync_warmup_frac: 0.3 -> 0.625"]}
    for sets in [(), ("objective.w_ssync_enc=0",), ("objective.w_ssync_dec=0", "objective.dense_topk=3")]:
        assert changed_runs(late(*sets, objectives=["baseline"])) == {}
        check_changes(late(*sets, objectives=["baseline"]))  # nothing refused, nothing moved
    assert (tmp_path / "experiments" / "late" / "baseline-s4-seed0" / "config.json").exists()
    with pytest.raises(ConfigChangeError, match=r"baseline-s4-seed0: objective\.w_recon: 1\.0 -> 2\.0\n"):
        check_changes(late("objective.w_recon=2", objectives=["baseline"]))


def test_unknown_branch_objective_is_refused(tmp_path):
    with pytest.raises(ValueError, match="baseline"):
        run_sweep(smoke_sweep(tmp_path, branch=["baseline"]), progress=False)


def test_published_profile_sweep_configs_keep_their_table_values():
    sweep = Sweep("movi_c", ["ssync"], [1], [7], "x", [], ["ssync"])
    cfg = sweep.config("ssync", 1, 7)
    assert (cfg.model.num_slots, cfg.train.seed, cfg.objective.merge_iou) == (7, 1, get_config("movi_c").objective.merge_iou)


def test_markdown_table_picks_columns_and_gives_mean_and_population_std():
    summary = pd.DataFrame({"objective": ["ssync", "ssync", "baseline"], "slots": [5, 5, 5],
                            "decoder/video/fg_ari": [0.40, 0.50, 0.625], "pseudo_labels/merged_slots": [1.0, 2.0, 0.5],
                            "sec_per_step": [0.2, 0.3, 0.1]})
    table = markdown_table(summary, ["pseudo_labels/merged_slots", "decoder/video/fg_ari", "sec_per_step"])
    assert table.splitlines() == ["| objective | slots | seeds | merged_slots | decoder fg_ari | sec_per_step |",
                                  "|---|---|---|---|---|---|",
                                  "| baseline | 5 | 1 | 0.5 | 62.5 | 0.100 |",
                                  "| ssync | 5 | 2 | 1.5 ± 0.5 | 45.0 ± 5.0 | 0.250 |"]
    with pytest.raises(KeyError, match="decoder/video/miou"):
        markdown_table(summary, ["decoder/video/miou"])


def test_markdown_table_averages_the_runs_that_have_a_value():
    summary = pd.DataFrame({"objective": ["baseline"] * 3, "slots": [5] * 3,
                            "decoder/video/fg_ari": [0.5, 0.6, 0.7], "merge_audit/pairs": [1.0, 3.0, float("nan")],
                            "teaching/boundary/teacher_right_pct": [float("nan")] * 3})
    table = markdown_table(summary, ["decoder/video/fg_ari", "merge_audit/pairs", "teaching/boundary/teacher_right_pct"])
    assert table.splitlines()[-1] == "| baseline | 5 | 3 | 60.0 ± 8.2 | 2.0 ± 1.0 (n=2) | – |"


def test_markdown_table_expands_a_named_column_set():
    summary = pd.DataFrame([{"objective": "baseline", "slots": 5, **{c: 0.5 for c in COLUMN_SETS["premises"]}}])
    named, spelled = markdown_table(summary, ["premises"]), markdown_table(summary, COLUMN_SETS["premises"])
    assert named == spelled and named.splitlines()[0].count("|") == len(COLUMN_SETS["premises"]) + 4


def test_premise_rows_gathers_scored_baselines_from_several_sweeps(tmp_path):
    premises = {c: 0.5 for c in COLUMN_SETS["premises"]}
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    pd.DataFrame([{"objective": "baseline", "slots": 11, "seed": 0, **premises},
                  {"objective": "ssync", "slots": 11, "seed": 0, **premises},  # not a baseline
                  {"objective": "baseline", "slots": 5, "seed": 1, **{c: float("nan") for c in premises}}]  # unscored
                 ).to_csv(tmp_path / "a" / "summary.csv", index=False)
    pd.DataFrame([{"objective": "baseline", "slots": 4, "seed": 0, **premises},
                  {"objective": "baseline", "slots": 11, "seed": 0, **premises}]).to_csv(tmp_path / "b" / "summary.csv",
                                                                                          index=False)
    (tmp_path / "old").mkdir()  # a summary written before the diagnostics existed: no premise columns
    pd.DataFrame([{"objective": "baseline", "slots": 7, "seed": 0}]).to_csv(tmp_path / "old" / "summary.csv", index=False)
    rows = premise_rows([tmp_path / "a", tmp_path / "b", tmp_path / "old", tmp_path / "missing"])
    assert list(zip(rows["slots"], rows["sweep"])) == [(4, "b"), (11, "a"), (11, "b")]  # both trainings of 11 kept
    assert premise_rows([tmp_path / "missing"]).empty


def test_variant_rows_relabels_each_ablation_after_the_first_folders_baselines(tmp_path):
    def sweep(name, rows):
        (tmp_path / name).mkdir()
        pd.DataFrame(rows, columns=["objective", "slots", "seed", "decoder/video/mbo"]).to_csv(
            tmp_path / name / "summary.csv", index=False)
    sweep("full", [("baseline", 11, 0, 0.3), ("baseline", 11, 1, 0.4), ("baseline", 7, 0, 0.9),
                   ("ssync", 11, 0, 0.6), ("ssync", 11, 1, 0.6), ("dense", 11, 0, 0.9)])
    sweep("abl", [("baseline", 11, 0, 0.3), ("ssync", 11, 0, 0.5), ("ssync", 15, 0, 0.9)])
    rows = variant_rows({"ssync": tmp_path / "full", "only interiors": tmp_path / "abl"}, slots=11)
    assert list(zip(rows.objective, rows.seed)) == [("baseline", 0), ("baseline", 1), ("ssync", 0), ("ssync", 1),
                                                    ("only interiors", 0)]  # one copy of the baselines
    table = markdown_table(rows, ["decoder/video/mbo"])
    assert "| baseline | 11 | 2 | 35.0 ± 5.0 |" in table and "| only interiors | 11 | 1 | 50.0 |" in table
    with pytest.raises(MissingInputError, match="'gone'.*summary.csv"):
        variant_rows({"ssync": tmp_path / "full", "gone": tmp_path / "nowhere"}, slots=11)


def test_plain_names_branch_points_and_live_comparison():
    from ssync_lib.lab.experiment import branch_points, compare_runs, plain_name

    summary = pd.DataFrame([
        {"run": "baseline-s5-seed0", "objective": "baseline", "slots": 5, "seed": 0, "branched_from": None,
         "decoder/video/fg_ari": 0.6, "decoder/video/mbo": 0.3, "premises/interior/decoder_merged_acc": 0.7},
        {"run": "ssync-s5-seed0", "objective": "ssync", "slots": 5, "seed": 0, "branched_from": None,
         "decoder/video/fg_ari": 0.4, "decoder/video/mbo": 0.4, "premises/interior/decoder_merged_acc": 0.9},
        {"run": "ssync-s5-seed1", "objective": "ssync", "slots": 5, "seed": 1,
         "branched_from": "/x/runs/baseline-s5-seed1/step-0002400.pt", "decoder/video/fg_ari": 0.5,
         "decoder/video/mbo": 0.5, "premises/interior/decoder_merged_acc": 0.8}])
    table = markdown_table(summary, ["decoder/video/fg_ari", "premises/interior/decoder_merged_acc"], plain=True)
    assert table.splitlines()[0] == "| objective | slots | seeds | decoder FG-ARI | interior: decoder accuracy |"
    assert "premises/" not in table and "decoder fg_ari" in markdown_table(summary, ["decoder/video/fg_ari"])
    assert plain_name("teaching/boundary/teacher_right_pct") == "boundary: teacher right"
    assert branch_points(summary).to_dict() == {"ssync-s5-seed0": None, "ssync-s5-seed1": 2400}
    live = summary.iloc[[1]].assign(**{"decoder/video/fg_ari": 0.41})
    assert compare_runs(live, summary, seed=0).splitlines()[2] == "| ssync | 5 | 41.0 | 40.0 | 40.0 | 40.0 |"
    assert compare_runs(live, summary, seed=2).startswith("No committed run")
