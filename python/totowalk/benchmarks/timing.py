"""Wall-clock timing: warm-up, then the median of repeats (device synchronised)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so wall time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Median and all repeat times of one timed function, in seconds."""

    median_s: float
    times_s: list

    @property
    def repeats(self) -> int:
        return len(self.times_s)


def time_call(fn, device: torch.device, repeats: int = 3, warmup: int = 1) -> tuple[Timing, object]:
    """Run ``fn()`` ``warmup`` times untimed, then ``repeats`` timed times.

    Returns
    -------
    Timing, and the value of the last call.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    value = None
    for _ in range(warmup):
        value = fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), times), value


def time_interleaved(fns: list, device: torch.device, repeats: list, warmup: int = 1) -> list:
    """Time several functions in turn (a, b, a, b, ...) so that each sees the same machine load.

    On a shared machine the load changes from second to second; timing the engine and then its
    baseline in two blocks would give each a different share of the CPU.

    Parameters
    ----------
    fns : list of callables; ``fn(i)`` is called with its repeat index i, ``fn(None)`` to warm up
    repeats : list of int, timed calls per function (>= 1 each)
    warmup : untimed ``fn(None)`` calls of each function first

    Returns
    -------
    list of Timing (one per function), list of each function's last value
    """
    if len(fns) != len(repeats) or any(r < 1 for r in repeats):
        raise ValueError(f"need one repeat count >= 1 per function, got {repeats} for {len(fns)} functions")
    values = [None] * len(fns)
    for _ in range(warmup):
        for j, fn in enumerate(fns):
            values[j] = fn(None)
    synchronize(device)
    times = [[] for _ in fns]
    for i in range(max(repeats)):
        for j, fn in enumerate(fns):
            if i >= repeats[j]:
                continue
            start = time.perf_counter()
            values[j] = fn(i)
            synchronize(device)
            times[j].append(time.perf_counter() - start)
    return [Timing(statistics.median(t), t) for t in times], values


def same_call(fn, *args, **kwargs):
    """A ``time_interleaved`` function that ignores the repeat index: ``fn(*args, **kwargs)``."""
    return lambda _index: fn(*args, **kwargs)
