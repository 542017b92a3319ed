"""SRL's dense alignment and slot-redundancy regulariser against plain-loop versions (docs/method.md §3)."""
import pytest
import torch
import torch.nn.functional as F

from ssync_lib.objectives.dense_alignment import (DenseAlignment, decoder_alignment_loss, encoder_alignment_loss,
                                                  redundancy_loss)

TAU = 0.1


def loop_decoder(z, u, sem):
    """Sum over anchors of the decoder-side loss, one anchor at a time."""
    total = z.new_zeros(())
    for b in range(z.shape[0]):
        for i in range(z.shape[1]):
            s = torch.stack([z[b, i] @ u[b, j] / TAU for j in range(z.shape[1])])
            log_p = s - torch.logsumexp(s, 0)
            semi = [log_p[j] for j in range(z.shape[1]) if sem[b, j] == sem[b, i]]  # A_i, i included
            total = total - (log_p[i] + sum(semi) / len(semi)) / 2
    return total


def loop_encoder(h, f, sem, k):
    """Sum over anchors of the encoder-side loss, one anchor at a time (self excluded; empty D_i gives 0)."""
    total = h.new_zeros(())
    B, M = h.shape[:2]
    for b in range(B):
        for i in range(M):
            others = [j for j in range(M) if j != i]
            if not others:
                continue
            s = {j: h[b, i] @ h[b, j] / TAU for j in others}
            lse = torch.logsumexp(torch.stack(list(s.values())), 0)
            nearest = sorted(others, key=lambda j: -float(f[b, i] @ f[b, j]))[:min(k, M - 1)]  # K_i
            semi = [j for j in others if sem[b, j] == sem[b, i]]  # D_i
            term_k = sum(s[j] - lse for j in nearest) / len(nearest)
            term_d = sum(s[j] - lse for j in semi) / len(semi) if semi else 0.0
            total = total - (term_k + term_d) / 2
    return total


def random_inputs(gen, B, M, d=6, D=5, S=3, dtype=torch.float64):
    z = F.normalize(torch.randn(B, M, d, generator=gen, dtype=dtype), dim=-1).requires_grad_()
    u = F.normalize(torch.randn(B, M, d, generator=gen, dtype=dtype), dim=-1)
    f = F.normalize(torch.randn(B, M, D, generator=gen, dtype=dtype), dim=-1)
    sem = torch.randint(0, S, (B, M), generator=gen)
    return z, u, f, sem


@pytest.mark.parametrize("B,M,S,k", [(2, 12, 3, 4), (1, 1, 2, 4), (1, 2, 1, 4), (3, 9, 1, 2), (2, 15, 15, 20)])
@pytest.mark.parametrize("chunk", [0, 4])
def test_alignment_losses_match_loop(B, M, S, k, chunk):
    gen = torch.Generator().manual_seed(M * 10 + S)
    z, u, f, sem = random_inputs(gen, B, M, S=S)
    got = (decoder_alignment_loss(z, u, sem, TAU, chunk), encoder_alignment_loss(z, f, sem, k, TAU, chunk))
    ref = (loop_decoder(z, u, sem) / (B * M), loop_encoder(z, f, sem, k) / (B * M))
    for g, r in zip(got, ref):
        assert torch.isfinite(g)
        assert torch.allclose(g, r, atol=1e-5)
        if r.requires_grad:
            assert torch.allclose(torch.autograd.grad(g, z)[0], torch.autograd.grad(r, z)[0], atol=1e-5)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("chunk", [1, 5, 16, 40, 100])
def test_chunked_equals_direct_in_value_and_gradient(dtype, tol, chunk):
    gen = torch.Generator().manual_seed(chunk)
    z, u, f, sem = random_inputs(gen, 2, 40, d=8, D=7, S=4, dtype=dtype)
    h = F.normalize(torch.randn(2, 40, 8, generator=gen, dtype=dtype), dim=-1).requires_grad_()
    for loss_fn, x, args in ((decoder_alignment_loss, z, (u, sem)), (encoder_alignment_loss, h, (f, sem, 6))):
        direct = loss_fn(x, *args, chunk=0)
        chunked = loss_fn(x, *args, chunk=chunk)
        assert torch.allclose(direct, chunked, rtol=tol, atol=tol)
        g_direct, g_chunked = torch.autograd.grad(direct, x)[0], torch.autograd.grad(chunked, x)[0]
        assert torch.allclose(g_direct, g_chunked, rtol=tol, atol=tol)


def loop_dense_module(module, recon, features, projected, attn_logits, alpha):
    """DenseAlignment by explicit loops over the frame groups of each video (last partial group as is)."""
    B, T, N, _ = recon.shape
    g = module.group
    dec = enc = recon.new_zeros(())
    for b in range(B):
        for start in range(0, T, g):
            frames = slice(start, min(start + g, T))
            take = lambda x: x[b:b + 1, frames].reshape(1, -1, x.shape[-1])  # noqa: E731  1 M C, frame-major
            z = F.normalize(take(recon) @ module.P.weight.T, dim=-1)
            u = F.normalize(take(features) @ module.P.weight.T, dim=-1).detach()
            h = F.normalize(take(projected) @ module.P2.weight.T, dim=-1)
            f = F.normalize(take(features), dim=-1)
            sem_attn = attn_logits[b, frames].argmax(1).reshape(1, -1)
            sem_dec = alpha[b, frames].argmax(1).reshape(1, -1)
            dec = dec + loop_decoder(z, u, sem_attn)
            enc = enc + loop_encoder(h, f, sem_dec, module.topk * (frames.stop - start))
    return module.scale * dec / (B * T * N), module.scale * enc / (B * T * N)


@pytest.mark.parametrize("B,T,S,grid,g", [(2, 5, 3, (2, 3), 2), (1, 1, 4, (3, 2), 4), (2, 3, 1, (1, 4), 3),
                                          (1, 4, 2, (1, 1), 3)])
@pytest.mark.parametrize("chunk", [0, 5])
def test_dense_module_matches_loop_over_groups(B, T, S, grid, g, chunk):
    torch.manual_seed(T * 7 + S)
    N, D, d = grid[0] * grid[1], 5, 4
    module = DenseAlignment(D, d, group=g, topk=2, chunk=chunk).double()
    recon, projected = (torch.randn(B, T, N, c, dtype=torch.float64, requires_grad=True) for c in (D, d))
    features = torch.randn(B, T, N, D, dtype=torch.float64)
    attn_logits, alpha = torch.randn(2, B, T, S, N, dtype=torch.float64)
    got = module(recon, features, projected, attn_logits, alpha)
    ref = loop_dense_module(module, recon, features, projected, attn_logits, alpha)
    params = (recon, projected, module.P.weight, module.P2.weight)
    for g_loss, r_loss in zip(got, ref):
        assert torch.isfinite(g_loss) and torch.allclose(g_loss, r_loss, atol=1e-5)
    grads = torch.autograd.grad(sum(got), params)
    ref_grads = torch.autograd.grad(sum(ref), params, allow_unused=True, materialize_grads=True)
    for g_grad, r_grad in zip(grads, ref_grads):
        assert torch.allclose(g_grad, r_grad, atol=1e-5)


def test_dense_module_shape_errors():
    module = DenseAlignment(5, 4)
    x = torch.randn(1, 2, 6, 5)
    with pytest.raises(ValueError, match="projected"):
        module(x, x, torch.randn(1, 2, 6, 3), torch.randn(1, 2, 3, 6), torch.randn(1, 2, 3, 6))
    with pytest.raises(ValueError, match="alpha"):
        module(x, x, torch.randn(1, 2, 6, 4), torch.randn(1, 2, 3, 6), torch.randn(1, 2, 3, 5))
    with pytest.raises(ValueError, match="dense projection P"):
        DenseAlignment(7, 4)(x, x, torch.randn(1, 2, 6, 4), torch.randn(1, 2, 3, 6), torch.randn(1, 2, 3, 6))


def loop_redundancy(slots, attn, k):
    B, S, N = attn.shape
    chosen = []
    for b in range(B):
        pairs = [(i, j) for i in range(S) for j in range(i + 1, S)]
        cos = [float(F.cosine_similarity(slots[b, i], slots[b, j], dim=0)) for i, j in pairs]
        order = sorted(range(len(pairs)), key=lambda p: -cos[p])[:k]
        for p in order:
            q = [(attn[b, s] + 1e-8) / (attn[b, s] + 1e-8).sum() for s in pairs[p]]
            entropy = [float(-(x * x.log()).sum().detach()) for x in q]
            qs = q[0] if entropy[0] >= entropy[1] else q[1]  # the more diffuse, ties to the lower index
            chosen.append((qs * (qs * N).log()).sum())  # KL(q || uniform)
    return torch.stack(chosen).mean() if chosen else attn.new_zeros(())


@pytest.mark.parametrize("B,S,N,k", [(2, 5, 12, 1), (3, 4, 7, 3), (1, 1, 6, 1), (2, 3, 1, 2), (1, 3, 9, 10)])
def test_redundancy_loss_matches_loop(B, S, N, k):
    gen = torch.Generator().manual_seed(S * N + k)
    slots = torch.randn(B, S, 6, generator=gen, dtype=torch.float64)
    attn = (3 * torch.randn(B, S, N, generator=gen, dtype=torch.float64)).softmax(1).requires_grad_()
    got, ref = redundancy_loss(slots, attn, k), loop_redundancy(slots, attn, k)
    assert torch.isfinite(got) and torch.allclose(got, ref, atol=1e-5)
    if S > 1:
        assert torch.allclose(torch.autograd.grad(got, attn)[0], torch.autograd.grad(ref, attn)[0], atol=1e-5)


def test_redundancy_loss_is_zero_for_uniform_attention():
    attn = torch.full((2, 4, 9), 0.25)
    assert abs(redundancy_loss(torch.randn(2, 4, 3), attn, 2).item()) < 1e-6
