"""Metrics against independent references: scikit-learn's ARI, plain loops for mBO, and a loop with
scipy's linear_sum_assignment for mIoU (docs/method.md §2)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from ssync_lib import metrics


def random_maps(b=3, t=4, h=10, w=12, n_true=5, n_pred=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    true = torch.randint(n_true, (b, t, h, w), generator=g)
    pred = torch.randint(n_pred, (b, t, h, w), generator=g)
    return pred, true


def groups(x: torch.Tensor, level: str):
    """(B,T,H,W) -> list of per-clip (video) or per-frame (image) numpy pixel arrays."""
    x = x.numpy()
    return [x[i].ravel() for i in range(len(x))] if level == "video" else [f.ravel() for v in x for f in v]


def ref_ari(pred, true, level, ignore_background=True):
    out = []
    for p, t in zip(groups(pred, level), groups(true, level)):
        keep = t > 0 if ignore_background else t >= 0
        out.append(adjusted_rand_score(t[keep], p[keep]) if keep.any() else math.nan)
    return np.array(out)


def ref_objects_iou(p, t, ignore_background):
    """Plain loop: IoU matrix (objects x predicted ids) over the labelled pixels."""
    keep = t >= 0
    p, t = p[keep], t[keep]
    objects = [o for o in np.unique(t) if o > 0 or not ignore_background]
    ids = np.unique(p)
    iou = np.zeros((len(objects), len(ids)))
    for i, o in enumerate(objects):
        for j, k in enumerate(ids):
            inter = np.sum((t == o) & (p == k))
            union = np.sum((t == o) | (p == k))
            iou[i, j] = inter / union
    return iou


def ref_mbo(pred, true, level, ignore_background=True):
    out = []
    for p, t in zip(groups(pred, level), groups(true, level)):
        iou = ref_objects_iou(p, t, ignore_background)
        out.append(iou.max(axis=1).mean() if len(iou) else math.nan)
    return np.array(out)


def ref_miou(pred, true, level, ignore_background=True):
    out = []
    for p, t in zip(groups(pred, level), groups(true, level)):
        iou = ref_objects_iou(p, t, ignore_background)
        if not len(iou):
            out.append(math.nan)
            continue
        rows, cols = linear_sum_assignment(iou, maximize=True)
        out.append(iou[rows, cols].sum() / len(iou))
    return np.array(out)


def flat(x):
    return x.reshape(-1).numpy()


@pytest.mark.parametrize("level", ["video", "image"])
@pytest.mark.parametrize("ignore_background", [True, False])
def test_all_metrics_match_references_on_random_maps(level, ignore_background):
    for seed in range(3):
        pred, true = random_maps(seed=seed)
        true[0, :, :3] = -1  # unlabelled pixels (padding) take no part anywhere
        kw = dict(level=level, ignore_background=ignore_background)
        np.testing.assert_allclose(flat(metrics.fg_ari(pred, true, **kw)), ref_ari(pred, true, level, ignore_background),
                                   atol=1e-6)
        np.testing.assert_allclose(flat(metrics.mbo(pred, true, **kw)), ref_mbo(pred, true, level, ignore_background),
                                   atol=1e-12)
        np.testing.assert_allclose(flat(metrics.miou(pred, true, **kw)), ref_miou(pred, true, level, ignore_background),
                                   atol=1e-12)


def test_output_shapes_per_level():
    pred, true = random_maps(b=2, t=5)
    assert metrics.fg_ari(pred, true).shape == (2,)
    assert metrics.mbo(pred, true, level="image").shape == (2, 5)
    assert metrics.miou(pred, true, level="image").shape == (2, 5)
    with pytest.raises(ValueError, match="level"):
        metrics.fg_ari(pred, true, level="clip")


def test_ari_on_structured_maps_where_prediction_is_informative():
    """Not only chance-level maps: a prediction equal to the truth up to renaming scores 1, and a
    half-corrupted one lies strictly between 0 and 1 and still matches sklearn."""
    _, true = random_maps(n_true=4, seed=1)
    renamed = (true * 7 + 3) % 31  # a bijection of the ids 0..3
    assert torch.all(metrics.fg_ari(renamed, true, level="image") == 1.0)
    noisy = renamed.clone()
    noisy[..., ::2] = 0
    ari = metrics.fg_ari(noisy, true)
    np.testing.assert_allclose(flat(ari), ref_ari(noisy, true, "video"), atol=1e-6)
    assert torch.all((ari > 0) & (ari < 1))


def test_background_only_clip_is_nan_and_skipped():
    pred, true = random_maps(b=3, t=2)
    true[1] = 0  # clip 1: background only
    true[2, 0] = 0  # clip 2, frame 0: background only
    scores = metrics.clip_scores(pred, true)
    for name in ("fg_ari", "mbo", "miou"):
        assert torch.isnan(scores[name][1]) and not torch.isnan(scores[name][[0, 2]]).any()
        image = scores[name + "_image"]
        assert torch.isnan(image[1]).all() and torch.isnan(image[2, 0]) and not torch.isnan(image[2, 1])
    result = metrics.evaluate_masks(pred, true)
    assert (result["fg_ari_n"], result["fg_ari_skipped"]) == (2, 1)
    assert (result["mbo_image_n"], result["mbo_image_skipped"]) == (3, 3)
    assert result["miou"] == pytest.approx(float(scores["miou"][[0, 2]].mean()))
    mean, n_valid, n_skipped = metrics.mean_valid(torch.tensor([0.5, math.nan, 1.0]))
    assert (mean, n_valid, n_skipped) == (0.75, 2, 1)
    assert math.isnan(metrics.mean_valid(torch.tensor([math.nan]))[0])


def test_one_object_and_one_predicted_id_follow_sklearn():
    """ARI degenerate cases: sklearn returns 1.0 when both partitions are identical (one object
    predicted as one id, or a single pixel) and 0.0 when only one side is a single cluster."""
    pred, true = random_maps(b=4, t=2, n_pred=3)
    true[true > 1] = 0  # one object per clip
    true[0, :, 0, 0] = 1
    pred[1] = 2  # clip 1: one predicted id for the object -> identical partitions
    true[2] = 0
    true[2, 0, 0, 0] = 1  # clip 2: a single foreground pixel
    true[3], pred[3] = random_maps(b=1, t=2, seed=5)[1][0], 4  # clip 3: several objects, one predicted id
    for level in ("video", "image"):
        np.testing.assert_allclose(flat(metrics.fg_ari(pred, true, level=level)), ref_ari(pred, true, level), atol=1e-6)
    ari = metrics.fg_ari(pred, true)
    assert ari[1] == 1.0 and ari[2] == 1.0 and ari[3] == 0.0
    assert metrics.mbo(pred, true)[1] == metrics.miou(pred, true)[1]  # one object: matching changes nothing
    np.testing.assert_allclose(flat(metrics.miou(pred, true)), ref_miou(pred, true, "video"), atol=1e-12)


def test_more_objects_than_predicted_ids_scores_unmatched_objects_zero():
    true = torch.tensor([1, 1, 2, 2, 3, 3]).view(1, 1, 2, 3)
    pred = torch.tensor([0, 0, 0, 0, 0, 5]).view(1, 1, 2, 3)
    # ids 0 and 5 for three objects: mBO reuses id 0 (IoU 2/5, 2/5), object 3 best with id 5 (1/2);
    # Hungarian: one object gets id 0 (2/5), object 3 gets id 5 (1/2), the third scores 0.
    assert metrics.mbo(pred, true).item() == pytest.approx((2 / 5 + 2 / 5 + 1 / 2) / 3)
    assert metrics.miou(pred, true).item() == pytest.approx((2 / 5 + 1 / 2) / 3)


def test_non_contiguous_and_large_ids_give_the_same_scores():
    pred, true = random_maps(n_true=4, n_pred=5, seed=3)
    true_sparse = torch.tensor([0, 7, 200, 31])[true]  # background stays 0
    pred_sparse = torch.tensor([3, 90, 1000, 11, 57])[pred]
    pred_huge = torch.tensor([0, 10**7, 3, 2**40, 5])[pred]  # table too large: compacted first
    true_huge = torch.tensor([0, 10**6, 2, 5 * 10**6])[true]
    base = metrics.clip_scores(pred, true)
    for p, t in ((pred_sparse, true_sparse), (pred_huge, true_huge), (pred_sparse.to(torch.int32), true.to(torch.uint8))):
        for name, score in metrics.clip_scores(p, t).items():
            torch.testing.assert_close(score, base[name], rtol=0, atol=1e-12, equal_nan=True)


def test_contingency_counts_every_labelled_pixel_once():
    pred, true = random_maps(seed=4)
    table, true_ids = metrics.contingency(pred, true)
    assert table.sum() == true.numel()
    b, t, i, j = 1, 2, 3, 4
    expected = ((true[b, t] == true_ids[i]) & (pred[b, t] == j)).sum()
    assert table[b, t, i, j] == expected


def test_masks_to_labels_is_bilinear_resize_then_argmax():
    g = torch.Generator().manual_seed(0)
    soft = torch.rand(2, 3, 4, 5, 6, generator=g).softmax(dim=2)  # B T S h w
    labels = metrics.masks_to_labels(soft, (20, 18), chunk=4)
    assert labels.shape == (2, 3, 20, 18) and labels.dtype == torch.long
    for b in range(2):
        for t in range(3):
            up = F.interpolate(soft[b, t][None], size=(20, 18), mode="bilinear", align_corners=False)[0]
            assert torch.equal(labels[b, t], up.argmax(dim=0))
    one_hot = torch.zeros(1, 1, 3, 4, 4)
    one_hot[0, 0, 2] = 1.0  # slot 2 everywhere ...
    one_hot[0, 0, 2, :2, :2], one_hot[0, 0, 1, :2, :2] = 0.0, 1.0  # ... but slot 1 in the top-left quadrant
    hard = metrics.masks_to_labels(one_hot, 8)[0, 0]
    assert (hard[:3, :3] == 1).all() and (hard[5:] == 2).all() and (hard[:, 5:] == 2).all()


def test_errors_name_the_problem():
    pred, true = random_maps()
    with pytest.raises(ValueError, match="pred and true"):
        metrics.fg_ari(pred, true[:, :2])
    with pytest.raises(TypeError, match="pred must be an integer"):
        metrics.mbo(pred.float(), true)
    with pytest.raises(ValueError, match="negative ids"):
        metrics.miou(pred - 1, true)
    with pytest.raises(ValueError, match="soft_masks"):
        metrics.masks_to_labels(torch.rand(2, 3, 4, 5), 8)


def test_cpu_thread_count_is_restored():
    """The metrics run on one CPU thread (see metrics._one_thread) and give the caller's setting back,
    also when they raise."""
    threads = torch.get_num_threads()
    pred, true = random_maps()
    metrics.clip_scores(pred, true)
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError):
        metrics.fg_ari(pred, true, level="clip")
    assert torch.get_num_threads() == threads


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_metrics_on_gpu_tensors_match_cpu():
    pred, true = random_maps(seed=6)
    cpu = metrics.clip_scores(pred, true)
    gpu = metrics.clip_scores(pred.cuda(), true.cuda())
    for name in cpu:
        assert gpu[name].is_cuda
        torch.testing.assert_close(gpu[name].cpu(), cpu[name], equal_nan=True)


def loop_object_sharing(pred, true):
    """Per clip: shares of objects whose majority predicted id equals the background's / another object's."""
    lost, shared = [], []
    for p, t in zip(pred, true):
        ids = [int(i) for i in torch.unique(t)]
        major = {i: int(torch.bincount(p[t == i]).argmax()) for i in ids}  # ties: the lowest id, as argmax
        objects = [i for i in ids if i > 0]
        if not objects:
            lost.append(math.nan)
            shared.append(math.nan)
            continue
        lost.append(sum(0 in major and major[i] == major[0] for i in objects) / len(objects))
        shared.append(sum(any(major[i] == major[j] for j in objects if j != i) for i in objects) / len(objects))
    return torch.tensor(lost, dtype=torch.float64), torch.tensor(shared, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(6))
def test_object_sharing_matches_a_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    B, T, H, W = 4, 3, 6, 7
    true = torch.randint(0, 4, (B, T, H, W), generator=gen)
    true[0] = 0  # a clip with background only: NaN
    true[1][true[1] == 0] = 2  # a clip without background
    pred = torch.randint(0, 3 + seed % 3, (B, T, H, W), generator=gen)
    pred[2] = true[2]  # a perfect clip: nothing lost or shared
    scores = metrics.clip_scores(pred, true)
    lost, shared = loop_object_sharing(pred, true)
    torch.testing.assert_close(scores["objects_lost"], lost, equal_nan=True)
    torch.testing.assert_close(scores["objects_shared"], shared, equal_nan=True)
    assert scores["objects_lost"][2] == 0 and scores["objects_shared"][2] == 0 and math.isnan(scores["objects_lost"][0])


def test_kmeans_labels_agree_with_scikit_learn_and_are_seeded():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    truth = rng.integers(0, 4, (3, 5, 6))  # T h w
    features = torch.from_numpy(centres[truth] + rng.normal(0, 0.05, truth.shape + (3,)))  # T h w 3
    labels = metrics.kmeans_labels(features, 4, seed=1)
    assert labels.shape == (3, 5, 6) and labels.dtype == torch.int64
    assert torch.equal(labels, metrics.kmeans_labels(features, 4, seed=1))
    reference = KMeans(4, n_init=10, random_state=0).fit_predict(features.reshape(-1, 3).numpy())
    assert adjusted_rand_score(reference, labels.ravel().numpy()) == 1.0
    assert adjusted_rand_score(truth.ravel(), labels.ravel().numpy()) == 1.0


def test_kmeans_fg_ari_upsamples_the_grid_to_the_masks():
    true = torch.zeros(2, 8, 8, dtype=torch.long)  # T H W, patches of 2x2 on a 4x4 grid
    true[:, :4, :4], true[:, 4:, 4:] = 1, 2
    grid = F.avg_pool2d(true[:, None].double(), 2)[:, 0]  # T 4 4: one colour-like value per patch
    features = torch.stack([grid, grid ** 2], -1)  # T 4 4 2
    assert metrics.kmeans_fg_ari(features, true, k=3) == 1.0
    one = torch.zeros_like(features)  # nothing to separate: every patch in one cluster
    assert metrics.kmeans_fg_ari(one, true, k=1) == pytest.approx(0.0)


def test_grid_fg_ari_upsamples_patch_labels_and_matches_scikit_learn():
    true = torch.zeros(2, 8, 8, dtype=torch.long)  # T H W: objects 1 and 2 on 4x4 patches of a 2x2 grid
    true[:, :4, :4], true[:, :4, 4:] = 1, 2
    perfect = torch.tensor([[[0, 1], [2, 2]]] * 2)  # T h w: one cluster per object, the background a third
    assert metrics.grid_fg_ari(perfect, true) == 1.0
    merged = perfect.clone()
    merged[1, 0, 1] = 0  # frame 1: object 2 joins object 1's cluster
    pixels = F.interpolate(merged[:, None].double(), size=(8, 8), mode="nearest")[:, 0].long()
    fg = true > 0
    assert metrics.grid_fg_ari(merged, true) == pytest.approx(
        adjusted_rand_score(true[fg].numpy(), pixels[fg].numpy()), abs=1e-12)
    assert metrics.grid_fg_ari(merged, true) < 1.0


def test_pixel_kmeans_reference_scores_flat_coloured_objects_perfectly(tmp_path):
    from ssync_lib.data import MoviDataset, pixel_kmeans_reference
    from ssync_lib.data.movi import make_sample, write_shards

    videos = []
    for i, colours in enumerate(([[200, 0, 0], [0, 0, 200]], [[0, 180, 0], [220, 220, 0]])):
        video = np.full((3, 16, 16, 3), 60, np.uint8)  # grey floor
        masks = np.zeros((3, 16, 16), np.uint8)
        for k, (colour, (y, x)) in enumerate(zip(colours, ((0, 0), (8, 4)))):
            video[:, y:y + 8, x:x + 8], masks[:, y:y + 8, x:x + 8] = colour, k + 1  # patch-aligned squares
        videos.append(make_sample(f"{i:06d}", video, masks))
    # a third video whose objects patch boundaries cut: mixed patches, the reference misses part of them
    video = np.full((3, 16, 16, 3), 60, np.uint8)
    masks = np.zeros((3, 16, 16), np.uint8)
    video[:, 2:10, 2:10], masks[:, 2:10, 2:10] = (200, 0, 0), 1
    video[:, 10:14, 10:16], masks[:, 10:14, 10:16] = (0, 0, 200), 2
    videos.append(make_sample("000002", video, masks))
    write_shards(videos, tmp_path / "val")
    ref = pixel_kmeans_reference(MoviDataset(tmp_path, "val", chunk_len=3, input_size=16), patch=4)
    assert list(ref.columns) == ["id", "num_objects", "fg_ari"] and list(ref.num_objects) == [2, 2, 2]
    assert list(ref.fg_ari[:2]) == [1.0, 1.0] and 0 < ref.fg_ari[2] < 1
