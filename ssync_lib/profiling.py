"""Memory measurement on the CPU: the peak of torch's allocations while a function runs.

tracemalloc only sees Python's own allocator, not torch's (a 4 MB tensor is invisible to it), so the peak is read
from the allocation events of the torch profiler: each event carries the running total of bytes allocated, and the
peak is the largest total minus the total when the function started.

    python -m ssync_lib.profiling        # the dense-alignment table: direct vs chunked peak memory over M
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from ssync_lib.objectives.dense_alignment import decoder_alignment_loss, encoder_alignment_loss


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


def dense_alignment_memory(sizes: Iterable[int] = (256, 512, 1024, 2304), chunk: int = 256, batch: int = 1,
                           dim: int = 64, feature_dim: int = 384, num_slots: int = 11, k: int = 32,
                           seed: int = 0) -> list[dict]:
    """Peak CPU memory of the forward and backward pass of both SRL losses (method notes §3) for M tokens per
    group, direct (B x M x M) against chunked (`chunk` rows at a time). One dict per M, with the bytes per pairwise
    entry (peak / (batch * M * M)) for comparison with the public code's ~55."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for M in sizes:
        recon, proj = (torch.randn(batch, M, dim, generator=gen, requires_grad=True) for _ in range(2))
        u = F.normalize(torch.randn(batch, M, dim, generator=gen), dim=-1)
        f = F.normalize(torch.randn(batch, M, feature_dim, generator=gen), dim=-1)
        sem_attn, sem_dec = torch.randint(0, num_slots, (2, batch, M), generator=gen)

        def step(chunk_rows: int) -> None:
            loss = (decoder_alignment_loss(F.normalize(recon, dim=-1), u, sem_attn, chunk=chunk_rows)
                    + encoder_alignment_loss(F.normalize(proj, dim=-1), f, sem_dec, k, chunk=chunk_rows))
            loss.backward()

        direct, chunked = peak_cpu_memory(lambda: step(0)), peak_cpu_memory(lambda: step(chunk))
        rows.append({"M": M, "direct_bytes": direct, "chunked_bytes": chunked,
                     "direct_bytes_per_entry": direct / (batch * M * M),
                     "chunked_bytes_per_entry": chunked / (batch * M * M)})
    return rows


if __name__ == "__main__":
    print(f"{'M':>6} {'direct MB':>10} {'chunked MB':>11} {'direct B/entry':>15} {'chunked B/entry':>16}")
    for r in dense_alignment_memory():
        print(f"{r['M']:>6} {r['direct_bytes'] / 2**20:>10.1f} {r['chunked_bytes'] / 2**20:>11.1f} "
              f"{r['direct_bytes_per_entry']:>15.1f} {r['chunked_bytes_per_entry']:>16.2f}")
