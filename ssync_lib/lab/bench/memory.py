"""Memory measurement: the peak of torch's allocations while a function runs.

On the CPU, tracemalloc only sees Python's own allocator, not torch's (a 4 MB tensor is invisible to it), so the
peak is read from the allocation events of the torch profiler: each event carries the running total of bytes
allocated, and the peak is the largest total minus the total when the function started. On a GPU it is
torch.cuda.max_memory_allocated. The process's peak resident set size (Linux) is a cross-check of the CPU figure.
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
from torch.profiler import ProfilerActivity, profile

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
        command = (f"from ssync_lib.lab.bench.memory import _peak_rss_main; "
                   f"_peak_rss_main({str(jobs)!r}, {str(results)!r})")
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


