"""Test oracle: the legacy summing evaluator for one simulation (LEGACY_SEMANTICS.md §5.3) and the
walk-forward statistics over a frame of rows (§9); the package computes both batched."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from totowalk.backtest.profiles.legacy.metrics import WALK_FORWARD_SHARPES, Evaluation, return_profile

__all__ = ["evaluate_summed", "walk_forward_stats"]


def evaluate_summed(daily_returns, trading_days_per_year: float) -> Evaluation:
    """Summing evaluator of the limit-order strategies (§5.3).

    Parameters
    ----------
    daily_returns : array_like, shape (n,)
        Daily P&L; NaN / inf propagate into the total.
    trading_days_per_year : float
        Sharpe uses ``sqrt(max(D, 1))``.
    """
    values = np.asarray(daily_returns, dtype=np.float64).reshape(-1)
    if values.size == 0:
        return Evaluation(0.0, 0.0, 0.0, 0.0, values)
    total = float(values.sum())
    with np.errstate(invalid="ignore"):  # inf - inf inside std: NaN, handled below
        std = float(values.std())
    sharpe = 0.0
    if std != 0.0 and math.isfinite(std):
        sharpe = float(values.mean() / std * math.sqrt(max(trading_days_per_year, 1)))
    avg, annual = return_profile(values, trading_days_per_year)
    return Evaluation(total, avg, annual, sharpe, values)


def walk_forward_stats(frame: pd.DataFrame) -> dict[str, float]:
    """Legacy walk-forward statistics over the per-simulation rows (§9).

    ``walk_forward_turnover`` is the mean |simple total return| (mislabelled in the original,
    kept for parity). Missing ``simple_*`` columns give NaN; an empty frame gives ``{}``.
    """
    frame = pd.DataFrame(frame)
    if frame.empty:
        return {}
    nan = float("nan")
    stats = {
        "walk_forward_oos_sharpe": float(frame["simple_strategy_sharpe"].mean())
        if "simple_strategy_sharpe" in frame
        else nan,
        "walk_forward_turnover": float(frame["simple_strategy_return"].abs().mean())
        if "simple_strategy_return" in frame
        else nan,
    }
    for column, name in WALK_FORWARD_SHARPES:
        if column in frame:
            stats[name] = float(frame[column].mean())
    return stats
