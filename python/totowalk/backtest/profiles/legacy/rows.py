"""The legacy profile: result rows with the classic loop's field names and values (§2.4, §4, §8).

The forecast-derived fields (predicted prices, MAE per key, diagnostics) are computed here; the
strategy columns come from :func:`totowalk.backtest.profiles.legacy.strategies.evaluate_legacy_strategies`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...forecast.arrays import WalkForwardArrays
from ...inputs.windows import EVAL_DAYS
from .calibration import calibrate_signals
from .strategies import LegacyStrategyInputs, evaluate_legacy_strategies

CI_GUARD_MULTIPLIER = 1.0  # TOTO_CI_GUARD_MULTIPLIER's default in the classic run

# The original result row's fields, in its order (golden/legacy_simulation.json ``result``).
RESULT_FIELDS = (
    "date",
    "close",
    "predicted_close",
    "predicted_high",
    "predicted_low",
    "toto_expected_move_pct",
    "kronos_expected_move_pct",
    "realized_volatility_pct",
    "dollar_vol_20d",
    "atr_pct_14",
    "spread_bps_estimate",
    "close_prediction_source",
    "raw_expected_move_pct",
    "calibrated_expected_move_pct",
    "calibration_slope",
    "calibration_intercept",
    "simple_strategy_return",
    "simple_strategy_sharpe",
    "simple_strategy_finalday",
    "simple_strategy_avg_daily_return",
    "simple_strategy_annual_return",
    "all_signals_strategy_return",
    "all_signals_strategy_sharpe",
    "all_signals_strategy_finalday",
    "all_signals_strategy_avg_daily_return",
    "all_signals_strategy_annual_return",
    "buy_hold_return",
    "buy_hold_sharpe",
    "buy_hold_finalday",
    "buy_hold_avg_daily_return",
    "buy_hold_annual_return",
    "unprofit_shutdown_return",
    "unprofit_shutdown_sharpe",
    "unprofit_shutdown_finalday",
    "unprofit_shutdown_avg_daily_return",
    "unprofit_shutdown_annual_return",
    "entry_takeprofit_return",
    "entry_takeprofit_sharpe",
    "entry_takeprofit_finalday",
    "entry_takeprofit_avg_daily_return",
    "entry_takeprofit_annual_return",
    "highlow_return",
    "highlow_sharpe",
    "highlow_finalday_return",
    "highlow_avg_daily_return",
    "highlow_annual_return",
    "maxdiff_return",
    "maxdiff_sharpe",
    "maxdiff_finalday_return",
    "maxdiff_avg_daily_return",
    "maxdiff_annual_return",
    "maxdiff_turnover",
    "maxdiffalwayson_return",
    "maxdiffalwayson_sharpe",
    "maxdiffalwayson_finalday_return",
    "maxdiffalwayson_avg_daily_return",
    "maxdiffalwayson_annual_return",
    "maxdiffalwayson_turnover",
    "maxdiffalwayson_profit",
    "maxdiffalwayson_profit_values",
    "maxdiffalwayson_high_multiplier",
    "maxdiffalwayson_low_multiplier",
    "maxdiffalwayson_high_price",
    "maxdiffalwayson_low_price",
    "maxdiffalwayson_buy_contribution",
    "maxdiffalwayson_sell_contribution",
    "maxdiffalwayson_filled_buy_trades",
    "maxdiffalwayson_filled_sell_trades",
    "maxdiffalwayson_trades_total",
    "maxdiffalwayson_trade_bias",
    "maxdiffprofit_profit",
    "maxdiffprofit_profit_values",
    "maxdiffprofit_profit_high_multiplier",
    "maxdiffprofit_profit_low_multiplier",
    "maxdiffprofit_high_price",
    "maxdiffprofit_low_price",
    "ci_guard_return",
    "ci_guard_sharpe",
    "ci_guard_finalday",
    "ci_guard_avg_daily_return",
    "ci_guard_annual_return",
    "close_val_loss",
    "high_val_loss",
    "low_val_loss",
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
        "date": pd.Index(a.date).to_numpy(),  # int / datetime64 labels, not objects
        "close": a.last_price["Close"],
        # §2.4: P_{N−1} · (1 + pred_6), float64 times the float32 forecast widened
        "predicted_close": a.last_price["Close"] * (1.0 + last_pred["Close"]),
        "predicted_high": a.last_price["High"] * (1.0 + last_pred["High"]),
        "predicted_low": a.last_price["Low"] * (1.0 + last_pred["Low"]),
        "toto_expected_move_pct": last_pred["Close"],
        "kronos_expected_move_pct": np.zeros(a.num_rows) if a.kronos_move is None else a.kronos_move,
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


def strategy_inputs(a: WalkForwardArrays, settings) -> LegacyStrategyInputs:
    """The vectorized strategies' inputs for every row of ``a`` (§2.4, §4, §6.6)."""
    base_high = a.last_price["High"] * (1.0 + a.predictions["High"][:, -1].astype(np.float64))
    base_low = a.last_price["Low"] * (1.0 + a.predictions["Low"][:, -1].astype(np.float64))
    per_symbol = lambda d: np.array([d[s] for s in a.symbol])  # noqa: E731
    return LegacyStrategyInputs(
        cp=a.predictions["Close"][:, :EVAL_DAYS],
        hp=a.predictions["High"][:, :EVAL_DAYS],
        lp=a.predictions["Low"][:, :EVAL_DAYS],
        ca=a.actuals["Close"][:, :EVAL_DAYS].astype(np.float32),
        ha=a.actuals["High"][:, :EVAL_DAYS].astype(np.float32),
        la=a.actuals["Low"][:, :EVAL_DAYS].astype(np.float32),
        r=a.close_returns,
        band=a.bands["Close"],
        prev_close=a.prev_bar["Close"],
        prev_high=a.prev_bar["High"],
        prev_low=a.prev_bar["Low"],
        high_predicted_price_value=base_high,
        low_predicted_price_value=base_low,
        is_crypto=per_symbol(settings.crypto).astype(bool),
        fee=per_symbol(settings.fee),
        spread=np.full(a.num_rows, settings.spread),
        ci_multiplier=CI_GUARD_MULTIPLIER,
        trading_days_per_year=per_symbol(settings.trading_days).astype(np.float64),
    )


def evaluate(a: WalkForwardArrays, settings) -> pd.DataFrame:
    """Legacy result rows of every row of ``a`` (all symbols at once; §7 order, §8 fields).

    Returns
    -------
    DataFrame with ``symbol``, ``simulation`` and the original result fields
    """
    columns = {"symbol": a.symbol, "simulation": a.simulation}
    columns.update(forecast_fields(a, settings.spread))
    cp = a.predictions["Close"][:, :EVAL_DAYS]
    # calibration regresses r on the close forecasts, per simulation (np.polyfit's numbers, §4)
    slope, intercept = calibrate_signals(cp, a.close_returns)
    columns["calibration_slope"], columns["calibration_intercept"] = slope, intercept
    columns["calibrated_expected_move_pct"] = slope * columns["raw_expected_move_pct"] + intercept
    strategies = evaluate_legacy_strategies(strategy_inputs(a, settings))
    for name, values in strategies.items():
        if name.endswith("_after"):  # entry+takeprofit's in-place edits: not result fields
            continue
        columns[name] = list(values) if np.ndim(values) == 2 else values
    for name in ("maxdiffprofit_profit_values", "maxdiffalwayson_profit_values"):
        columns[name] = np.asarray(strategies[name], dtype=np.float64).tolist()  # rows as float lists
    return pd.DataFrame(columns)
