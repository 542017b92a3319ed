"""SSync's premises (diagnostics.py) against plain-loop references (scikit-learn's ARI, scipy's matching, brute force)
on random inputs, and on small hand-built clips whose answers are known by construction."""
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from ssync_lib import diagnostics as D
from ssync_lib.config import get_config
from ssync_lib.evaluate import evaluate, window_labels, windows
from ssync_lib.lab.experiment import PREMISE_KEYS, markdown_table
from ssync_lib.models import create_model
from ssync_lib.objectives.ssync import pseudo_labels

pytestmark = pytest.mark.usefixtures("one_thread")


def sums(attn_logits, alpha, true, grid, merge_iou):
    """premise_sums of clips given as logits: their pseudo-labels first, as evaluate does."""
    return D.premise_sums(pseudo_labels(attn_logits.float(), alpha.float(), grid, merge_iou), true)


# ----------------------------------------------------------------------------- plain-loop references

def loop_patch_majority(true, grid):
    B, T, R, C = true.shape
    H, W = grid
    out = torch.full((B, T, H, W), -1, dtype=torch.long)
    for b, t, h, w in itertools.product(range(B), range(T), range(H), range(W)):
        votes = {}
        for y in range(R):
            for x in range(C):
                if (y * H) // R == h and (x * W) // C == w and true[b, t, y, x] >= 0:
                    k = int(true[b, t, y, x])
                    votes[k] = votes.get(k, 0) + 1
        if votes:
            top = max(votes.values())
            out[b, t, h, w] = min(k for k, v in votes.items() if v == top)
    return out


def loop_agreeing(gt):
    """Neighbours by clamped indices (replicate padding), one patch at a time."""
    B, T, H, W = gt.shape
    agree = torch.zeros_like(gt)
    for b, t, h, w in itertools.product(range(B), range(T), range(H), range(W)):
        nbrs = [(t, min(max(h + dh, 0), H - 1), min(max(w + dw, 0), W - 1))
                for dh in (-1, 0, 1) for dw in (-1, 0, 1) if dh or dw]
        nbrs += [(max(t - 1, 0), h, w), (min(t + 1, T - 1), h, w)]
        agree[b, t, h, w] = sum(int(gt[b, tt, hh, ww] == gt[b, t, h, w]) for tt, hh, ww in nbrs)
    return agree


def loop_regions(gt):
    agree = loop_agreeing(gt)
    return (gt >= 0) & (agree > 0) & (agree < 10), (gt >= 0) & (agree == 10)


def loop_table(pred, gt, P, Q):
    table = np.zeros((P, Q), dtype=np.int64)
    for p, g in zip(pred.flatten().tolist(), gt.flatten().tolist()):
        if g >= 0:
            table[p, g] += 1
    return table


def loop_lookup(table):
    lookup = {}
    rows, cols = linear_sum_assignment(table, maximize=True)
    for r, c in zip(rows, cols):
        lookup[int(r)] = int(c)
    return lookup


def loop_right(pred, gt, lookup):
    """Per patch (flat lists): the label's matched id equals the ground-truth id."""
    return [g >= 0 and lookup.get(p, -1) == g for p, g in zip(pred.flatten().tolist(), gt.flatten().tolist())]


def loop_premise_sums(attn_logits, alpha, true, grid, merge_iou):
    """premise_sums written clip by clip and patch by patch from the same pseudo-labels."""
    B, T, S, N = attn_logits.shape
    labels = pseudo_labels(attn_logits, alpha, grid, merge_iou)
    gt = loop_patch_majority(true, grid)
    boundary, interior = loop_regions(gt)
    regions = {"boundary": boundary, "interior": interior}
    Q = max(int(gt.max()) + 1, 1)
    maps = {"encoder": labels.enc_unmerged, "decoder": labels.dec_unmerged,
            "encoder_merged": labels.enc_labels, "decoder_merged": labels.dec_labels}
    sums = {}

    def add(key, total, count):
        sums[f"{key}/sum"] = sums.get(f"{key}/sum", 0.0) + float(total)
        sums[f"{key}/count"] = sums.get(f"{key}/count", 0.0) + float(count)

    for b in range(B):
        g = gt[b].flatten().tolist()
        for set_name, region in regions.items():
            sel = region[b].flatten().tolist()
            add(f"premises/{set_name}/patch_pct", 100 * sum(sel), sum(x >= 0 for x in g))
            for name, m in maps.items():
                right = loop_right(m[b], gt[b], loop_lookup(loop_table(m[b], gt[b], S, Q)))
                add(f"premises/{set_name}/{name}_acc", sum(r and s for r, s in zip(right, sel)), sum(sel))
                pred = m[b].flatten().tolist()
                fg = [i for i in range(len(g)) if sel[i] and g[i] > 0]
                if fg:
                    add(f"premises/{set_name}/{name}_fg_ari",
                        adjusted_rand_score([g[i] for i in fg], [pred[i] for i in fg]), 1)
                else:
                    add(f"premises/{set_name}/{name}_fg_ari", 0, 0)
        audit = loop_merge_audit(labels.slot_map[b].tolist(), labels.enc_unmerged[b], gt[b])
        add("merge_audit/pairs", sum(audit.values()), 1)
        for name in D.AUDIT_CLASSES:
            add(f"merge_audit/{name}", audit[name], 1)
        for set_name, cases in loop_teaching(labels, gt, b).items():
            for name in D.TEACHING:
                add(f"teaching/{set_name}/{name}", 100 * cases[name], sum(cases.values()))
    return sums


def loop_merge_audit(slot_map, enc, gt):
    def majority(s):
        votes = {}
        for p, g in zip(enc.flatten().tolist(), gt.flatten().tolist()):
            if p == s and g >= 0:
                votes[g] = votes.get(g, 0) + 1
        if not votes:
            return None  # empty
        top = max(votes.values())
        return min(k for k, v in votes.items() if v == top)

    counts = dict.fromkeys(D.AUDIT_CLASSES, 0)
    for s, rep in enumerate(slot_map):
        if rep == s:
            continue
        a, b = majority(s), majority(rep)
        if a is None or b is None or (a == 0 and b == 0):
            counts["background_or_empty"] += 1
        elif a == b:
            counts["object_split"] += 1
        elif a == 0 or b == 0:
            counts["object_background"] += 1
        else:
            counts["two_objects"] += 1
    return counts


def loop_teaching(labels, gt, b):
    S = labels.slot_map.shape[1]
    Q = max(int(gt.max()) + 1, 1)
    enc, dec = labels.enc_labels[b], labels.dec_labels[b]
    lookup = loop_lookup(loop_table(enc, gt[b], S, Q) + loop_table(dec, gt[b], S, Q))
    enc_right, dec_right = loop_right(enc, gt[b], lookup), loop_right(dec, gt[b], lookup)
    result = {}
    for name, select, teacher, student in (("boundary", labels.boundary[b], enc_right, dec_right),
                                           ("interior", labels.interior[b], dec_right, enc_right)):
        cases = dict.fromkeys(D.TEACHING, 0)
        for i, (s, g) in enumerate(zip(select.flatten().tolist(), gt[b].flatten().tolist())):
            if not s or g < 0:
                continue
            key = {(True, False): "teacher_right_pct", (False, True): "student_right_pct",
                   (True, True): "both_right_pct", (False, False): "both_wrong_pct"}[(teacher[i], student[i])]
            cases[key] += 1
        result[name] = cases
    return result


def blocky(gen, shape, high, block):
    """Random piecewise-constant integer maps (..., H, W) in blocks of `block` pixels."""
    *lead, H, W = shape
    small = torch.randint(0, high, (*lead, -(-H // block), -(-W // block)), generator=gen)
    return small.repeat_interleave(block, -2).repeat_interleave(block, -1)[..., :H, :W]


def random_case(gen, B, T, S, grid, scale, objects):
    """Ground truth at `scale` pixels per patch (a few unlabelled pixels) and logits that follow it loosely, with
    redundant copies of slots so that merging happens."""
    H, W = grid
    true = blocky(gen, (B, T, H * scale, W * scale), objects + 1, int(torch.randint(1, 3 * scale, (1,), generator=gen)))
    true[torch.rand(true.shape, generator=gen) < 0.03] = -1
    lab = blocky(gen, (B, T, H, W), S, int(torch.randint(1, 4, (1,), generator=gen)))
    follow = true[:, :, ::scale, ::scale].clamp(min=0) % S  # B T H W   labels that follow the ground truth ...
    lab = torch.where(blocky(gen, (B, T, H, W), 3, 2) == 0, lab, follow).flatten(2)  # ... in 2/3 of the blocks
    logits = 4.0 * torch.nn.functional.one_hot(lab, S).permute(0, 1, 3, 2).float()  # B T S N
    for r in range(S // 2, S):  # redundant slots: noisy copies of an earlier slot
        logits[:, :, r] = logits[:, :, int(torch.randint(0, r, (1,), generator=gen))] + 0.2 * torch.randn(1, generator=gen)
    attn = logits + float(torch.rand(1, generator=gen)) * 2.5 * torch.randn(logits.shape, generator=gen)
    alpha = logits + float(torch.rand(1, generator=gen)) * 1.5 * torch.randn(logits.shape, generator=gen)
    return attn, alpha, true


# ----------------------------------------------------------------------------- random inputs against the loops

def test_patch_majority_matches_loop_on_random_masks():
    gen = torch.Generator().manual_seed(0)
    for B, T, R, C, H, W in [(2, 2, 8, 8, 4, 4), (1, 3, 9, 7, 4, 3), (2, 1, 6, 10, 6, 5), (1, 2, 5, 5, 5, 5)]:
        true = torch.randint(-2, 4, (B, T, R, C), generator=gen)
        np.testing.assert_array_equal(D.patch_majority(true, (H, W)).numpy(), loop_patch_majority(true, (H, W)).numpy())


def test_ground_truth_regions_match_loop():
    gen = torch.Generator().manual_seed(1)
    for B, T, H, W in [(2, 3, 5, 4), (1, 1, 6, 6), (1, 4, 1, 5), (2, 2, 3, 7)]:
        gt = blocky(gen, (B, T, H, W), 3, int(torch.randint(1, 3, (1,), generator=gen)))
        gt[torch.rand(gt.shape, generator=gen) < 0.1] = -1
        for got, ref in zip(D.ground_truth_regions(gt), loop_regions(gt)):
            assert torch.equal(got, ref)


def test_best_matching_is_optimal_against_brute_force_and_scipy():
    gen = torch.Generator().manual_seed(2)
    for P, Q in [(3, 3), (4, 2), (2, 4), (5, 4), (1, 3)]:
        tables = torch.randint(0, 9, (6, P, Q), generator=gen)
        lookup = D.best_matching(tables)
        for b in range(6):
            t = tables[b].numpy()
            got = sum(t[p, q] for p, q in enumerate(lookup[b].tolist()) if q >= 0)
            assert sorted(q for q in lookup[b].tolist() if q >= 0) == sorted(set(q for q in lookup[b].tolist() if q >= 0))
            best = max(sum(t[p, q] for p, q in zip(rows, cols))  # every one-to-one matching of size min(P, Q)
                       for rows in itertools.permutations(range(P), min(P, Q))
                       for cols in itertools.permutations(range(Q), min(P, Q)))
            assert got == best
            assert loop_lookup(t) == {p: q for p, q in enumerate(lookup[b].tolist()) if q >= 0}


def test_contingency_and_subset_fg_ari_match_loops():
    gen = torch.Generator().manual_seed(3)
    B, T, H, W, S, Q = 4, 2, 5, 5, 4, 4
    pred = torch.randint(0, S, (B, T, H, W), generator=gen)
    gt = torch.randint(-1, Q, (B, T, H, W), generator=gen)
    select = torch.rand(B, T, H, W, generator=gen) < 0.6
    select[0] = False  # nothing to score: NaN
    tables = D.contingency_tables(pred, gt, S, Q)
    ari = D.subset_fg_ari(pred, gt, select)
    for b in range(B):
        np.testing.assert_array_equal(tables[b].numpy(), loop_table(pred[b], gt[b], S, Q))
        keep = (select[b] & (gt[b] > 0)).flatten()
        if keep.any():
            assert abs(float(ari[b]) - adjusted_rand_score(gt[b].flatten()[keep], pred[b].flatten()[keep])) < 1e-9
        else:
            assert math.isnan(float(ari[b]))


@pytest.mark.parametrize("seed", range(6))
def test_premise_sums_match_loop_reference_on_random_clips(seed):
    gen = torch.Generator().manual_seed(10 + seed)
    B, T, S = 2 + seed % 2, 1 + seed % 3, 3 + seed
    grid = ((4, 4), (5, 3), (6, 6))[seed % 3]
    attn, alpha, true = random_case(gen, B, T, S, grid, scale=1 + seed % 3, objects=2 + seed % 3)
    for merge_iou in (0.5, 0.7):
        got = sums(attn, alpha, true, grid, merge_iou)
        ref = loop_premise_sums(attn, alpha, true, grid, merge_iou)
        assert set(got) == set(ref) == {f"{k}/{s}" for k in PREMISE_KEYS for s in ("sum", "count")}
        for key in ref:
            assert got[key] == pytest.approx(ref[key], abs=1e-9), key


def test_random_clips_exercise_every_case():
    """The random cases above do reach merges of every class and teaching in both directions (the tests can fail)."""
    gen = torch.Generator().manual_seed(99)
    totals = {}
    for _ in range(20):
        attn, alpha, true = random_case(gen, 3, 2, 6, (8, 8), scale=4, objects=3)
        D.accumulate(totals, sums(attn, alpha, true, (8, 8), 0.5))
    for key in [f"merge_audit/{c}" for c in D.AUDIT_CLASSES] + ["teaching/boundary/teacher_right_pct",
                                                                "teaching/boundary/student_right_pct",
                                                                "teaching/interior/teacher_right_pct",
                                                                "teaching/interior/student_right_pct"]:
        assert totals[f"{key}/sum"] > 0, key


# ----------------------------------------------------------------------------- hand-built clips

def two_squares(scale=2):
    """10x10 patch grid, one frame: object 1 on rows/cols 1-3, object 2 on rows/cols 6-8, background elsewhere;
    ground truth at `scale` pixels per patch. GT boundary (48): the 8 outer patches of each square and the 16
    background patches around each; GT interior (52): the two centres and the 50 background patches further out."""
    gt = torch.zeros(10, 10, dtype=torch.long)
    gt[1:4, 1:4] = 1
    gt[6:9, 6:9] = 2
    true = gt.repeat_interleave(scale, 0).repeat_interleave(scale, 1)[None, None]  # 1 1 R R
    return gt, true


def logits_of(labels, S, value=5.0):
    """labels (B, T, H, W) -> logits B T S N whose argmax and coverage are the labels."""
    return value * torch.nn.functional.one_hot(labels.flatten(2), S).permute(0, 1, 3, 2).float()


def test_patch_majority_and_regions_hand_built():
    true = torch.tensor([[0, 0, 1, 2],
                         [1, 1, 2, 1],
                         [-1, -1, 3, 3],
                         [-1, -1, 3, 0]]).view(1, 1, 4, 4)
    # patches of 2x2 pixels: {0,0,1,1} tie -> lowest id 0; {1,2,2,1} tie -> 1; unlabelled only -> -1; {3,3,3,0} -> 3
    assert D.patch_majority(true, (2, 2)).flatten().tolist() == [0, 1, -1, 3]
    gt, true = two_squares()
    assert torch.equal(D.patch_majority(true, (10, 10))[0, 0], gt)
    boundary, interior = D.ground_truth_regions(gt[None, None])
    assert int(boundary.sum()) == 16 + 32 and int(interior.sum()) == 2 + 50
    assert bool(interior[0, 0, 2, 2]) and bool(interior[0, 0, 7, 7]) and bool(interior[0, 0, 9, 0])
    assert bool(boundary[0, 0, 1, 1]) and bool(boundary[0, 0, 0, 0]) and bool(boundary[0, 0, 4, 4])
    assert not bool(boundary[0, 0, 5, 0])  # background patch touching no object


def test_who_is_right_where_hand_built():
    """Encoder labels = ground truth; decoder labels = ground truth except object 2's outer ring, given to object
    1's slot: the encoder is perfect everywhere, the decoder wrong on 8 of the 48 GT boundary patches only."""
    gt, true = two_squares()
    dec = gt.clone()
    ring = torch.zeros(10, 10, dtype=torch.bool)
    ring[6:9, 6:9] = True
    ring[7, 7] = False
    dec[ring] = 1
    attn, alpha = logits_of(gt[None, None], 3), logits_of(dec[None, None], 3)
    means = D.premise_means(sums(attn, alpha, true, (10, 10), 0.7))
    for name in ("encoder", "encoder_merged"):
        for set_name in D.SETS:
            assert means[f"premises/{set_name}/{name}_fg_ari"] == 1.0
            assert means[f"premises/{set_name}/{name}_acc"] == 1.0
    for name in ("decoder", "decoder_merged"):
        assert means[f"premises/interior/{name}_fg_ari"] == 1.0  # the two centres: two labels, two objects
        assert means[f"premises/interior/{name}_acc"] == 1.0
        assert means[f"premises/boundary/{name}_fg_ari"] == pytest.approx(
            adjusted_rand_score([1] * 8 + [2] * 8, [1] * 16))  # both rings in one slot: 0
        assert means[f"premises/boundary/{name}_acc"] == pytest.approx(40 / 48)
    assert means["premises/boundary/patch_pct"] == pytest.approx(48) and means["premises/interior/patch_pct"] == 52
    assert means["premises/boundary/encoder_acc_valid"] == 48 and means["merge_audit/pairs"] == 0


def audit_clips():
    """Two clips on the two-squares ground truth (1 frame, 6 slots); the merges are known by construction.
    Clip 0: object 1 split across slots 1 (wins its columns 1-2) and 2 (wins column 3), both covering all of it.
    Clip 1: slot 3 copies the background's coverage but never wins (empty); slot 4 covers object 1 and wins one
    background patch next to it; slot 5 covers object 2 and wins two patches of object 1."""
    gt, true = two_squares()
    A, Bm, bg = gt == 1, gt == 2, gt == 0
    clip0 = torch.full((6, 10, 10), -1.0)
    clip0[0] = 5.0 * bg
    clip0[1] = torch.where(A, 5.0, 0.0)
    clip0[1, 1:4, 3] = 4.8
    clip0[2] = torch.where(A, 4.8, 0.0)
    clip0[2, 1:4, 3] = 5.0
    clip0[3] = 5.0 * Bm
    clip1 = torch.zeros(6, 10, 10)
    p_bg, a12 = (0, 2), [(1, 1), (1, 2)]
    clip1[0] = 5.0 * bg
    clip1[0][p_bg] = 4.9
    clip1[1] = 5.0 * A
    for p in a12:
        clip1[1][p] = 4.9
    clip1[2] = 5.0 * Bm
    clip1[3] = 4.8 * bg
    clip1[4] = 4.9 * A
    clip1[4][p_bg] = 5.0
    clip1[5] = 4.9 * Bm
    for p in a12:
        clip1[5][p] = 5.0
    attn = torch.stack([clip0, clip1]).view(2, 1, 6, 100)
    return attn, gt, torch.cat([true, true])


def test_merge_audit_hand_built():
    attn, gt, true = audit_clips()
    labels = pseudo_labels(attn, attn, (10, 10), merge_iou=0.7)
    assert labels.slot_map.tolist() == [[0, 1, 1, 3, 4, 5], [0, 1, 2, 0, 1, 2]]
    gt2 = torch.stack([gt, gt])[:, None]
    assert D.merge_audit(labels, gt2).tolist() == [[1, 0, 0, 0], [0, 1, 1, 1]]  # split | with bg, two, empty
    classes = D.merge_classes(labels, gt2)  # B S 4: the class of each merged slot's pair (slot, representative)
    assert classes.sum(-1).tolist() == [[0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]  # merged slots: 2 | 3, 4, 5
    assert classes[0, 2].tolist() == [True, False, False, False]  # slot 2 into slot 1: one object split
    means = D.premise_means(sums(attn, attn, true, (10, 10), 0.7))
    assert means["merge_audit/pairs"] == 2.0 and means["merge_audit/pairs_total"] == 4
    for name in D.AUDIT_CLASSES:
        assert means[f"merge_audit/{name}"] == 0.5 and means[f"merge_audit/{name}_total"] == 1
    # clip 0: unmatched slot 2 makes object 1's column 3 (3 GT boundary patches) wrong, merging repairs it; clip 1:
    # the patches won by slots 4 and 5 (3 boundary patches) are wrong before merging (unmatched) and after (merged
    # into the wrong object's slot)
    assert means["premises/boundary/encoder_acc"] == pytest.approx((45 + 45) / 96)
    assert means["premises/boundary/encoder_merged_acc"] == pytest.approx((48 + 45) / 96)


def test_teaching_precision_hand_built():
    """Encoder = ground truth; the decoder puts all of object 2 in object 1's slot. SSync's boundary (from the
    encoder) is the 48 GT boundary patches: on object 2's ring (8) the teacher (encoder) is right and the student
    wrong. Its interior (from the decoder) is 52 patches: at object 2's centre the student (encoder) is right."""
    gt, true = two_squares()
    dec = torch.where(gt == 2, 1, gt)
    attn, alpha = logits_of(gt[None, None], 3), logits_of(dec[None, None], 3)
    labels = pseudo_labels(attn, alpha, (10, 10))
    result = D.teaching_precision(labels, gt[None, None])
    assert result["boundary"].tolist() == [[8, 0, 40, 0]] and result["boundary_patches"].tolist() == [48]
    assert result["interior"].tolist() == [[0, 1, 51, 0]] and result["interior_patches"].tolist() == [52]
    means = D.premise_means(sums(attn, alpha, true, (10, 10), 0.7))
    assert means["teaching/boundary/teacher_right_pct"] == pytest.approx(100 * 8 / 48)
    assert means["teaching/interior/student_right_pct"] == pytest.approx(100 / 52)
    assert means["teaching/interior/teacher_right_pct"] == 0.0


def test_premise_sums_on_evaluation_windows_and_means():
    """evaluate's windows (3 frames of 7: frame 6 dropped) and their pseudo-labels, computed once for both statistics,
    give the premise sums of each window clip by clip."""
    gen = torch.Generator().manual_seed(5)
    attn, alpha, true = random_case(gen, 2, 7, 4, (4, 4), scale=2, objects=2)
    out = SimpleNamespace(attn_logits=attn, alpha=alpha, grid=(4, 4))
    labels = window_labels(out, 3, 0.6)
    assert labels.enc_labels.shape == (4, 3, 4, 4)  # B * 2 windows
    got = D.premise_sums(labels, windows(true, 3))
    expected_windows = [(attn[:, s:s + 3], alpha[:, s:s + 3], true[:, s:s + 3]) for s in (0, 3)]  # frame 6 dropped
    ref = {}
    for b in range(2):
        for a, al, tr in expected_windows:
            D.accumulate(ref, sums(a[b:b + 1], al[b:b + 1], tr[b:b + 1], (4, 4), 0.6))
    assert got.keys() == ref.keys()
    for key in ref:
        assert got[key] == pytest.approx(ref[key])
    means = D.premise_means(D.accumulate(dict(got), got))  # two equal batches: same means, counts doubled
    single = D.premise_means(got)
    for key in PREMISE_KEYS:
        assert means[key] == pytest.approx(single[key], nan_ok=True)
        assert means[f"{key}_valid"] == 2 * single[f"{key}_valid"]
    assert math.isnan(D.premise_means({"x/sum": 0.0, "x/count": 0.0})["x"])


# ----------------------------------------------------------------------------- in evaluate

def test_evaluate_reports_the_premises(tmp_path):
    from ssync_lib.data.synthetic import generate_from_config

    torch.manual_seed(1)
    cfg = get_config("smoke", {"model.slot_init": "learned"})
    model = create_model(cfg.model, cfg.data.input_size)
    cfg.data.root, cfg.data.num_train, cfg.data.num_val = str(tmp_path / "data"), 5, 2
    generate_from_config(cfg, workers=1, progress=False)

    # evaluate reports the premises (a dataset-level mean of the same sums), and the sweep table shows them in %
    metrics = evaluate(model, cfg, progress=False)
    assert set(PREMISE_KEYS) <= set(metrics)
    assert 0 <= metrics["premises/interior/patch_pct"] <= 100 and metrics["merge_audit/pairs_valid"] > 0
    summary = pd.DataFrame([{"objective": "baseline", "slots": 4, "seed": 0, **{k: metrics[k] for k in PREMISE_KEYS}}])
    table = markdown_table(summary, ["premises/interior/encoder_acc", "merge_audit/pairs"])
    cells = table.splitlines()[2].split("|")
    assert cells[4].strip() == f"{100 * metrics['premises/interior/encoder_acc']:.1f}"
    assert cells[5].strip() == f"{metrics['merge_audit/pairs']:.1f}"
