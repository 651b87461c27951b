"""Statistics of a run's daily walk-forward series: one row per (symbol, strategy), the
equal-weight portfolio included, every series computed in one vectorised pass."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inputs.settings import STOCK_DAYS
from .bootstrap import BOOTSTRAP_REPLICATES, CONFIDENCE, block_lengths, sharpe_interval
from .daily import PORTFOLIO
from .measures import STATISTICS, return_and_sharpe, series_statistics
from .significance import deflated_sharpes, moments, probabilistic_sharpe, trial_count

__all__ = ["MIN_INTERVAL_DAYS", "STAT_COLUMNS", "performance_table", "statistics_settings", "days_per_year_of"]

STAT_COLUMNS = (
    *STATISTICS,
    "sharpe_low",
    "sharpe_high",
    "bootstrap_block",
    "probabilistic_sharpe",
    "deflated_sharpe",
    "trials",
    "total_return_adverse",
    "total_return_optimistic",
    "sharpe_adverse",
    "sharpe_optimistic",
)


MIN_INTERVAL_DAYS = 60  # fewer days: no bootstrap interval (its percentiles would be noise)
_SERIES_BLOCK = 2048  # series per pass: bounds the (series, days) and (replicates, series) work arrays
_FIELDS = ("return", "turnover", "in_market", "return_adverse", "return_optimistic")


def days_per_year_of(settings: dict) -> dict:
    """{symbol: trading days per year}; the portfolio of a mixed run states 252."""
    days = {s: float(d) for s, d in (settings.get("trading_days") or {}).items()}
    values = set(days.values())
    days[PORTFOLIO] = values.pop() if len(values) == 1 else float(STOCK_DAYS)
    return days


def statistics_settings(strategies, seed: int = 0) -> dict:
    """How the intervals and the deflated Sharpe were computed (stated in summary.json and the report)."""
    return {
        "bootstrap": f"stationary block bootstrap, {BOOTSTRAP_REPLICATES} replicates, percentile interval; mean "
        "block length sized to each series' autocorrelation (Politis and White 2004, Patton, Politis and White "
        "2009; column bootstrap_block), at least 1 day; no interval for a series of fewer than "
        f"{MIN_INTERVAL_DAYS} days",
        "confidence": CONFIDENCE,
        "replicates": BOOTSTRAP_REPLICATES,
        "seed": int(seed),
        "trials": trial_count(strategies),
        "trials_note": "one per strategy of the run, 1,000 for MaxDiff's two 500-point offset sweeps and "
        "6,561 for MaxDiffAlwaysOn's 81 x 81 offset grid; every trial is taken to have a true Sharpe of 0, "
        "so the variance of the trials' per-day Sharpe ratios is that of an n-day estimate, 1 / (n - 1)",
        "sharpe": "mean / std (ddof 1) x sqrt(days per year); the probabilistic and deflated Sharpe use the "
        "per-day Sharpe against 0 and against the best-of-trials Sharpe",
    }


def performance_table(daily: pd.DataFrame, days_per_year: dict, seed: int = 0) -> pd.DataFrame:
    """Statistics of every (symbol, strategy) series of a :func:`.daily.daily_table` (rows of
    one series in date order, as that table has them).

    Returns
    -------
    DataFrame with a (symbol, strategy) MultiIndex (run order) and :data:`STAT_COLUMNS`
    """
    if daily.empty:
        return pd.DataFrame(
            columns=list(STAT_COLUMNS), index=pd.MultiIndex.from_tuples([], names=["symbol", "strategy"])
        )
    # one matrix row per (symbol, strategy), days left-aligned in date order (the table's order)
    symbol_code, symbols = pd.factorize(daily["symbol"])
    strategy_code, strategies = pd.factorize(daily["strategy"])
    code, pairs = pd.factorize(symbol_code * len(strategies) + strategy_code)  # first-appearance order
    del symbol_code, strategy_code
    symbols, strategies = list(symbols), list(strategies)  # plain lists: indexing an Index per key is slow
    keys = [(symbols[p // len(strategies)], strategies[p % len(strategies)]) for p in pairs]
    lengths = np.bincount(code, minlength=len(keys))
    order = np.argsort(code, kind="stable")  # each series' rows together, in the table's order
    del code
    starts = np.concatenate([[0], np.cumsum(lengths)])
    fields = {c: daily[c].to_numpy(np.float64) for c in _FIELDS if c in daily}  # a table written before
    # the fill bracket existed has no bounds
    days = np.array([days_per_year.get(s, float(STOCK_DAYS)) for s, _ in keys])
    width = int(lengths.max())  # every block as wide as the longest series: sums see the same padding
    stats = {}
    for first in range(0, len(keys), _SERIES_BLOCK):
        last = min(first + _SERIES_BLOCK, len(keys))
        block = _block_statistics(
            fields, order[starts[first] : starts[last]], lengths[first:last], days[first:last], width, seed
        )
        for name, values in block.items():
            stats.setdefault(name, np.empty(len(keys)))[first:last] = values
    per_day, skew, kurt = stats.pop("per_day"), stats.pop("skew"), stats.pop("kurtosis")
    stats["probabilistic_sharpe"] = probabilistic_sharpe(per_day, lengths, skew, kurt)
    stats["deflated_sharpe"] = np.full(len(keys), np.nan)
    stats["trials"] = np.zeros(len(keys))
    owner, _ = pd.factorize(np.array([s for s, _ in keys], dtype=object))
    for rows in np.split(np.argsort(owner, kind="stable"), np.cumsum(np.bincount(owner))[:-1]):
        stats["deflated_sharpe"][rows], stats["trials"][rows] = deflated_sharpes(
            per_day[rows], lengths[rows], skew[rows], kurt[rows], [keys[i][1] for i in rows]
        )
    out = pd.DataFrame(
        {c: stats[c] for c in STAT_COLUMNS}, index=pd.MultiIndex.from_tuples(keys, names=["symbol", "strategy"])
    )
    return out


def _block_statistics(fields: dict, rows: np.ndarray, lengths: np.ndarray, days: np.ndarray, width: int, seed: int):
    """The per-series statistics of consecutive series whose table rows are ``rows`` (each series'
    rows together, in date order), padded to ``width`` days; with their per-day Sharpe, skewness
    and kurtosis (``per_day``, ``skew``, ``kurtosis``) for the deflated Sharpe."""
    position = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    series = np.repeat(np.arange(len(lengths)), lengths)
    returns, turnover, in_market, adverse, optimistic = (np.full((len(lengths), width), np.nan) for _ in _FIELDS)
    for matrix, column in zip((returns, turnover, in_market, adverse, optimistic), _FIELDS):
        if column in fields:
            matrix[series, position] = fields[column][rows]
    valid = np.arange(width)[None, :] < lengths[:, None]
    known = np.where(valid, np.isfinite(turnover), True).all(axis=1)
    stats = series_statistics(returns, lengths, days, turnover=turnover, in_market=in_market)
    for name in ("turnover", "position_changes"):  # legacy rows record no turnover
        stats[name] = np.where(known, stats[name], np.nan)
    blocks = block_lengths(returns, lengths)
    # only series long enough for an interval are bootstrapped (each series' replicates are seeded
    # by its own length and block, and its tile's products keep one shape: the others do not move it)
    long = lengths >= MIN_INTERVAL_DAYS
    stats["sharpe_low"], stats["sharpe_high"] = np.full(len(lengths), np.nan), np.full(len(lengths), np.nan)
    if long.any():
        stats["sharpe_low"][long], stats["sharpe_high"][long] = sharpe_interval(
            returns[long], lengths[long], days[long], seed=seed, blocks=blocks[long]
        )
    stats["bootstrap_block"] = blocks.astype(np.float64)
    for bound, matrix in (("adverse", adverse), ("optimistic", optimistic)):
        # the fill bracket's series: NaN where the rows record no bounds (legacy)
        recorded = np.where(valid, np.isfinite(matrix), True).all(axis=1)
        total, sharpe = np.full(len(lengths), np.nan), np.full(len(lengths), np.nan)
        if recorded.any():
            total[recorded], sharpe[recorded] = return_and_sharpe(
                np.nan_to_num(matrix[recorded]), lengths[recorded], days[recorded]
            )
        stats[f"total_return_{bound}"], stats[f"sharpe_{bound}"] = total, sharpe
    stats["per_day"], stats["skew"], stats["kurtosis"] = moments(returns, lengths)
    return stats
