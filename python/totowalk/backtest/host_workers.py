"""A chunk's strategies and tables evaluated in worker processes on the host, a group of symbols each.

The host work of a chunk (walk-forward arrays, every strategy row, the forecast table) is pandas
and numpy on small arrays that hold the GIL: two threads ran W2's two halves only 1.02x faster
than one after the other (bench/RESULTS.md). On a card's many-core host it would stay on one core
however many threads it had, and at W2's size it takes longer than the card's forecast. Processes
have a GIL each: ``backtest(host_workers=N)`` cuts each chunk's symbols into N groups of
consecutive symbols, evaluates every group in one of N worker processes and joins the groups'
rows in run order. A group is evaluated exactly as a chunk of those symbols alone would be (the
numbers never depend on chunking), so the tables equal the one-process run's bit for bit
(tests/test_backtest_host_workers.py).

The workers are started once per process and kept for later calls (starting one imports torch
and pandas: about a second). They are spawned, not forked, so nothing of the caller's threads,
CUDA context or model reaches them (and, as with any spawned process, a calling script needs its
``if __name__ == "__main__":`` guard); each runs torch on its share of the host's threads and
ignores Ctrl-C, which the calling process handles (a group in flight finishes; the run stops).

On a 2-core machine this gains nothing (the workers share the cores the one process already
used); it is for a card's many-core host, where the forecast is short and this work is not.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pandas as pd

from .. import devices
from .chunks import chunk_tables
from .forecast.forecasters import Forecasts
from .forecast.plan import ForecastPlan
from .forecast.tables import TABLES
from .kept import summary_pieces
from .profiles.registry import profile_named

__all__ = [
    "check_host_workers",
    "close_worker_pools",
    "evaluate_in_workers",
    "resolve_host_workers",
    "start_workers",
    "symbol_groups",
    "workers_ready",
]

AUTO_MAX_WORKERS = 8  # "auto": half the host's cores, at most this many


def check_host_workers(count) -> int | str:
    """``count`` as a number of worker processes (0: evaluate in this process), or "auto"."""
    if isinstance(count, str) and count == "auto":
        return count
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(
            f"host_workers must be an integer >= 0 (0: strategies in this process) or 'auto', got {count!r}"
        )
    return int(count)


def resolve_host_workers(count, chunks: int, cores: int | None = None) -> int:
    """The workers a run of ``chunks`` chunks uses: ``count``, or for "auto" half the host's cores
    (at most :data:`AUTO_MAX_WORKERS`) where the run has two chunks or more on a host of
    :data:`...devices.SPARE_CORES` cores or more, else none. One chunk has nothing to hide the workers'
    start-up behind (W2 on a card is one chunk), and on fewer cores they only add their transfer."""
    if count != "auto":
        return count
    cores = cores or devices.host_cores()
    if chunks < 2 or cores < devices.SPARE_CORES:
        return 0
    return min(AUTO_MAX_WORKERS, cores // 2)


def symbol_groups(series: list, count: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of ``series`` cutting it into at most ``count`` runs of consecutive
    symbols, each holding about the same number of simulations (the strategies' work is per row)."""
    rows = np.cumsum([s.layout.num_simulations for s in series])
    if not len(series):
        return []
    count = max(1, min(count, len(series)))
    # each cut where the running count of rows passes the next equal share
    cuts = np.searchsorted(rows, rows[-1] * np.arange(1, count) / count, side="left") + 1
    bounds = sorted({0, *np.minimum(cuts, len(series)).tolist(), len(series)})
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def start_workers(workers: int) -> list:
    """Start the ``workers`` processes now (each imports totowalk and torch: a second or two), so
    their start-up runs beside the run's first chunks; returns what :func:`workers_ready` asks.
    Until they are ready the run evaluates its chunks in its own process (the same rows: a
    chunk's part does not depend on where it is made), so the start-up is never waited on."""
    pool = _pool(workers)
    return [pool.submit(_ready) for _ in range(workers)]  # one each: the pool starts a process per waiting task


def _ready() -> int:
    """A worker's first task: done once it has imported this module (and so totowalk), as an
    evaluation needs."""
    return os.getpid()


def workers_ready(started: list) -> bool:
    """Whether the processes :func:`start_workers` started are up (or one failed: the next
    evaluation then says so)."""
    return all(future.done() for future in started)


def evaluate_in_workers(plan: ForecastPlan, found: Forecasts, settings, workers: int) -> tuple[dict, list]:
    """:func:`.chunks.chunk_tables` of ``plan`` (not Kronos), its symbols cut into ``workers``
    groups evaluated in worker processes: ``{table: rows}`` in run order, as in one process, and
    each group's :func:`.kept.summary_pieces`, made in its worker."""
    groups = symbol_groups(plan.series, workers)
    # a plan numbers its requests symbol by symbol, so each group's forecasts are one run of them
    starts = np.searchsorted(plan.req_series, [a for a, _ in groups] + [len(plan.series)], side="left")
    pool = _pool(workers)
    futures = [
        pool.submit(_evaluate_group, plan.series[a:b], plan.keys, found.take(slice(lo, hi)), settings)
        for (a, b), lo, hi in zip(groups, starts[:-1], starts[1:])
    ]
    try:
        done = [f.result() for f in futures]
    except BrokenProcessPool as err:
        _forget(workers)
        raise RuntimeError(
            f"a worker process evaluating strategies died (host_workers={workers}). A script that calls "
            'backtest with host_workers needs its work under `if __name__ == "__main__":` (spawned '
            "processes import it again); otherwise run again, or with host_workers=0"
        ) from err
    finally:
        for f in futures:  # an interrupted call leaves nothing queued behind it
            f.cancel()
    parts = [{name: _unpacked(*packed[name]) for name in TABLES} for packed, _ in done]
    pieces = [p for _, p in done]
    if len(parts) == 1:
        return parts[0], pieces
    return {name: pd.concat([p[name] for p in parts], ignore_index=True) for name in TABLES}, pieces


def _evaluate_group(series: list, keys: tuple, found: Forecasts, settings) -> tuple[dict, dict]:
    """In a worker: a group's tables (packed for the trip back) and their summary pieces."""
    part = chunk_tables(ForecastPlan(series, keys), found, settings, fc=None)
    pieces = summary_pieces(profile_named(settings.profile), part)
    return {name: _packed(part[name]) for name in TABLES}, pieces


def _packed(frame: pd.DataFrame) -> tuple:
    """``frame`` for pickling: its columns of equal-shaped arrays (a clean row's per-day returns,
    positions, ...) as one 2-D block each, which pickles as one buffer instead of an object a row
    (pickling those rows one by one took longer than evaluating them)."""
    blocks = {}
    for name in frame.columns:
        if frame[name].dtype != object or not len(frame):
            continue
        cells = frame[name].to_numpy()
        first = cells[0]
        if isinstance(first, np.ndarray) and all(
            type(c) is np.ndarray and c.shape == first.shape and c.dtype == first.dtype for c in cells
        ):
            blocks[name] = np.stack(cells)
    return frame.drop(columns=list(blocks)), blocks, list(frame.columns)


def _unpacked(frame: pd.DataFrame, blocks: dict, columns: list) -> pd.DataFrame:
    """The frame :func:`_packed` took apart: each block's rows as the cells (views, as the
    strategies make them)."""
    if not blocks:
        return frame
    return pd.DataFrame({name: list(blocks[name]) if name in blocks else frame[name] for name in columns})


_POOLS: dict[int, ProcessPoolExecutor] = {}
_LOCK = threading.Lock()


def _pool(workers: int) -> ProcessPoolExecutor:
    """The ``workers`` processes of this process, started on first use and kept."""
    with _LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            threads = max(1, devices.host_cores() // workers)  # the cores this process may use, shared out
            pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(threads,),
            )
            _POOLS[workers] = pool
        return pool


def _forget(workers: int) -> None:
    with _LOCK:
        pool = _POOLS.pop(workers, None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _start_worker(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the calling process handles Ctrl-C
    import torch

    torch.set_num_threads(threads)  # the compiled grids and torch's element-wise work use this many
    gc.freeze()  # the collector's full passes leave the imported modules' objects alone (totowalk.memory)


def close_worker_pools() -> None:
    """Stop every worker process this process started (they are otherwise kept until it exits)."""
    for workers in list(_POOLS):
        _forget(workers)


atexit.register(close_worker_pools)
