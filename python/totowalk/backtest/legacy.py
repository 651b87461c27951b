"""The legacy profile: result rows with the classic loop's field names and values (§2.4, §4, §8).

The forecast-derived fields (predicted prices, MAE per key, diagnostics) are computed here; the
strategy columns come from :func:`totowalk.backtest.strategies.evaluate_legacy_strategies`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .arrays import WalkForwardArrays
from .windows import EVAL_DAYS

# Order of the fields of the original result row (golden/legacy_simulation.json ``result``).
LEADING_FIELDS = (
    "date", "close", "predicted_close", "predicted_high", "predicted_low",
    "toto_expected_move_pct", "kronos_expected_move_pct", "realized_volatility_pct",
    "dollar_vol_20d", "atr_pct_14", "spread_bps_estimate", "close_prediction_source",
    "raw_expected_move_pct", "calibrated_expected_move_pct", "calibration_slope",
    "calibration_intercept",
)
TRAILING_FIELDS = ("close_val_loss", "high_val_loss", "low_val_loss")


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


def order_columns(frame: pd.DataFrame, strategy_columns) -> pd.DataFrame:
    """Columns in the original's order: leading fields, strategy fields, MAE fields, extras."""
    head = ["symbol", "simulation", *LEADING_FIELDS]
    tail = list(TRAILING_FIELDS)
    middle = [c for c in strategy_columns if c not in head and c not in tail]
    rest = [c for c in frame.columns if c not in head + middle + tail]
    return frame[[c for c in head + middle + tail + rest if c in frame.columns]]
