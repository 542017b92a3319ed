"""The cost of alignment (docs/method.md §3 cost, §4.7): dense alignment (SRL's two losses, direct and chunked)
against SSync's labels and losses, time and peak memory of the forward + backward pass over T*N tokens per clip.

    df = run_alignment(sizes=(64, 256), batch=1); alignment_summary(df); viz.plot_alignment(df)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ssync_lib.config import project_root
from ssync_lib.errors import ConfigError
from ssync_lib.lab.bench.memory import peak_cpu_memory, peak_memory, peak_rss_fresh
from ssync_lib.lab.bench.timing import MB, best_time, machine_context
from ssync_lib.objectives.dense_alignment import decoder_alignment_loss, encoder_alignment_loss
from ssync_lib.objectives.ssync import pseudo_labels, ssync_loss
from ssync_lib.runtime import resolve_device


def _grid(patches: int) -> tuple[int, int]:
    """The most square (H, W) grid with H * W = patches."""
    h = max(d for d in range(1, math.isqrt(patches) + 1) if patches % d == 0)
    return h, patches // h



def dense_alignment_step(M: int, chunk: int, batch: int = 1, dim: int = 64, feature_dim: int = 384,
                         num_slots: int = 11, k: int = 32, seed: int = 0, device: torch.device | str = "cpu"):
    """Both SRL losses (docs/method.md §3) on random inputs of one group of M tokens per clip -> step(), which runs
    the forward and backward pass, direct (chunk = 0) or `chunk` anchor rows at a time, and returns (loss, grads)."""
    gen = torch.Generator().manual_seed(seed)
    recon, proj = (torch.randn(batch, M, dim, generator=gen).to(device).requires_grad_() for _ in range(2))  # B M d
    u = F.normalize(torch.randn(batch, M, dim, generator=gen), dim=-1).to(device)  # B M d
    f = F.normalize(torch.randn(batch, M, feature_dim, generator=gen), dim=-1).to(device)  # B M D
    sem_attn, sem_dec = torch.randint(0, num_slots, (2, batch, M), generator=gen).to(device)  # B M each

    def step() -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        recon.grad = proj.grad = None
        loss = (decoder_alignment_loss(F.normalize(recon, dim=-1), u, sem_attn, chunk=chunk)
                + encoder_alignment_loss(F.normalize(proj, dim=-1), f, sem_dec, k, chunk=chunk))
        loss.backward()
        return loss.detach(), (recon.grad, proj.grad)

    return step


def ssync_step(frames: int, grid: tuple[int, int], batch: int = 1, num_slots: int = 11, merge_iou: float = 0.7,
               seed: int = 0, device: torch.device | str = "cpu"):
    """SSync's pseudo-labels and both losses (docs/method.md §4) on random slot logits B T S N (N = H*W) -> step(),
    which runs the labels, the forward and the backward pass and returns (loss, grads)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, frames, num_slots, grid[0] * grid[1])
    attn_logits, alpha = (torch.randn(shape, generator=gen).to(device).requires_grad_() for _ in range(2))  # B T S N

    def step() -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        attn_logits.grad = alpha.grad = None
        labels = pseudo_labels(attn_logits.detach(), alpha.detach(), grid, merge_iou)
        loss = sum(ssync_loss(attn_logits, alpha, labels))
        loss.backward()
        return loss.detach(), (attn_logits.grad, alpha.grad)

    return step


def dense_alignment_memory(sizes: Iterable[int] = (256, 512, 1024, 2304), chunk: int = 256, batch: int = 1,
                           dim: int = 64, feature_dim: int = 384, num_slots: int = 11, k: int = 32,
                           seed: int = 0) -> list[dict]:
    """Peak CPU memory of the forward and backward pass of both SRL losses (docs/method.md §3) for M tokens per
    group, direct (B x M x M) against chunked (`chunk` rows at a time). One dict per M, with the bytes per pairwise
    entry (peak / (batch * M * M)) for comparison with the public code's ~55."""
    rows = []
    for M in sizes:
        direct, chunked = (peak_cpu_memory(dense_alignment_step(M, rows_per_chunk, batch, dim, feature_dim,
                                                                num_slots, k, seed))
                           for rows_per_chunk in (0, chunk))
        rows.append({"M": M, "direct_bytes": direct, "chunked_bytes": chunked,
                     "direct_bytes_per_entry": direct / (batch * M * M),
                     "chunked_bytes_per_entry": chunked / (batch * M * M)})
    return rows


# name: (growth of peak memory, growth of time) in T*N, used to extrapolate from the per-entry cost of the largest
# measured size (entries = batch * (T*N)^power); growth_exponents() fits the measured growth to check them.
ALIGNMENT_METHODS = {"dense direct": (2, 2), "dense chunked": (1, 2), "ssync": (1, 1)}
ALIGNMENT_SIZES = (64, 256, 576, 1024, 2304, 5476)  # T*N with T = 4: N = 16, 64, 144, 256, 576 (MOVi-C), 1369 (YTVIS)


def minimum_bytes(method: str, tokens: int, batch: int, chunk: int, num_slots: int, dim: int = 64,
                  feature_dim: int = 384) -> int:
    """A lower bound of the bytes of one step of ``method`` at ``tokens`` = T*N: its float32 inputs (and the
    similarity matrix, or one chunk of it, of dense alignment). What must fit before anything can be measured."""
    if method == "ssync":
        return batch * tokens * num_slots * 2 * 4  # attn_logits, alpha: B T S N
    rows = tokens if method == "dense direct" else min(chunk, tokens)
    return batch * tokens * (3 * dim + feature_dim) * 4 + batch * rows * tokens * 4


def check_alignment_sizes(sizes: Iterable[int], frames: int, batch: int, chunk: int, num_slots: int,
                          budget_gb: float) -> None:
    """Before any work: every size a positive multiple of ``frames``, and every method's smallest size within the
    memory budget (larger ones are extrapolated from the largest measured size, the smallest must run)."""
    sizes = sorted(set(sizes))
    bad = [m for m in sizes if m % frames or m < frames]
    if bad:
        raise ConfigError(f"sizes {bad} are not positive multiples of frames={frames} (each size is T*N tokens with "
                          f"T = frames)", fix=f"give sizes that are multiples of {frames}, at least {frames}")
    over = {m: minimum_bytes(m, sizes[0], batch, chunk, num_slots) for m in ALIGNMENT_METHODS}
    over = {m: b for m, b in over.items() if b > budget_gb * 1e9}
    if over:
        listing = ", ".join(f"{m}: {b / 1e9:.3g} GB" for m, b in over.items())
        raise ConfigError(f"size {sizes[0]} (batch {batch}): the inputs alone take more than the memory budget of "
                          f"{budget_gb:g} GB ({listing}); larger sizes are extrapolated from the largest measured "
                          f"one, but the smallest must run", fix="give smaller sizes, a smaller batch, or a larger "
                                                                 "budget (--budget-gb)")


def _alignment_builder(method: str, tokens: int, frames: int, batch: int, chunk: int, num_slots: int, topk: int,
                       merge_iou: float, seed: int, device: torch.device) -> tuple[Callable, dict]:
    """(build, kwargs): build(**kwargs) is the forward + backward step of `method` on `tokens` = T*N tokens per clip."""
    common = dict(batch=batch, num_slots=num_slots, seed=seed, device=str(device))
    if method == "ssync":
        return ssync_step, dict(frames=frames, grid=_grid(tokens // frames), merge_iou=merge_iou, **common)
    return dense_alignment_step, dict(M=tokens, chunk=0 if method == "dense direct" else chunk, k=topk * frames,
                                      **common)


def run_alignment(sizes: Iterable[int] = ALIGNMENT_SIZES, batch: int = 1, frames: int = 4, chunk: int = 256,
                  num_slots: int = 11, topk: int = 8, merge_iou: float = 0.7, repeats: int = 3,
                  budget_gb: float = 8.0, max_seconds: float = 60.0, device: str = "cpu", rss: bool = False,
                  seed: int = 0) -> pd.DataFrame:
    """Time and peak memory of the forward + backward pass of dense alignment, direct and chunked (both SRL losses,
    §3, on one group of T*N tokens per clip), and of SSync's labels and losses (§4), for each T*N in `sizes`
    (multiples of `frames`). -> one row per method and size.

    A (method, size) whose memory, predicted from the per-entry cost of the largest size measured so far, exceeds
    `budget_gb`, or whose single run would exceed `max_seconds`, is not run: its numbers are that prediction and
    `extrapolated` is True. The chunked loss and gradients are compared with the direct ones wherever both run
    (`max_diff`, relative to the largest direct value). `rss`: also the peak RSS growth of each measured step on
    the CPU, one more run of each in a fresh process (bench.memory.peak_rss_fresh; Linux and glibc, else NaN).
    """
    device = resolve_device(device)
    sizes = sorted(set(sizes))
    check_alignment_sizes(sizes, frames, batch, chunk, num_slots, budget_gb)
    rows, last, builders = [], {}, []  # last: method -> (tokens, peak bytes, seconds) of its largest measured size
    for tokens in sizes:
        reference = None  # the direct (loss, grads) at this size, for the chunked comparison
        for method, (mem_power, time_power) in ALIGNMENT_METHODS.items():
            row = {"method": method, "tokens": tokens, "frames": frames, "patches": tokens // frames,
                   "batch": batch, **machine_context(device)}
            if method in last:
                prev, prev_peak, prev_time = last[method]
                peak_pred = prev_peak * (tokens / prev) ** mem_power  # same bytes per entry
                time_pred = prev_time * (tokens / prev) ** time_power  # same seconds per entry
                if peak_pred > budget_gb * 1e9 or time_pred > max_seconds:
                    rows.append({**row, "peak_bytes": peak_pred, "seconds": time_pred, "extrapolated": True})
                    builders.append(None)
                    continue
            build, kwargs = _alignment_builder(method, tokens, frames, batch, chunk, num_slots, topk, merge_iou, seed,
                                               device)
            step, result = build(**kwargs), []
            peak = peak_memory(lambda: result.append(step()), device)  # also the warm-up run
            seconds = best_time(step, repeats, device)
            loss, grads = result[0]
            row.update(peak_bytes=peak, seconds=seconds, extrapolated=False, loss=float(loss))
            if method == "dense direct":
                reference = (loss, [g.clone() for g in grads])
            elif method == "dense chunked" and reference is not None:
                scale = max(float(reference[0].abs()), *(float(g.abs().max()) for g in reference[1]))
                diffs = [float((loss - reference[0]).abs())] + [float((g - r).abs().max())
                                                                for g, r in zip(grads, reference[1])]
                row["max_diff"] = max(diffs) / scale
            last[method] = (tokens, peak, seconds)
            rows.append(row)
            builders.append((build, kwargs))
    df = pd.DataFrame(rows)
    if rss and device.type == "cpu":
        rss_bytes = iter(peak_rss_fresh(b for b in builders if b is not None))
        df["rss_bytes"] = [np.nan if b is None else next(rss_bytes) for b in builders]
    df["peak_mb"] = df["peak_bytes"] / MB
    df["time_ms"] = df["seconds"] * 1e3
    df["bytes_per_pair"] = df["peak_bytes"] / (df["batch"] * df["tokens"] ** 2)  # docs/method.md §3: ~55 for SRL
    return df


def alignment_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per T*N: each method's peak memory and time, and the ratios dense / SSync and direct / chunked."""
    peak = df.pivot(index="tokens", columns="method", values="peak_mb")
    ms = df.pivot(index="tokens", columns="method", values="time_ms")
    extrap = df.pivot(index="tokens", columns="method", values="extrapolated")
    out = pd.DataFrame(index=peak.index)
    for method in ALIGNMENT_METHODS:
        out[f"{method} MB"] = peak[method]
    out["direct/ssync mem"] = peak["dense direct"] / peak["ssync"]
    out["chunked/ssync mem"] = peak["dense chunked"] / peak["ssync"]
    out["direct/chunked mem"] = peak["dense direct"] / peak["dense chunked"]
    for method in ALIGNMENT_METHODS:
        out[f"{method} ms"] = ms[method]
    out["direct/ssync time"] = ms["dense direct"] / ms["ssync"]
    out["extrapolated"] = [", ".join(m for m in ALIGNMENT_METHODS if extrap.loc[t, m]) or "none" for t in out.index]
    return out.reset_index()


def growth_exponents(df: pd.DataFrame, fit_from: int = 256) -> pd.DataFrame:
    """Per method, the log-log slope of peak memory and of time against T*N, least squares over the measured
    (not extrapolated) sizes >= fit_from (all measured sizes if fewer than two reach it)."""
    rows = []
    for method, group in df[~df["extrapolated"]].groupby("method", sort=False):
        fit = group[group["tokens"] >= fit_from]
        fit = fit if len(fit) >= 2 else group
        row = {"method": method, "sizes": len(fit)}
        for name, column in (("memory_exponent", "peak_bytes"), ("time_exponent", "seconds")):
            row[name] = (float(np.polyfit(np.log(fit["tokens"]), np.log(fit[column]), 1)[0])
                         if len(fit) >= 2 else np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def alignment_targets(df: pd.DataFrame, at: int = 2304) -> list[str]:
    """The issue's targets at T*N = `at` (MOVi-C), as measured: dense / SSync peak memory >= 100x and growing with
    T*N; chunked >= 4x less memory than direct with equal values."""
    s = alignment_summary(df).set_index("tokens")
    if at not in s.index:
        return [f"targets: T*N = {at} not among the sizes"]
    ratio = s["direct/ssync mem"]
    growing = bool((ratio.diff().dropna() > 0).all())
    chunk_gain = s.loc[at, "direct/chunked mem"]
    diff = df[(df["tokens"] == at) & (df["method"] == "dense chunked")].get("max_diff", pd.Series([np.nan])).iloc[0]
    note = f" (extrapolated: {s.loc[at, 'extrapolated']})" if s.loc[at, "extrapolated"] != "none" else ""
    return [f"dense direct / SSync peak memory at T*N={at}: {ratio[at]:.0f}x (target >= 100x){note}; "
            f"growing with T*N: {'yes' if growing else 'no'} ({', '.join(f'{r:.0f}' for r in ratio)})",
            f"dense direct / chunked peak memory at T*N={at}: {chunk_gain:.1f}x (target >= 4x); "
            f"chunked vs direct loss and gradients: max relative difference {diff:.1e}"]


# ----------------------------------------------------------------------------- the committed measurement

COMMITTED = "results/bench/alignment.csv"  # measured at every size, read by notebooks 03 and 04 (its README)


def load_alignment(path: str | Path | None = None) -> pd.DataFrame:
    """A ``run_alignment`` table from CSV: the committed benchmark (``COMMITTED``) by default."""
    return pd.read_csv(Path(path) if path is not None else project_root() / COMMITTED)


def read_alignment(df: pd.DataFrame) -> str:
    """Three sentences computed from a ``run_alignment`` table: what was measured (and what only extrapolated),
    how each method's peak memory grows, and what chunking and SSync do to the time; every number from measured
    rows."""
    measured = df[~df["extrapolated"].astype(bool)]
    sizes = sorted(measured["tokens"].unique())
    extra = df[df["extrapolated"].astype(bool)]
    first = (f"Every point is measured, at {len(sizes)} sizes from {sizes[0]:,} to {sizes[-1]:,} tokens per clip "
             f"(batch {int(df['batch'].iloc[0])}, {df['device'].iloc[0]}, {int(df['threads'].iloc[0])} thread(s))."
             if extra.empty else
             f"Measured at {len(sizes)} sizes from {sizes[0]:,} to {sizes[-1]:,} tokens per clip; only extrapolated "
             "(crosses in the figure, left out of every number here): "
             + "; ".join(f"{m} at {', '.join(f'{t:,}' for t in g['tokens'])}"
                         for m, g in extra.groupby("method", sort=False))
             + ".")
    grow = growth_exponents(df).set_index("method")
    peak = measured.pivot(index="tokens", columns="method", values="peak_mb")
    ms = measured.pivot(index="tokens", columns="method", values="time_ms")

    def largest(method: str) -> tuple[int, float]:
        top = peak[method].dropna().index.max()
        return top, peak.loc[top, method]

    (t_d, mb_d), (t_c, mb_c), (t_s, mb_s) = (largest(m) for m in ALIGNMENT_METHODS)
    bpp = measured.set_index(["method", "tokens"]).loc[("dense direct", t_d), "bytes_per_pair"]
    second = (f"Peak memory grows with exponent {grow.loc['dense direct', 'memory_exponent']:.2f} in the tokens for "
              f"the direct dense losses ({bpp:.1f} bytes per pair of tokens; {mb_d:,.0f} MB at {t_d:,}), "
              f"{grow.loc['dense chunked', 'memory_exponent']:.2f} for the chunked ones ({mb_c:,.1f} MB at {t_c:,}) "
              f"and {grow.loc['ssync', 'memory_exponent']:.2f} for SSync ({mb_s:.2f} MB at {t_s:,}).")
    both = ms.dropna()
    top, bottom = both.index.max(), both.index.min()
    ratio = both["dense chunked"] / both["dense direct"]
    third = (f"Chunking saves memory, not time: the chunked form takes {ratio.min():.2f}-{ratio.max():.2f}x the "
             f"direct form's time ({both.loc[top, 'dense chunked']:,.0f} against {both.loc[top, 'dense direct']:,.0f} "
             f"ms at {top:,} tokens), while SSync takes {both.loc[top, 'ssync']:.1f} ms there, "
             f"{both.loc[top, 'dense direct'] / both.loc[top, 'ssync']:,.0f}x less than the direct form "
             f"({both.loc[bottom, 'dense direct'] / both.loc[bottom, 'ssync']:.1f}x less at {bottom:,} tokens).")
    return " ".join([first, second, third])


def cost_claim(df: pd.DataFrame, at: int = 2304) -> str:
    """Claim 3 (SSync's cost is linear in the patches, §4.7) in one markdown sentence from a ``run_alignment``
    table: the fitted memory exponents (held when SSync's is below 1.25) and the ratios at ``at`` tokens (MOVi-C),
    where both were measured."""
    grow = growth_exponents(df).set_index("method")["memory_exponent"]
    measured = df[~df["extrapolated"].astype(bool)].set_index(["method", "tokens"])
    held = "held" if grow["ssync"] < 1.25 else "not held"
    text = (f"**3. SSync costs linearly in the patches: {held}.** Its peak memory grows with exponent "
            f"{grow['ssync']:.2f} in the tokens per clip, dense alignment's with {grow['dense direct']:.2f}")
    if ("dense direct", at) in measured.index and ("ssync", at) in measured.index:
        d, s = measured.loc[("dense direct", at)], measured.loc[("ssync", at)]
        text += (f"; at {at:,} tokens dense alignment needs {d['peak_bytes'] / s['peak_bytes']:.0f}x SSync's memory "
                 f"and {d['seconds'] / s['seconds']:.0f}x its time (measured)")
    return text + "."


def read_batch_memory(df: pd.DataFrame, batch: int = 64, gpu_gb: float = 80.0) -> str:
    """One sentence: the measured batch-1 peaks scaled to ``batch`` clips (memory is linear in the batch) at
    MOVi-C's 2,304 and YouTube-VIS's 5,476 tokens, as a share of a ``gpu_gb`` GPU, labelled as a scaling."""
    measured = df[~df["extrapolated"].astype(bool)]
    gb = measured.pivot(index="tokens", columns="method", values="peak_mb") * batch / int(df["batch"].iloc[0]) / 1024
    parts = [f"at {t:,} tokens about **{gb.loc[t, 'dense direct']:.1f} GB** per GPU "
             f"({100 * gb.loc[t, 'dense direct'] / gpu_gb:.0f}% of an {gpu_gb:.0f} GB GPU), against "
             f"{gb.loc[t, 'dense chunked']:.2f} GB chunked and {gb.loc[t, 'ssync']:.2f} GB for SSync"
             for t in (2304, 5476) if t in gb.index]
    return (f"Scaled to a batch of {batch} (the measured batch-{int(df['batch'].iloc[0])} peaks times {batch}, not a "
            "measurement), the direct dense losses alone would need " + "; ".join(parts)
            + ", on top of the model's own activations.")
