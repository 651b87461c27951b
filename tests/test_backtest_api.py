"""backtest(): multi-symbol runs, outputs, forecaster forms and bad input."""

import numpy as np
import pandas as pd
import pytest

from totowalk import PriceDataError
from totowalk.backtest import backtest
from totowalk.backtest.profiles.legacy.rows import RESULT_FIELDS


def prices(n, seed):
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    open_ = close * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    dates = pd.date_range("2021-01-04", periods=n, freq="B")
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close}, index=dates)


def mean5(contexts):
    return np.array([np.mean(c[-5:].astype(np.float64)) for c in contexts])


def test_multi_symbol_rows_equal_single_symbol_runs():
    data = {"AAA": prices(60, 1), "BBB": prices(75, 2)}
    both = backtest(data, num_simulations=4, forecaster=mean5, profile="legacy")
    assert list(both.simulations.columns[:2]) == ["symbol", "simulation"]
    assert list(both.simulations.columns[2 : 2 + len(RESULT_FIELDS)]) == list(RESULT_FIELDS)
    assert list(both.simulations["symbol"]) == ["AAA"] * 4 + ["BBB"] * 4
    assert list(both.summary.index) == ["AAA", "BBB", "(all)"]
    for sym in data:
        one = backtest(data[sym], symbol=sym, num_simulations=4, forecaster=mean5, profile="legacy")
        got = both.simulations[both.simulations["symbol"] == sym].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, one.simulations)
        f = both.forecasts[both.forecasts["symbol"] == sym].reset_index(drop=True)
        pd.testing.assert_frame_equal(f, one.forecasts)
    overall = both.summary.loc["(all)"]
    assert overall["num_simulations"] == 8
    assert overall["maxdiff_return"] == pytest.approx(both.simulations["maxdiff_return"].mean())


def test_forecaster_sees_each_distinct_context_once_in_one_call():
    calls = []

    def recording(contexts):
        calls.append([len(c) for c in contexts])
        return mean5(contexts)

    backtest({"A": prices(70, 3), "B": prices(70, 4)}, num_simulations=5, forecaster=recording, profile="legacy")
    assert len(calls) == 1  # the whole run in one batch (all < 64 values: one patch bucket)
    assert len(calls[0]) == 2 * 4 * (5 + 6)  # K + 6 distinct contexts per key and symbol


def test_multi_symbol_frame_and_unknown_symbol():
    frames = []
    for sym, seed in (("X", 5), ("Y", 6)):
        f = prices(40, seed).rename_axis("Date").reset_index()
        f["Ticker"] = sym
        frames.append(f)
    stacked = pd.concat(frames, ignore_index=True)
    bt = backtest(stacked, symbols=["Y"], num_simulations=2, forecaster=mean5, profile="legacy")
    assert set(bt.simulations["symbol"]) == {"Y"}
    with pytest.raises(PriceDataError, match="unknown symbol 'Z'"):
        backtest(stacked, symbols=["Z"], num_simulations=2, forecaster=mean5, profile="legacy")
    with pytest.raises(PriceDataError, match="unknown symbol 'Q'"):
        backtest({"X": prices(40, 1)}, symbols=["Q"], num_simulations=2, forecaster=mean5, profile="legacy")


def test_too_few_rows_and_nan_price_name_symbol_and_row():
    with pytest.raises(PriceDataError, match=r"symbol 'SHORT'.*has 20 rows.*at least 21"):
        backtest({"OK": prices(40, 1), "SHORT": prices(20, 2)}, num_simulations=12, forecaster=mean5, profile="legacy")
    bad = prices(40, 1)
    bad.iloc[23, bad.columns.get_loc("Close")] = np.nan
    with pytest.raises(PriceDataError) as err:
        backtest({"NANCO": bad}, num_simulations=2, forecaster=mean5, profile="legacy")
    assert (err.value.symbol, err.value.column, err.value.row) == ("NANCO", "Close", 23)
    assert "row 23" in str(err.value)


def test_bad_forecaster_output_is_named():
    with pytest.raises(ValueError, match=r"shape \(3,\) for \d+ contexts"):
        backtest(prices(40, 1), symbol="A", num_simulations=2, forecaster=lambda c: np.zeros(3), profile="legacy")
    with pytest.raises(ValueError, match=r"non-finite forecast for A\|Close\|"):
        backtest(
            prices(40, 1), symbol="A", num_simulations=2, forecaster=lambda c: np.full(len(c), np.nan), profile="legacy"
        )
    with pytest.raises(ValueError, match="exactly one of engine= .* or forecaster="):
        backtest(prices(40, 1), symbol="A", num_simulations=2, profile="legacy")


def test_settings_state_defaults_and_legacy_warning():
    bt = backtest(prices(40, 1), symbol="A", num_simulations=2, forecaster=mean5, is_crypto=["A"], profile="legacy")
    s = bt.settings
    assert s["fee"] == {"A": 0.0015} and s["trading_days"] == {"A": 365}
    assert s["spread"] == 1.0 and "default" in s["spread_note"]
    assert any("in-sample" in w for w in bt.warnings)
    legacy_fallback = backtest(
        prices(40, 1), symbol="A", num_simulations=2, forecaster=mean5, spread="legacy-fallback", profile="legacy"
    )
    assert legacy_fallback.settings["spread"] == 1.05
    with pytest.raises(ValueError, match="spread"):
        backtest(prices(40, 1), symbol="A", num_simulations=2, forecaster=mean5, spread=0.9, profile="legacy")


@pytest.mark.parametrize("profile", ["legacy", "clean"])
def test_forecast_target_dates_name_the_row_whose_return_is_forecast(profile):
    frame = prices(50, 3)
    bt = backtest(frame, symbol="AAA", num_simulations=3, forecaster=mean5, profile=profile)
    f = bt.forecasts
    inside = f["context_end"] + 1 < len(frame)
    assert (f.loc[inside, "target_date"] == frame.index[f.loc[inside, "context_end"] + 1]).all()
    assert (f["context_end_date"] == frame.index[f["context_end"]]).all()  # beside its row number
    assert f.loc[~inside, "target_date"].isna().all()
    known = f[f["actual"].notna()]
    assert len(known) > 0
    for key in ("Close", "High", "Low", "Open"):
        rows = known[known["key"] == key]
        realised = frame[key].pct_change().loc[rows["target_date"]].to_numpy()
        np.testing.assert_allclose(rows["actual"].to_numpy(), realised, rtol=1e-6)


def test_default_max_batch_is_larger_for_an_engine_on_cuda(monkeypatch):
    import types

    import torch

    from totowalk.backtest import chunks as api
    from totowalk.backtest.forecast.forecasters import as_forecaster

    def cheap(contexts):
        return np.array([c[-1] for c in contexts], dtype=np.float32)

    assert api.default_max_batch(as_forecaster(forecaster=cheap)) == api.DEFAULT_MAX_BATCH
    on = lambda device: types.SimpleNamespace(engine=types.SimpleNamespace(device=torch.device(device)))  # noqa: E731
    assert api.default_max_batch(on("cpu")) == api.DEFAULT_MAX_BATCH
    assert api.default_max_batch(on("cuda")) == api.DEFAULT_MAX_BATCH_CUDA
    # the chunking a run uses: the default, or what the caller asked for
    seen = []
    real = api.compute_forecasts
    monkeypatch.setattr(
        api,
        "compute_forecasts",
        lambda plan, fc, max_batch, **kw: seen.append(max_batch) or real(plan, fc, max_batch=max_batch, **kw),
    )
    from totowalk import datasets

    frame = datasets.load("IBM").iloc[:300]
    backtest(frame, symbol="IBM", num_simulations=2, forecaster=cheap, profile="legacy")
    backtest(frame, symbol="IBM", num_simulations=2, forecaster=cheap, max_batch=7, profile="legacy")
    assert seen == [api.DEFAULT_MAX_BATCH, 7]


def test_function_forecasters_get_read_only_views_of_one_series():
    seen = []

    def forecaster(contexts):
        seen.extend(contexts)
        with pytest.raises(ValueError, match="read-only"):
            contexts[0][0] = 1.0  # would change every other context of the series
        return np.array([c[-1] for c in contexts])

    backtest(prices(60, 1), symbol="A", num_simulations=3, forecaster=forecaster, profile="legacy")
    longest = max(seen, key=len)
    for context in seen:  # the contexts of one key are prefixes sharing one array's memory
        assert not context.flags.writeable and context.dtype == np.float32
        if np.shares_memory(context, longest):
            np.testing.assert_array_equal(context, longest[: len(context)])
    assert sum(np.shares_memory(c, longest) for c in seen) > 1


@pytest.mark.parametrize("costs", [dict(spread=1e9), dict(spread=2.0), dict(fee=0.6), dict(fee=0.3, spread=1.5)])
def test_costs_that_could_lose_more_than_the_unit_are_refused(costs):
    # a unit of position change costs fee + (spread - 1) / 2; a reversal trades two units a day
    from totowalk.errors import UsageError

    with pytest.raises(UsageError, match=r"must stay below 0.5"):
        backtest({"A": prices(60, 1)}, num_simulations=2, forecaster=mean5, **costs)
    backtest({"A": prices(60, 1)}, num_simulations=2, forecaster=mean5, fee=0.2, spread=1.5)  # 0.45: runs


@pytest.mark.parametrize("profile", ["clean", "legacy"])
def test_bars_without_dates_are_numbered_and_both_profiles_run(profile):
    # a frame with a plain RangeIndex: the rows' "date" is the bar number; the clean summary's daily
    # series read it (they once failed on it), and the summary averages it as the classic loop did
    frame = prices(70, 4).reset_index(drop=True)
    result = backtest(frame, symbol="X", num_simulations=5, forecaster=mean5, profile=profile)
    dates = result.simulations["date"].tolist()  # simulation 0 is the most recent window
    assert dates == list(range(dates[0], dates[0] - 5, -1)) and dates[0] < 70
    assert result.summary.loc["X", "date"] == np.mean(dates)
    assert sorted(set(result.daily["date"])) == sorted(dates) and len(result.statistics) > 0
    if profile == "clean":
        assert result.summary.loc["X", "daily_series_days"] == 5


@pytest.mark.parametrize("bad", [5.5, "5", True, 0, -2, float("nan"), np.float64(2.5)])
def test_a_number_of_simulations_that_is_not_a_whole_number_is_refused(bad):
    with pytest.raises(ValueError, match=r"num_simulations must be a whole number >= 1, got"):
        backtest({"A": prices(80, 0)}, num_simulations=bad, forecaster=mean5)


@pytest.mark.parametrize("whole", [3.0, np.int64(3), np.float32(3)])
def test_a_whole_number_of_simulations_in_any_numeric_type_runs(whole):
    result = backtest({"A": prices(80, 0)}, num_simulations=whole, forecaster=mean5)
    assert result.settings["num_simulations"] == 3 and len(result.simulations) == 3


def test_a_fee_for_a_symbol_not_in_the_run_is_refused_by_name():
    with pytest.raises(ValueError, match=r"fee names symbol\(s\) \['ZZZ'\] that are not in the run \['A'\]"):
        backtest({"A": prices(80, 0)}, num_simulations=2, forecaster=mean5, fee={"ZZZ": 0.001})
    result = backtest({"A": prices(80, 0), "B": prices(80, 1)}, num_simulations=2, forecaster=mean5, fee={"A": 0.002})
    assert result.settings["fee"] == {"A": 0.002, "B": 0.0005}  # a symbol left out keeps its default


def test_a_crypto_symbol_not_in_the_run_is_refused_by_name():
    with pytest.raises(ValueError, match=r"is_crypto \(--crypto\) names symbol\(s\) \['ZZZ'\] that are not in the run"):
        backtest({"A": prices(80, 0)}, num_simulations=2, forecaster=mean5, is_crypto=["ZZZ"])
