import pytest
import torch

import ssync_lib.lab.bench.labels as labels_bench
from ssync_lib.lab import bench
from ssync_lib.objectives.ssync import pseudo_labels
from ssync_lib.objectives.ssync_reference import labels_mismatch, loop_pseudo_labels

pytestmark = pytest.mark.usefixtures("one_thread")


def test_labels_cli_at_a_small_batch(tmp_path, written):
    assert bench.main(["labels", "--batch", "2", "--repeats", "1", "--out", str(tmp_path)]) == 0
    df = written(tmp_path, "labels")
    assert list(df["shape"]) == list(bench.LABEL_SHAPES) and (df["batch"] == 2).all()
    assert df["equal"].all() and (df["speedup"] > 0).all() and (df["vectorised_ms"] > 0).all()
    assert list(df["grid"]) == ["24x24", "37x37"]
    assert df["boundary_pct"].between(5, 80).all() and df["interior_pct"].between(5, 95).all()


def test_labels_reports_a_mismatch(monkeypatch):
    right = labels_bench.pseudo_labels

    def wrong(attn_logits, alpha, grid, merge_iou=0.7):
        labels = right(attn_logits, alpha, grid, merge_iou)
        labels.interior = ~labels.interior
        return labels

    monkeypatch.setattr(labels_bench, "pseudo_labels", wrong)
    with pytest.raises(AssertionError, match=r"'tiny'.*\['interior'\]"):
        bench.run_labels({"tiny": bench.LabelShape(1, 2, 4, (4, 4), 0.7)}, repeats=1)


def test_clip_logits_make_merges_and_the_loop_reference_agrees_on_a_non_square_grid():
    shape = bench.LabelShape(batch=3, frames=3, slots=6, grid=(5, 9), merge_iou=0.6)
    attn, dec = bench.clip_logits(shape, seed=1)
    got = pseudo_labels(attn, dec, shape.grid, shape.merge_iou)
    ref = loop_pseudo_labels(attn, dec, shape.grid, shape.merge_iou)
    assert labels_mismatch(got, ref) == []
    assert (got.slot_map != torch.arange(6)).any()  # the near-copies were merged: the components were exercised
    ref.boundary[0, 0, 0, 0] = ~ref.boundary[0, 0, 0, 0]
    ref.iou[1, 0, 1] += 1e-3
    assert labels_mismatch(got, ref) == ["boundary", "iou"]
