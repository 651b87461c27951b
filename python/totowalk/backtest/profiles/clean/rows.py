"""The clean profile: the legacy pipeline with the defects of LEGACY_SEMANTICS §11 fixed.

Pipeline fixes made here (the strategy fixes are in :mod:`.strategies`):

* simulation 0 uses the newest row and every forecast targets the return it is evaluated on
  (windows.py, profile "clean": targets ``N − 6 … N − 1`` are evaluated, step 6 is the real
  next-step forecast from a context that ends at the newest row, defects 2, 3, 16);
* every move is re-based on the previous close, so forecasts and outcomes share one base
  (defect 14);
* the spread is a stated bid/ask ratio; its cost is ``(ratio − 1) / 2`` per unit of position
  change, with no 1.05 fallback (defect 5);
* limit orders are filled by a stated fill model (:mod:`.fills`, ``settings.fill_model``), with the
  adverse and optimistic bounds of the same orders beside it;
* the summary's headline figures come from the daily walk-forward series, each day once
  (:mod:`.headline`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...forecast.arrays import WalkForwardArrays
from ...inputs.windows import EVAL_DAYS
from ..legacy.calibration import calibrate_signals
from ..legacy.rows import CI_GUARD_MULTIPLIER, forecast_fields
from .fills import DEFAULT_FILL_MODEL
from .headline import summary_headline
from .strategies import CleanStrategyInputs, clean_best_strategy, evaluate_clean_strategies, moves_vs_previous_close

best_strategy = clean_best_strategy
__all__ = ["best_strategy", "evaluate", "order_columns", "strategy_inputs", "summary_headline"]


def strategy_inputs(a: WalkForwardArrays, settings, fill_model: str = DEFAULT_FILL_MODEL) -> CleanStrategyInputs:
    """Aligned forecasts and outcomes (moves vs the previous close) for every row of ``a``."""
    prev = {c: a.prev_bar[c] for c in ("Close", "High", "Low", "Open")}  # row before each evaluated day

    def rebased(values, key):
        return moves_vs_previous_close(values[:, :EVAL_DAYS], prev[key], prev["Close"])

    def next_move(key):  # the forecast of the day after the window, from its last close
        return moves_vs_previous_close(a.predictions[key][:, -1], a.last_price[key], a.last_price["Close"])

    per_symbol = lambda d: np.array([d[s] for s in a.symbol])  # noqa: E731
    return CleanStrategyInputs(
        cp=a.predictions["Close"][:, :EVAL_DAYS],
        hp=rebased(a.predictions["High"], "High"),
        lp=rebased(a.predictions["Low"], "Low"),
        ca=a.actuals["Close"][:, :EVAL_DAYS],
        ha=rebased(a.actuals["High"], "High"),
        la=rebased(a.actuals["Low"], "Low"),
        oa=rebased(a.actuals["Open"], "Open"),
        hp_own=a.predictions["High"][:, :EVAL_DAYS],
        lp_own=a.predictions["Low"][:, :EVAL_DAYS],
        band=a.bands["Close"][:, :EVAL_DAYS],
        is_crypto=per_symbol(settings.crypto).astype(bool),
        fee=per_symbol(settings.fee),
        spread=np.full(a.num_rows, settings.spread - 1.0),  # ratio ask/bid -> fraction of the bid
        next_hp=next_move("High"),
        next_lp=next_move("Low"),
        last_close=a.last_price["Close"],
        trading_days_per_year=per_symbol(settings.trading_days).astype(np.float64),
        ci_multiplier=CI_GUARD_MULTIPLIER,
        fill_model=fill_model,
        sigma=a.intrabar_vol[:, :EVAL_DAYS],
    )


def evaluate(a: WalkForwardArrays, settings) -> pd.DataFrame:
    """Clean result rows for every row of ``a``: forecast fields, calibration (aligned), and the
    clean strategies' columns (per-day arrays as lists)."""
    columns = {"symbol": a.symbol, "simulation": a.simulation}
    columns.update(forecast_fields(a, settings.spread))
    columns.pop("kronos_expected_move_pct")
    columns.pop("close_prediction_source")
    cp = a.predictions["Close"][:, :EVAL_DAYS]
    ca = a.actuals["Close"][:, :EVAL_DAYS]
    # regress each realised return on the forecast of that same return (legacy: one row later)
    slope, intercept = calibrate_signals(cp, ca)
    columns["calibration_slope"], columns["calibration_intercept"] = slope, intercept
    columns["calibrated_expected_move_pct"] = slope * columns["raw_expected_move_pct"] + intercept
    columns["trading_days_per_year"] = np.array([settings.trading_days[s] for s in a.symbol], dtype=np.float64)
    fill_model = getattr(settings, "fill_model", None) or DEFAULT_FILL_MODEL
    for name, values in evaluate_clean_strategies(strategy_inputs(a, settings, fill_model)).items():
        # per-day arrays: one row view per simulation (as the legacy rows; JSON writes them as lists)
        columns[name] = list(np.asarray(values)) if np.ndim(values) == 2 else values
    return pd.DataFrame(columns)


def order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``symbol``, ``simulation`` first; the rest as produced."""
    head = ["symbol", "simulation"]
    return frame[head + [c for c in frame.columns if c not in head]]
