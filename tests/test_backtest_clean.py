"""Clean profile: newest row used, live last forecast, each signal on the return it forecasts."""

import numpy as np
import pytest

from totowalk.backtest import backtest
from totowalk.backtest.windows import percent_changes

from test_backtest_api import mean5, prices


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
    costly = backtest(frame, symbol="S", num_simulations=3, forecaster=mean5, profile="clean",
                      fee=0.0, spread=1.002)
    assert costly.settings["spread"] == 1.002
    turnover = free.simulations["simple_strategy_turnover"].to_numpy()
    # cost per unit of position change is (ratio - 1) / 2 of the price
    expected = free.simulations["simple_strategy_avg_daily_return"] - turnover * 0.001
    np.testing.assert_allclose(costly.simulations["simple_strategy_avg_daily_return"], expected,
                               rtol=1e-9, atol=1e-12)
    assert free.summary.loc["(all)", "best_strategy"] is not None


@pytest.mark.parametrize("profile", ["legacy", "clean"])
def test_a_no_change_forecaster_runs_through(profile):
    # Every forecast exactly 0 (a "no change" baseline): np.polyfit cannot calibrate on it, which
    # stopped the classic run; the calibration is the minimum-norm line (slope 0) instead.
    import totowalk as tw

    frame = tw.datasets.load("IBM").iloc[:400]
    result = tw.backtest({"IBM": frame}, num_simulations=3, profile=profile,
                         forecaster=lambda contexts: np.zeros(len(contexts), dtype=np.float32))
    rows = result.simulations
    assert len(rows) == 3
    assert (rows["calibration_slope"] == 0.0).all()
    assert np.isfinite(rows["calibration_intercept"]).all()
