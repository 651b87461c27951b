"""No information, no edge, and no loss: on driftless bars every clean strategy's expected return is 0.

The bars come from simulated martingale intraday paths of 2,000 steps a day (tests/_driftless.py).
Without information no rule, whatever its limit prices, has a non-zero expectation on a martingale
(optional stopping), so a mean daily return significantly away from 0 can only come from the
backtest booking fills the bars do not support: too many (optimistic) or too few (adverse). The
default fill model books the expectation over the bar's paths, so every strategy's daily mean
stays within 3 standard errors of 0 in both directions, over 12,000 final days per forecaster
(each day counts once: the series is each simulation's final day). The bounds bracket it.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _driftless import driftless_bars, noise_forecaster, zero_forecaster

import totowalk as tw
from totowalk.backtest.profiles.profile import STRATEGY_PREFIXES

DAYS = 4000
SEEDS = (11, 12, 13)
TICKS = 2000  # fine paths: a limit order crossed between two ticks is picked off by the step (docs/FILLS.md)


def last_value_forecaster(contexts):
    """Tomorrow's move = today's: information-free on a martingale, but strongly autocorrelated."""
    return np.array([c[-1] if len(c) else 0.0 for c in contexts], dtype=np.float32)


FORECASTERS = {"zero": zero_forecaster, "noise": noise_forecaster, "last value": last_value_forecaster}


@functools.cache
def _run(seed: int, name: str, fill_model: str = "expected"):
    frame = driftless_bars(DAYS + 40, seed, ticks=TICKS)
    result = tw.backtest(
        {"X": frame},
        num_simulations=DAYS,
        profile="clean",
        fee=0.0,
        forecaster=FORECASTERS[name],
        fill_model=fill_model,
    )
    daily = result.daily[result.daily["symbol"] == "X"]
    assert daily.groupby("strategy").size().eq(DAYS).all()  # one value per day
    return daily


def _pooled(name: str, field: str = "return", fill_model: str = "expected") -> dict:
    parts = [_run(seed, name, fill_model) for seed in SEEDS]
    return {s: np.concatenate([p.loc[p["strategy"] == s, field].to_numpy() for p in parts]) for s in STRATEGY_PREFIXES}


def _t(values: np.ndarray) -> float:
    se = values.std(ddof=1) / np.sqrt(values.size)
    return float(values.mean() / se) if se > 0 else 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_no_strategy_earns_or_loses_on_driftless_bars(name):
    pooled = _pooled(name)
    assert all(v.size == DAYS * len(SEEDS) for v in pooled.values())
    off = {k: f"{v.mean() * 1e4:+.2f} bp/day, t = {_t(v):+.2f}" for k, v in pooled.items() if abs(_t(v)) >= 3.0}
    assert off == {}, f"{name} forecaster: mean daily return 3 or more standard errors from 0: {off}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_the_bounds_bracket_the_expectation_every_day(name):
    for seed in SEEDS:
        daily = _run(seed, name)
        assert (daily["return_adverse"] <= daily["return"] + 1e-15).all()
        assert (daily["return"] <= daily["return_optimistic"] + 1e-15).all()
    limits = _pooled(name, "return_optimistic")["maxdiffalwayson"] - _pooled(name, "return_adverse")["maxdiffalwayson"]
    assert (limits > 0).mean() > 0.05  # the bracket is not empty: some round trips are left open


@pytest.mark.slow
def test_the_check_has_the_power_to_flag_either_bound():
    # The same bars booked by either bound: MaxDiffAlwaysOn earns (optimistic) or loses (adverse)
    # from nothing, so the no-information check above would catch a biased fill rule.
    assert _t(_pooled("noise", fill_model="optimistic")["maxdiffalwayson"]) > 3.0
    assert _t(_pooled("noise", fill_model="adverse")["maxdiffalwayson"]) < -3.0
