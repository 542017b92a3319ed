"""Time budgets of the GPU check: a part that fails or runs out of time is recorded with its error, the rest goes
on (SIGALRM: the main thread of a Unix process)."""
from __future__ import annotations

import signal
import time
import traceback
from contextlib import contextmanager
from typing import Callable

class BudgetExceeded(Exception):
    """A stage or a run went over its time budget."""


class NoTimeLeft(BudgetExceeded):
    """The enclosing budget was spent before this part started."""


_DEADLINES: list[float] = []  # time.monotonic() deadlines of the active time limits, innermost last


def _on_alarm(signum, frame):
    raise BudgetExceeded("over its time budget")


@contextmanager
def time_limit(seconds: float):
    """Raise BudgetExceeded inside the block after `seconds`, or at the enclosing limit's deadline if that comes
    first; yields the seconds granted. SIGALRM: the main thread of a Unix process. A long C++ call (one CUDA sync)
    finishes before the exception is raised."""
    deadline = time.monotonic() + seconds
    if _DEADLINES:
        deadline = min(deadline, _DEADLINES[-1])
    granted = deadline - time.monotonic()
    if granted <= 0:
        raise NoTimeLeft("not started: its stage's time budget was spent")
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _DEADLINES.append(deadline)
    signal.setitimer(signal.ITIMER_REAL, granted)
    try:
        yield granted
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _DEADLINES.pop()
        signal.signal(signal.SIGALRM, previous)
        left = _DEADLINES[-1] - time.monotonic() if _DEADLINES else 0.0
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)


def attempt(record: dict, budget: float, fn: Callable[[dict], None]) -> dict:
    """fn(record) under a time limit; its status ('ok', 'failed', 'timeout', 'skipped'), seconds and error go into
    `record` (which fn fills as it goes, so a failure keeps the figures gathered before it) instead of raising."""
    record.update(status="running", budget_s=budget)
    start = time.perf_counter()
    granted = budget
    try:
        with time_limit(budget) as granted:
            fn(record)
        record["status"] = "ok"
    except NoTimeLeft as err:
        record.update(status="skipped", error=str(err))
    except BudgetExceeded:
        record.update(status="timeout", error=f"stopped at its time limit of {granted:.0f} s (its budget or what "
                                              f"was left of its stage's)")
    except Exception as err:  # a broken part is a finding of the check, not the end of it
        record.update(status="failed", error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc().strip().splitlines()[-12:])
    finally:
        record["seconds"] = round(time.perf_counter() - start, 2)
    return record


def require_all_ok(units: list[dict], what: str) -> None:
    bad = [f"{u['name']} ({u['status']})" for u in units if u["status"] != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(units)} {what} did not succeed: {', '.join(bad)}")
