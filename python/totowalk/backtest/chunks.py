"""The run's chunks of symbols, each forecast and evaluated into its part of the result tables.

:class:`ChunkStream` walks the chunks in order. Locally, the next chunk's forecast runs in a
background thread while the caller evaluates this one (:func:`chunk_tables`); with a Ray executor and
at least as many chunks as workers, each chunk is forecast and evaluated whole on a worker
(:func:`evaluate_chunk`) and only its tables travel back; with fewer chunks the workers share each
chunk's forecaster batches. Each chunk is forecast and evaluated alone, so the numbers do not depend
on any of this (tests/test_backtest_chunks.py).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .forecast.arrays import build_arrays
from .forecast.forecast_table import forecast_table, slot_scores
from .forecast.forecasters import Forecasts
from .forecast.kronos import describe_kronos, kronos_moves, kronos_predictions
from .forecast.plan import ForecastPlan, compute_forecasts, gives_mixture
from .forecast.tables import TABLES, ResultTables, contexts_of
from .inputs.windows import PRICE_KEYS
from .profiles.registry import profile_named

__all__ = ["ChunkStream", "KronosForecasts", "chunk_tables", "default_max_batch", "evaluate_chunk", "progress_bar"]


def chunk_tables(plan: ForecastPlan, found: Forecasts, settings, fc, kronos=None, progress=False, clock=None) -> dict:
    """One chunk's rows of ``simulations`` and ``forecasts`` from its forecasts."""
    series, rules = plan.series, profile_named(settings.profile)
    arrays = build_arrays(plan, found.point, found.band)
    scores = None  # Kronos scores its own forecasts; an engine's come with them
    if isinstance(fc, KronosForecasts):
        started = time.perf_counter()
        unit = 1 if settings.profile == "legacy" else 7
        bar = progress_bar(progress, total=arrays.num_rows * unit, desc="kronos", unit="row")
        try:
            arrays.predictions, scores = kronos_predictions(
                series, arrays, plan.keys, kronos, settings.profile, bar, score=fc.score_outcomes
            )
        finally:
            bar.close()
        if settings.profile == "legacy":  # its diagnostic column is the same forecast's Close r_7
            arrays.kronos_move = arrays.predictions["Close"][:, -1].astype(np.float64)
        _count(clock, "kronos", time.perf_counter() - started)
    elif kronos is not None:
        started = time.perf_counter()
        bar = progress_bar(progress, total=arrays.num_rows, desc="kronos", unit="forecast")
        try:
            arrays.kronos_move = kronos_moves(series, kronos, bar)
        finally:
            bar.close()
        _count(clock, "kronos", time.perf_counter() - started)
    simulations = rules.order_columns(rules.evaluate(arrays, settings).reset_index(drop=True))
    if rules.carry_state is not None:
        simulations = rules.carry_state(simulations, arrays, settings)
    if scores is None:
        scores = slot_scores(plan, found)
    else:  # Kronos' own, in the table's (row, key, step) order
        scores = {name: np.stack([by_key[k] for k in plan.keys], axis=1).reshape(-1) for name, by_key in scores.items()}
    forecasts = forecast_table(arrays, plan.keys, {x.symbol: x.frame.index for x in series}, scores=scores)
    return {"simulations": simulations, "forecasts": forecasts}


def evaluate_chunk(series: list, forecaster, *, settings, max_batch: int) -> tuple[dict, dict]:
    """A chunk of symbols forecast and evaluated where it runs (a Ray worker): its part of the tables
    and its seconds per phase (``forecast``, ``scores``, ``strategies``) and ``contexts``."""
    plan = ForecastPlan(series, PRICE_KEYS)
    started = time.perf_counter()
    found = compute_forecasts(plan, forecaster, max_batch=max_batch)
    forecast = time.perf_counter() - started
    part = chunk_tables(plan, found, settings, forecaster)
    seconds = {
        "forecast": _forecaster_seconds(found, forecast),
        "scores": found.score_seconds,
        "strategies": time.perf_counter() - started - forecast,
        "contexts": len(plan),
    }
    return part, seconds


def _count(clock, phase: str, seconds: float) -> None:
    if clock is not None:
        clock.add(phase, seconds)


class KronosForecasts:
    """The forecaster slot when Kronos forecasts every key (backtest/forecast/kronos.py)."""

    gives_mixture = False  # sampled paths: scored as their empirical distribution, not a mixture
    score_backend = "auto"

    def __init__(self, kronos):
        self.kronos = kronos
        self.score_outcomes = True  # backtest(calibration=False) turns it off

    def describe(self, hash_weights: bool = False) -> dict:
        return {"kind": "kronos", **describe_kronos(self.kronos, hash_weights)}


DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_CUDA = 1024, 32768


def default_max_batch(fc) -> int:
    """Contexts per forecaster call when the caller sets none: larger for an engine on CUDA."""
    device = getattr(getattr(fc, "engine", None), "device", None)
    return DEFAULT_MAX_BATCH_CUDA if getattr(device, "type", None) == "cuda" else DEFAULT_MAX_BATCH


class _Stopped(Exception):
    """The run was interrupted while this thread forecast ahead: stop after the current batch."""


class ChunkStream:
    """The chunks of a run in order, as ``(index, plan, forecasts, part)``: a chunk whose part the
    run's folder holds comes back as that part (nothing forecast); one evaluated on a Ray worker as
    the part it sent back; any other with its plan and forecasts, for :func:`chunk_tables`. With
    ``overlap``, the next chunk's forecast runs in a background thread while the caller evaluates the
    current one (the forecaster releases the GIL in its kernels; on a GPU the card works while the
    host evaluates), so host work hides behind the forecast."""

    def __init__(self, chunks, fc, max_batch, store, progress, executor, overlap: bool, settings=None, kronos=None):
        self.chunks, self.fc, self.max_batch, self.store, self.executor = chunks, fc, max_batch, store, executor
        self.forecast_seconds = self.score_seconds = self.strategy_seconds = 0.0  # summed over chunks
        self._stored = [store is not None and store.has_part(i, _symbols(c), TABLES) for i, c in enumerate(chunks)]
        sizes = [sum(contexts_of(s, PRICE_KEYS) for s in c) for c in chunks]
        self.total = sum(sizes)
        self.saved = sum(n for n, kept in zip(sizes, self._stored) if kept)  # what an interruption keeps
        self._progress, self._bar = progress, None  # the bar starts at what the first forecast finds saved
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="totowalk-forecast") if overlap else None
        self._ahead: dict = {}  # chunk index -> its forecast's Future
        self._remote = self._remote_parts(settings, kronos)

    @property
    def evaluated_here(self) -> bool:
        """Whether some chunk's strategies are evaluated by this process (not all read back from the
        run's folder, nor made whole on Ray workers)."""
        return self._remote is None and not all(self._stored)

    def computed(self, index: int) -> bool:
        """Whether chunk ``index`` was computed by this call (not read back from the run's folder)."""
        return not self._stored[index]

    def _remote_parts(self, settings, kronos):
        """Chunks evaluated whole on Ray workers: ``{index: (part, seconds)}`` as they come, or None
        where the run stays local or has fewer chunks than workers (the workers then share each
        chunk's forecaster batches)."""
        if self.executor == "local" or not hasattr(self.executor, "evaluate_chunks"):
            return None
        if isinstance(self.fc, KronosForecasts) or kronos is not None:
            return None
        todo = [(i, c) for i, c in enumerate(self.chunks) if not self._stored[i]]
        if len(todo) < self.executor.worker_count():
            return None
        context = {"settings": settings, "max_batch": self.max_batch}
        return self.executor.evaluate_chunks(evaluate_chunk, todo, self.fc, context)

    def __iter__(self):
        for index, chunk in enumerate(self.chunks):
            if self._stored[index]:
                plan = ForecastPlan(chunk, PRICE_KEYS)
                part = {name: self.store.load_part(index, _symbols(chunk), name) for name in TABLES}
                yield index, plan, None, part
                continue
            if self._remote is not None:
                done, part, seconds = next(self._remote)
                assert done == index, "Ray parts come back in run order"
                self._account(seconds)
                yield index, ForecastPlan(chunk, PRICE_KEYS), None, part
                continue
            future = self._ahead.pop(index, None)
            plan, found = future.result() if future is not None else self._forecast(index)
            if self._pool is not None:  # only now: a failed forecast starts no other
                following = next((k for k in range(index + 1, len(self.chunks)) if not self._stored[k]), None)
                if following is not None:
                    self._ahead[following] = self._pool.submit(self._forecast, following)
            yield index, plan, found, None

    def _account(self, seconds: dict) -> None:
        """A worker's seconds for one chunk (they ran alongside the driver and the other workers)."""
        self.forecast_seconds += seconds["forecast"]
        self.score_seconds += seconds["scores"]
        self.strategy_seconds += seconds["strategies"]
        self.saved += int(seconds.get("contexts", 0))
        if self._progress:
            if self._bar is None:
                self._bar = progress_bar(True, total=self.total, initial=self.saved, desc="chunks", unit="ctx")
            else:
                self._bar.update(int(seconds.get("contexts", 0)))

    def _forecast(self, index: int) -> tuple:
        plan = ForecastPlan(self.chunks[index], PRICE_KEYS)
        started = time.perf_counter()
        if isinstance(self.fc, KronosForecasts):
            zeros = np.zeros(len(plan), np.float32)  # replaced in _chunk_tables: Kronos forecasts every key
            return plan, Forecasts(zeros, zeros)
        done, ids = None, None
        if self.store is not None:
            ids = [plan.request_id(i) for i in range(len(plan))]
            done = self.store.load_forecasts(ids, scored=gives_mixture(self.fc))
            known = int(done[0].sum())
            self.saved += known
            if self._bar is not None:
                self._bar.update(known)
        if self._bar is None:  # its rate and estimate then cover only the work left
            self._bar = progress_bar(self._progress, total=self.total, initial=self.saved, desc="forecasts", unit="ctx")

        def on_batch(idx, part):
            if self.store is not None:
                self.store.append_forecasts([ids[i] for i in idx], part)
                self.saved += len(idx)
            if self._stop.is_set():
                raise _Stopped()

        run = compute_forecasts if self.executor == "local" else self.executor.compute_forecasts
        found = run(plan, self.fc, max_batch=self.max_batch, done=done, on_batch=on_batch, progress=self._bar)
        # the engine's own seconds (its scores, computed beside the next batch, are a phase of their own);
        # with Ray's shared batches the wall time of the loop, the workers' scores summed beside it
        if self.executor == "local":
            self.forecast_seconds += _forecaster_seconds(found, time.perf_counter() - started)
        else:
            self.forecast_seconds += time.perf_counter() - started
        self.score_seconds += found.score_seconds
        return plan, found

    def saved_text(self, tables: ResultTables) -> str:
        """What an interruption keeps, for :class:`RunInterrupted`."""
        text = f"{self.saved:,} of {self.total:,} contexts saved"
        if len(self.chunks) > 1:
            text += f", {len(tables.chunks)} of {len(self.chunks)} chunks of symbols complete"
        return text

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop forecasting ahead and wait for the thread (its batch in flight finishes first)."""
        self._stop.set()
        if self._remote is not None:
            self._remote.close()  # the workers' session ends (Ray gets its results or failures back first)
        for future in self._ahead.values():
            try:
                future.result()
            except BaseException:  # noqa: BLE001 - the caller is already leaving with its own exception
                pass
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._bar is not None:
            self._bar.close()


def _forecaster_seconds(found: Forecasts, elapsed: float) -> float:
    """The forecaster's own seconds: as it measured them, else the forecast loop's less its scoring."""
    return found.forecast_seconds if found.forecast_seconds is not None else elapsed - found.score_seconds


def _symbols(chunk) -> list:
    return [s.symbol for s in chunk]


def progress_bar(enabled: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(disable=not enabled, leave=False, **kwargs)
