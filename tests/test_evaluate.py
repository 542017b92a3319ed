import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from ssync_lib.config import apply_overrides, get_config
from ssync_lib.data import build_dataset, synthetic
from ssync_lib.evaluate import evaluate, evaluate_checkpoint, evaluate_run, predicted_labels
from ssync_lib.models import create_model
from ssync_lib.objectives.ssync import pseudo_labels
from ssync_lib.run_log import read_metrics
from ssync_lib.train import train
from tests.helpers import exactly


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke profile on freshly generated smoke data, one thread (see test_train.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = get_config("smoke", {"data.root": str(tmp_path_factory.mktemp("smoke-data")),
                               "train.run_root": str(tmp_path_factory.mktemp("runs")), "train.name": "eval"})
    synthetic.generate_from_config(cfg, workers=1, progress=False)
    yield cfg
    torch.set_num_threads(threads)


def test_patch_maps_are_laid_out_row_major_on_the_grid():
    """Slot n wins patch n of a 2x3 grid; at 2x the ground-truth size each patch covers 2x2 pixels."""
    h, w = 2, 3
    maps = torch.full((1, 1, h * w, h * w), 0.02)
    maps[0, 0, torch.arange(h * w), torch.arange(h * w)] = 0.9  # B T S N, slot n peaks on patch n
    labels = predicted_labels(SimpleNamespace(grid=(h, w), masks=maps, attn=maps), (2 * h, 2 * w))
    expected = torch.tensor([[(y // 2) * w + x // 2 for x in range(2 * w)] for y in range(2 * h)])
    for name in ("decoder", "attention"):
        assert torch.equal(labels[name][0, 0], expected), name


def _plain_best_overlap(true, pred, hungarian):
    """mBO / mIoU of one clip or frame with loops over objects and ids (reference)."""
    objects = [k for k in np.unique(true) if k > 0]
    if not objects:
        return np.nan
    ids = np.unique(pred)
    iou = np.array([[np.logical_and(true == k, pred == j).sum() / np.logical_or(true == k, pred == j).sum()
                     for j in ids] for k in objects])
    if not hungarian:
        return iou.max(axis=1).mean()
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return iou[rows, cols].sum() / len(objects)


def test_metrics_agree_with_sklearn_and_plain_loops(smoke):
    torch.manual_seed(smoke.train.seed)
    model = create_model(smoke.model, input_size=smoke.data.input_size)
    got = evaluate(model, smoke, progress=False)

    items = [build_dataset(smoke, "val")[i] for i in range(smoke.data.num_val)]
    true = torch.stack([it["masks"] for it in items]).numpy()  # B T H W
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(smoke.train.seed)  # evaluate's seed; all 8 videos in one batch (eval_batch_size 8)
        out = model(torch.stack([it["video"] for it in items]))
    b, t, s, _ = out.masks.shape
    h, w = model.grid
    pred = {}
    for name, maps in (("decoder", out.masks), ("attention", out.attn)):
        frames = maps.reshape(b * t, s, h, w)  # patch n = row n // w, column n % w
        up = F.interpolate(frames, size=true.shape[-2:], mode="bilinear", align_corners=False)
        pred[name] = up.argmax(dim=1).reshape(b, t, *true.shape[-2:]).numpy()
    fg = true > 0

    video_ari = [adjusted_rand_score(true[i][fg[i]], pred["decoder"][i][fg[i]]) for i in range(b) if fg[i].any()]
    image_ari = [adjusted_rand_score(true[i, j][fg[i, j]], pred["decoder"][i, j][fg[i, j]])
                 for i in range(b) for j in range(t) if fg[i, j].any()]
    assert got["decoder/video/fg_ari"] == pytest.approx(np.mean(video_ari), abs=1e-9)
    assert got["decoder/image/fg_ari"] == pytest.approx(np.mean(image_ari), abs=1e-9)
    assert got["decoder/image/fg_ari_valid"] == len(image_ari)
    assert got["decoder/image/fg_ari_skipped"] == b * t - len(image_ari)
    mbo = [_plain_best_overlap(true[i], pred["attention"][i], hungarian=False) for i in range(b)]
    assert got["attention/video/mbo"] == pytest.approx(np.nanmean(mbo), abs=1e-9)
    miou = [_plain_best_overlap(true[i, j], pred["decoder"][i, j], hungarian=True) for i in range(b) for j in range(t)]
    assert got["decoder/image/miou"] == pytest.approx(np.nanmean(miou), abs=1e-9)
    assert got["num_videos"] == b == 8

    window = smoke.data.chunk_len  # pseudo-label statistics: one pseudo_labels call per window, by hand
    stats = {"merged_slots": [], "boundary_pct": [], "interior_pct": [], "agreement_pct": []}
    for i in range(b):
        for start in range(0, t - window + 1, window):
            part = slice(start, start + window)
            lab = pseudo_labels(out.attn_logits[i:i + 1, part], out.alpha[i:i + 1, part], (h, w),
                                smoke.objective.merge_iou)
            stats["merged_slots"].append(sum(int(lab.slot_map[0, k]) != k for k in range(s)))
            stats["boundary_pct"].append(100 * lab.boundary.float().mean().item())
            stats["interior_pct"].append(100 * lab.interior.float().mean().item())
            stats["agreement_pct"].append(100 * (lab.enc_labels == lab.dec_labels).float().mean().item())
    for name, values in stats.items():
        assert got[f"pseudo_labels/{name}"] == pytest.approx(np.mean(values), abs=1e-4)
        assert got[f"pseudo_labels/{name}_valid"] == b * (t // window)


def test_evaluate_is_repeatable_and_leaves_rng_and_mode_alone(smoke):
    torch.manual_seed(0)
    model = create_model(smoke.model, input_size=smoke.data.input_size).train()
    expected_draw = torch.rand(3, generator=torch.Generator().manual_seed(0).set_state(torch.get_rng_state()))
    first = evaluate(model, smoke, max_videos=3, progress=False)
    assert torch.equal(torch.rand(3), expected_draw) and model.training
    assert evaluate(model, smoke, max_videos=3, progress=False) == first
    assert first["num_videos"] == 3 and first["decoder/video/mbo_valid"] + first["decoder/video/mbo_skipped"] == 3


def test_evaluate_run_reproduces_the_training_metrics_and_writes_json(smoke):
    run = train(apply_overrides(copy.deepcopy(smoke), {"train.keep_every": 3}), progress=False)
    (run.run_dir / "metrics.json").unlink()
    metrics = evaluate_run(run.run_dir, progress=False)
    assert metrics == exactly(run.metrics)  # same weights, same seeded evaluation
    record = read_metrics(run.run_dir / "metrics.json")
    assert record["step"] == 6 and record["metrics"] == exactly(metrics) and record["config"]["train"]["name"] == "eval"
    assert record["checkpoint"].endswith("last.pt") and "commit" in record
    partial = evaluate_checkpoint(run.run_dir / "step-0000003.pt", max_videos=2, progress=False)
    record = read_metrics(run.run_dir / "metrics-step-0000003-first2.json")  # 2 videos: not the run's own setting
    assert record["step"] == 3 and partial["num_videos"] == 2 and record["metrics"] == exactly(partial)
