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
