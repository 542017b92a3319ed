"""Projection MLP, slot initialisation and slot attention (docs/method.md §1.2-§1.4)."""
import pytest
import torch
import torch.nn.functional as F

from ssync_lib.config import get_config
from ssync_lib.config_checks import validate
from ssync_lib.errors import ConfigError
from ssync_lib.models.slot_attention import ProjectionMLP, SlotAttention, SlotInit


def reference_step(sa: SlotAttention, slots, inputs):
    """§1.4 written out per video and per slot, with the module's weights."""
    out_slots, out_attn, out_logits = [], [], []
    for b in range(len(slots)):
        x = F.layer_norm(inputs[b], (inputs.shape[-1],), sa.norm_inputs.weight, sa.norm_inputs.bias)  # N d
        k, v = x @ sa.to_k.weight.T, x @ sa.to_v.weight.T  # N d
        s_n = F.layer_norm(slots[b], (slots.shape[-1],), sa.norm_slots.weight, sa.norm_slots.bias)  # S d
        q = s_n @ sa.to_q.weight.T  # S d
        logits = torch.stack([k @ q[s] for s in range(len(q))]) / q.shape[-1] ** 0.5  # S N
        attn = torch.exp(logits) / torch.exp(logits).sum(dim=0, keepdim=True)  # softmax over slots
        weights = (attn + 1e-8) / (attn + 1e-8).sum(dim=1, keepdim=True)  # renormalised over patches
        new = []
        for s in range(len(q)):
            update = weights[s] @ v  # d
            h = s_n[s]  # the GRU state is the normalised slot (public-code behaviour)
            gi, gh = sa.gru.weight_ih @ update + sa.gru.bias_ih, sa.gru.weight_hh @ h + sa.gru.bias_hh
            r = torch.sigmoid(gi[:len(h)] + gh[:len(h)])
            z = torch.sigmoid(gi[len(h):2 * len(h)] + gh[len(h):2 * len(h)])
            n = torch.tanh(gi[2 * len(h):] + r * gh[2 * len(h):])
            slot = (1 - z) * n + z * h
            new.append(slot + sa.mlp(slot))  # residual MLP on LN(slot)
        out_slots.append(torch.stack(new))
        out_attn.append(attn)
        out_logits.append(logits)
    return torch.stack(out_slots), torch.stack(out_attn), torch.stack(out_logits)


def test_step_matches_the_written_out_update():
    torch.manual_seed(0)
    sa = SlotAttention(slot_dim=8)
    slots, inputs = torch.randn(2, 3, 8), torch.randn(2, 10, 8)
    k, v = sa.keys_values(inputs)
    got = sa.step(slots, k, v)
    for g, r in zip(got, reference_step(sa, slots, inputs)):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)


def test_forward_shapes_softmax_over_slots_and_gradients():
    torch.manual_seed(0)
    proj, init, sa = ProjectionMLP(feature_dim=12, slot_dim=8), SlotInit(4, 8, "learned"), SlotAttention(8)
    projected = proj(torch.randn(2, 10, 12))  # B N d
    assert projected.shape == (2, 10, 8)
    slots, attn, logits = sa(init(2), *sa.keys_values(projected), iters=3)
    assert slots.shape == (2, 4, 8) and attn.shape == logits.shape == (2, 4, 10)
    torch.testing.assert_close(attn, logits.softmax(dim=1))
    torch.testing.assert_close(attn.sum(dim=1), torch.ones(2, 10))
    (slots.square().mean() + logits.mean()).backward()
    for module in (proj, init, sa):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_slot_init_modes():
    torch.manual_seed(0)
    learned = SlotInit(5, 8, "learned")
    s = learned(3)
    assert s.shape == (3, 5, 8) and torch.equal(s[0], s[2])  # one learned set shared by all videos
    gaussian = SlotInit(5, 8, "gaussian")
    a, b = gaussian(3), gaussian(3)
    assert a.shape == (3, 5, 8) and not torch.equal(a[0], a[1]) and not torch.equal(a, b)  # fresh samples
    a.sum().backward()
    assert gaussian.mean.grad is not None and gaussian.log_std.grad is not None


def test_unknown_slot_init_is_refused_by_the_one_choice_check():
    """The class and validate() share config_checks.CHOICES: the same message, the same error type."""
    with pytest.raises(ConfigError, match=r"model.slot_init='random': must be one of \['learned', 'gaussian'\]"):
        SlotInit(5, 8, "random")
    with pytest.raises(ConfigError, match=r"model.slot_init='random': must be one of \['learned', 'gaussian'\]"):
        validate(get_config("smoke", {"model.slot_init": "random"}))


def test_return_iterations_keeps_every_iteration_and_changes_nothing():
    torch.manual_seed(0)
    sa = SlotAttention(8)
    slots, inputs = torch.randn(2, 4, 8), torch.randn(2, 10, 8)
    k, v = sa.keys_values(inputs)
    plain = sa(slots, k, v, iters=3)
    *with_iters, per_iter = sa(slots, k, v, iters=3, return_iterations=True)
    for a, b in zip(plain, with_iters):
        assert torch.equal(a, b)  # the same computation
    assert per_iter.shape == (2, 3, 4, 10)
    assert torch.equal(per_iter[:, -1], plain[1])  # the last iteration's map is the encoder attention
    first = sa.step(slots, k, v)[1]
    assert torch.equal(per_iter[:, 0], first)
