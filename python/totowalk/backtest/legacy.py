"""The legacy profile: result rows with the classic loop's field names and values (§2.4, §4, §8).

The forecast-derived fields (predicted prices, MAE per key, diagnostics) are computed here; the
strategy columns come from :func:`totowalk.backtest.strategies.evaluate_legacy_strategies`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .arrays import WalkForwardArrays
from .maxdiff import evaluate_maxdiff, evaluate_maxdiff_always_on
from .strategies_inputs import calibrate_signal
from .strategies_limit import evaluate_entry_takeprofit, evaluate_highlow
from .strategies_signals import (
    all_signals, buy_hold_signals, ci_guard_signals, evaluate_signal_strategy, simple_signals,
    unprofit_shutdown_signals,
)
from .windows import EVAL_DAYS

CI_GUARD_MULTIPLIER = 1.0  # TOTO_CI_GUARD_MULTIPLIER's default in the classic run

# The original result row's fields, in its order (golden/legacy_simulation.json ``result``).
RESULT_FIELDS = (
    "date", "close", "predicted_close", "predicted_high", "predicted_low", "toto_expected_move_pct",
    "kronos_expected_move_pct", "realized_volatility_pct", "dollar_vol_20d", "atr_pct_14",
    "spread_bps_estimate", "close_prediction_source", "raw_expected_move_pct",
    "calibrated_expected_move_pct", "calibration_slope", "calibration_intercept",
    "simple_strategy_return", "simple_strategy_sharpe", "simple_strategy_finalday",
    "simple_strategy_avg_daily_return", "simple_strategy_annual_return",
    "all_signals_strategy_return", "all_signals_strategy_sharpe", "all_signals_strategy_finalday",
    "all_signals_strategy_avg_daily_return", "all_signals_strategy_annual_return",
    "buy_hold_return", "buy_hold_sharpe", "buy_hold_finalday", "buy_hold_avg_daily_return",
    "buy_hold_annual_return", "unprofit_shutdown_return", "unprofit_shutdown_sharpe",
    "unprofit_shutdown_finalday", "unprofit_shutdown_avg_daily_return",
    "unprofit_shutdown_annual_return", "entry_takeprofit_return", "entry_takeprofit_sharpe",
    "entry_takeprofit_finalday", "entry_takeprofit_avg_daily_return",
    "entry_takeprofit_annual_return", "highlow_return", "highlow_sharpe", "highlow_finalday_return",
    "highlow_avg_daily_return", "highlow_annual_return", "maxdiff_return", "maxdiff_sharpe",
    "maxdiff_finalday_return", "maxdiff_avg_daily_return", "maxdiff_annual_return",
    "maxdiff_turnover", "maxdiffalwayson_return", "maxdiffalwayson_sharpe",
    "maxdiffalwayson_finalday_return", "maxdiffalwayson_avg_daily_return",
    "maxdiffalwayson_annual_return", "maxdiffalwayson_turnover", "maxdiffalwayson_profit",
    "maxdiffalwayson_profit_values", "maxdiffalwayson_high_multiplier",
    "maxdiffalwayson_low_multiplier", "maxdiffalwayson_high_price", "maxdiffalwayson_low_price",
    "maxdiffalwayson_buy_contribution", "maxdiffalwayson_sell_contribution",
    "maxdiffalwayson_filled_buy_trades", "maxdiffalwayson_filled_sell_trades",
    "maxdiffalwayson_trades_total", "maxdiffalwayson_trade_bias", "maxdiffprofit_profit",
    "maxdiffprofit_profit_values", "maxdiffprofit_profit_high_multiplier",
    "maxdiffprofit_profit_low_multiplier", "maxdiffprofit_high_price", "maxdiffprofit_low_price",
    "ci_guard_return", "ci_guard_sharpe", "ci_guard_finalday", "ci_guard_avg_daily_return",
    "ci_guard_annual_return", "close_val_loss", "high_val_loss", "low_val_loss",
)


def forecast_fields(a: WalkForwardArrays, spread: float) -> dict[str, np.ndarray]:
    """Result fields that depend on forecasts and prices only (no strategy), one value per row.

    Parameters
    ----------
    a : WalkForwardArrays of R rows
    spread : the bid/ask ratio passed to the simulation (only feeds ``spread_bps_estimate``)

    Returns
    -------
    dict field -> (R,) array
    """
    last_pred = {k: a.predictions[k][:, -1].astype(np.float64) for k in ("Close", "High", "Low")}
    r = a.close_returns
    out = {
        "date": a.date,
        "close": a.last_price["Close"],
        # §2.4: P_{N−1} · (1 + pred_6), float64 times the float32 forecast widened
        "predicted_close": a.last_price["Close"] * (1.0 + last_pred["Close"]),
        "predicted_high": a.last_price["High"] * (1.0 + last_pred["High"]),
        "predicted_low": a.last_price["Low"] * (1.0 + last_pred["Low"]),
        "toto_expected_move_pct": last_pred["Close"],
        "kronos_expected_move_pct": np.zeros(a.num_rows),
        "realized_volatility_pct": np.std(r, axis=1, ddof=1) * 100.0,
        "dollar_vol_20d": a.dollar_vol_20d,
        "atr_pct_14": a.atr_pct_14,
        "spread_bps_estimate": np.full(a.num_rows, abs(float(spread) - 1.0) * 1e4),
        "close_prediction_source": np.array(["toto"] * a.num_rows, dtype=object),
        "raw_expected_move_pct": last_pred["Close"],
    }
    for key in ("Close", "High", "Low"):
        out[f"{key.lower()}_val_loss"] = mean_abs_error(a.actuals[key], a.predictions[key])
    return out


def mean_abs_error(actuals: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """§2.4: mean over the 6 evaluated steps of |float64 actual − float32 forecast|.

    Parameters
    ----------
    actuals : (R, 7) float64; predictions : (R, 7) float32

    Returns
    -------
    (R,) float64
    """
    diff = actuals[:, :EVAL_DAYS] - predictions[:, :EVAL_DAYS].astype(np.float64)
    return np.mean(np.abs(diff), axis=1)


def order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``symbol``, ``simulation``, then the original result fields in their order."""
    head = ["symbol", "simulation", *RESULT_FIELDS]
    missing = [c for c in head if c not in frame.columns]
    if missing:
        raise KeyError(f"legacy result rows lack field(s) {missing}")
    return frame[head + [c for c in frame.columns if c not in head]]


def evaluate(a: WalkForwardArrays, settings, symbol: str) -> pd.DataFrame:
    """Legacy result rows of one symbol's simulations (§7 order, §8 fields).

    Parameters
    ----------
    a : WalkForwardArrays holding only ``symbol``'s rows
    settings : RunSettings (fee, trading days, crypto flag of the symbol, spread)

    Returns
    -------
    DataFrame with ``symbol``, ``simulation`` and the original result fields
    """
    base = forecast_fields(a, settings.spread)
    rows = []
    for i in range(a.num_rows):
        row = {"symbol": symbol, "simulation": int(a.simulation[i])}
        row.update({k: _scalar(v[i]) for k, v in base.items()})
        row.update(_strategy_fields(a, i, row, settings.fee[symbol], settings.trading_days[symbol],
                                    settings.crypto[symbol], settings.spread))
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def _scalar(v):
    return v.item() if isinstance(v, np.generic) else v


def _strategy_fields(a: WalkForwardArrays, i: int, base: dict, fee: float, days: int,
                     crypto: bool, spread: float) -> dict:
    """The strategy fields of row ``i``, evaluated in the classic order (§7)."""
    cp, hp, lp = (a.predictions[k][i, :EVAL_DAYS] for k in ("Close", "High", "Low"))
    ca, ha, la = (a.actuals[k][i, :EVAL_DAYS].astype(np.float32) for k in ("Close", "High", "Low"))
    r = pd.Series(a.close_returns[i])  # RangeIndex, as pandas pct_change().reset_index gives
    # MaxDiff reads the previous-bar spreads at rows -(V+2) .. -3 of the window
    prices = {c: np.concatenate([a.prev_bar[c][i], [np.nan, np.nan]]) for c in ("Close", "High", "Low")}
    out = {}
    slope, intercept = calibrate_signal(cp, r.to_numpy())
    out.update(calibration_slope=slope, calibration_intercept=intercept,
               calibrated_expected_move_pct=slope * base["raw_expected_move_pct"] + intercept)

    md = evaluate_maxdiff(ca, ha, la, hp, lp, prices, base["predicted_high"], base["predicted_low"], days, crypto)
    _put_summed(out, "maxdiff", md.evaluation, finalday="maxdiff_finalday_return")
    out["maxdiff_turnover"] = md.metadata["maxdiff_turnover"]
    out.update({k: v for k, v in md.metadata.items() if k.startswith("maxdiffprofit_")})
    ao = evaluate_maxdiff_always_on(ca, ha, la, hp, lp, prices, base["predicted_high"], base["predicted_low"],
                                    days, crypto)
    _put_summed(out, "maxdiffalwayson", ao.evaluation, finalday="maxdiffalwayson_finalday_return")
    out.update(ao.metadata)

    final_fee = 2.0 * fee * spread  # §6.1: the fee is multiplied by the spread ratio (defect 5)
    for name, signals in (("simple_strategy", simple_signals(cp, crypto)),
                          ("all_signals_strategy", all_signals(cp, hp, lp, crypto))):
        ev = evaluate_signal_strategy(signals, r, fee, days, spread)
        _put_compounded(out, name, ev, float(signals[-1]) * r.iloc[-1] - final_fee)
    ev = evaluate_signal_strategy(buy_hold_signals(cp), r, fee, days, spread)
    _put_compounded(out, "buy_hold", ev, r.iloc[-1] - fee)
    out["buy_hold_return"] = float(np.prod(1.0 + r.to_numpy()) - 1.0 - fee)  # always long (defect 6)
    signals = unprofit_shutdown_signals(cp, r, crypto)
    ev = evaluate_signal_strategy(signals, r, fee, days, spread)
    _put_compounded(out, "unprofit_shutdown", ev, float(signals[-1]) * r.iloc[-1] - final_fee)

    tp = evaluate_entry_takeprofit(cp, hp, lp, ca, ha, la, fee, days)
    _put_summed(out, "entry_takeprofit", tp.evaluation, finalday="entry_takeprofit_finalday",
                finalday_value=tp.evaluation.total_return / len(r))
    # highlow sees the arrays entry+takeprofit modified in place (§6.3, defect 11)
    hl = evaluate_highlow(cp, tp.high_predictions_after, lp, tp.close_actual_after, ha, la, fee, crypto, days)
    _put_summed(out, "highlow", hl, finalday="highlow_finalday_return",
                finalday_value=hl.total_return / len(r))

    signals = ci_guard_signals(cp, a.bands["Close"][i, :EVAL_DAYS], CI_GUARD_MULTIPLIER, crypto)
    ev = evaluate_signal_strategy(signals, r, fee, days, spread)
    _put_compounded(out, "ci_guard", ev, float(signals[-1]) * r.iloc[-1] - final_fee)
    return out


def _put_compounded(out: dict, name: str, ev, finalday: float) -> None:
    out[f"{name}_return"] = float(ev.total_return)
    out[f"{name}_sharpe"] = float(ev.sharpe_ratio)
    out[f"{name}_finalday"] = float(finalday)
    out[f"{name}_avg_daily_return"] = float(ev.avg_daily_return)
    out[f"{name}_annual_return"] = float(ev.annualized_return)


def _put_summed(out: dict, name: str, ev, finalday: str, finalday_value=None) -> None:
    returns = np.asarray(ev.returns, dtype=np.float64)
    if finalday_value is None:  # the MaxDiff family reports the last day's return
        finalday_value = returns[-1] if returns.size else 0.0
    out[f"{name}_return"] = float(ev.total_return)
    out[f"{name}_sharpe"] = float(ev.sharpe_ratio)
    out[finalday] = float(finalday_value)
    out[f"{name}_avg_daily_return"] = float(ev.avg_daily_return)
    out[f"{name}_annual_return"] = float(ev.annualized_return)
