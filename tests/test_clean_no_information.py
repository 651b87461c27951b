"""No information, no edge: on driftless bars every clean strategy's expected return is at most 0.

The bars come from simulated martingale intraday paths (tests/_driftless.py). Without information
no rule, whatever its limit prices, has a positive expectation on a martingale (optional
stopping), so a significantly positive mean can only come from the backtest booking fills the
bars do not prove. Each day counts once: the series is each simulation's final day.
"""

from __future__ import annotations

import numpy as np
import pytest
from _driftless import constant_forecaster, driftless_bars, noise_forecaster, zero_forecaster

import totowalk as tw
from totowalk.backtest.profiles.clean.headline import daily_series

DAYS = 4000
SEEDS = (11, 12, 13)
FORECASTERS = {"zero": zero_forecaster, "noise": noise_forecaster, "constant": constant_forecaster}


def _daily(seed, forecaster, **kwargs):
    frame = driftless_bars(DAYS + 20, seed)
    result = tw.backtest({"X": frame}, num_simulations=DAYS, profile="clean", fee=0.0, forecaster=forecaster, **kwargs)
    series = daily_series(result.simulations)
    assert len(series) == DAYS  # one value per day
    return series


def _t_stats(series):
    values = series.to_numpy()
    mean = values.mean(axis=0)
    se = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
    return {name: (m, m / s if s > 0 else 0.0) for name, m, s in zip(series.columns, mean, se)}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_no_strategy_earns_on_driftless_bars(name, seed):
    stats = _t_stats(_daily(seed, FORECASTERS[name]))
    assert set(stats) == {
        "simple_strategy",
        "all_signals_strategy",
        "buy_hold",
        "unprofit_shutdown",
        "ci_guard",
        "entry_takeprofit",
        "highlow",
        "maxdiff",
        "maxdiffalwayson",
    }
    above = {k: f"{m * 1e4:+.2f} bp/day, t = {t:+.2f}" for k, (m, t) in stats.items() if t >= 3.0}
    assert above == {}, f"{name} forecaster, seed {seed}: mean daily return >= 3 standard errors: {above}"


def test_the_check_flags_the_optimistic_fill_rule():
    # The same bars with round trips booked as if the entry came first: MaxDiffAlwaysOn earns from
    # nothing, so the no-information check above has the power to catch fill optimism.
    pooled = np.concatenate(
        [_daily(seed, zero_forecaster, fill_model="optimistic")["maxdiffalwayson"].to_numpy() for seed in SEEDS]
    )
    t = pooled.mean() / (pooled.std(ddof=1) / np.sqrt(pooled.size))
    assert t > 3.0
