"""Benchmarks: the cost of alignment, dense against selective, the speed of SSync's pseudo-labels, the parts of a
training step and the metrics (method notes §3 cost, §4.7).

    python -m ssync_lib.bench alignment [--sizes 64 256 576 1024 2304 5476] [--batch 1] [--chunk 256]
    python -m ssync_lib.bench labels [--batch 64]          # MOVi-C and YouTube-VIS shapes against the loop reference
    python -m ssync_lib.bench step --profile movi_c --batch 1   # random weights, on the CPU too
    python -m ssync_lib.bench metrics

Every subcommand prints a table, writes runs/bench/<name>.csv and a seaborn plot runs/bench/<name>.png (<name>:
alignment (+ alignment_summary.csv), labels, step_<profile>, metrics; --out for another folder), on the CPU or a
GPU (--device). Times are the best of --repeats runs after a warm-up; the thread count (--threads, else torch's
default, which follows OMP_NUM_THREADS) is recorded in every table. Peak memory is torch's own
(profiling.peak_memory: profiler allocation events on the CPU, torch.cuda.max_memory_allocated on a GPU), above
what was allocated before the run. The notebooks call the plain functions:

    df = run_alignment(sizes=(64, 256), batch=1); plot_alignment(df, "alignment.png")
    run_labels(shapes={"tiny": LabelShape(2, 4, 5, (6, 6), 0.7)}); run_step("smoke"); run_metrics(batch=2)
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ssync_lib import metrics
from ssync_lib.config import PROFILES, get_config, resolve_path
from ssync_lib.evaluate import resolve_device
from ssync_lib.models import create_model
from ssync_lib.objectives import (build_objective, pseudo_labels, reconstruction_loss, redundancy_loss,
                                  slot_contrast_loss, ssync_loss)
from ssync_lib.objectives.ssync import PseudoLabels
from ssync_lib.profiling import dense_alignment_step, peak_memory, peak_rss_fresh, ssync_step

DEFAULT_OUT = "runs/bench"
MB = 2 ** 20


# ----------------------------------------------------------------------------- shared helpers

def best_time(fn: Callable[[], object], repeats: int = 3, device: torch.device | str = "cpu") -> float:
    """Seconds of the fastest of `repeats` runs of fn() (the caller warms up); waits for the GPU to finish."""
    device = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    best = math.inf
    for _ in range(max(repeats, 1)):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def _context(device: torch.device) -> dict:
    return {"device": str(device), "threads": torch.get_num_threads()}


def save_table(df: pd.DataFrame, name: str, fig=None, out: str | Path = DEFAULT_OUT) -> list[Path]:
    """Write out/<name>.csv and, given a figure, out/<name>.png (out relative to the project root) -> the paths."""
    folder = resolve_path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.csv"]
    df.to_csv(paths[0], index=False)
    if fig is not None:
        paths.append(folder / f"{name}.png")
        fig.savefig(paths[1], dpi=120, bbox_inches="tight")
    return paths


def _figure(ncols: int = 1, width: float = 6.0, height: float = 4.0):
    """A matplotlib Figure outside pyplot (no global state; a notebook displays the returned figure)."""
    from matplotlib.figure import Figure
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _finish(fig, path: str | Path | None):
    if path is not None:
        fig.savefig(resolve_path(path), dpi=120, bbox_inches="tight")
    return fig


def _grid(patches: int) -> tuple[int, int]:
    """The most square (H, W) grid with H * W = patches."""
    h = max(d for d in range(1, math.isqrt(patches) + 1) if patches % d == 0)
    return h, patches // h


# ----------------------------------------------------------------------------- alignment

# name: (growth of peak memory, growth of time) in T*N, used to extrapolate from the per-entry cost of the largest
# measured size (entries = batch * (T*N)^power); growth_exponents() fits the measured growth to check them.
ALIGNMENT_METHODS = {"dense direct": (2, 2), "dense chunked": (1, 2), "ssync": (1, 1)}
ALIGNMENT_SIZES = (64, 256, 576, 1024, 2304, 5476)  # T*N with T = 4: N = 16, 64, 144, 256, 576 (MOVi-C), 1369 (YTVIS)


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
    the CPU, one more run of each in a fresh process (profiling.peak_rss_fresh; Linux and glibc, else NaN).
    """
    device = resolve_device(device)
    sizes = sorted(set(sizes))
    bad = [m for m in sizes if m % frames]
    if bad:
        raise ValueError(f"sizes {bad} are not multiples of frames={frames} (each size is T*N with T = frames)")
    rows, last, builders = [], {}, []  # last: method -> (tokens, peak bytes, seconds) of its largest measured size
    for tokens in sizes:
        reference = None  # the direct (loss, grads) at this size, for the chunked comparison
        for method, (mem_power, time_power) in ALIGNMENT_METHODS.items():
            row = {"method": method, "tokens": tokens, "frames": frames, "patches": tokens // frames,
                   "batch": batch, **_context(device)}
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
    df["bytes_per_pair"] = df["peak_bytes"] / (df["batch"] * df["tokens"] ** 2)  # method notes §3: ~55 for SRL
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


def plot_alignment(df: pd.DataFrame, path: str | Path | None = None):
    """Peak memory and time against T*N (log-log), one line per method; extrapolated points as crosses."""
    import seaborn as sns

    fig, (ax_mem, ax_time) = _figure(2)
    data = df.assign(kind=np.where(df["extrapolated"], "extrapolated", "measured"))
    for ax, column, label in ((ax_mem, "peak_mb", "peak memory (MB)"), (ax_time, "time_ms", "forward + backward (ms)")):
        sns.lineplot(data=data, x="tokens", y=column, hue="method", ax=ax, legend=False)
        sns.scatterplot(data=data, x="tokens", y=column, hue="method", style="kind", ax=ax, legend=ax is ax_mem,
                        markers={"measured": "o", "extrapolated": "X"}, s=60)
        ax.set(xscale="log", yscale="log", xlabel="tokens per clip T·N", ylabel=label)
    first = df.iloc[0]
    fig.suptitle(f"Dense alignment vs SSync, forward + backward, batch {first['batch']} "
                 f"({first['device']}, {first['threads']} threads)")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- labels

@dataclass(frozen=True)
class LabelShape:
    """The shape of one labels benchmark: slot logits B T S N with N = H * W, and the merge threshold."""
    batch: int
    frames: int
    slots: int
    grid: tuple[int, int]
    merge_iou: float


LABEL_SHAPES = {"MOVi-C": LabelShape(64, 4, 11, (24, 24), 0.7),  # method notes §1 table: ViT-S/14 at 336 px
                "YTVIS": LabelShape(64, 4, 7, (37, 37), 0.6)}  # ViT-B/14 at 518 px


def _frame_neighbours(labels: torch.Tensor, t: int) -> torch.Tensor:
    """labels T H W -> 10 H W: frame t's 3x3 spatial neighbours and the same patch in frames t-1 and t+1, replicate
    padding (§4.3)."""
    T, H, W = labels.shape
    rows = torch.cat([labels[t, :1], labels[t], labels[t, -1:]])  # H+2 W  edge rows repeated
    padded = torch.cat([rows[:, :1], rows, rows[:, -1:]], dim=1)  # H+2 W+2
    spatial = [padded[1 + dh:1 + dh + H, 1 + dw:1 + dw + W] for dh in (-1, 0, 1) for dw in (-1, 0, 1) if dh or dw]
    return torch.stack(spatial + [labels[max(t - 1, 0)], labels[min(t + 1, T - 1)]])


def loop_pseudo_labels(attn_logits: torch.Tensor, dec_logits: torch.Tensor, grid: tuple[int, int],
                       merge_iou: float = 0.7) -> PseudoLabels:
    """The reference for `pseudo_labels` (§4.1-§4.4), written the way the public code is: Python loops over the batch,
    the frames, the slot pairs and the slot components (depth-first search), tensor operations over the patches of
    one frame. Same tie rules as pseudo_labels (representative: largest area, then lowest index); iou in float64."""
    B, T, S, N = attn_logits.shape
    H, W = grid
    logits = attn_logits.to(torch.promote_types(attn_logits.dtype, torch.float32))
    eye = torch.eye(S, dtype=torch.bool, device=logits.device)
    fields = {name: [] for name in ("slot_map", "enc_labels", "dec_labels", "boundary", "interior", "enc_unmerged",
                                    "dec_unmerged", "coverage", "iou", "edges")}
    for b in range(B):
        enc = torch.stack([logits[b, t].argmax(0) for t in range(T)])  # T N  §4.1
        dec = torch.stack([dec_logits[b, t].argmax(0) for t in range(T)])  # T N  §4.1
        cover = torch.stack([logits[b, :, s] > logits[b, :, s].mean() for s in range(S)], dim=1)  # T S N  §4.2
        iou = torch.zeros(S, S, dtype=torch.float64, device=logits.device)
        for i in range(S):
            for j in range(S):
                for t in range(T):
                    union = int((cover[t, i] | cover[t, j]).sum())
                    if union:  # both masks empty: IoU 0, the frame still counts in the mean (§4.2)
                        iou[i, j] += int((cover[t, i] & cover[t, j]).sum()) / union / T
        edges = (iou > merge_iou) & ~eye  # §4.2 strict >, no self-pairs
        adjacent, area = edges.tolist(), torch.bincount(enc.flatten(), minlength=S).tolist()
        slot_map, seen = list(range(S)), set()
        for start in (s for s in range(S) if s not in seen):
            component, stack = [], [start]
            while stack:  # depth-first search over the edges: one connected component
                i = stack.pop()
                if i not in seen:
                    seen.add(i)
                    component.append(i)
                    stack += [j for j in range(S) if adjacent[i][j] and j not in seen]
            representative = max(component, key=lambda s: (area[s], -s))  # §4.2 largest area, ties: lowest index
            for i in component:
                slot_map[i] = representative
        slot_map = torch.tensor(slot_map, device=logits.device)  # S
        enc_m, dec_m = slot_map[enc].view(T, H, W), slot_map[dec].view(T, H, W)  # §4.2 rewritten through the map
        boundary, interior = [], []
        for t in range(T):
            differs = _frame_neighbours(enc_m, t) != enc_m[t]  # 10 H W
            boundary.append(differs.any(0) & ~differs.all(0))  # §4.4
            interior.append((_frame_neighbours(dec_m, t) == dec_m[t]).all(0))  # §4.4
        for name, value in (("slot_map", slot_map), ("enc_labels", enc_m), ("dec_labels", dec_m),
                            ("boundary", torch.stack(boundary)), ("interior", torch.stack(interior)),
                            ("enc_unmerged", enc.view(T, H, W)), ("dec_unmerged", dec.view(T, H, W)),
                            ("coverage", cover), ("iou", iou), ("edges", edges)):
            fields[name].append(value)
    return PseudoLabels(**{name: torch.stack(values) for name, values in fields.items()})


def labels_mismatch(got: PseudoLabels, ref: PseudoLabels, atol: float = 1e-6) -> list[str]:
    """Names of the PseudoLabels fields that differ (iou: beyond atol; every other field: exactly)."""
    bad = []
    for name in PseudoLabels.__dataclass_fields__:
        a, b = getattr(got, name), getattr(ref, name)
        same = (a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=atol) if name == "iou"
                else torch.equal(a, b))
        if not same:
            bad.append(name)
    return bad


def _smooth(gen: torch.Generator, B: int, T: int, C: int, grid: tuple[int, int], scale: float) -> torch.Tensor:
    """Random maps at 1/8 of the grid, bilinearly upsampled -> B T C N."""
    H, W = grid
    coarse = torch.randn(B * T, C, max(H // 8, 1), max(W // 8, 1), generator=gen)
    return scale * F.interpolate(coarse, size=grid, mode="bilinear", align_corners=False).view(B, T, C, H * W)


def clip_logits(shape: LabelShape, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot-attention and decoder logits B T S N that look like a model's: smooth object maps that change a little
    over the frames, a third of the slots weaker near-copies of others (so that merging happens), decoder logits =
    encoder logits + smooth noise. At the LABEL_SHAPES about 35% of the patches are boundary, 50% interior."""
    gen = torch.Generator().manual_seed(seed)
    B, T, S = shape.batch, shape.frames, shape.slots
    objects = max(1, S - S // 3)
    maps = _smooth(gen, B, 1, objects, shape.grid, 3.0) + _smooth(gen, B, T, objects, shape.grid, 0.3)  # B T O N
    sources = torch.randint(0, objects, (S - objects,), generator=gen)
    copies = maps[:, :, sources] - 0.5 + _smooth(gen, B, T, S - objects, shape.grid, 0.5)  # redundant slots
    attn = torch.cat([maps, copies], dim=2)  # B T S N
    return attn, attn + _smooth(gen, B, T, S, shape.grid, 1.0)


def run_labels(shapes: Mapping[str, LabelShape] = LABEL_SHAPES, batch: int | None = None, repeats: int = 3,
               device: str = "cpu", seed: int = 0) -> pd.DataFrame:
    """pseudo_labels against loop_pseudo_labels at each shape (`batch` overrides the shapes' batch): outputs checked
    equal first (AssertionError naming the fields otherwise), then both timed. -> one row per shape."""
    device = resolve_device(device)
    rows = []
    for name, shape in shapes.items():
        shape = replace(shape, batch=batch or shape.batch)
        attn, dec = (x.to(device) for x in clip_logits(shape, seed))
        args = (attn, dec, shape.grid, shape.merge_iou)
        got, ref = pseudo_labels(*args), loop_pseudo_labels(*args)  # also the warm-up runs
        bad = labels_mismatch(got, ref)
        if bad:
            raise AssertionError(f"labels bench '{name}': pseudo_labels and loop_pseudo_labels differ in {bad}")
        loop_s = best_time(lambda: loop_pseudo_labels(*args), repeats, device)
        vec_s = best_time(lambda: pseudo_labels(*args), repeats, device)
        S = shape.slots
        rows.append({"shape": name, "batch": shape.batch, "frames": shape.frames, "slots": S,
                     "grid": f"{shape.grid[0]}x{shape.grid[1]}", "merge_iou": shape.merge_iou,
                     "loop_ms": loop_s * 1e3, "vectorised_ms": vec_s * 1e3, "speedup": loop_s / vec_s,
                     "equal": True, "merged_per_clip": float((got.slot_map != torch.arange(S, device=device))
                                                             .sum(1).float().mean()),
                     "boundary_pct": 100 * float(got.boundary.float().mean()),
                     "interior_pct": 100 * float(got.interior.float().mean()), **_context(device)})
    return pd.DataFrame(rows)


def plot_labels(df: pd.DataFrame, path: str | Path | None = None):
    """Time of the loop reference and of pseudo_labels per shape, the speed-up under each shape."""
    import seaborn as sns

    fig, (ax,) = _figure(1)
    named = df.assign(shape=[f"{r['shape']} {r['grid']}, S={r['slots']}\n{r['speedup']:.1f}x faster"
                             for _, r in df.iterrows()])
    data = named.melt(id_vars=["shape"], value_vars=["loop_ms", "vectorised_ms"], var_name="implementation",
                      value_name="ms").replace({"loop_ms": "loop (reference)", "vectorised_ms": "pseudo_labels"})
    sns.barplot(data=data, x="shape", y="ms", hue="implementation", ax=ax)
    ax.set(ylabel="time per batch (ms)", xlabel="")
    first = df.iloc[0]
    ax.set_title(f"SSync pseudo-labels, batch {first['batch']} ({first['device']}, {first['threads']} threads)")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- step

SSYNC_STEP = ("encoder", "slot attention + predictor", "decoder", "reconstruction loss", "slot contrast loss",
              "SSync pseudo-labels", "SSync losses")
DENSE_STEP = SSYNC_STEP[:5] + ("dense alignment",)


def run_step(profile: str = "cpu", batch: int | None = None, overrides: Sequence[str] | Mapping = (),
             repeats: int = 3, device: str = "cpu", seed: int = 0) -> pd.DataFrame:
    """Time of each part of a training step (forward + backward) at `profile`'s config, with random backbone weights
    and a random video of the profile's input size and chunk length (`batch` overrides train.batch_size).

    Each part runs alone on detached inputs (a module's backward from random upstream gradients; an objective term's
    from its loss), so the parts add up to the step: `ssync_step_pct` is each part's share of the SSync step
    (SSYNC_STEP), `dense_step_pct` of SRL's step in its contrastive phase (DENSE_STEP; the redundancy regulariser,
    early steps only, is shown against the same total). Two more rows: each objective's step measured as one
    model + objective forward and backward, a cross-check of the sum of its parts."""
    device = resolve_device(device)
    cfg = get_config(profile, overrides)
    cfg.model.weights = "random"  # the time does not depend on the weights; no download
    B, T, size = batch or cfg.train.batch_size, cfg.data.chunk_len, cfg.data.input_size
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = create_model(cfg.model, size).to(device).train()
    objectives = {name: build_objective(replace(cfg.objective, name=name), model.feature_dim, cfg.model.slot_dim,
                                        cfg.train.max_steps).to(device) for name in ("ssync", "dense")}
    video = torch.randn(B, T, 3, size, size, generator=gen).to(device)  # B T 3 H W
    with torch.no_grad():
        out = model(video)

    def leaf(x: torch.Tensor) -> torch.Tensor:
        return x.detach().clone().requires_grad_()

    features = out.features  # B T N D
    slots_in, recon, slots, attn_logits, alpha, attn, projected = (
        leaf(x) for x in (out.slots.flatten(0, 1), out.recon, out.slots, out.attn_logits, out.alpha, out.attn,
                          out.projected))
    ocfg = cfg.objective
    labels = pseudo_labels(attn_logits.detach(), alpha.detach(), model.grid, ocfg.merge_iou)

    upstream = {name: torch.randn(x.shape, generator=gen).to(x)  # random gradients from the parts downstream
                for name, x in (("slots", out.slots), ("logits", out.attn_logits), ("recon", out.recon.flatten(0, 1)),
                                ("alpha", out.alpha.flatten(0, 1)))}

    def slot_part():
        _, part_slots, _, part_logits = model.slots_from_features(features)  # B T S d, B T S N
        torch.autograd.backward([part_slots, part_logits], [upstream["slots"], upstream["logits"]])

    def decoder_part():
        part_recon, part_alpha, _ = model.decoder(slots_in)  # (B*T) N D, (B*T) S N
        torch.autograd.backward([part_recon, part_alpha], [upstream["recon"], upstream["alpha"]])

    def full_step(name: str) -> Callable[[], None]:
        step = cfg.train.max_steps - 1  # past SSync's warm-up and inside SRL's contrastive phase (§3, §4.6)

        def run():
            model.zero_grad(set_to_none=True)
            objectives[name](model(video), step).total.backward()
        return run

    parts = {
        "encoder": lambda: model.encode(video),  # frozen: forward only (§1.1)
        "slot attention + predictor": slot_part,
        "decoder": decoder_part,
        "reconstruction loss": lambda: reconstruction_loss(recon, features).backward(),
        "slot contrast loss": lambda: slot_contrast_loss(slots, ocfg.slot_contrast_tau).backward(),
        "SSync pseudo-labels": lambda: pseudo_labels(attn_logits.detach(), alpha.detach(), model.grid,
                                                     ocfg.merge_iou),
        "SSync losses": lambda: sum(ssync_loss(attn_logits, alpha, labels)).backward(),
        "dense alignment": lambda: sum(objectives["dense"].dense(recon, features, projected, attn_logits,
                                                                 alpha)).backward(),
        "redundancy regulariser": lambda: redundancy_loss(slots[:, -1], attn[:, -1],
                                                          ocfg.redundancy_slots).backward(),
        "measured step, ssync objective": full_step("ssync"),
        "measured step, dense objective": full_step("dense"),
    }
    rows = []
    for part, fn in parts.items():
        fn()  # warm-up
        rows.append({"part": part, "time_ms": best_time(fn, repeats, device) * 1e3})
    df = pd.DataFrame(rows).set_index("part")
    shares = {"ssync_step_pct": (SSYNC_STEP, ("measured step, ssync objective",)),
              "dense_step_pct": (DENSE_STEP, ("measured step, dense objective", "redundancy regulariser"))}
    for column, (members, also_shown) in shares.items():
        shown = list(members + also_shown)
        df.loc[shown, column] = 100 * df.loc[shown, "time_ms"] / df.loc[list(members), "time_ms"].sum()
    df = df.reset_index()
    return df.assign(profile=profile, batch=B, frames=T, input_size=size, grid=f"{model.grid[0]}x{model.grid[1]}",
                     slots=cfg.model.num_slots, dense_chunk=ocfg.dense_chunk, **_context(device))


def plot_step(df: pd.DataFrame, path: str | Path | None = None):
    """Share of the SSync and the SRL training step per part (horizontal bars)."""
    import seaborn as sns

    fig, (ax,) = _figure(1, width=8)
    data = df[~df["part"].str.startswith("measured")].melt(
        id_vars=["part"], value_vars=["ssync_step_pct", "dense_step_pct"], var_name="step", value_name="share (%)")
    data = data.dropna().replace({"ssync_step_pct": "SSync step", "dense_step_pct": "SRL (dense) step"})
    sns.barplot(data=data, y="part", x="share (%)", hue="step", ax=ax)
    ax.set(xscale="log", ylabel="")
    first = df.iloc[0]
    ax.set_title(f"Training step at '{first['profile']}', batch {first['batch']} ({first['device']}, "
                 f"{first['threads']} threads)")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- metrics

def _blocky(shape: tuple[int, ...], high: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Random ids in blocks of 8x8 pixels -> B T size size, int64."""
    coarse = torch.randint(high, (*shape, max(size // 8, 1), max(size // 8, 1)), generator=gen)
    return F.interpolate(coarse.flatten(0, 1)[:, None].float(), size=(size, size), mode="nearest")[:, 0] \
        .long().unflatten(0, shape)  # B T H W


def run_metrics(batch: int = 64, frames: int = 24, size: int = 128, slots: int = 11, repeats: int = 3,
                device: str = "cpu", seed: int = 0) -> pd.DataFrame:
    """Time of each metric on a MOVi-sized evaluation batch of blocky random label maps (ground truth: up to 10
    objects on a background; prediction: one of `slots` ids per block) -> one row per function."""
    device = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    true = _blocky((batch, frames), 11, size, gen).to(torch.uint8).to(device)  # B T H W, 0 = background
    pred = _blocky((batch, frames), slots, size, gen).to(device)  # B T H W
    grid = max(size // 16, 1)
    soft = torch.rand(batch, frames, slots, grid, grid, generator=gen).softmax(dim=2).to(device)  # B T S h w
    cases = {
        "fg_ari video": lambda: metrics.fg_ari(pred, true),
        "fg_ari image": lambda: metrics.fg_ari(pred, true, level="image"),
        "mbo video": lambda: metrics.mbo(pred, true),
        "miou video": lambda: metrics.miou(pred, true),
        "miou image": lambda: metrics.miou(pred, true, level="image"),
        "evaluate_masks (all six)": lambda: metrics.evaluate_masks(pred, true),
        f"masks_to_labels {grid}x{grid}->{size}": lambda: metrics.masks_to_labels(soft, size),
    }
    rows = []
    for name, fn in cases.items():
        fn()  # warm-up
        rows.append({"function": name, "time_ms": best_time(fn, repeats, device) * 1e3, "batch": batch,
                     "frames": frames, "size": size, "slots": slots, **_context(device)})
    return pd.DataFrame(rows)


def plot_metrics(df: pd.DataFrame, path: str | Path | None = None):
    import seaborn as sns

    fig, (ax,) = _figure(1, width=7)
    sns.barplot(data=df, y="function", x="time_ms", ax=ax)
    first = df.iloc[0]
    ax.set(xlabel="time per batch (ms)", ylabel="",
           title=f"Metrics on ({first['batch']}, {first['frames']}, {first['size']}, {first['size']}) label maps "
                 f"({first['device']}, {first['threads']} threads)")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- command line

def _print(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


def _cmd_alignment(args) -> list[tuple[pd.DataFrame, object, str]]:
    df = run_alignment(args.sizes, args.batch, args.frames, args.chunk, args.slots, args.topk, args.merge_iou,
                       args.repeats, args.budget_gb, args.max_seconds, args.device, rss=not args.no_rss)
    columns = ["method", "tokens", "peak_mb", "rss_mb", "time_ms", "bytes_per_pair", "extrapolated", "max_diff"]
    if "rss_bytes" in df:
        df["rss_mb"] = df["rss_bytes"] / MB
    _print("alignment: forward + backward per batch", df[[c for c in columns if c in df]])
    summary = alignment_summary(df)
    _print("dense / SSync", summary)
    _print("growth exponents (log-log slope over measured sizes >= 256)", growth_exponents(df))
    print("\n" + "\n".join(alignment_targets(df)))
    return [(df, plot_alignment(df), "alignment"), (summary, None, "alignment_summary")]


def _cmd_labels(args):
    df = run_labels(batch=args.batch, repeats=args.repeats, device=args.device)
    _print("SSync pseudo-labels: vectorised against the loop reference (outputs checked equal)", df)
    return [(df, plot_labels(df), "labels")]


def _cmd_step(args):
    df = run_step(args.profile, args.batch, args.overrides, args.repeats, args.device)
    _print(f"training step parts at profile '{args.profile}'", df[["part", "time_ms", "ssync_step_pct",
                                                                    "dense_step_pct"]])
    ssync = df.set_index("part").loc[["SSync pseudo-labels", "SSync losses"], "ssync_step_pct"].sum()
    print(f"\nSSync (labels + losses): {ssync:.2f}% of the SSync training step (target <= 3% at MOVi-C on a GPU)")
    return [(df, plot_step(df), f"step_{args.profile}")]


def _cmd_metrics(args):
    df = run_metrics(args.batch or 64, args.frames or 24, repeats=args.repeats, device=args.device)
    _print("metrics", df[["function", "time_ms"]])
    return [(df, plot_metrics(df), "metrics")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ssync_lib.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    common.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up; the best is kept")
    common.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's, from OMP_NUM_THREADS)")
    common.add_argument("--out", default=DEFAULT_OUT, help=f"folder of the CSV and PNG (default {DEFAULT_OUT})")
    p = sub.add_parser("alignment", parents=[common], help="dense alignment (direct, chunked) against SSync")
    p.add_argument("--sizes", type=int, nargs="+", default=list(ALIGNMENT_SIZES), help="T*N values")
    p.add_argument("--batch", type=int, default=1, help="clips per batch (default 1)")
    p.add_argument("--frames", type=int, default=4, help="T: frames per group (default 4)")
    p.add_argument("--chunk", type=int, default=256, help="anchor rows per chunk of the chunked dense loss")
    p.add_argument("--slots", type=int, default=11)
    p.add_argument("--topk", type=int, default=8, help="dense top-k positives per frame (k = topk * T)")
    p.add_argument("--merge-iou", type=float, default=0.7)
    p.add_argument("--budget-gb", type=float, default=8.0, help="larger predicted peaks are extrapolated")
    p.add_argument("--max-seconds", type=float, default=60.0, help="longer predicted runs are extrapolated")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS cross-check (CPU, Linux)")
    p.set_defaults(run=_cmd_alignment)
    p = sub.add_parser("labels", parents=[common], help="pseudo_labels against the loop reference")
    p.add_argument("--batch", type=int, help="batch of both shapes (default 64)")
    p.set_defaults(run=_cmd_labels)
    p = sub.add_parser("step", parents=[common], help="share of each part of a training step")
    p.add_argument("--profile", default="cpu", choices=sorted(PROFILES))
    p.add_argument("--batch", type=int, help="batch size (default: the profile's)")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. --set objective.dense_chunk=256")
    p.set_defaults(run=_cmd_step)
    p = sub.add_parser("metrics", parents=[common], help="time of the metrics on a MOVi-sized evaluation batch")
    p.add_argument("--batch", type=int, help="videos (default 64)")
    p.add_argument("--frames", type=int, help="frames per video (default 24)")
    p.set_defaults(run=_cmd_metrics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{args.command} on {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for df, fig, name in args.run(args):
        for path in save_table(df, name, fig, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
