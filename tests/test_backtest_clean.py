"""Clean profile: newest row used, live last forecast, each signal on the return it forecasts."""

import numpy as np
import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.inputs.windows import percent_changes
from totowalk.backtest.profiles.clean.strategies import clean_best_strategy
from totowalk.backtest.report.text import format_report


def oracle_for(frame):
    """Forecasts the true next close return (a context of length l is pct_1 .. pct_l)."""
    pct = percent_changes(frame["Close"].to_numpy())

    def fn(contexts):
        return np.array([pct[len(c) + 1] if len(c) + 1 < len(pct) else 0.0 for c in contexts])

    return fn


def test_clean_windows_use_the_newest_row_and_forecast_the_next_one():
    frame = prices(60, 31)
    bt = backtest(frame, symbol="S", num_simulations=3, forecaster=mean5, profile="clean")
    last = bt.forecasts[(bt.forecasts["simulation"] == 0) & (bt.forecasts["step"] == 6)]
    assert (last["context_end"] == len(frame) - 1).all()  # the context holds the newest return
    assert last["actual"].isna().all()  # its outcome is in the future
    assert bt.simulations.loc[0, "close"] == frame["Close"].iloc[-1]
    assert not any("in-sample" in w for w in bt.warnings)
    legacy = backtest(frame, symbol="S", num_simulations=3, forecaster=mean5, profile="legacy")
    assert legacy.simulations.loc[0, "close"] == frame["Close"].iloc[-2]  # defect 16


def test_clean_signals_trade_the_return_they_forecast():
    frame = prices(80, 32)
    kwargs = dict(symbol="S", num_simulations=6, forecaster=oracle_for(frame), fee=0.0)
    clean = backtest(frame, profile="clean", **kwargs).simulations
    # with perfect forecasts and no costs, every day of the simple strategy earns |r| >= 0
    daily = np.array(clean["simple_strategy_daily_returns"].tolist())
    assert (daily >= 0).all() and (daily > 0).any()
    np.testing.assert_allclose(clean["calibration_slope"], 1.0, rtol=1e-5)
    legacy = backtest(frame, profile="legacy", **kwargs).simulations
    # the legacy loop applies signal j to the return one row later (defect 2)
    assert (legacy["simple_strategy_return"] < clean["simple_strategy_return"]).any()


def test_clean_spread_is_charged_as_stated():
    frame = prices(60, 33)
    free = backtest(frame, symbol="S", num_simulations=3, forecaster=mean5, profile="clean", fee=0.0)
    costly = backtest(frame, symbol="S", num_simulations=3, forecaster=mean5, profile="clean", fee=0.0, spread=1.002)
    assert costly.settings["spread"] == 1.002
    turnover = free.simulations["simple_strategy_turnover"].to_numpy()
    # cost per unit of position change is (ratio - 1) / 2 of the price
    expected = free.simulations["simple_strategy_avg_daily_return"] - turnover * 0.001
    np.testing.assert_allclose(costly.simulations["simple_strategy_avg_daily_return"], expected, rtol=1e-9, atol=1e-12)
    assert "best_strategy_distinguishable" in free.summary.columns  # a verdict, named or not


@pytest.mark.parametrize("profile", ["legacy", "clean"])
def test_a_no_change_forecaster_runs_through(profile):
    # Every forecast exactly 0 (a "no change" baseline): np.polyfit cannot calibrate on it, which
    # stopped the classic run; the calibration is the minimum-norm line (slope 0) instead.
    import totowalk as tw

    frame = tw.datasets.load("IBM").iloc[:400]
    result = tw.backtest(
        {"IBM": frame},
        num_simulations=3,
        profile=profile,
        forecaster=lambda contexts: np.zeros(len(contexts), dtype=np.float32),
    )
    rows = result.simulations
    assert len(rows) == 3
    assert (rows["calibration_slope"] == 0.0).all()
    assert np.isfinite(rows["calibration_intercept"]).all()


def oracle_all_keys(frame):
    """Forecasts every key's true next move: the context's key is found from its last values."""
    pct = {key: percent_changes(frame[key].to_numpy()) for key in ("Close", "High", "Low", "Open")}

    def fn(contexts):
        out = []
        for c in contexts:
            n = len(c)
            keys = [k for k, v in pct.items() if np.array_equal(c[-3:], v[n - 2 : n + 1].astype(np.float32))]
            assert len(keys) == 1
            out.append(pct[keys[0]][n + 1] if n + 1 < len(pct[keys[0]]) else 0.0)
        return np.array(out)

    return fn


def test_perfect_foresight_wins_every_day_it_trades():
    frame = prices(90, 34)
    result = backtest(
        frame, symbol="S", num_simulations=30, forecaster=oracle_all_keys(frame), profile="clean", fee=0.0
    )
    rows = result.simulations
    for prefix in ("simple_strategy", "all_signals_strategy", "unprofit_shutdown", "ci_guard"):
        daily = np.array(rows[f"{prefix}_daily_returns"].tolist())
        held = np.array(rows[f"{prefix}_positions"].tolist()) != 0
        assert held.any() and (daily[held] > 0).all(), prefix
    take_profit = np.array(rows["entry_takeprofit_daily_returns"].tolist())
    assert (take_profit != 0).all() and (take_profit > 0).all()
    # all_signals keeps the classic meaning: it trades where the Close, High and Low moves agree
    actual = {
        k: np.array([percent_changes(frame[k].to_numpy())[len(frame) - 6 - s : len(frame) - s] for s in range(30)])
        for k in ("Close", "High", "Low")
    }
    agree = np.where(
        (actual["Close"] > 0) & (actual["High"] > 0) & (actual["Low"] > 0),
        1.0,
        np.where((actual["Close"] < 0) & (actual["High"] < 0) & (actual["Low"] < 0), -1.0, 0.0),
    )
    np.testing.assert_array_equal(np.array(rows["all_signals_strategy_positions"].tolist()), agree)
    assert (agree != 0).mean() > 0.3


def test_headline_figures_come_from_the_daily_series_each_day_once():
    data = {"A": prices(80, 35), "B": prices(80, 36)}
    result = backtest(data, num_simulations=40, forecaster=mean5, profile="clean", fee=0.0)
    summary, rows = result.summary, result.simulations
    # buy & hold's final day is the close return into each window's last row: the last 40 returns
    for symbol, frame in data.items():
        r = frame["Close"].pct_change().to_numpy()[-40:]
        row = summary.loc[symbol]
        assert row["daily_series_days"] == 40
        np.testing.assert_allclose(row["buy_hold_sharpe"], r.mean() / r.std(ddof=1) * np.sqrt(252), rtol=1e-12)
        np.testing.assert_allclose(row["buy_hold_return"], np.prod(1 + r) - 1, rtol=1e-12)
        np.testing.assert_allclose(row["buy_hold_avg_daily_return"], r.mean(), rtol=1e-12)
        mine = rows[rows["symbol"] == symbol]
        # the overlapping-window means stay, under their own names
        np.testing.assert_allclose(row["window_mean_buy_hold_sharpe"], mine["buy_hold_sharpe"].mean(), rtol=1e-12)
        assert row["window_mean_buy_hold_sharpe"] != pytest.approx(row["buy_hold_sharpe"], rel=1e-3)
        assert row["walk_forward_turnover"] == pytest.approx(mine["simple_strategy_finalday_turnover"].mean())
    # several symbols: the equal-weight portfolio per date
    both = 0.5 * (data["A"]["Close"].pct_change().to_numpy()[-40:] + data["B"]["Close"].pct_change().to_numpy()[-40:])
    overall = summary.loc["(all)"]
    np.testing.assert_allclose(overall["buy_hold_sharpe"], both.mean() / both.std(ddof=1) * np.sqrt(252), rtol=1e-12)
    # the best strategy is chosen on the first half of the daily series, reported on the second
    first = {f"{p}_return": np.prod(1 + v[:20]) - 1 for p, v in _portfolio_series(result).items()}
    assert overall["best_strategy_selected"] == clean_best_strategy(first)
    assert overall["best_strategy_selection_days"] == 20 and overall["best_strategy_holdout_days"] == 20
    assert "fill model: expected" in format_report(result)


def _portfolio_series(result) -> dict:
    daily = result.daily[result.daily["symbol"] == "(all)"]
    return {p: g.sort_values("date")["return"].to_numpy() for p, g in daily.groupby("strategy", sort=False)}


def test_fill_model_is_a_clean_setting_stated_in_results():
    frame = prices(60, 37)
    kwargs = dict(symbol="S", num_simulations=3, forecaster=mean5)
    optimistic = backtest(frame, profile="clean", fill_model="optimistic", **kwargs)
    assert optimistic.settings["fill_model"] == "optimistic"
    assert (optimistic.simulations["fill_model"] == "optimistic").all()
    assert any("optimistic" in w for w in optimistic.warnings)
    default = backtest(frame, profile="clean", **kwargs)
    assert default.settings["fill_model"] == "expected" and not default.warnings
    adverse = backtest(frame, profile="clean", fill_model="adverse", **kwargs)
    assert any("lower bound" in w for w in adverse.warnings)
    with pytest.raises(ValueError, match="fill_model must be one of"):
        backtest(frame, profile="clean", fill_model="best", **kwargs)
    with pytest.raises(ValueError, match="applies to the clean profile"):
        backtest(frame, profile="legacy", fill_model="optimistic", **kwargs)
    assert "fill_model" not in backtest(frame, profile="legacy", **kwargs).settings
