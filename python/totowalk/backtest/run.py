"""``backtest()``: the run, stage by stage.

inputs    validated price frames, simulation windows, settings      (backtest/inputs/)
forecast  every distinct walk-forward context forecast once         (backtest/forecast/)
profiles  result rows of every (symbol, simulation) at once         (backtest/profiles/)
stats     the daily walk-forward series and its statistics          (backtest/stats/)
report    text, files, report.html (outside this call)              (backtest/report/)
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import pandas as pd

from ..errors import UsageError
from ..kernels.backend import triton_can_run
from ..memory import frozen_heap, release_free_memory
from .chunks import ChunkStream, KronosForecasts, chunk_tables, default_max_batch, progress_bar
from .forecast.folder_lock import run_folder_lock
from .forecast.forecasters import DEFAULT_AGGREGATE, as_forecaster
from .forecast.kronos import as_kronos, describe_kronos
from .forecast.plan import SymbolSeries
from .forecast.store import RunInterrupted, RunStore, fingerprint, frame_digest
from .forecast.tables import DEFAULT_CHUNK_CONTEXTS, TABLES, ResultTables, StoredPart, symbol_chunks
from .host_workers import (
    check_host_workers,
    evaluate_in_workers,
    resolve_host_workers,
    start_workers,
    workers_ready,
)
from .inputs.frames import collect_frames
from .inputs.settings import (
    RunSettings,
    check_costs,
    check_simulations,
    resolve_crypto,
    resolve_fees,
    resolve_periods,
    resolve_spread,
)
from .inputs.windows import (
    INSUFFICIENT_HISTORY,
    PRICE_KEYS,
    PROFILES,
    leave_out_short,
    skipped_warning,
    window_layout,
)
from .kept import KeptForSummaries
from .profiles.clean.fills import DEFAULT_FILL_MODEL, check_fill_model
from .profiles.registry import profile_named
from .stats.calibration import calibration_summary
from .stats.daily import calendar_warning
from .stats.forecast_error import mae_by_key
from .stats.table import days_per_year_of, performance_table


@dataclass
class BacktestResult:
    """Outcome of :func:`backtest`.

    Attributes
    ----------
    simulations : DataFrame, one row per (symbol, simulation); columns ``symbol``,
        ``simulation`` (0 = the most recent window) and the result fields (in the legacy profile
        exactly the classic result row's names)
    summary : DataFrame indexed by symbol plus ``"(all)"``: means over simulations, walk-forward
        stats, ``best_strategy``
    forecasts : DataFrame, one row per (symbol, simulation, key, step): ``context_end`` (row
        position of the context's last price), ``target_date`` (index label of the row whose
        return is forecast; None past the data), ``prediction``, ``band``, ``actual`` (NaN when
        the target is outside the window), ``pit`` and ``crps`` (the exact PIT and CRPS of the
        forecast's predicted mixture against the return of row ``context_end + 1``, known for every
        target inside the data even where the window hides it; NaN past the data and for a
        forecaster without a mixture: the sampled estimator, a function, Kronos)
    profile : "legacy" or "clean"
    settings : dict of the run's settings (fees, spread and how it was chosen, forecaster, …)
    warnings : list of str the report must show (e.g. in-sample MaxDiff offsets)
    daily : DataFrame, the daily walk-forward series (backtest/stats/daily.py): one row per (symbol,
        strategy, date) with ``return``, ``turnover``, ``in_market``; symbol ``"(all)"`` is the
        equal-weight portfolio
    statistics : DataFrame indexed by (symbol, strategy): the daily series' performance
        statistics (backtest/stats/table.py)
    timings : seconds per phase of this call: ``prepare`` (checks, data, chunks), ``forecast``
        (the forecaster's own seconds, summed over chunks), ``scores`` (with the exact estimator:
        the exact PIT and CRPS of each distinct forecast, made in the forecast loop and counted out
        of ``forecast``; with Ray the workers' summed seconds, left inside it), ``kronos``,
        ``strategies`` (walk-forward arrays, every strategy row, the forecast table and each
        chunk's part saved), ``tables`` (summary, daily series, statistics, calibration) and
        ``total`` (the call's wall time). The next chunk's forecast runs beside this chunk's
        strategies, so the phases can add up to more than ``total``: ``total`` over ``forecast`` is
        how close the run is to its forecast's time. A resumed run times only what it computed
    workers : with a RayExecutor, one dict per worker: host, chunks, contexts, seconds
    host_workers : the worker processes that evaluated the strategies (``backtest(host_workers=)``
        resolved; 0: this process)
    calibration : dict, whether the forecasts were calibrated (backtest/stats/calibration.py):
        per key and overall, over distinct forecasts with known outcomes; ``available`` False (with
        its ``reason``) when the forecaster gives no predictive distribution
    mae : Series, the mean absolute error of the point forecasts per key (steps 0-5 with an outcome)
    tables : where ``simulations`` and ``forecasts`` are: in memory, or (a run with ``out_dir``)
        in the run's folder, one part per chunk of symbols, read back when asked for
        (backtest/forecast/tables.py)
    """

    tables: ResultTables
    summary: pd.DataFrame
    profile: str
    settings: dict
    warnings: list = field(default_factory=list)
    daily: pd.DataFrame | None = None
    statistics: pd.DataFrame | None = None
    timings: dict = field(default_factory=dict)
    workers: list = field(default_factory=list)
    host_workers: int = 0
    calibration: dict | None = None
    mae: pd.Series | None = None

    @property
    def simulations(self) -> pd.DataFrame:
        return self.tables.frame("simulations")

    @property
    def forecasts(self) -> pd.DataFrame:
        return self.tables.frame("forecasts")


def _holding_out_dir(run):
    """``run`` with its ``out_dir`` held against other processes for the call (forecast/folder_lock.py)."""

    @functools.wraps(run)
    def held(*args, **kwargs):
        if kwargs.get("out_dir") is None:
            return run(*args, **kwargs)
        with run_folder_lock(kwargs["out_dir"]):
            return run(*args, **kwargs)

    return held


@_holding_out_dir  # one process writes a run folder at a time
@frozen_heap()  # the collector's full passes walk the run's own objects, not every module's
def backtest(
    prices,
    symbol: str | None = None,
    *,
    symbols=None,
    num_simulations: int = 10,
    engine=None,
    forecaster=None,
    profile: str = "clean",
    is_crypto=False,
    fee=None,
    spread=None,
    aggregate: str = DEFAULT_AGGREGATE,
    max_batch: int | None = None,
    out_dir=None,
    resume: bool = False,
    progress: bool = False,
    model_name: str | None = None,
    fill_model: str | None = None,
    bars_per_year: float | None = None,
    kronos=None,
    executor="local",
    calibration: bool = True,
    contexts_per_chunk: int | None = None,
    overlap: bool = True,
    scores_backend: str = "auto",
    host_workers: int | str = 0,
    on_part=None,
    insufficient_history: str = "raise",
) -> BacktestResult:
    """Walk-forward backtest of one or many symbols.

    Parameters
    ----------
    prices : DataFrame (one symbol, or several with a ``Ticker``/``Symbol`` column), or a dict
        ``{symbol: DataFrame}``. Columns Open/High/Low/Close (Volume optional), one row per bar
        in chronological order.
    symbol : name of a single-symbol frame (used in errors and output); or the one symbol to pick
    symbols : symbols to run from a dict or multi-symbol frame (default: all, in order)
    num_simulations : K windows per symbol (a whole number >= 1); simulation 0 is the most recent
    engine : a :class:`totowalk.ForecastEngine`; or
    forecaster : ``fn(list of 1-D float32 contexts) -> (B,) point forecasts or (B, S) samples``; the
        contexts are read-only views (one series' contexts share its memory): copy one to change it
    profile : ``"legacy"`` (LEGACY_SEMANTICS.md, defects included) or ``"clean"`` (§11 fixed)
    is_crypto : bool for all symbols, or the collection of crypto symbols (365 days, 0.0015 fee,
        no shorts where the legacy strategies disable them)
    fee : fee per unit of position change, one for all or ``{symbol: fee}`` (every key a symbol of
        the run; a symbol left out keeps its default); default 0.0005 stock / 0.0015 crypto
    spread : bid/ask ratio; default 1.0 (no spread cost, stated in the report); also
        ``"legacy-fallback"`` (1.05) or ``"legacy-module-default"``
    aggregate : sample aggregation spec of the point forecast (legacy default trimmed_mean_10)
    max_batch : most contexts per forecaster call (results do not depend on it; it bounds the
        work an interruption loses and paces the progress bar). Default: 1,024, or 32,768 for an
        engine on CUDA, where 8,192 contexts are a tenth of a second of work and each call's host
        planning leaves the card idle (W2's 24,576 contexts: one call)
    out_dir, resume : persist forecasts and rows incrementally in ``out_dir``; ``resume=True``
        continues a run stored there (same settings and data, else an error)
    progress : show tqdm progress bars
    model_name : name of the engine's model for the report (e.g. ``random:toto-tiny``)
    fill_model : clean profile: how a round trip the OHLC bar cannot settle is booked (docs/FILLS.md):
        ``"expected"`` (default: the expectation over the bar's intrabar paths), ``"adverse"`` or
        ``"optimistic"`` (its lower and upper bound, which every clean run reports beside the
        headline anyway); the legacy profile fills as the classic loop and takes none
    bars_per_year : the annualising factor for bars shorter than a day (e.g. 1,638 for hourly bars
        of 6.5-hour sessions); daily bars use 252 (365 crypto), and intraday bars without it are refused
    kronos : legacy profile: a :class:`totowalk.KronosEngine`, or a Kronos checkpoint folder / hub id
        (loaded with the classic parameters), to fill ``kronos_expected_move_pct`` as the classic
        loop does (backtest/forecast/kronos.py); without it the column is 0.0 and the report says so
    calibration : score every distinct forecast of an engine with the exact estimator against its
        outcome (exact PIT and CRPS, ``BacktestResult.calibration``); False skips that work (about
        0.1 to 0.3 ms a forecast on a host core) and the report says it was not computed
    scores_backend : where those scores are computed: "auto" (the host's compiled loop, beside the
        forecast), or "triton" (one kernel on the engine's GPU; held to the host loop to 1e-9 by
        tests on a card); the numbers agree to rounding, so a resumed run may mix them
    contexts_per_chunk : the run is forecast and evaluated a chunk of consecutive symbols at a time,
        about this many distinct contexts each (default 16,384; a symbol is never split): with
        ``out_dir`` each chunk's rows go to the folder as soon as they are made, so memory stays
        the model plus one chunk plus the summaries whatever the number of symbols; results do
        not depend on it
    overlap : forecast the next chunk in a background thread while this chunk's strategies are
        evaluated (results do not depend on it)
    host_workers : evaluate each chunk's strategies and tables in this many worker processes, a
        group of its symbols each (backtest/host_workers.py): that work holds the GIL, so threads
        do not spread it over a host's cores and processes do. 0 (default): in this process;
        "auto": half the host's cores (at most 8) for a run of two chunks or more on a host of 4
        cores or more, else none (the CLI's default; a script needs its ``if __name__ ==
        "__main__":`` guard for any workers). The workers start on first use (about a second
        each) and are kept for later calls; Kronos runs evaluate in this process. Results do not
        depend on it; ``BacktestResult.host_workers`` says how many ran
    insufficient_history : a symbol with too few rows for ``num_simulations``: "raise" (default) stops
        with an error naming it; "skip" leaves it out, names it in the warnings and
        ``settings["skipped"]``, and runs the others (a universe with a recent listing)
    on_part : with ``out_dir``, called with a :class:`.forecast.tables.StoredPart` once each chunk's
        rows are in the folder, in run order (a resumed run's stored chunks too): e.g. to write the
        final tables while later chunks are computed (report/background.py). It runs in the run's
        loop, so it should hand the work on and return

    Returns
    -------
    BacktestResult
    """
    clock = _PhaseClock()
    if not (isinstance(executor, str) and executor == "local") and not hasattr(executor, "compute_forecasts"):
        raise UsageError(f"executor must be 'local' or a RayExecutor, got {executor!r}")
    try:  # the arguments, checked before any work: a plain ValueError there is the caller's mistake
        fc, settings, series, store, kronos = _prepare(
            prices,
            symbol,
            symbols,
            num_simulations,
            engine,
            forecaster,
            profile,
            is_crypto,
            fee,
            spread,
            aggregate,
            out_dir,
            resume,
            model_name,
            fill_model,
            kronos,
            bars_per_year,
            calibration,
            scores_backend,
            insufficient_history,
        )
        host_workers = check_host_workers(host_workers)
        chunks = symbol_chunks(series, PRICE_KEYS, contexts_per_chunk or DEFAULT_CHUNK_CONTEXTS)
        host_workers = resolve_host_workers(host_workers, len(chunks))
        if kronos is not None or isinstance(fc, KronosForecasts):
            host_workers = 0  # Kronos runs evaluate in this process
    except ValueError as err:
        if type(err) is not ValueError:
            raise  # already a named kind (PriceDataError, CheckpointError, UsageError)
        raise UsageError(str(err)) from err
    clock.lap("prepare")

    rules = profile_named(profile)
    tables = ResultTables(store)
    kept = KeptForSummaries(rules, store and store.folder)
    batch = max_batch or default_max_batch(fc)
    stream = ChunkStream(chunks, fc, batch, store, progress, executor, overlap, settings=settings, kronos=kronos)
    if not stream.evaluated_here:
        host_workers = 0  # every part is read back or made on Ray workers: no process would evaluate one
    starting = start_workers(host_workers) if host_workers else []
    told = settings.to_dict() if on_part is not None and store is not None else None
    rows_bar = progress_bar(
        progress, total=sum(s.layout.num_simulations for s in series), desc="strategies", unit="sim"
    )
    try:
        for index, plan, found, part in stream:
            started, kronos_before = time.perf_counter(), clock.seconds.get("kronos", 0.0)
            symbols = [s.symbol for s in plan.series]
            pieces = None  # what the summaries keep, where workers made it beside the part
            if part is None and host_workers and workers_ready(starting):
                part, pieces = evaluate_in_workers(plan, found, settings, host_workers)
            elif (
                part is None
            ):  # evaluated here: no workers, or not all up yet (a part read back or made on Ray has its rows)
                part = chunk_tables(plan, found, settings, fc, kronos, progress, clock)
            if store is not None and stream.computed(index):
                store.save_part(index, symbols, part)
            tables.add(index, symbols, part)
            if told is not None:
                files = {name: store.part_file(index, name) for name in TABLES}
                on_part(StoredPart(index, len(chunks), symbols, files, told))
            if pieces is None:
                kept.add(part)
            else:
                for group in pieces:
                    kept.take(group)
            rows_bar.update(len(part["simulations"]))
            del part
            release_free_memory()  # the chunk's tables are gone: their memory goes back, not to the next chunk's peak
            host = time.perf_counter() - started - (clock.seconds.get("kronos", 0.0) - kronos_before)
            clock.add("strategies", host)
    except KeyboardInterrupt as stop:
        stream.stop()
        if store is None or isinstance(stop, RunInterrupted):
            raise
        raise RunInterrupted(stream.saved_text(tables), store.folder) from stop
    finally:
        stream.close()
        rows_bar.close()
        if hasattr(executor, "end_run"):
            executor.end_run()
    clock.add("forecast", stream.forecast_seconds)
    if stream.score_seconds:
        clock.add("scores", stream.score_seconds)
    if stream.strategy_seconds:  # evaluated on Ray workers: their summed seconds
        clock.add("strategies", stream.strategy_seconds)
    clock.skip()  # the loop's wall time is its phases' (overlapped): counted above

    # in the order that lets each kept piece go before the next is built: the scored forecasts and
    # errors, then the numeric rows (the summary needs only the portfolio's days), then the final
    # days, copied into the daily table as they are let go
    scored = calibration_summary(kept.scored(), settings.forecaster, computed=calibration, distinct=True)
    mae = mae_by_key(kept.errors(), PRICE_KEYS)
    summary = kept.summary(kept.portfolio())
    daily = kept.daily()
    result = BacktestResult(
        tables=tables,
        summary=summary,
        profile=profile,
        settings=settings.to_dict(),
        warnings=_skipped_notes(settings) + rules.notes(settings) + [w for w in (calendar_warning(daily),) if w],
        daily=daily,
        statistics=performance_table(daily, days_per_year_of(settings.to_dict())),
        calibration=scored,
        mae=mae,
    )
    clock.lap("tables")
    result.timings = clock.finish()
    result.workers = list(getattr(executor, "workers", []))
    result.host_workers = host_workers
    return result


def _skipped_notes(settings) -> list:
    if not settings.skipped:
        return []
    return [skipped_warning(settings.skipped, settings.num_simulations, settings.profile)]


SCORES_BACKENDS = ("auto", "native", "triton")  # backtest(scores_backend=): where the exact scores run


class _PhaseClock:
    """Seconds per phase of one backtest call (BacktestResult.timings), and the call's total."""

    def __init__(self):
        self.seconds: dict = {}
        self._start = self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        """Count the seconds since the last lap (or :meth:`skip`) to ``phase``."""
        now = time.perf_counter()
        self.add(phase, now - self._last)
        self._last = now

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def skip(self) -> None:
        """Start the next lap now: the time since the last was counted with :meth:`add`."""
        self._last = time.perf_counter()

    def finish(self) -> dict:
        return {**self.seconds, "total": time.perf_counter() - self._start}


def _prepare(
    prices,
    symbol,
    symbols,
    num_simulations,
    engine,
    forecaster,
    profile,
    is_crypto,
    fee,
    spread,
    aggregate,
    out_dir,
    resume,
    model_name,
    fill_model,
    kronos=None,
    bars_per_year=None,
    calibration=True,
    scores_backend="auto",
    insufficient_history="raise",
):
    """Check the arguments and set the run up: forecaster, settings, series, plan, store and Kronos."""
    if scores_backend not in SCORES_BACKENDS:
        raise ValueError(f"scores_backend must be one of {', '.join(SCORES_BACKENDS)}; got {scores_backend!r}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if insufficient_history not in INSUFFICIENT_HISTORY:
        raise ValueError(f"insufficient_history must be one of {INSUFFICIENT_HISTORY}, got {insufficient_history!r}")
    kronos_forecasts = kronos is not None and engine is None and forecaster is None
    if kronos is not None and profile != "legacy" and not kronos_forecasts:
        raise ValueError(
            "kronos= next to a Toto engine fills the legacy profile's kronos_expected_move_pct; the "
            "clean profile has no such column (give kronos= alone to make Kronos the forecaster)"
        )
    kronos = as_kronos(kronos)
    if profile == "legacy" and fill_model is not None:
        raise ValueError("fill_model applies to the clean profile; the legacy profile fills as the classic loop")
    fill_model = check_fill_model(DEFAULT_FILL_MODEL if fill_model is None else fill_model)
    num_simulations = check_simulations(num_simulations)
    frames = collect_frames(prices, symbol, symbols)
    fc = KronosForecasts(kronos) if kronos_forecasts else as_forecaster(engine, forecaster, aggregate)
    if model_name is not None and hasattr(fc, "model_name"):
        fc.model_name = model_name
    if hasattr(fc, "score_outcomes"):
        fc.score_outcomes = bool(calibration)
        fc.score_backend = scores_backend
        device = getattr(engine, "device", None)
        if scores_backend == "triton" and fc.gives_mixture and device is not None and not triton_can_run(device):
            raise ValueError(
                f"scores_backend='triton' runs on a CUDA device with triton installed (the engine's is {device}); "
                "use 'auto' (the host's compiled loop)"
            )
    crypto = resolve_crypto(is_crypto, list(frames))
    spread_value, spread_note = resolve_spread(spread)
    fees = resolve_fees(fee, crypto)
    check_costs(fees, spread_value)
    skipped = None
    if insufficient_history == "skip":  # after the settings that may name a symbol left out
        frames, skipped = leave_out_short(frames, num_simulations, profile)
        crypto, fees = ({s: d[s] for s in frames} for d in (crypto, fees))
    settings = RunSettings(
        profile=profile,
        num_simulations=int(num_simulations),
        symbols=list(frames),
        crypto=crypto,
        fee=fees,
        trading_days=resolve_periods(frames, crypto, bars_per_year),
        spread=spread_value,
        spread_note=spread_note,
        aggregate=aggregate,
        keys=list(PRICE_KEYS),
        forecaster=fc.describe(hash_weights=out_dir is not None),
        fill_model=fill_model if profile == "clean" else None,
        kronos=describe_kronos(kronos, hash_weights=out_dir is not None),
        bars_per_year=None if bars_per_year is None else float(bars_per_year),
        skipped=skipped,
    )
    series = [
        SymbolSeries.build(s, f, window_layout(len(f), num_simulations, profile, symbol=s)) for s, f in frames.items()
    ]

    store = None
    if out_dir is not None:
        data = {s: frame_digest(f) for s, f in frames.items()}
        digest = fingerprint(settings.to_dict(), data)
        store = RunStore(out_dir, digest, settings.to_dict(), resume=resume, data=data)
    elif resume:
        raise ValueError("resume=True needs out_dir= (the folder of the run to continue)")
    return fc, settings, series, store, kronos


__all__ = ["BacktestResult", "backtest"]
