"""Information wins and its sign flip loses: every clean strategy that trades on forecasts earns
with perfect foresight and loses with its mirror image, under every fill model, on bars from
driftless intraday paths (so the bars themselves carry no edge)."""

from __future__ import annotations

import functools

import pytest
from _driftless import driftless_bars
from test_backtest_clean import oracle_all_keys

import totowalk as tw
from totowalk.backtest.profiles.profile import STRATEGY_PREFIXES

DAYS = 400
TRADES_ON_FORECASTS = [s for s in STRATEGY_PREFIXES if s != "buy_hold"]


@functools.cache
def _means(sign: float, fill_model: str) -> dict:
    frame = driftless_bars(DAYS + 30, 5, ticks=2000)
    oracle = oracle_all_keys(frame)
    result = tw.backtest(
        {"S": frame},
        num_simulations=DAYS,
        profile="clean",
        fee=0.0,
        fill_model=fill_model,
        forecaster=lambda contexts: sign * oracle(contexts),
    )
    daily = result.daily[result.daily["symbol"] == "S"]
    return {s: float(g["return"].mean()) for s, g in daily.groupby("strategy")}


@pytest.mark.parametrize("fill_model", ["expected", "adverse", "optimistic"])
def test_the_oracle_wins_and_its_sign_flip_loses(fill_model):
    wins, losses = _means(1.0, fill_model), _means(-1.0, fill_model)
    assert {s: m for s, m in wins.items() if s in TRADES_ON_FORECASTS and m <= 0} == {}
    assert {s: m for s, m in losses.items() if s in TRADES_ON_FORECASTS and m >= 0} == {}
    assert wins["buy_hold"] == losses["buy_hold"]  # the one strategy that ignores forecasts
