"""A run evaluated a chunk of symbols at a time, the next chunk's forecast overlapping this one's
strategies, and with its rows stored in the run's folder, equals the run made in one piece, bit for
bit: forecasts, rows, summary, daily series, statistics, calibration and forecast error."""

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.forecast.store import PARTS
from totowalk.backtest.forecast.tables import contexts_of, symbol_chunks
from totowalk.backtest.inputs.windows import PRICE_KEYS
from totowalk.engine import ForecastEngine
from totowalk.model import TotoConfig, build_model

DATA = {name: prices(70 + 5 * i, 30 + i) for i, name in enumerate(["AAA", "BBB", "CCC", "DDD", "EEE"])}


def _same(a, b):
    for name in ("simulations", "forecasts", "summary", "daily", "statistics"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True, obj=name)
    pd.testing.assert_series_equal(a.mae, b.mae, check_exact=True)
    assert a.calibration == b.calibration or _nan_equal(a.calibration, b.calibration)
    assert a.warnings == b.warnings


def _nan_equal(x, y) -> bool:
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_nan_equal(x[k], y[k]) for k in x)
    return x == y or (isinstance(x, float) and np.isnan(x) and np.isnan(y))


@pytest.fixture(scope="module")
def engines():
    model = build_model(TotoConfig.preset("toto-tiny"), seed=0)
    return {e: ForecastEngine(model, num_samples=16, seed=3, estimator=e) for e in ("exact", "sampled")}


@pytest.mark.parametrize("profile, estimator", [("clean", "exact"), ("legacy", "sampled"), ("clean", "sampled")])
def test_chunked_overlapped_and_stored_runs_equal_one_piece(tmp_path, engines, profile, estimator):
    settings = dict(num_simulations=6, engine=engines[estimator], profile=profile)
    whole = backtest(DATA, contexts_per_chunk=10**9, overlap=False, **settings)
    assert len(whole.tables.chunks) == 1
    chunked = backtest(DATA, contexts_per_chunk=1, overlap=True, **settings)
    assert [symbols for _, symbols in chunked.tables.chunks] == [[s] for s in DATA]
    _same(chunked, whole)
    stored = backtest(DATA, contexts_per_chunk=100, out_dir=tmp_path / "run", **settings)
    assert len(stored.tables.chunks) == 3 and len(list((tmp_path / "run" / PARTS).iterdir())) == 6
    _same(stored, whole)


def test_chunks_hold_whole_symbols_in_order_near_the_asked_size():
    settings = dict(num_simulations=6, forecaster=mean5)
    result = backtest(DATA, contexts_per_chunk=100, **settings)
    chunks = [symbols for _, symbols in result.tables.chunks]
    assert [s for c in chunks for s in c] == list(DATA)
    series = {s: contexts_of(_series(result, s), PRICE_KEYS) for s in DATA}
    for chunk in chunks:  # a chunk grows past the size only by its first symbol
        assert len(chunk) == 1 or sum(series[s] for s in chunk) <= 100
    with pytest.raises(ValueError, match="contexts_per_chunk must be >= 1"):
        symbol_chunks([], PRICE_KEYS, 0)


def _series(result, symbol):
    class Layout:  # contexts_of reads only the context lengths: (K, 7) row counts
        def __init__(self, lengths):
            self.context_lengths = lengths

    class Series:
        def __init__(self, lengths):
            self.layout = Layout(lengths)

    rows = result.forecasts
    mine = rows[(rows["symbol"] == symbol) & (rows["key"] == "Close")]
    return Series(mine["context_end"].to_numpy().reshape(-1, 7) + 1)


def test_forecast_thread_failure_reaches_the_caller_and_stops():
    calls = []

    def failing_on_third_chunk(contexts):
        calls.append(len(contexts))
        if len(calls) == 3:
            raise RuntimeError("forecaster failed")
        return mean5(contexts)

    with pytest.raises(RuntimeError, match="forecaster failed"):
        backtest(DATA, num_simulations=6, forecaster=failing_on_third_chunk, contexts_per_chunk=1, max_batch=1000)
    assert len(calls) == 3  # no chunk after the failure was forecast


@pytest.mark.parametrize("profile", ["clean", "legacy"])
def test_the_overall_row_read_from_disk_a_column_at_a_time_equals_the_one_from_all_rows(
    tmp_path, engines, profile, monkeypatch
):
    # the run keeps its rows' numeric columns on disk and reads them back a column or two at a
    # time (the headline only the columns it names): the summary of every row at once is the same
    from totowalk.backtest.profiles import summary
    from totowalk.backtest.profiles.registry import profile_named

    settings = dict(num_simulations=6, engine=engines["exact"], profile=profile, is_crypto=True)  # 365 days a year
    result = backtest(DATA, contexts_per_chunk=100, **settings)
    rules = profile_named(profile)
    expected = summary.summarize(result.simulations, rules.best_strategy, rules.summary_headline, result.daily)
    monkeypatch.setattr(summary, "_BLOCK_VALUES", 2 * len(result.simulations))  # two columns a read
    stored = backtest(DATA, contexts_per_chunk=100, out_dir=tmp_path, **settings)
    assert len(stored.tables.chunks) == 3
    pd.testing.assert_frame_equal(stored.summary, expected, check_exact=True)
    pd.testing.assert_frame_equal(result.summary, expected, check_exact=True)
    if profile == "clean":  # the headline read the year's length from the rows' own column
        assert stored.summary.loc["(all)", "daily_series_days_per_year"] == 365.0
