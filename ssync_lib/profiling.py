"""Memory measurement: the peak of torch's allocations while a function runs, and the objective steps to measure.

On the CPU, tracemalloc only sees Python's own allocator, not torch's (a 4 MB tensor is invisible to it), so the
peak is read from the allocation events of the torch profiler: each event carries the running total of bytes
allocated, and the peak is the largest total minus the total when the function started. On a GPU it is
torch.cuda.max_memory_allocated. The process's peak resident set size (Linux) is a cross-check of the CPU figure.

    python -m ssync_lib.profiling        # the dense-alignment table: direct vs chunked peak memory over M
    python -m ssync_lib.bench alignment  # time and memory of dense alignment against SSync (bench.py)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from ssync_lib.objectives.dense_alignment import decoder_alignment_loss, encoder_alignment_loss
from ssync_lib.objectives.ssync import pseudo_labels, ssync_loss

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter (malloc.h)


def peak_cpu_memory(fn: Callable[[], object]) -> int:
    """Peak bytes of torch CPU memory allocated while fn() runs, above what was allocated when it started."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == torch._C._profiler._EventType.Allocation:  # alloc_size < 0 for a free
            events.append((event.start_time_ns, event.extra_fields.total_allocated, event.extra_fields.alloc_size))
    if not events:
        return 0
    _, first_total, first_size = min(events)
    # total_allocated counts every allocation the profiler has seen in this process, so subtract the total
    # from just before the first event of this run.
    return max(0, max(total for _, total, _ in events) - (first_total - first_size))


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> int:
    """Peak bytes of torch memory allocated on `device` while fn() runs, above what was allocated when it started:
    torch.cuda.max_memory_allocated on a GPU, peak_cpu_memory on the CPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return peak_cpu_memory(fn)
    torch.cuda.synchronize(device)
    start = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - start


@functools.cache
def _glibc():
    """glibc with its mmap threshold fixed at 64 KB (see peak_rss); AttributeError where the C library is not glibc."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    return libc


def peak_rss(fn: Callable[[], object]) -> int | None:
    """Growth of the process's peak resident set size (bytes) while fn() runs, or None where it cannot be read.

    Linux and glibc only: writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current RSS. glibc keeps
    freed blocks in its heap and raises its mmap threshold as large blocks are freed, so the RSS peak would also
    count earlier runs' leftovers and heap fragmentation. The first call therefore fixes the mmap threshold at 64 KB
    (large blocks are then mapped and unmapped one by one, for the rest of the process: slower allocations) and each
    call trims the heap first. Exact only where the threshold was fixed before the process's large allocations:
    use peak_rss_fresh. Unlike the profiler it counts every allocator, so it is a cross-check of peak_cpu_memory."""
    status, clear = Path("/proc/self/status"), Path("/proc/self/clear_refs")

    def read_kb(field: str) -> int:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read_text(), re.M).group(1))

    try:
        _glibc().malloc_trim(0)  # freed blocks back to the system: the RSS then starts from live memory
        clear.write_text("5")
        start = read_kb("VmRSS")
    except (OSError, AttributeError):
        return None
    fn()
    return max(0, read_kb("VmHWM") - start) * 1024


def peak_rss_fresh(builders: Iterable[tuple[Callable, dict]]) -> list[int | None]:
    """peak_rss of build(**kwargs)() (after one warm-up run) for each (build, kwargs), all in one fresh Python
    process, so that glibc's mmap threshold is fixed before any large allocation and this process's allocator is
    left alone. `build` must be a module-level function (e.g. dense_alignment_step), kwargs picklable."""
    with tempfile.TemporaryDirectory() as tmp:
        jobs, results = Path(tmp) / "jobs.pkl", Path(tmp) / "results.pkl"
        jobs.write_bytes(pickle.dumps(list(builders)))
        command = f"from ssync_lib.profiling import _peak_rss_main; _peak_rss_main({str(jobs)!r}, {str(results)!r})"
        done = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"peak_rss_fresh: the measuring process failed:\n{done.stderr[-2000:]}")
        return pickle.loads(results.read_bytes())


def _warmed_up(step: Callable[[], object]) -> Callable[[], object]:
    step()  # one-off allocations (thread pools, kernel caches) are not the step's
    return step


def _peak_rss_main(jobs: str, results: str) -> None:
    """The fresh process of peak_rss_fresh: fix glibc's threshold first, then measure each step."""
    builders = pickle.loads(Path(jobs).read_bytes())
    try:
        _glibc()
    except (OSError, AttributeError):  # not glibc
        rss = [None] * len(builders)
    else:
        rss = [peak_rss(_warmed_up(build(**kwargs))) for build, kwargs in builders]
    Path(results).write_bytes(pickle.dumps(rss))


def dense_alignment_step(M: int, chunk: int, batch: int = 1, dim: int = 64, feature_dim: int = 384,
                         num_slots: int = 11, k: int = 32, seed: int = 0, device: torch.device | str = "cpu"):
    """Both SRL losses (method notes §3) on random inputs of one group of M tokens per clip -> step(), which runs
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
    """SSync's pseudo-labels and both losses (method notes §4) on random slot logits B T S N (N = H*W) -> step(),
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
    """Peak CPU memory of the forward and backward pass of both SRL losses (method notes §3) for M tokens per
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


if __name__ == "__main__":
    print(f"{'M':>6} {'direct MB':>10} {'chunked MB':>11} {'direct B/entry':>15} {'chunked B/entry':>16}")
    for r in dense_alignment_memory():
        print(f"{r['M']:>6} {r['direct_bytes'] / 2**20:>10.1f} {r['chunked_bytes'] / 2**20:>11.1f} "
              f"{r['direct_bytes_per_entry']:>15.1f} {r['chunked_bytes_per_entry']:>16.2f}")
