"""Return metrics of the legacy backtest (LEGACY_SEMANTICS.md §5, §9), single-case and batched.

Two evaluators coexist in the legacy code and both are kept, bit for bit where it matters:

* compounding (``evaluate_strategy``, §5.2): ``total = prod(1 + g) - 1`` skipping NaN days, Sharpe
  with the sample std (ddof 1);
* summing (entry+takeprofit, highlow, MaxDiff family, §5.3): ``total = sum(g)``, Sharpe with the
  population std (ddof 0).

The ``*_batch`` functions evaluate ``S`` simulations at once on ``(S, n)`` arrays and are tested
against the single-case functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "Evaluation",
    "return_profile",
    "evaluate_compounded",
    "return_profile_batch",
    "compounded_metrics_batch",
    "summed_metrics_batch",
    "best_strategy",
    "BEST_STRATEGY_COLUMNS",
]


@dataclass
class Evaluation:
    """Metrics of one strategy over one simulation's evaluation days.

    ``returns`` are the net daily returns, shape (n,) (a ``pandas.Series`` for the compounding
    evaluator, which keeps the index of the actual returns).
    """

    total_return: float
    avg_daily_return: float
    annualized_return: float
    sharpe_ratio: float
    returns: np.ndarray | pd.Series = field(default_factory=lambda: np.zeros(0))


def return_profile(daily_returns, trading_days_per_year: float) -> tuple[float, float]:
    """Mean of the finite daily returns and that mean times the trading days (§5.1).

    Both are 0.0 when ``trading_days_per_year <= 0`` or no entry is finite.
    """
    values = np.asarray(daily_returns, dtype=np.float64).reshape(-1)
    finite = values[np.isfinite(values)]
    if trading_days_per_year <= 0 or finite.size == 0:
        return 0.0, 0.0
    avg = float(finite.mean())
    return avg, avg * trading_days_per_year


def evaluate_compounded(net_returns: pd.Series, trading_days_per_year: float) -> Evaluation:
    """Compounding evaluator of ``evaluate_strategy`` (§5.2).

    Parameters
    ----------
    net_returns : pandas.Series, shape (n,)
        Net daily returns ``g_t``; NaN days count as factor 1 in the product (pandas skipna), but a
        NaN last day makes the total NaN.
    trading_days_per_year : float
    """
    series = pd.Series(net_returns, dtype=np.float64)
    if series.empty:
        return Evaluation(0.0, 0.0, 0.0, 0.0, series)
    total = float((1.0 + series).cumprod().iloc[-1] - 1.0)
    std = series.std()  # ddof 1, NaN-skipping; NaN for a single day
    sharpe = 0.0 if (std == 0 or math.isnan(std)) else float(series.mean() / std * math.sqrt(trading_days_per_year))
    avg, annual = return_profile(series.to_numpy(), trading_days_per_year)
    return Evaluation(total, avg, annual, sharpe, series)


# ---------------------------------------------------------------------------------------------
# Batched versions: one row per simulation.


def return_profile_batch(daily_returns: np.ndarray, trading_days_per_year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise :func:`return_profile`.

    Parameters
    ----------
    daily_returns : numpy.ndarray, shape (S, n)
    trading_days_per_year : numpy.ndarray, shape (S,)

    Returns
    -------
    avg, annual : numpy.ndarray, shape (S,) each
    """
    values = np.asarray(daily_returns, dtype=np.float64)
    days = np.broadcast_to(np.asarray(trading_days_per_year, dtype=np.float64), values.shape[:1])
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    valid = (count > 0) & (days > 0)
    avg = np.where(valid, total / np.maximum(count, 1), 0.0)
    return avg, np.where(valid, avg * days, 0.0)


def compounded_metrics_batch(net_returns: np.ndarray, trading_days_per_year: np.ndarray) -> dict[str, np.ndarray]:
    """Row-wise :func:`evaluate_compounded` for NaN-free ``(S, n)`` net returns, n >= 1.

    Returns
    -------
    dict with ``total_return``, ``sharpe_ratio``, ``avg_daily_return``, ``annualized_return``,
    each shape (S,).
    """
    g = np.asarray(net_returns, dtype=np.float64)
    days = np.broadcast_to(np.asarray(trading_days_per_year, dtype=np.float64), g.shape[:1])
    total = np.cumprod(1.0 + g, axis=1)[:, -1] - 1.0
    if g.shape[1] > 1:
        std = g.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpe = np.where(std == 0, 0.0, g.mean(axis=1) / std * np.sqrt(days))
    else:
        sharpe = np.zeros(g.shape[0])
    avg, annual = return_profile_batch(g, days)
    return {"total_return": total, "sharpe_ratio": sharpe, "avg_daily_return": avg, "annualized_return": annual}


def summed_metrics_batch(daily_returns: np.ndarray, trading_days_per_year: np.ndarray) -> dict[str, np.ndarray]:
    """Row-wise :func:`evaluate_summed` for ``(S, n)`` daily returns, n >= 1.

    Returns
    -------
    dict with ``total_return``, ``sharpe_ratio``, ``avg_daily_return``, ``annualized_return``,
    each shape (S,).
    """
    g = np.asarray(daily_returns, dtype=np.float64)
    days = np.broadcast_to(np.asarray(trading_days_per_year, dtype=np.float64), g.shape[:1])
    with np.errstate(divide="ignore", invalid="ignore"):
        std = g.std(axis=1)
        ok = (std != 0) & np.isfinite(std)
        sharpe = np.where(ok, g.mean(axis=1) / np.where(ok, std, 1.0) * np.sqrt(np.maximum(days, 1)), 0.0)
    avg, annual = return_profile_batch(g, days)
    return {"total_return": g.sum(axis=1), "sharpe_ratio": sharpe, "avg_daily_return": avg, "annualized_return": annual}


# ---------------------------------------------------------------------------------------------
# Summary across simulations (§9).

WALK_FORWARD_SHARPES = (
    ("highlow_sharpe", "walk_forward_highlow_sharpe"),
    ("entry_takeprofit_sharpe", "walk_forward_takeprofit_sharpe"),
    ("maxdiff_sharpe", "walk_forward_maxdiff_sharpe"),
    ("maxdiffalwayson_sharpe", "walk_forward_maxdiffalwayson_sharpe"),
)


BEST_STRATEGY_COLUMNS = {
    "simple": "simple_strategy_return",
    "all_signals": "all_signals_strategy_return",
    "takeprofit": "entry_takeprofit_return",
    "highlow": "highlow_return",
    "ci_guard": "ci_guard_return",
    "maxdiff": "maxdiff_return",
}


def best_strategy(frame_means) -> str:
    """Legacy best-strategy label from the column means over simulations (§9).

    Parameters
    ----------
    frame_means : mapping or pandas.Series
        At least the total-return columns of :data:`BEST_STRATEGY_COLUMNS`.

    Returns
    -------
    str
        One of ``ci_guard, highlow, takeprofit, maxdiff, all_signals, simple`` (checked in that
        order against the maximum; ties therefore favour ``ci_guard``).
    """
    missing = [c for c in BEST_STRATEGY_COLUMNS.values() if c not in frame_means]
    if missing:
        raise KeyError(f"best_strategy: missing mean column(s) {missing}")
    avg = {label: float(frame_means[column]) for label, column in BEST_STRATEGY_COLUMNS.items()}
    if not math.isfinite(avg["maxdiff"]):
        avg["maxdiff"] = -math.inf
    # Python's max over this exact order reproduces the legacy NaN behaviour.
    best = max(avg["simple"], avg["all_signals"], avg["takeprofit"], avg["highlow"], avg["ci_guard"], avg["maxdiff"])
    for label in ("ci_guard", "highlow", "takeprofit", "maxdiff", "all_signals"):
        if avg[label] == best:
            return label
    return "simple"
