"""Test oracle: the legacy MaxDiff and MaxDiffAlwaysOn strategies for one simulation
(LEGACY_SEMANTICS.md §6.6-6.7), offsets fitted on the reported days (defect 1, kept for parity);
the package evaluates every simulation at once and is tested against these."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from oracles.metrics import evaluate_summed
from totowalk.backtest.profiles.legacy.maxdiff import (
    ALWAYS_ON_GRID,
    MAXDIFF_GRID,
    limit_order_profit,
    previous_bar_spreads,
    sum_days_f32,
)
from totowalk.backtest.profiles.legacy.metrics import Evaluation

__all__ = ["MaxDiffResult", "evaluate_maxdiff", "evaluate_maxdiff_always_on"]

_F0, _F1 = np.float32(0.0), np.float32(1.0)


@dataclass
class MaxDiffResult:
    """Evaluation (summed, §5.3) plus the legacy metadata dictionary (key names as in the result row)."""

    evaluation: Evaluation
    metadata: dict = field(default_factory=dict)


def _adjusted_moves(close_actual, high_actual, low_actual, high_pred, low_pred, prices):
    days = len(close_actual)
    kappa_high, kappa_low = previous_bar_spreads(
        np.asarray(prices["Close"], dtype=np.float64)[-(days + 2) : -2],
        np.asarray(prices["High"], dtype=np.float64)[-(days + 2) : -2],
        np.asarray(prices["Low"], dtype=np.float64)[-(days + 2) : -2],
    )
    kh, kl = kappa_high.astype(np.float32), kappa_low.astype(np.float32)
    f32 = lambda v: np.asarray(v, dtype=np.float32).reshape(-1)  # noqa: E731
    return (f32(close_actual), f32(high_actual) + kh, f32(low_actual) - kl, f32(high_pred) + kh, f32(low_pred) - kl)


def _unusable(close_actual, arrays, prices) -> bool:
    days = len(close_actual) if close_actual is not None else 0
    return days == 0 or len(prices["Close"]) < days + 2 or any(a is None for a in arrays)


def evaluate_maxdiff(
    close_actual,
    high_actual,
    low_actual,
    high_pred,
    low_pred,
    prices,
    high_price_reference: float,
    low_price_reference: float,
    trading_days_per_year: float,
    is_crypto: bool,
    skip_invalid_forecasts: bool = True,
) -> MaxDiffResult:
    """Legacy ``evaluate_maxdiff_strategy`` for one simulation (§6.6).

    Parameters
    ----------
    close_actual, high_actual, low_actual : array_like, shape (V,)
        Actual close / high / low moves of the evaluated days (float32 in the legacy run).
    high_pred, low_pred : array_like, shape (V,) or None
        Predicted high / low moves; ``None`` (missing) gives the zero result.
    prices : mapping with ``Close``, ``High``, ``Low`` sequences, length >= V + 2
        The simulation's price rows; rows ``-(V+2) .. -3`` give the previous-bar spreads.
    high_price_reference, low_price_reference : float
        ``*_predicted_price_value``; the reported limit prices are these times ``1 + offset``.
    trading_days_per_year : float
    is_crypto : bool
        Short trades become flat.
    skip_invalid_forecasts : bool
        Flat on days where the adjusted low forecast is not below the adjusted high forecast.
    """
    metadata = {
        "maxdiffprofit_profit": 0.0,
        "maxdiffprofit_profit_values": [],
        "maxdiffprofit_profit_high_multiplier": 0.0,
        "maxdiffprofit_profit_low_multiplier": 0.0,
        "maxdiffprofit_high_price": float(high_price_reference),
        "maxdiffprofit_low_price": float(low_price_reference),
        "maxdiff_turnover": 0.0,
        "maxdiff_primary_side": "neutral",
        "maxdiff_trade_bias": 0.0,
        "maxdiff_trades_positive": 0,
        "maxdiff_trades_negative": 0,
        "maxdiff_trades_total": 0,
        "maxdiff_invalid_forecasts": 0,
        "maxdiff_valid_forecasts": 0,
    }
    if _unusable(close_actual, (high_actual, low_actual, high_pred, low_pred), prices):
        return MaxDiffResult(evaluate_summed([], trading_days_per_year), metadata)
    y, h_act, l_act, h_pred, l_pred = _adjusted_moves(
        close_actual, high_actual, low_actual, high_pred, low_pred, prices
    )
    q = np.where(np.abs(h_pred) > np.abs(l_pred), _F1, -_F1)
    if is_crypto:
        q = np.where(q < 0, _F0, q)
    valid = l_pred < h_pred
    if skip_invalid_forecasts:
        q = np.where(valid, q, _F0)

    def profit(x: float, z: float) -> float:
        values = limit_order_profit(y, h_act, h_pred + np.float32(x), l_act, l_pred + np.float32(z), q)
        return float(sum_days_f32(values))

    best_x, best = 0.0, profit(0.0, 0.0)
    for x in MAXDIFF_GRID:
        candidate = profit(x, 0.0)
        if candidate > best:
            best, best_x = candidate, float(x)
    best_z = 0.0
    for z in MAXDIFF_GRID:
        candidate = profit(best_x, z)
        if candidate > best:
            best, best_z = candidate, float(z)
    daily = limit_order_profit(y, h_act, h_pred + np.float32(best_x), l_act, l_pred + np.float32(best_z), q)
    evaluation = evaluate_summed(daily.astype(np.float64), trading_days_per_year)
    positive, negative = int((q > 0).sum()), int((q < 0).sum())
    nonzero = int((q != 0).sum())
    net = float(q.astype(np.float64).sum())
    if positive and not negative:
        side = "buy"
    elif negative and not positive:
        side = "sell"
    else:
        side = "buy" if net > 0 else ("sell" if net < 0 else "neutral")
    metadata.update(
        {
            "maxdiffprofit_profit": evaluation.total_return,
            "maxdiffprofit_profit_values": evaluation.returns.tolist(),
            "maxdiffprofit_profit_high_multiplier": best_x,
            "maxdiffprofit_profit_low_multiplier": best_z,
            "maxdiffprofit_high_price": float(high_price_reference) * (1.0 + best_x),
            "maxdiffprofit_low_price": float(low_price_reference) * (1.0 + best_z),
            "maxdiff_turnover": float(np.abs(evaluation.returns).mean()),
            "maxdiff_primary_side": side,
            "maxdiff_trade_bias": net / nonzero if nonzero else 0.0,
            "maxdiff_trades_positive": positive,
            "maxdiff_trades_negative": negative,
            "maxdiff_trades_total": nonzero,
            "maxdiff_invalid_forecasts": int((~valid).sum()),
            "maxdiff_valid_forecasts": int(valid.sum()),
        }
    )
    return MaxDiffResult(evaluation, metadata)


def evaluate_maxdiff_always_on(
    close_actual,
    high_actual,
    low_actual,
    high_pred,
    low_pred,
    prices,
    high_price_reference: float,
    low_price_reference: float,
    trading_days_per_year: float,
    is_crypto: bool,
) -> MaxDiffResult:
    """Legacy ``evaluate_maxdiff_always_on_strategy`` for one simulation (§6.7).

    Same inputs as :func:`evaluate_maxdiff` (no direction rule, no validity mask): a long and a
    short leg every day (crypto: no short leg), offsets from the 81 x 81 grid, first best wins.
    """
    metadata = {
        "maxdiffalwayson_profit": 0.0,
        "maxdiffalwayson_profit_values": [],
        "maxdiffalwayson_high_multiplier": 0.0,
        "maxdiffalwayson_low_multiplier": 0.0,
        "maxdiffalwayson_high_price": float(high_price_reference),
        "maxdiffalwayson_low_price": float(low_price_reference),
        "maxdiffalwayson_turnover": 0.0,
        "maxdiffalwayson_buy_contribution": 0.0,
        "maxdiffalwayson_sell_contribution": 0.0,
        "maxdiffalwayson_filled_buy_trades": 0,
        "maxdiffalwayson_filled_sell_trades": 0,
        "maxdiffalwayson_trades_total": 0,
        "maxdiffalwayson_trade_bias": 0.0,
    }
    if _unusable(close_actual, (high_actual, low_actual, high_pred, low_pred), prices):
        return MaxDiffResult(evaluate_summed([], trading_days_per_year), metadata)
    y, h_act, l_act, h_pred, l_pred = _adjusted_moves(
        close_actual, high_actual, low_actual, high_pred, low_pred, prices
    )
    grid32 = ALWAYS_ON_GRID.astype(np.float32)
    best_total, best = -np.inf, None
    for x in ALWAYS_ON_GRID:
        # the inner z loop as one array op: rows are z, columns are days
        lows = l_pred[None, :] + grid32[:, None]
        highs = h_pred + np.float32(x)
        buy = limit_order_profit(y, h_act, highs, l_act, lows, _F1)
        sell = np.zeros_like(buy) if is_crypto else limit_order_profit(y, h_act, highs, l_act, lows, -_F1)
        totals = sum_days_f32(buy).astype(np.float64) + sum_days_f32(sell).astype(np.float64)
        k = int(np.argmax(totals))  # first maximiser within the row
        if totals[k] > best_total:
            best_total, best = totals[k], (float(x), float(ALWAYS_ON_GRID[k]), buy[k], sell[k])
    x_best, z_best, buy, sell = best
    daily = (buy + sell).astype(np.float32)
    evaluation = evaluate_summed(daily.astype(np.float64), trading_days_per_year)
    # the search compares float32 sums; the reported contributions are float64 sums
    buy_sum, sell_sum = float(buy.astype(np.float64).sum()), float(sell.astype(np.float64).sum())
    abs_total = float(np.abs(evaluation.returns).sum())
    filled_buy, filled_sell = int(np.count_nonzero(buy)), int(np.count_nonzero(sell))
    metadata.update(
        {
            "maxdiffalwayson_profit": evaluation.total_return,
            "maxdiffalwayson_profit_values": evaluation.returns.tolist(),
            "maxdiffalwayson_high_multiplier": x_best,
            "maxdiffalwayson_low_multiplier": z_best,
            "maxdiffalwayson_high_price": float(high_price_reference) * (1.0 + x_best),
            "maxdiffalwayson_low_price": float(low_price_reference) * (1.0 + z_best),
            "maxdiffalwayson_turnover": float(np.abs(evaluation.returns).mean()),
            "maxdiffalwayson_buy_contribution": buy_sum,
            "maxdiffalwayson_sell_contribution": sell_sum,
            "maxdiffalwayson_filled_buy_trades": filled_buy,
            "maxdiffalwayson_filled_sell_trades": filled_sell,
            "maxdiffalwayson_trades_total": filled_buy + filled_sell,
            "maxdiffalwayson_trade_bias": (buy_sum - sell_sum) / abs_total if abs_total != 0 else 0.0,
        }
    )
    return MaxDiffResult(evaluation, metadata)
