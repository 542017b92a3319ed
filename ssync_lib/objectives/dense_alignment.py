"""Dense alignment, the SRL baseline (method notes §3): two SupCon-style contrastive losses over all pairs of
patches of a group of g frames (M = g*N tokens), and the slot-redundancy regulariser.

Two implementations with equal values and gradients, chosen by `chunk`:
- chunk = 0, direct: all M anchor rows at once, materialising several B x M x M tensors (as the public code);
- chunk > 0, memory-efficient: `chunk` anchor rows at a time. Each chunk's B x chunk x M block (similarities,
  log-sum-exp over the row, positives) is reduced to per-anchor losses and freed, then recomputed in the backward
  pass (torch.utils.checkpoint), so no B x M x M tensor exists in the forward or the backward pass and the peak
  memory grows linearly in M. The top-k positives are found chunk by chunk as well.
Shapes: B batch (groups folded in), M tokens, d embedding dim, D backbone feature dim.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def _decoder_rows(start: int, stop: int, z: torch.Tensor, u: torch.Tensor, sem: torch.Tensor, tau: float):
    """Decoder-side losses of anchors start:stop -> B c (c = stop - start)."""
    s = z[:, start:stop] @ u.transpose(1, 2) / tau  # B c M  §3 s_ij = z_i . u_j / tau
    lse = s.logsumexp(2)  # B c  §3 over all k
    own = s.diagonal(offset=start, dim1=1, dim2=2) - lse  # B c  §3 log p_ii
    same = sem[:, start:stop, None] == sem[:, None, :]  # B c M  §3 A_i: same slot-attention argmax (i included)
    semi = (s * same).sum(2) / same.sum(2) - lse  # B c  §3 mean over A_i of log p_ij
    return -(own + semi) / 2  # §3 mean of the two terms


def _encoder_rows(start: int, stop: int, h: torch.Tensor, pos: torch.Tensor, sem: torch.Tensor, tau: float):
    """Encoder-side losses of anchors start:stop -> B c."""
    s = h[:, start:stop] @ h.transpose(1, 2) / tau  # B c M  §3 s_ij = h_i . h_j / tau
    is_self = torch.arange(start, stop, device=s.device)[:, None] == torch.arange(s.shape[2], device=s.device)  # c M
    lse = s.masked_fill(is_self, -math.inf).logsumexp(2)  # B c  §3 self excluded from the denominator
    top = s.gather(2, pos[:, start:stop]).mean(2) - lse  # B c  §3 mean over K_i of log p_ij
    same = (sem[:, start:stop, None] == sem[:, None, :]) & ~is_self  # B c M  §3 D_i: same decoder argmax, j != i
    count = same.sum(2)  # B c
    semi = torch.where(count > 0, (s * same).sum(2) / count.clamp(min=1) - lse, 0.0)  # an empty D_i gives 0
    return -(top + semi) / 2  # §3 -1/2 [mean_K log p + mean_D log p]


def _mean_over_anchors(rows_fn, chunk: int, x: torch.Tensor, *args) -> torch.Tensor:
    """Mean over the B x M anchors of rows_fn(start, stop, x, *args): direct (chunk = 0) or checkpointed chunks."""
    B, M = x.shape[:2]
    if chunk <= 0:
        return rows_fn(0, M, x, *args).mean()
    parts = [checkpoint(rows_fn, start, min(start + chunk, M), x, *args, use_reentrant=False).sum()
             for start in range(0, M, chunk)]
    return torch.stack(parts).sum() / (B * M)


@torch.no_grad()
def topk_positives(f: torch.Tensor, k: int, chunk: int = 0) -> torch.Tensor:
    """f B M D (L2-normalised frozen features) -> B M k: each anchor's k most cosine-similar other patches (§3 K_i)."""
    M = f.shape[1]
    step = chunk if chunk > 0 else M
    indices = []
    for start in range(0, M, step):
        cos = f[:, start:start + step] @ f.transpose(1, 2)  # B c M
        cos.diagonal(offset=start, dim1=1, dim2=2).fill_(-math.inf)  # the anchor itself is not its own positive
        indices.append(cos.topk(k, dim=2).indices)
    return torch.cat(indices, dim=1)


def decoder_alignment_loss(z: torch.Tensor, u: torch.Tensor, attn_labels: torch.Tensor, tau: float = 0.1,
                           chunk: int = 0) -> torch.Tensor:
    """z B M d = normalise(P recon) (grad), u B M d = normalise(P features) (no grad), attn_labels B M (slot-attention
    argmax) -> mean over anchors of the decoder-side loss (§3, before the 0.1/0.07 scale)."""
    return _mean_over_anchors(_decoder_rows, chunk, z, u.detach(), attn_labels, tau)


def encoder_alignment_loss(h: torch.Tensor, f: torch.Tensor, dec_labels: torch.Tensor, k: int, tau: float = 0.1,
                           chunk: int = 0) -> torch.Tensor:
    """h B M d = normalise(P2 projected) (grad), f B M D normalised frozen features, dec_labels B M (decoder argmax),
    k positives per anchor (capped at M - 1) -> mean over anchors of the encoder-side loss (§3, before the scale).
    M = 1 has no pair: 0."""
    M = h.shape[1]
    if M < 2:
        return h.new_zeros(())
    pos = topk_positives(f.detach(), min(k, M - 1), chunk)  # B M k
    return _mean_over_anchors(_encoder_rows, chunk, h, pos, dec_labels, tau)


def redundancy_loss(slots: torch.Tensor, attn: torch.Tensor, k: int) -> torch.Tensor:
    """slots B S d and attn B S N (softmax over slots) of the last frame -> KL(q || uniform) averaged over the chosen
    slots, q = a slot's attention renormalised over patches (§3 slot-redundancy regulariser).

    Choice: the k most cosine-similar slot pairs of each video; of each pair the more diffuse slot (higher entropy
    of q; ties to the lower index). A slot may be chosen by several pairs. S = 1 has no pair: 0."""
    B, S, N = attn.shape
    pairs = torch.triu_indices(S, S, offset=1, device=attn.device)  # 2 P  every unordered pair once
    k = min(k, pairs.shape[1])
    if k == 0:
        return attn.new_zeros(())
    q = (attn + 1e-8) / (attn + 1e-8).sum(2, keepdim=True)  # B S N  distribution over patches (as slot attention)
    neg_entropy = (q * q.log()).sum(2)  # B S
    with torch.no_grad():
        z = F.normalize(slots, dim=-1)
        sim = (z[:, pairs[0]] * z[:, pairs[1]]).sum(-1)  # B P  cosine of each pair
        top = sim.topk(k, dim=1).indices  # B k  §3 most similar pairs
        a, b = pairs[0][top], pairs[1][top]  # B k  a < b
        diffuse = torch.where(neg_entropy.gather(1, a) <= neg_entropy.gather(1, b), a, b)  # B k  §3 more diffuse
    return (neg_entropy.gather(1, diffuse) + math.log(N)).mean()  # §3 KL(q || U) = sum q log q + log N


def _groups(x: torch.Tensor, g: int) -> list[tuple[int, torch.Tensor]]:
    """x B T N ... -> [(frames, B' M ...)]: full groups of g frames folded into the batch, then the last partial
    group as is (T < g: one group of T frames). Tokens are ordered frame-major, M = frames * N."""
    B, T, N = x.shape[:3]
    full = T - T % g
    groups = []
    if full:
        groups.append((g, x[:, :full].reshape(B * (full // g), g * N, *x.shape[3:])))
    if full < T:
        groups.append((T - full, x[:, full:].reshape(B, (T - full) * N, *x.shape[3:])))
    return groups


class DenseAlignment(nn.Module):
    """SRL's projections and its two contrastive losses over groups of frames (§3).

    P: Linear(D -> d, no bias) for the decoder side, P2: Linear(d -> d, no bias) for the encoder side.
    """

    def __init__(self, feature_dim: int, slot_dim: int, group: int = 4, topk: int = 8, tau: float = 0.1,
                 scale: float = 0.1 / 0.07, chunk: int = 0):
        super().__init__()
        if group < 1 or topk < 1:
            raise ValueError(f"dense_group ({group}) and dense_topk ({topk}) must be >= 1")
        self.P = nn.Linear(feature_dim, slot_dim, bias=False)
        self.P2 = nn.Linear(slot_dim, slot_dim, bias=False)
        self.group, self.topk, self.tau, self.scale, self.chunk = group, topk, tau, scale, chunk

    def forward(self, recon, features, projected, attn_logits, alpha) -> tuple[torch.Tensor, torch.Tensor]:
        """recon, features B T N D; projected B T N d; attn_logits, alpha B T S N -> (loss_dec, loss_enc), each the
        mean over all B*T*N anchors (every patch weighs the same, a partial group included), times the scale."""
        B, T, N, D = recon.shape
        expected = {"features": (B, T, N, D), "projected": (B, T, N, self.P2.in_features)}
        for name, x in (("features", features), ("projected", projected)):
            if tuple(x.shape) != expected[name]:
                raise ValueError(f"{name} has shape {tuple(x.shape)}, expected {expected[name]} "
                                 f"(recon {tuple(recon.shape)})")
        for name, x in (("attn_logits", attn_logits), ("alpha", alpha)):
            if x.dim() != 4 or tuple(x.shape[:2]) != (B, T) or x.shape[3] != N:
                raise ValueError(f"{name} has shape {tuple(x.shape)}, expected (B, T, S, N) with "
                                 f"(B, T, N) = {(B, T, N)}")
        if D != self.P.in_features:
            raise ValueError(f"recon has feature dim {D} but the dense projection P expects {self.P.in_features}")
        z = F.normalize(self.P(recon), dim=-1)  # B T N d  §3 z_i (grad)
        with torch.no_grad():
            u = F.normalize(self.P(features), dim=-1)  # B T N d  §3 u_j (stop-grad)
            f = F.normalize(features, dim=-1)  # B T N D  frozen backbone cosine for the top-k positives
        h = F.normalize(self.P2(projected), dim=-1)  # B T N d  §3 h_i (grad)
        sem_attn, sem_dec = attn_logits.argmax(2), alpha.argmax(2)  # B T N  slot-attention / decoder-mask argmax
        loss_dec = loss_enc = recon.new_zeros(())
        grouped = zip(*(_groups(x, self.group) for x in (z, u, f, h, sem_attn, sem_dec)))
        for (frames, z_g), (_, u_g), (_, f_g), (_, h_g), (_, a_g), (_, d_g) in grouped:
            share = z_g.shape[0] * z_g.shape[1] / (B * T * N)  # this group's fraction of all anchors
            loss_dec = loss_dec + share * decoder_alignment_loss(z_g, u_g, a_g, self.tau, self.chunk)
            k = self.topk * frames  # §3 k = topk * g (frames of this group)
            loss_enc = loss_enc + share * encoder_alignment_loss(h_g, f_g, d_g, k, self.tau, self.chunk)
        return self.scale * loss_dec, self.scale * loss_enc  # §3 SupCon scale tau / 0.07
