"""Headline figures of the clean profile: statistics of the daily walk-forward series.

A clean simulation's final day is the return into its window's last row (its ``date``), traded
with forecasts and walk-forward fits from earlier rows only; simulation k's window ends k rows
before the newest, so the final days of a symbol's K simulations are K distinct trading days. The
daily series of a (symbol, strategy) is those final-day net returns in date order, each day once;
over several symbols it is the equal-weight portfolio (the mean of the symbols' returns per date).

The best strategy is chosen on the first half of the series and reported on the second, and named
only when its deflated Sharpe says it is distinguishable from chance (:mod:`.selection`).

Means over simulations of the per-window figures (six overlapping days each, so every day counts
up to six times) stay in the summary as ``window_mean_<column>``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...stats.daily import BOUNDS, PORTFOLIO, WideSeries, daily_table, wide_series
from ...stats.measures import sharpe_ratio
from ..profile import STRATEGY_PREFIXES
from .selection import select_best

__all__ = ["FRAME_COLUMNS", "HEADLINE_STATS", "series_stats", "summary_headline"]

FRAME_COLUMNS = ("trading_days_per_year",)  # what summary_headline reads of its rows beside date, given their means
HEADLINE_STATS = ("return", "sharpe", "avg_daily_return", "annual_return", "turnover")
_WALK_FORWARD_SHARPES = {
    "simple_strategy": "walk_forward_oos_sharpe",
    "highlow": "walk_forward_highlow_sharpe",
    "entry_takeprofit": "walk_forward_takeprofit_sharpe",
    "maxdiff": "walk_forward_maxdiff_sharpe",
    "maxdiffalwayson": "walk_forward_maxdiffalwayson_sharpe",
}


def series_stats(returns: np.ndarray, turnover: np.ndarray, days_per_year: float) -> dict:
    """The clean metric conventions on one daily series: compounded total, ddof-1 Sharpe (NaN for
    a numerically constant series or a single day), mean, mean x days per year, mean turnover."""
    return _stats_of_rows([returns], [turnover], days_per_year)[0]


def _stats_of_rows(series: list, turnover: list, days_per_year: float) -> list:
    """:func:`series_stats` of several daily series of one length at once (a row each of one
    C-contiguous matrix: numpy reduces each row as it reduces a 1-D array, so the same bits)."""
    if not series:
        return []
    block = np.ascontiguousarray(np.stack([np.asarray(r, dtype=np.float64) for r in series]))
    n = block.shape[1]
    mean = block.mean(axis=1) if n else np.full(len(series), np.nan)
    std = block.std(axis=1, ddof=1) if n > 1 else np.zeros(len(series))
    sharpe = sharpe_ratio(mean, std, days_per_year)
    total = np.prod(1.0 + block, axis=1) - 1.0
    return [
        {
            "return": float(total[i]),
            "sharpe": float(sharpe[i]),
            "avg_daily_return": float(mean[i]),
            "annual_return": float(mean[i]) * days_per_year,
            "turnover": float(t.mean()) if t.size else float("nan"),
        }
        for i, t in enumerate(turnover)
    ]


def summary_headline(frame: pd.DataFrame, series=None, label=PORTFOLIO, means: dict | None = None) -> dict:
    """Summary entries of one set of clean rows: ``<prefix>_<stat>`` from the daily series for
    every stat of :data:`HEADLINE_STATS`, the window means as ``window_mean_<prefix>_<stat>``,
    ``daily_series_days``, the walk-forward Sharpes / turnover from the series, the fill bracket
    (``<prefix>_return_adverse`` / ``_optimistic`` and ``<prefix>_sharpe_adverse`` / ``_optimistic``:
    the same orders booked by each bound) and the best strategy (:mod:`.selection`).

    ``series``: the daily series of the symbol (or :data:`PORTFOLIO`) ``label`` whose rows ``frame``
    holds, as a :class:`WideSeries` (the summary splits the run's daily table into every symbol's at
    once), or the run's daily table to read them from. Without it they come from ``frame``.
    ``means``: ``frame``'s NaN-skipping column means where the caller has them (the summary does,
    bit for bit pandas' own); otherwise the window means are computed here."""
    if frame.empty or "date" not in frame:
        return {}
    if series is None:  # the rows' own daily table: their portfolio (for one symbol, its own series)
        series = wide_series(daily_table(frame, STRATEGY_PREFIXES)).get(PORTFOLIO, WideSeries.empty())
    elif not isinstance(series, WideSeries):  # the run's daily table
        series = wide_series(series[series["symbol"] == label]).get(label, WideSeries.empty())
    days = pd.unique(pd.to_numeric(frame["trading_days_per_year"])) if "trading_days_per_year" in frame else [252.0]
    days_per_year = float(days[0]) if len(days) == 1 else 252.0  # a mixed portfolio: 252 stated
    out = {"daily_series_days": int(len(series.dates)), "daily_series_days_per_year": days_per_year}
    prefixes = series.strategies
    windowed = [f"{prefix}_{stat}" for prefix in prefixes for stat in HEADLINE_STATS]
    windowed += [f"{prefix}_return_{b}" for prefix in prefixes for b in BOUNDS]
    if means is not None:
        window_means = {c: means[c] for c in windowed if c in means}
    else:  # a column at a time: a universe's rows are not copied whole
        window_means = {c: frame[c].astype(np.float64).mean() for c in windowed if c in frame}
    values = series.values
    every = _stats_of_rows(list(values["return"]), list(values["turnover"]), days_per_year)
    # the fill bracket: the same orders booked by each bound, where every day's booking is known
    bracket = {}
    for bound in BOUNDS:
        booked = values[f"return_{bound}"]
        known = [k for k in range(len(prefixes)) if np.isfinite(booked[k]).all()]
        figures = _stats_of_rows([booked[k] for k in known], [np.array([])] * len(known), days_per_year)
        bracket.update({(prefixes[k], bound): f for k, f in zip(known, figures)})
    for prefix, stats in zip(prefixes, every):
        for stat in HEADLINE_STATS:
            column = f"{prefix}_{stat}"
            if column in window_means:
                out[f"window_mean_{column}"] = float(window_means[column])
            out[column] = stats[stat]
        if prefix in _WALK_FORWARD_SHARPES:
            out[_WALK_FORWARD_SHARPES[prefix]] = stats["sharpe"]
        for bound in BOUNDS:
            bounded = bracket.get((prefix, bound))
            if bounded is None:
                continue
            window = f"{prefix}_return_{bound}"
            if window in window_means:
                out[f"window_mean_{window}"] = float(window_means[window])
            out[window], out[f"{prefix}_sharpe_{bound}"] = bounded["return"], bounded["sharpe"]
    if "simple_strategy" in prefixes:
        out["walk_forward_turnover"] = out["simple_strategy_turnover"]  # units of position change per day
    out.update(select_best(prefixes, values["return"], series_stats, days_per_year))
    return out
