"""Which strategy is best, chosen so that the choice survives multiple testing.

A run tries many strategies (and MaxDiff/AlwaysOn try hundreds of offsets each); the highest total
of noisy days is the luckiest trial, not the best rule. So:

* the first half of the daily series selects (highest compounded return, the stated tie order of
  :func:`.strategies.clean_best_strategy`), and the second half, which the choice never saw,
  reports the selected strategy's return and Sharpe;
* the selected strategy's deflated Sharpe ratio (Bailey and Lopez de Prado, 2014) over the whole
  series, against the best of every trial of the run, decides whether it is named: below
  :data:`DISTINGUISHABLE` no strategy is distinguishable from chance and the summary's
  ``best_strategy`` is None.
"""

from __future__ import annotations

import numpy as np

from ...stats.measures import pack
from ...stats.significance import deflated_sharpes, moments
from .strategies import clean_best_strategy

__all__ = ["DISTINGUISHABLE", "MIN_SELECTION_DAYS", "named_best", "select_best"]

DISTINGUISHABLE = 0.95  # deflated Sharpe a named best strategy must reach
MIN_SELECTION_DAYS = 2  # each half needs two days for a Sharpe


def select_best(strategies: list, returns: np.ndarray, series_stats, days_per_year: float) -> dict:
    """Summary entries ``best_strategy_*`` of one set of daily series: ``returns`` (strategies,
    days), a row per strategy of ``strategies``, days in date order.

    ``series_stats(returns, turnover, days_per_year)`` computes the holdout's figures with the
    headline's conventions. Entries: ``_selected`` (the first half's choice, None when a half has
    fewer than two days), ``_selection_days``, ``_holdout_days``, ``_holdout_return``,
    ``_holdout_sharpe``, ``_deflated_sharpe``, ``_trials``, ``_distinguishable``.
    """
    returns = np.asarray(returns, dtype=np.float64)
    n = returns.shape[1] if returns.ndim == 2 else 0
    half = n // 2
    out = {"best_strategy_selection_days": int(half), "best_strategy_holdout_days": int(n - half)}
    if half < MIN_SELECTION_DAYS or len(strategies) == 0:
        return {**out, "best_strategy_selected": None, "best_strategy_distinguishable": False}
    strategies = list(strategies)
    columns = [v[np.isfinite(v)] for v in returns]
    firsts = [v[np.isfinite(v)] for v in returns[:, :half]]
    totals = {f"{p}_return": float(np.prod(1.0 + v) - 1.0) for p, v in zip(strategies, firsts)}
    selected = clean_best_strategy(totals)
    matrix, lengths = pack(columns)
    per_day, skew, kurt = moments(matrix, lengths)
    dsr, trials = deflated_sharpes(per_day, lengths, skew, kurt, strategies)
    if selected is None:
        return {
            **out,
            "best_strategy_selected": None,
            "best_strategy_trials": trials,
            "best_strategy_distinguishable": False,
        }
    later = returns[strategies.index(selected), half:]
    holdout = series_stats(later[np.isfinite(later)], np.array([]), days_per_year)
    deflated = float(dsr[strategies.index(selected)])
    return {
        **out,
        "best_strategy_selected": selected,
        "best_strategy_holdout_return": holdout["return"],
        "best_strategy_holdout_sharpe": holdout["sharpe"],
        "best_strategy_deflated_sharpe": deflated,
        "best_strategy_trials": trials,
        "best_strategy_distinguishable": bool(np.isfinite(deflated) and deflated >= DISTINGUISHABLE),
    }


def named_best(row) -> str | None:
    """The summary's ``best_strategy``: the selected strategy when it is distinguishable from chance."""
    return row.get("best_strategy_selected") if row.get("best_strategy_distinguishable") else None
