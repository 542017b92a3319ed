"""The method: DINO self-distillation (Caron et al. 2021) with iBOT's masked patch-token loss (Zhou et al. 2022).

    student = DinoViT(cfg.vit, cfg.data.input_size, cfg.dino); teacher = make_teacher(student)
    loss = DinoLoss(cfg.dino)
    s_cls, s_patch = student(views.globals_, views.locals_, views.masks)   # (V*B, K), (M, Kp)
    t_cls, t_patch = teacher(views.globals_, None, views.masks, student=False)  # (2B, K), (M, Kp)
    out = loss(s_cls, s_patch, t_cls, t_patch, views.masks, step, max_steps)  # LossOut: terms + monitors

The rules, each computed on the line marked with it:
- teacher = EMA of the student, momentum cosine from ``dino.momentum`` to 1        (DINO eq. 2)
- teacher probabilities p_t = softmax((g_t(x) - c) / tau_t): centring and sharpening  (DINO §3.1)
- centre c <- m c + (1 - m) mean over the batch of g_t(x)                            (DINO eq. 4)
- L_dino = mean over pairs (global crop a, any other crop b) of -p_t(a) . log p_s(b)  (DINO eq. 3, multi-crop)
- L_ibot = mean over masked crops of mean over their masked patches n of -p_t(n) . log p_s(n), the teacher
  seeing the crop whole, the student with the mask token at n                      (iBOT eq. 2)
Monitors (no gradient): the teacher's mean per-sample entropy H, its batch mutual information
I = H(mean_x p_t(x)) - mean_x H(p_t(x)) (0 when the teacher's output no longer depends on the input: collapse,
to one prototype or to uniform alike), and KL(p_t || p_s) = cross-entropy - H.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import timm
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class DINOHead(nn.Module):
    """MLP -> L2-normalised bottleneck -> weight-normalised prototypes (DINO's projection head)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, bottleneck: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.last_layer = nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last_layer.parametrizations.weight.original0.data.fill_(1.0)  # norm fixed at 1 (DINO: g = 1)
        self.last_layer.parametrizations.weight.original0.requires_grad_(False)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., out_dim) logits."""
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


class DinoViT(nn.Module):
    """A timm VisionTransformer (``cfg.vit``) with a learned mask token and the two heads."""

    def __init__(self, vcfg, input_size: int, dcfg):
        super().__init__()
        self.vit = timm.create_model(vcfg.backbone, pretrained=False, num_classes=0, img_size=input_size,
                                     dynamic_img_size=True, **vcfg.backbone_kwargs)  # any crop size (local crops)
        dim = self.vit.embed_dim
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 1, dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.head = DINOHead(dim, dcfg.out_dim, dcfg.head_hidden, dcfg.head_bottleneck)
        self.patch_head = DINOHead(dim, dcfg.patch_out_dim, dcfg.head_hidden, dcfg.head_bottleneck)

    def tokens(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """images (n, 3, s, s), masks (n, s/p, s/p) bool -> normed tokens (n, 1 + N, D), CLS first."""
        vit = self.vit
        x = vit.patch_embed(images)  # n h w D
        if masks is not None:
            x = torch.where(masks.unsqueeze(-1), self.mask_token.to(x.dtype), x)  # iBOT: masked patches replaced
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(x)))  # n 1+N D
        return vit.norm(vit.blocks(x))

    def forward(self, globals_: torch.Tensor, locals_: torch.Tensor | None = None,
                masks: torch.Tensor | None = None, student: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Global crops (2B, 3, S, S), local crops (L*B, 3, s, s), iBOT masks (2B, h, w) -> CLS logits of every
        crop ((2 + L) B, K), global crops first, and patch logits at the M masked positions (M, Kp), in the
        order of ``masks.nonzero()``. The student sees the masked crops (mask token); the teacher
        (``student=False``) sees them whole and only its patch logits at those positions are computed: iBOT's
        loss reads no other patch, so neither head runs on the others."""
        g = self.tokens(globals_, masks if student else None)
        cls = self.head(g[:, 0])
        if locals_ is not None and len(locals_):
            cls = torch.cat([cls, self.head(self.tokens(locals_)[:, 0])])
        return cls, self.patch_head(g[:, 1:][masks.flatten(1)])  # M Kp


def make_teacher(student: DinoViT) -> DinoViT:
    """The teacher: the student's copy, no gradients (updated by ``ema_update`` only)."""
    teacher = copy.deepcopy(student)
    teacher.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """theta_t <- m theta_t + (1 - m) theta_s  (DINO eq. 2)."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)


def cosine(step: int, max_steps: int, start: float, end: float) -> float:
    """start at step 0, cosine to end at max_steps."""
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(step / max(max_steps, 1), 1.0)))


def lr_at(step: int, tcfg, dcfg) -> float:
    """Linear warm-up over train.warmup_steps, then cosine to lr * min_lr_frac (DINO's schedule)."""
    if step < tcfg.warmup_steps:
        return tcfg.lr * (step + 1) / tcfg.warmup_steps
    return cosine(step - tcfg.warmup_steps, tcfg.max_steps - tcfg.warmup_steps, tcfg.lr, tcfg.lr * dcfg.min_lr_frac)


def teacher_temp_at(step: int, max_steps: int, dcfg) -> float:
    """Linear from warmup_teacher_temp to teacher_temp over warmup_teacher_temp_frac of the run, then constant."""
    warm = max(int(dcfg.warmup_teacher_temp_frac * max_steps), 1)
    return dcfg.warmup_teacher_temp + (dcfg.teacher_temp - dcfg.warmup_teacher_temp) * min(step / warm, 1.0)


@dataclass
class LossOut:
    total: torch.Tensor
    terms: dict  # name -> scalar tensor (with gradient): dino, ibot
    monitors: dict  # name -> scalar tensor (no gradient): entropies, mutual information, KL


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * torch.log(p.clamp_min(1e-12))).sum(-1)


def _all_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of a per-process mean over the torchrun processes (identity in one process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        x = x.clone()
        dist.all_reduce(x)
        x = x / dist.get_world_size()
    return x


class DinoLoss(nn.Module):
    """DINO's multi-crop CLS loss and iBOT's masked patch loss, with their two centres (buffers)."""

    def __init__(self, dcfg):
        super().__init__()
        self.dcfg = dcfg
        self.register_buffer("centre", torch.zeros(1, dcfg.out_dim))
        self.register_buffer("patch_centre", torch.zeros(1, dcfg.patch_out_dim))

    def forward(self, s_cls: torch.Tensor, s_patch: torch.Tensor, t_cls: torch.Tensor, t_patch: torch.Tensor,
                masks: torch.Tensor, step: int, max_steps: int) -> LossOut:
        """s_cls ((2+L)B, K), t_cls (2B, K); s_patch, t_patch (M, Kp) at the M masked positions of masks (2B, h, w)."""
        d = self.dcfg
        tau_t = teacher_temp_at(step, max_steps, d)
        t_cls, t_patch = t_cls.detach().float(), t_patch.detach().float()
        p_t = F.softmax((t_cls - self.centre) / tau_t, dim=-1)  # 2B K   centring + sharpening (DINO §3.1)
        log_s = F.log_softmax(s_cls.float() / d.student_temp, dim=-1)  # (2+L)B K
        views = len(log_s) // (len(p_t) // 2)
        p_t, log_s = p_t.chunk(2), log_s.chunk(views)
        pairs = [(a, b) for a in range(2) for b in range(views) if b != a]  # each global teacher vs other crops
        dino = sum(-(p_t[a] * log_s[b]).sum(-1).mean() for a, b in pairs) / len(pairs)  # DINO eq. 3

        pp_t = F.softmax((t_patch - self.patch_centre) / tau_t, dim=-1)  # M Kp
        log_sp = F.log_softmax(s_patch.float() / d.student_temp, dim=-1)  # M Kp
        counts = masks.flatten(1).sum(1)  # 2B  masked patches per crop
        crop = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)  # M  crop of each
        masked_crops = _all_mean((counts > 0).float().sum()).clamp_min(1.0)  # per process, as torchrun averages
        weight = 1.0 / counts[crop].float() / masked_crops  # mean per crop, then over the masked crops
        ibot = (-(pp_t * log_sp).sum(-1) * weight).sum()  # iBOT eq. 2

        with torch.no_grad():
            self._update_centres(t_cls, t_patch)  # DINO eq. 4, after the loss used the old centre
            p_all = torch.cat(p_t)  # 2B K
            h = _entropy(p_all).mean()
            mi = _entropy(_all_mean(p_all.mean(0))) - _all_mean(h)  # batch mutual information
            hp = (_entropy(pp_t) * weight).sum()
            mi_patch = _entropy(_all_mean(pp_t.mean(0))) - _all_mean(_entropy(pp_t).mean()) if len(pp_t) else hp
            monitors = {"teacher_entropy": h, "teacher_mi": mi, "kl": dino.detach() - h,
                        "teacher_entropy_patch": hp, "teacher_mi_patch": mi_patch,
                        "kl_patch": ibot.detach() - hp, "teacher_temp": torch.tensor(tau_t)}
        total = d.w_dino * dino + d.w_ibot * ibot
        return LossOut(total, {"dino": dino, "ibot": ibot}, monitors)

    @torch.no_grad()
    def _update_centres(self, t_cls: torch.Tensor, t_patch: torch.Tensor) -> None:
        m = self.dcfg.centre_momentum
        self.centre.mul_(m).add_(_all_mean(t_cls.mean(0, keepdim=True)), alpha=1 - m)
        if len(t_patch):  # iBOT centres on the teacher's patch outputs it reads (the masked positions)
            self.patch_centre.mul_(m).add_(_all_mean(t_patch.mean(0, keepdim=True)), alpha=1 - m)
