"""The composed objectives (baseline, dense, ssync): terms, weights, schedules, edge cases without NaN."""
import pytest
import torch

from ssync_lib.config import ObjectiveConfig
from ssync_lib.models.output import ModelOutput
from ssync_lib.objectives import OBJECTIVES, build_objective
from ssync_lib.objectives.dense_alignment import DenseAlignment, redundancy_loss
from ssync_lib.objectives.reconstruction import reconstruction_loss
from ssync_lib.objectives.slot_contrast import slot_contrast_loss
from ssync_lib.objectives.ssync import pseudo_labels, ssync_loss

D, d = 6, 4
TERMS = {"baseline": ["recon", "slot_contrast"],
         "dense": ["recon", "slot_contrast", "dense_dec", "dense_enc", "redundancy"],
         "ssync": ["recon", "slot_contrast", "ssync_dec", "ssync_enc"]}


def model_output(B=2, T=3, S=4, grid=(2, 3), attn_logits=None, alpha=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    N = grid[0] * grid[1]
    rand = lambda *shape: torch.randn(*shape, generator=gen).requires_grad_()  # noqa: E731
    attn_logits = rand(B, T, S, N) if attn_logits is None else attn_logits.requires_grad_()
    alpha = rand(B, T, S, N) if alpha is None else alpha.requires_grad_()
    return ModelOutput(slots=rand(B, T, S, d), attn=attn_logits.softmax(2), attn_logits=attn_logits, alpha=alpha,
                       masks=alpha.softmax(2), recon=rand(B, T, N, D), features=torch.randn(B, T, N, D, generator=gen),
                       projected=rand(B, T, N, d), grid=grid)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_terms_are_the_weighted_losses_and_sum_to_total(name):
    cfg = ObjectiveConfig(name=name, dense_group=2, dense_topk=2)
    objective = build_objective(cfg, D, d, max_steps=100)
    out = model_output(seed=1)
    for step in (0, 50):  # dense: regulariser on / contrastive on; ssync: warm-up / on
        losses = objective(out, step)
        assert list(losses.terms) == TERMS[name]
        assert torch.allclose(losses.total, sum(losses.terms.values()))
        assert torch.allclose(losses.terms["recon"], reconstruction_loss(out.recon, out.features))
        assert torch.allclose(losses.terms["slot_contrast"], 0.5 * slot_contrast_loss(out.slots, 0.1))
        if name == "dense":
            dec, enc = objective.dense(out.recon, out.features, out.projected, out.attn_logits, out.alpha)
            red = redundancy_loss(out.slots[:, -1], out.attn[:, -1], 1)
            expected = (0.0, 0.0, 0.1 * red) if step == 0 else (0.1 * dec, 0.1 * enc, 0.0)
            got = (losses.terms["dense_dec"], losses.terms["dense_enc"], losses.terms["redundancy"])
            assert all(torch.allclose(g, torch.as_tensor(e)) for g, e in zip(got, expected))
        if name == "ssync":
            labels = pseudo_labels(out.attn_logits.detach(), out.alpha.detach(), out.grid, 0.7)
            dec, enc = ssync_loss(out.attn_logits, out.alpha, labels)
            expected = (0.0, 0.0) if step == 0 else (dec, enc)
            assert torch.allclose(losses.terms["ssync_dec"], torch.as_tensor(expected[0]))
            assert torch.allclose(losses.terms["ssync_enc"], torch.as_tensor(expected[1]))


def test_dense_objective_holds_the_projections():
    objective = build_objective(ObjectiveConfig(name="dense"), feature_dim=384, slot_dim=64, max_steps=10)
    assert isinstance(objective.dense, DenseAlignment)
    shapes = sorted(tuple(p.shape) for p in objective.parameters())
    assert shapes == [(64, 64), (64, 384)]  # P2: d -> d and P: D -> d, no biases
    assert list(build_objective(ObjectiveConfig(name="ssync"), 384, 64, 10).parameters()) == []


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="baseline.*dense.*ssync"):
        build_objective(ObjectiveConfig(name="srl"), D, d, 10)


def edge_cases():
    one_label = torch.zeros(2, 3, 4, 6)
    one_label[:, :, 1] = 10.0  # every patch has label 1: no boundary, all interior
    checker = (torch.arange(2)[:, None] + torch.arange(3)) % 2
    no_interior = 10.0 * torch.nn.functional.one_hot(checker.flatten(), 4).T.float().view(1, 1, 4, 6)
    return {"T=1": model_output(T=1), "S=1": model_output(S=1), "non-square": model_output(grid=(3, 5)),
            "one patch": model_output(T=1, grid=(1, 1)), "T=1 S=1": model_output(T=1, S=1, grid=(1, 4)),
            "one label": model_output(attn_logits=one_label.clone(), alpha=one_label.clone()),
            "no interior": model_output(B=1, T=1, attn_logits=no_interior.clone(), alpha=no_interior.clone())}


@pytest.mark.parametrize("case", list(edge_cases()))
@pytest.mark.parametrize("name", OBJECTIVES)
@pytest.mark.parametrize("chunk", [0, 4])
def test_no_nan_on_edge_cases(case, name, chunk):
    out = edge_cases()[case]
    objective = build_objective(ObjectiveConfig(name=name, dense_group=2, dense_chunk=chunk), D, d, max_steps=10)
    for step in (0, 9):
        losses = objective(out, step)
        assert all(torch.isfinite(v) for v in losses.terms.values()), losses.terms
        grads = torch.autograd.grad(losses.total, [out.recon, out.attn_logits, out.alpha, out.projected],
                                    allow_unused=True, materialize_grads=True)
        assert all(torch.isfinite(g).all() for g in grads)
