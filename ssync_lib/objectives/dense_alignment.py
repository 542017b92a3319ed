"""Dense alignment, the SRL baseline (docs/method.md §3): two SupCon-style contrastive losses over all pairs of
patches of a group of g frames (M = g*N tokens), and the slot-redundancy regulariser.

The sums over the same-label sets A_i, D_i are linear in M (a_i . sum_j x_j, per-label sums); only the
log-sum-exp over all j and the top-k positives need the B x M x M similarities. Two implementations of those,
with equal values and gradients, chosen by `chunk`:
- chunk = 0, direct: all M anchor rows at once, materialising B x M x M similarities;
- chunk > 0, memory-efficient: `chunk` anchor rows at a time. Each chunk's B x chunk x M block is reduced to
  per-anchor terms and freed, then recomputed in the backward pass (torch.utils.checkpoint), so no B x M x M
  tensor exists in the forward or the backward pass and the peak memory grows linearly in M. The top-k
  positives are found chunk by chunk as well.
Shapes: B batch (groups folded in), M tokens, d embedding dim, D backbone feature dim.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def _row_terms(start: int, stop: int, a: torch.Tensor, b: torch.Tensor, tau: float, exclude_self: bool,
               pos: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors start:stop -> (lse B c, top B c): the log-sum-exp over j of s_ij = a_i . b_j / tau (j != i when
    exclude_self) and the mean of s_ij over the positives pos B M k (zeros when pos is None)."""
    s = (a[:, start:stop] / tau) @ b.transpose(1, 2)  # B c M  §3 s_ij (1/tau on the B c d side: cheaper)
    if exclude_self:
        is_self = torch.arange(start, stop, device=s.device)[:, None] == torch.arange(s.shape[2], device=s.device)
        s = s.masked_fill(is_self, -math.inf)  # c M  §3 self excluded from the encoder-side denominator
    lse = s.logsumexp(2)  # B c  §3 log sum_k exp s_ik
    top = s.gather(2, pos[:, start:stop]).mean(2) if pos is not None else torch.zeros_like(lse)  # B c
    return lse, top


def _rows(a: torch.Tensor, b: torch.Tensor, tau: float, chunk: int, exclude_self: bool = False,
          pos: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """_row_terms over all M anchors -> (lse B M, top B M): direct (chunk = 0, one B x M x M tensor) or in
    checkpointed chunks of rows (B x chunk x M at a time, recomputed in the backward pass)."""
    M = a.shape[1]
    if chunk <= 0:
        return _row_terms(0, M, a, b, tau, exclude_self, pos)
    parts = [checkpoint(_row_terms, start, min(start + chunk, M), a, b, tau, exclude_self, pos, use_reentrant=False)
             for start in range(0, M, chunk)]
    return torch.cat([lse for lse, _ in parts], 1), torch.cat([top for _, top in parts], 1)


def _same_label_sums(x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x B M d, labels B M -> (sums B M d, counts B M): for each anchor i the sum of x_j over the j with the label
    of i (i included) and their number. Linear in M: sum_{j in A_i} a_i . x_j = a_i . sum_{j in A_i} x_j."""
    one_hot = F.one_hot(labels).to(x.dtype)  # B M L
    sums = one_hot @ (one_hot.transpose(1, 2) @ x)  # B M d  (B L d per-label sums, read back per anchor)
    counts = one_hot @ one_hot.sum(1).unsqueeze(2)  # B M 1
    return sums, counts.squeeze(2)


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
    u = u.detach()
    lse, _ = _rows(z, u, tau, chunk)  # B M
    own = (z * u).sum(2) / tau  # B M  §3 s_ii
    sums, counts = _same_label_sums(u, attn_labels)  # §3 A_i: same slot-attention argmax, i included
    same = (z * sums).sum(2) / (tau * counts)  # B M  §3 mean over A_i of s_ij
    return (lse - (own + same) / 2).mean()  # §3 -1/2 [log p_ii + mean_A log p_ij]


def encoder_alignment_loss(h: torch.Tensor, f: torch.Tensor, dec_labels: torch.Tensor, k: int, tau: float = 0.1,
                           chunk: int = 0) -> torch.Tensor:
    """h B M d = normalise(P2 projected) (grad), f B M D normalised frozen features, dec_labels B M (decoder argmax),
    k positives per anchor (capped at M - 1) -> mean over anchors of the encoder-side loss (§3, before the scale).
    M = 1 has no pair: 0."""
    M = h.shape[1]
    if M < 2:
        return h.new_zeros(())
    pos = topk_positives(f.detach(), min(k, M - 1), chunk)  # B M k
    lse, top = _rows(h, h, tau, chunk, exclude_self=True, pos=pos)  # B M, B M  top = §3 mean over K_i of s_ij
    sums, counts = _same_label_sums(h, dec_labels)
    others = counts - 1  # B M  §3 |D_i|: same decoder argmax, j != i
    same = (h * (sums - h)).sum(2) / (tau * others.clamp(min=1))  # B M  §3 mean over D_i of s_ij
    semi = torch.where(others > 0, same - lse, 0.0)  # an empty D_i gives 0
    return -((top - lse) + semi).mean() / 2  # §3 -1/2 [mean_K log p + mean_D log p]


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
