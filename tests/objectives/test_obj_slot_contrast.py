"""Reconstruction and SlotContrast's slot-slot loss against plain-loop versions (docs/method.md §1.7)."""
import pytest
import torch

from ssync_lib.objectives.reconstruction import reconstruction_loss
from ssync_lib.objectives.slot_contrast import slot_contrast_loss


def loop_slot_contrast(slots, tau):
    """For each frame pair and each frame-(t+1) slot j of the batch: -log softmax over all frame-t slots i."""
    B, T, S, _ = slots.shape
    rows = [[slots[b, t, s] / slots[b, t, s].norm() for b in range(B) for s in range(S)] for t in range(T)]
    terms = []
    for t in range(T - 1):
        for j in range(B * S):
            logits = torch.stack([rows[t][i] @ rows[t + 1][j] / tau for i in range(B * S)])
            terms.append(-(logits[j] - torch.logsumexp(logits, 0)))
    return torch.stack(terms).mean() if terms else slots.new_zeros(())


@pytest.mark.parametrize("B,T,S", [(3, 4, 5), (1, 2, 1), (2, 1, 4), (1, 3, 7), (4, 2, 2)])
def test_slot_contrast_matches_loop(B, T, S):
    torch.manual_seed(B + T + S)
    slots = torch.randn(B, T, S, 8, dtype=torch.float64, requires_grad=True)
    got, ref = slot_contrast_loss(slots, tau=0.1), loop_slot_contrast(slots, 0.1)
    assert torch.isfinite(got) and torch.allclose(got, ref, atol=1e-5)
    if T > 1:
        assert torch.allclose(torch.autograd.grad(got, slots)[0], torch.autograd.grad(ref, slots)[0], atol=1e-5)
    else:
        assert got.item() == 0.0  # T = 1: no frame pair


def test_slot_contrast_direction_is_softmax_over_frame_t():
    # Frame t: two identical slots; frame t+1: two orthogonal slots. With the softmax over frame t every column
    # is a tie between the two frame-t rows: loss log 2. A softmax over frame t+1 would instead cost about
    # 1/tau for frame-t slot 1 (its best match is frame-(t+1) slot 0, not 1).
    z = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]]])  # B=1 T=2 S=2 d=2
    assert torch.allclose(slot_contrast_loss(z, tau=1e-3), torch.log(torch.tensor(2.0)), atol=1e-5)


def test_slot_contrast_shape_error():
    with pytest.raises(ValueError, match="slots"):
        slot_contrast_loss(torch.randn(2, 3, 4))


def test_reconstruction_matches_loop_and_detaches_target():
    recon = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    features = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    loss = reconstruction_loss(recon, features)
    ref = sum(((recon[b, t, n] - features[b, t, n]) ** 2).sum() for b in range(2) for t in range(3) for n in range(5))
    assert torch.allclose(loss, ref / recon.numel(), atol=1e-10)
    loss.backward()
    assert features.grad is None and recon.grad is not None
    with pytest.raises(ValueError, match="features"):
        reconstruction_loss(recon, features[:, :2])
