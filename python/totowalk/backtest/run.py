"""``backtest()``: the run, stage by stage.

inputs    validated price frames, simulation windows, settings      (backtest/inputs/)
forecast  every distinct walk-forward context forecast once         (backtest/forecast/)
profiles  result rows of every (symbol, simulation) at once         (backtest/profiles/)
stats     the daily walk-forward series and its statistics          (backtest/stats/)
report    text, files, report.html (outside this call)              (backtest/report/)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import UsageError
from .forecast.arrays import WalkForwardArrays, build_arrays
from .forecast.forecasters import DEFAULT_AGGREGATE, Forecasts, as_forecaster
from .forecast.kronos import as_kronos, describe_kronos, kronos_moves, kronos_predictions
from .forecast.plan import ForecastPlan, SymbolSeries, compute_forecasts, gives_mixture
from .forecast.store import RunInterrupted, RunStore, fingerprint, frame_digest
from .inputs.frames import collect_frames
from .inputs.settings import (
    RunSettings,
    check_costs,
    resolve_crypto,
    resolve_fees,
    resolve_periods,
    resolve_spread,
)
from .inputs.windows import PRICE_KEYS, PROFILES, window_layout
from .profiles.clean.fills import DEFAULT_FILL_MODEL, check_fill_model
from .profiles.registry import profile_named
from .profiles.summary import summarize
from .stats.calibration import calibration_summary
from .stats.daily import calendar_warning, daily_table
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
    timings : seconds per phase of this call: ``prepare`` (checks, data, plan), ``forecast``,
        ``scores`` (with the exact estimator: the exact PIT and CRPS of each distinct forecast, made
        in the forecast loop and counted out of ``forecast``; with Ray the workers' summed seconds,
        left inside it), ``strategies`` (walk-forward arrays and every strategy row) and ``tables``
        (summary, daily series, statistics, forecast table, calibration); a resumed run times only
        what it computed
    workers : with a RayExecutor, one dict per worker: host, chunks, contexts, seconds
    calibration : dict, whether the forecasts were calibrated (backtest/stats/calibration.py):
        per key and overall, over distinct forecasts with known outcomes; ``available`` False (with
        its ``reason``) when the forecaster gives no predictive distribution
    """

    simulations: pd.DataFrame
    summary: pd.DataFrame
    forecasts: pd.DataFrame
    profile: str
    settings: dict
    warnings: list = field(default_factory=list)
    daily: pd.DataFrame | None = None
    statistics: pd.DataFrame | None = None
    timings: dict = field(default_factory=dict)
    workers: list = field(default_factory=list)
    calibration: dict | None = None


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
) -> BacktestResult:
    """Walk-forward backtest of one or many symbols.

    Parameters
    ----------
    prices : DataFrame (one symbol, or several with a ``Ticker``/``Symbol`` column), or a dict
        ``{symbol: DataFrame}``. Columns Open/High/Low/Close (Volume optional), one row per bar
        in chronological order.
    symbol : name of a single-symbol frame (used in errors and output); or the one symbol to pick
    symbols : symbols to run from a dict or multi-symbol frame (default: all, in order)
    num_simulations : K windows per symbol; simulation 0 is the most recent
    engine : a :class:`totowalk.ForecastEngine`; or
    forecaster : ``fn(list of 1-D float32 contexts) -> (B,) point forecasts or (B, S) samples``; the
        contexts are read-only views (one series' contexts share its memory): copy one to change it
    profile : ``"legacy"`` (LEGACY_SEMANTICS.md, defects included) or ``"clean"`` (§11 fixed)
    is_crypto : bool for all symbols, or the collection of crypto symbols (365 days, 0.0015 fee,
        no shorts where the legacy strategies disable them)
    fee : fee per unit of position change; default 0.0005 stock / 0.0015 crypto
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

    Returns
    -------
    BacktestResult
    """
    clock = _PhaseClock()
    if not (isinstance(executor, str) and executor == "local") and not hasattr(executor, "compute_forecasts"):
        raise UsageError(f"executor must be 'local' or a RayExecutor, got {executor!r}")
    try:  # the arguments, checked before any work: a plain ValueError there is the caller's mistake
        fc, settings, series, plan, store, kronos = _prepare(
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
        )
    except ValueError as err:
        if type(err) is not ValueError:
            raise  # already a named kind (PriceDataError, CheckpointError, UsageError)
        raise UsageError(str(err)) from err

    clock.lap("prepare")
    if isinstance(fc, _KronosForecasts):
        zeros = np.zeros(len(plan), np.float32)  # replaced below: Kronos forecasts every key
        found = Forecasts(zeros, zeros)
    else:
        found = _forecast(plan, fc, max_batch or default_max_batch(fc), store, progress, executor)
    clock.lap("forecast")
    if found.scored:  # scored inside the forecast loop: a phase of its own in the timings
        clock.carve("forecast", "scores", found.score_seconds, inside=executor != "local")
    arrays = build_arrays(plan, found.point, found.band)
    if isinstance(fc, _KronosForecasts):
        bar = _bar(progress, total=arrays.num_rows * (1 if profile == "legacy" else 7), desc="kronos", unit="row")
        try:
            arrays.predictions = kronos_predictions(series, arrays, plan.keys, kronos, profile, bar)
        finally:
            bar.close()
        if profile == "legacy":  # its diagnostic column is the same forecast's Close r_7
            arrays.kronos_move = arrays.predictions["Close"][:, -1].astype(np.float64)
        clock.lap("kronos")
    elif kronos is not None:
        bar = _bar(progress, total=arrays.num_rows, desc="kronos", unit="forecast")
        try:
            arrays.kronos_move = kronos_moves(series, kronos, bar)
        finally:
            bar.close()
        clock.lap("kronos")
    rows = _evaluate(arrays, settings, store, progress)
    rules = profile_named(profile)
    simulations = rules.order_columns(rows)
    if rules.carry_state is not None:
        simulations = rules.carry_state(simulations, arrays, settings)
    clock.lap("strategies")
    daily = daily_table(simulations, rules.strategy_prefixes)
    forecasts = forecast_table(
        arrays, plan.keys, {x.symbol: x.frame.index for x in series}, scores=slot_scores(plan, found)
    )
    result = BacktestResult(
        simulations=simulations,
        summary=summarize(simulations, rules.best_strategy, rules.summary_headline, daily),
        forecasts=forecasts,
        profile=profile,
        settings=settings.to_dict(),
        warnings=rules.notes(settings) + [w for w in (calendar_warning(daily),) if w],
        daily=daily,
        statistics=performance_table(daily, days_per_year_of(settings.to_dict())),
        calibration=calibration_summary(forecasts, settings.forecaster, computed=calibration),
    )
    clock.lap("tables")
    result.timings = clock.seconds
    result.workers = list(getattr(executor, "workers", []))
    return result


class _PhaseClock:
    """Wall seconds per phase of one backtest call (BacktestResult.timings)."""

    def __init__(self):
        self.seconds, self._last = {}, time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self._last
        self._last = now

    def carve(self, phase: str, part: str, seconds: float, inside: bool = False) -> None:
        """Report ``seconds`` of ``phase`` as a phase ``part`` of their own; ``inside``: they ran
        alongside (e.g. on other workers), so ``phase`` keeps its wall time."""
        self.seconds[part] = seconds
        if not inside:
            self.seconds[phase] -= seconds


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
):
    """Check the arguments and set the run up: forecaster, settings, series, plan, store and Kronos."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
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
    frames = collect_frames(prices, symbol, symbols)
    fc = _KronosForecasts(kronos) if kronos_forecasts else as_forecaster(engine, forecaster, aggregate)
    if model_name is not None and hasattr(fc, "model_name"):
        fc.model_name = model_name
    if hasattr(fc, "score_outcomes"):
        fc.score_outcomes = bool(calibration)
    crypto = resolve_crypto(is_crypto, list(frames))
    spread_value, spread_note = resolve_spread(spread)
    fees = resolve_fees(fee, crypto)
    check_costs(fees, spread_value)
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
    )
    series = [
        SymbolSeries.build(s, f, window_layout(len(f), num_simulations, profile, symbol=s)) for s, f in frames.items()
    ]
    plan = ForecastPlan(series, PRICE_KEYS)

    store = None
    if out_dir is not None:
        data = {s: frame_digest(f) for s, f in frames.items()}
        digest = fingerprint(settings.to_dict(), data)
        store = RunStore(out_dir, digest, settings.to_dict(), resume=resume, data=data)
    elif resume:
        raise ValueError("resume=True needs out_dir= (the folder of the run to continue)")
    return fc, settings, series, plan, store, kronos


class _KronosForecasts:
    """The forecaster slot when Kronos forecasts every key (backtest/forecast/kronos_forecaster.py)."""

    def __init__(self, kronos):
        self.kronos = kronos

    def describe(self, hash_weights: bool = False) -> dict:
        return {"kind": "kronos", **describe_kronos(self.kronos, hash_weights)}


DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_CUDA = 1024, 32768


def default_max_batch(fc) -> int:
    """Contexts per forecaster call when the caller sets none: larger for an engine on CUDA."""
    device = getattr(getattr(fc, "engine", None), "device", None)
    return DEFAULT_MAX_BATCH_CUDA if getattr(device, "type", None) == "cuda" else DEFAULT_MAX_BATCH


def _forecast(plan: ForecastPlan, fc, max_batch: int, store, progress: bool, executor="local") -> Forecasts:
    done, on_batch, saved = None, None, [0]
    if store is not None:
        ids = [plan.request_id(i) for i in range(len(plan))]
        done = store.load_forecasts(ids, scored=gives_mixture(fc))
        saved[0] = int(done[0].sum())

        def on_batch(idx, part):
            store.append_forecasts([ids[i] for i in idx], part)
            saved[0] += len(idx)

    # the bar starts at the saved count, so its rate and estimate cover only the work left
    bar = _bar(progress, total=len(plan), desc="forecasts", unit="ctx", initial=saved[0])
    try:
        run = compute_forecasts if executor == "local" else executor.compute_forecasts
        return run(plan, fc, max_batch=max_batch, done=done, on_batch=on_batch, progress=bar)
    except KeyboardInterrupt as stop:
        if store is None or isinstance(stop, RunInterrupted):
            raise
        raise RunInterrupted(f"{saved[0]:,} of {len(plan):,} contexts saved", store.folder) from stop
    finally:
        bar.close()


def _evaluate(arrays: WalkForwardArrays, settings: RunSettings, store, progress: bool) -> pd.DataFrame:
    """Strategy rows of every (symbol, simulation) not yet stored, evaluated in one vectorized
    call over symbols and simulations; each row is persisted as soon as it is evaluated."""
    rules = profile_named(settings.profile)
    stored = store.load_rows() if store is not None else {}
    keys = list(zip(arrays.symbol.tolist(), arrays.simulation.tolist())) if stored else None
    todo = (
        np.array([i for i, k in enumerate(keys) if k not in stored], dtype=np.int64)
        if stored
        else np.arange(arrays.num_rows, dtype=np.int64)
    )
    bar = _bar(progress, total=arrays.num_rows, desc="strategies", unit="sim", initial=arrays.num_rows - todo.size)
    parts = []
    saved = arrays.num_rows - todo.size
    try:
        if todo.size:
            fresh = rules.evaluate(arrays.take(todo), settings)
            if store is not None:
                for rec in fresh.to_dict(orient="records"):
                    store.append_row(rec["symbol"], rec["simulation"], rec)
                    saved += 1
                    bar.update(1)
            else:  # nothing to persist: no per-row records to build
                bar.update(len(fresh))
            parts.append(fresh)
        if stored:
            restored = _restored([stored[k] for k in keys if k in stored], arrays)
            if restored is not None:
                parts.append(restored)
    except KeyboardInterrupt as stop:
        if store is None or isinstance(stop, RunInterrupted):
            raise
        raise RunInterrupted(
            f"all forecasts and {saved:,} of {arrays.num_rows:,} simulations saved", store.folder
        ) from stop
    finally:
        bar.close()
    if not stored and len(parts) == 1:  # evaluated in one call, already in run order
        return parts[0].reset_index(drop=True)
    keys = keys or list(zip(arrays.symbol.tolist(), arrays.simulation.tolist()))
    rows = pd.concat(parts, ignore_index=True)
    order = {k: i for i, k in enumerate(keys)}
    rank = [order[(s, int(k))] for s, k in zip(rows["symbol"], rows["simulation"])]
    return rows.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)


def _restored(records: list, arrays: WalkForwardArrays) -> pd.DataFrame | None:
    """Rows read back from the journal; ``date`` is taken from the data again (JSON loses its type)."""
    if not records:
        return None
    frame = pd.DataFrame.from_records(records)
    dates = dict(zip(zip(arrays.symbol.tolist(), arrays.simulation.tolist()), arrays.date))
    if "date" in frame:
        frame["date"] = [dates[(s, int(k))] for s, k in zip(frame["symbol"], frame["simulation"])]
    return frame


def slot_scores(plan: ForecastPlan, found: Forecasts) -> dict:
    """{"pit", "crps"}: each distinct forecast's scores at every (row, key, step) slot that uses it,
    in :func:`forecast_table`'s row order; NaN when the forecaster scored nothing."""
    if not found.scored:
        return {name: np.full(plan.num_slots, np.nan) for name in ("pit", "crps")}
    return {"pit": found.pit[plan.slot_request].reshape(-1), "crps": found.crps[plan.slot_request].reshape(-1)}


def forecast_table(a: WalkForwardArrays, keys, indexes: dict | None = None, scores: dict | None = None) -> pd.DataFrame:
    """Long table of every (symbol, simulation, key, step) forecast with its actual outcome.

    Row order: run order of (symbol, simulation), then key in ``keys`` order, then step.
    ``indexes`` (symbol -> the price frame's index) adds ``context_end_date``, the index label of
    the context's last row, and ``target_date``: that of the row whose return is forecast
    (``context_end + 1``), None past the end of the data. ``scores`` ({column: (rows,) values},
    e.g. :func:`slot_scores`) are appended as columns.
    """
    r, steps = a.context_ends.shape
    n_keys = len(keys)

    def stack(d):  # dict key -> (R, 7)  ->  (R * n_keys * 7,)
        return np.stack([d[k] for k in keys], axis=1).reshape(-1)

    codes, names = pd.factorize(a.symbol)  # per (symbol, simulation) row: cheap, then repeated
    symbol_codes = np.repeat(codes, n_keys * steps)
    context_ends = np.repeat(a.context_ends[:, None, :], n_keys, axis=1).reshape(-1)
    columns = {
        "symbol": _labels_at(names, symbol_codes),
        "simulation": np.repeat(a.simulation, n_keys * steps),
        "key": _labels_at(keys, np.tile(np.repeat(np.arange(n_keys), steps), r)),
        "step": np.tile(np.arange(steps), r * n_keys),
        "context_end": context_ends,
    }
    if indexes is not None:
        columns["context_end_date"] = _dates_at(symbol_codes, list(names), context_ends, indexes)
        columns["target_date"] = _dates_at(symbol_codes, list(names), context_ends + 1, indexes)
    return pd.DataFrame(
        {
            **columns,
            "prediction": stack(a.predictions),
            "band": stack(a.bands),
            "actual": stack(a.actuals),
            **(scores or {}),
        }
    )


def _labels_at(labels, codes: np.ndarray):
    """The column ``labels[codes]`` as pandas would type a column of those labels, built by a take
    over the few distinct labels (a column of one Python string per row is converted row by row)."""
    return pd.Series(list(labels), dtype=None).array.take(codes)


def _dates_at(codes: np.ndarray, names: list, positions: np.ndarray, indexes: dict):
    """Index label of row ``positions`` of each row's symbol (``names[codes]``), None (NaT) past
    the end of its data.

    Dates stay datetime64 when every index is a DatetimeIndex of one resolution (no Timestamp
    objects per row); other labels go through a list, so pandas infers the column type.
    """
    dtypes = {index.dtype for index in indexes.values()}
    datetime_only = len(dtypes) == 1 and all(isinstance(i, pd.DatetimeIndex) and i.tz is None for i in indexes.values())
    dates = np.full(
        len(codes), np.datetime64("NaT") if datetime_only else None, dtype=dtypes.pop() if datetime_only else object
    )
    for code, sym in enumerate(names):
        rows = np.flatnonzero(codes == code)
        targets = positions[rows]
        inside = targets < len(indexes[sym])
        labels = indexes[sym][targets[inside]]
        dates[rows[inside]] = labels.to_numpy() if datetime_only else np.asarray(labels.astype(object))
    return dates if datetime_only else dates.tolist()


def _bar(enabled: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(disable=not enabled, leave=False, **kwargs)


__all__ = ["BacktestResult", "backtest"]
