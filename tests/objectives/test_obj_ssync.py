"""SSync pseudo-labels and losses against plain-loop versions (docs/method.md §4)."""
import math

import pytest
import torch

from ssync_lib.objectives.ssync import label_statistics, pseudo_labels, ssync_loss, ssync_weight
from ssync_lib.objectives.ssync_reference import labels_mismatch, loop_pseudo_labels

def blocky_logits(gen, B, T, S, H, W):
    """Piecewise-constant slot logits with redundant copies of slots (some merged, some partly, some never winning)."""
    block = int(torch.randint(1, 4, (1,), generator=gen))
    hb, wb = math.ceil(H / block), math.ceil(W / block)
    objects = max(1, S - int(torch.randint(0, S, (1,), generator=gen)))
    lab = torch.randint(0, objects, (B, T, hb, wb), generator=gen)
    lab = lab.repeat_interleave(block, 2).repeat_interleave(block, 3)[:, :, :H, :W].reshape(B, T, H * W)
    logits = 4.0 * torch.nn.functional.one_hot(lab, S).permute(0, 1, 3, 2).float()  # B T S N
    for r in range(objects, S):  # redundant slots: copies of an earlier slot (chains possible)
        src = int(torch.randint(0, r, (1,), generator=gen))
        kind = int(torch.randint(0, 3, (1,), generator=gen))
        logits[:, :, r] = logits[:, :, src] + [0.2, -1.0, -10.0][kind]  # competes / loses / never wins the argmax
        flip = torch.rand(B, T, H * W, generator=gen) < float(torch.rand(1, generator=gen)) * 0.4
        logits[:, :, r] += 4.0 * flip  # partial overlap: some extra coverage
    return logits + 0.3 * torch.randn(B, T, S, H * W, generator=gen)


def test_pseudo_labels_match_loop_on_random_blocky_inputs():
    gen = torch.Generator().manual_seed(0)
    checked = merged = 0
    for case in range(36):
        B, T, S = 1 + case % 2, 1 + case % 3, 1 + int(torch.randint(0, 7, (1,), generator=gen))
        H, W = (int(x) for x in torch.randint(1, 8, (2,), generator=gen))
        attn = blocky_logits(gen, B, T, S, H, W)
        dec = attn + torch.randn(attn.shape, generator=gen)
        for thr in (0.5, 0.6, 0.7, 0.8, 0.9):
            ref = loop_pseudo_labels(attn, dec, (H, W), thr)
            # An IoU within float rounding of the threshold is decided by rounding, not by the rule: such a
            # (case, threshold) is skipped here; exact ties are tested in test_merge_strict_threshold_and_ties.
            if ((ref.iou - thr).abs() < 1e-6).any():
                continue
            got = pseudo_labels(attn, dec, (H, W), merge_iou=thr)
            assert labels_mismatch(got, ref) == []
            checked += 1
            merged += int((got.slot_map != torch.arange(S)).sum())
    assert checked >= 150 and merged >= 50  # most combinations compared, and many slots really were merged


def test_merge_transitive_chain_and_area_ties():
    # 1 frame, 1x8 grid. Coverage = logit above the slot's mean over the clip.
    attn = torch.tensor([[2, 2, 2, 2, 2, 0, 0, 0],  # 0 covers {0..4}; wins patches 0..4 and 7 (all-zero column)
                         [0, 1, 1, 1, 1, 1, 0, 0],  # 1 covers {1..5}; IoU(0,1) = 4/6; wins patch 5 (first max)
                         [0, 0, 1, 1, 1, 1, 1, 0],  # 2 covers {2..6}; IoU(1,2) = 4/6, IoU(0,2) = 3/7; wins patch 6
                         [-5, -5, -5, -5, -5, -5, -4, -4],  # 3 covers {6,7}, never wins: area 0
                         [-5, -5, -5, -5, -5, -5, -4, -4]],  # 4 = 3: IoU 1, area 0 (a tie with 3)
                        dtype=torch.float).view(1, 1, 5, 8)
    labels = pseudo_labels(attn, attn, (1, 8), merge_iou=0.6)
    assert labels.edges[0, 0, 2].item() is False and labels.edges[0, 0, 1].item() is True
    assert labels.slot_map.tolist() == [[0, 0, 0, 3, 3]]  # 0-1-2 by transitivity (rep 0: area 6); tie -> lowest 3
    assert labels.enc_labels.flatten().tolist() == [0] * 8  # patches 5 and 6 rewritten from slots 1 and 2 to 0
    assert pseudo_labels(attn, attn, (2, 4), merge_iou=0.7).slot_map.tolist() == [[0, 1, 2, 3, 3]]


def test_merge_threshold_is_strict_and_empty_frames_count():
    # Two slots covering {0..5} and {2..7} of 8 patches: IoU exactly 0.5 in each of 2 frames.
    pair = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 1, 1]], dtype=torch.float)
    attn = pair.view(1, 1, 2, 8).repeat(1, 2, 1, 1)
    assert pseudo_labels(attn, attn, (2, 4), merge_iou=0.5).slot_map.tolist() == [[0, 1]]  # 0.5 > 0.5 is false
    assert pseudo_labels(attn, attn, (2, 4), merge_iou=0.49).slot_map.tolist() == [[0, 0]]
    # A third frame where neither slot covers anything (logits at their means... below): IoU 0, still counted.
    empty = torch.cat([attn, torch.full((1, 1, 2, 8), -1.0)], dim=1)  # means drop; frames 0, 1 still covered
    labels = pseudo_labels(empty, empty, (2, 4), merge_iou=0.3)
    assert labels.coverage[0, 2].sum() == 0
    assert torch.allclose(labels.iou[0, 0, 1], torch.tensor(1 / 3))  # (0.5 + 0.5 + 0) / 3


def loop_ssync_loss(attn_logits, alpha, labels):
    B, T, S, N = attn_logits.shape

    def masked_mse(logits, target, select):
        total, count = logits.new_zeros(()), 0
        for b in range(B):
            for t in range(T):
                for n in range(N):
                    if select[b, t].flatten()[n]:
                        p = logits[b, t, :, n].softmax(0)
                        onehot = torch.zeros(S, dtype=logits.dtype)
                        onehot[target[b, t].flatten()[n]] = 1.0
                        total = total + ((p - onehot) ** 2).sum()
                        count += 1
        return total / (count * S) if count else total

    return (masked_mse(alpha, labels.enc_labels, labels.boundary),
            masked_mse(attn_logits, labels.dec_labels, labels.interior))


@pytest.mark.parametrize("B,T,S,grid", [(2, 3, 5, (4, 6)), (1, 1, 4, (3, 5)), (2, 2, 1, (3, 3)), (1, 4, 3, (1, 7)),
                                        (3, 1, 7, (6, 2))])
def test_ssync_loss_matches_loop_values_and_gradients(B, T, S, grid):
    gen = torch.Generator().manual_seed(B * 100 + T * 10 + S)
    attn = blocky_logits(gen, B, T, S, *grid).double().requires_grad_()
    alpha = (attn.detach() + torch.randn(attn.shape, generator=gen, dtype=torch.float64)).requires_grad_()
    labels = pseudo_labels(attn.detach(), alpha.detach(), grid, merge_iou=0.6)
    got, ref = ssync_loss(attn, alpha, labels), loop_ssync_loss(attn, alpha, labels)
    for g, r in zip(got, ref):
        assert torch.allclose(g, r, atol=1e-5)
    grads = torch.autograd.grad(sum(got), (attn, alpha))
    ref_grads = torch.autograd.grad(sum(ref), (attn, alpha), allow_unused=True, materialize_grads=True)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-5)


def test_clip_with_one_label_has_no_boundary_and_is_all_interior():
    attn = torch.randn(2, 3, 4, 12)
    attn[:, :, 2] += 100.0  # slot 2 wins every patch
    alpha = attn.clone().requires_grad_()
    labels = pseudo_labels(attn, alpha.detach(), (3, 4))
    assert not labels.boundary.any() and labels.interior.all()
    loss_dec, loss_enc = ssync_loss(attn.requires_grad_(), alpha, labels)
    assert loss_dec.item() == 0.0 and torch.isfinite(loss_enc)  # empty boundary: 0, not NaN
    (loss_dec + loss_enc).backward()
    assert torch.isfinite(alpha.grad).all() and torch.isfinite(attn.grad).all()


def test_clip_with_no_interior_gives_zero_encoder_loss():
    H, W = 4, 5
    checker = (torch.arange(H)[:, None] + torch.arange(W)) % 2  # H W, every patch differs from its 4-neighbours
    dec = 5.0 * torch.nn.functional.one_hot(checker.flatten(), 2).T.float().view(1, 1, 2, H * W)
    attn = torch.randn(1, 1, 2, H * W, requires_grad=True)
    labels = pseudo_labels(attn.detach(), dec, (H, W), merge_iou=0.99)
    assert not labels.interior.any()
    loss_dec, loss_enc = ssync_loss(attn, dec, labels)
    assert loss_enc.item() == 0.0 and not torch.isnan(loss_dec)
    loss_enc.backward()
    assert torch.equal(attn.grad, torch.zeros_like(attn))


def test_single_slot_and_single_patch_edge_cases():
    for shape, grid in (((1, 2, 1, 6), (2, 3)), ((2, 1, 3, 1), (1, 1)), ((1, 1, 1, 1), (1, 1))):
        attn = torch.randn(shape, requires_grad=True)
        labels = pseudo_labels(attn.detach(), attn.detach(), grid)
        losses = ssync_loss(attn, attn, labels)
        assert all(torch.isfinite(x) for x in losses)
        assert not labels.boundary.any()  # one slot, or one patch whose neighbours are all itself


def test_errors_name_the_argument():
    attn = torch.randn(1, 2, 3, 12)
    with pytest.raises(ValueError, match="grid"):
        pseudo_labels(attn, attn, (3, 5))
    with pytest.raises(ValueError, match="alpha has shape"):
        pseudo_labels(attn, attn[:, :, :2], (3, 4))
    with pytest.raises(ValueError, match="attn_logits must have shape"):
        pseudo_labels(attn[0], attn, (3, 4))
    bad = attn.clone()
    bad[0, 1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="alpha contains NaN"):
        pseudo_labels(attn, bad, (3, 4))
    labels = pseudo_labels(attn, attn, (3, 4))
    with pytest.raises(ValueError, match="attn_logits contains NaN"):
        ssync_loss(bad, attn, labels)
    with pytest.raises(ValueError, match="labels.enc_labels"):
        ssync_loss(attn[:, :1], attn[:, :1], labels)
    with pytest.raises(ValueError, match="alpha has shape"):
        ssync_loss(attn, attn[..., :6], labels)


def test_nan_checks_read_accelerator_tensors_in_debug_mode_only(monkeypatch):
    """Off the CPU the NaN test would synchronise the host: it is skipped there unless SSYNC_DEBUG=1. A "meta" tensor
    stands for an accelerator's: reading its values on the host is impossible, so any read raises."""
    from ssync_lib.objectives.ssync import _check_logits

    monkeypatch.delenv("SSYNC_DEBUG", raising=False)
    _check_logits("alpha", torch.empty(1, 2, 3, 4, device="meta"))  # shapes checked, values not read
    with pytest.raises(ValueError, match="must have shape"):
        _check_logits("alpha", torch.empty(2, 3, 4, device="meta"))
    monkeypatch.setenv("SSYNC_DEBUG", "1")
    with pytest.raises((RuntimeError, NotImplementedError)):  # debug mode reads the values
        _check_logits("alpha", torch.empty(1, 2, 3, 4, device="meta"))


def test_ssync_weight_warmup():
    assert [ssync_weight(s, 100) for s in (0, 29, 30, 99)] == [0.0, 0.0, 1.0, 1.0]  # §4.6 off for the first 30%
    assert ssync_weight(5, 10, warmup_frac=0.0) == 1.0


def test_label_statistics_on_a_hand_built_clip():
    # 1 clip, 1 frame of 2x2 patches, 3 slots. Slot-attention argmax [[0, 1], [2, 2]]: the coverage masks are
    # disjoint, nothing merges; the decoder argmax [[0, 0], [2, 2]] agrees with the encoder on 3 of 4 patches.
    attn_logits = torch.full((1, 1, 3, 4), -5.0)
    for n, k in enumerate([0, 1, 2, 2]):
        attn_logits[0, 0, k, n] = 5.0
    alpha = torch.full((1, 1, 3, 4), -5.0)
    for n, k in enumerate([0, 0, 2, 2]):
        alpha[0, 0, k, n] = 5.0
    labels = pseudo_labels(attn_logits, alpha, (2, 2), merge_iou=0.7)
    stats = label_statistics(labels)
    assert stats["merged_slots"].tolist() == [0.0]
    assert stats["agreement_pct"].tolist() == [75.0]
    assert stats["boundary_pct"].item() == pytest.approx(100 * labels.boundary.float().mean().item())
    # every encoder patch has a differing neighbour and an agreeing one (replicate padding): all boundary
    assert stats["boundary_pct"].tolist() == [100.0]
    # the decoder map [[0, 0], [2, 2]] has no patch whose 10 neighbours all agree: no interior
    assert stats["interior_pct"].tolist() == [0.0]


def test_label_statistics_counts_merged_slots():
    # slots 0 and 1 cover the same patches (IoU 1 > 0.7): slot 1 merges into slot 0; slot 2 stays
    top, bottom = torch.tensor([5.0, 5.0, -5.0, -5.0]), torch.tensor([-5.0, -5.0, 5.0, 5.0])
    attn_logits = torch.stack([top, top - 1e-3, bottom])[None, None]  # 1 1 3 4; slot 1 never wins the argmax
    labels = pseudo_labels(attn_logits, attn_logits, (2, 2), merge_iou=0.7)
    stats = label_statistics(labels)
    assert labels.slot_map.tolist() == [[0, 0, 2]]
    assert stats["merged_slots"].tolist() == [1.0]
    assert stats["agreement_pct"].tolist() == [100.0]
