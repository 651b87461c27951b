"""Standard performance statistics of many daily return series at once (numpy, no per-series loop).

Series are rows of a left-aligned ``(N, T)`` matrix; row i holds ``lengths[i]`` days, the rest is
padding that never enters a statistic. Conventions (``P`` = trading days per year, ``n`` days):

* total return ``prod(1 + r) - 1``; CAGR ``(1 + total) ** (P / n) - 1`` (-1 after a total loss);
* annualised volatility ``std(r, ddof=1) * sqrt(P)``; Sharpe ``mean / std(ddof=1) * sqrt(P)``,
  undefined (NaN) when the std is at most 1e-12 (a numerically constant series) or for a single day;
* Sortino ``mean / sqrt(mean(min(r, 0) ** 2)) * sqrt(P)`` (target 0, downside over all days),
  NaN when no day lost;
* max drawdown: the lowest ``equity / running peak - 1`` with the starting capital as the first
  peak; its duration is the longest run of consecutive days below a previous peak (an unfinished
  one counts to the last day); Calmar ``CAGR / |max drawdown|`` (NaN without a drawdown);
* win rate: winning days / days with a non-zero return; profit factor: sum of gains / |sum of
  losses| (inf without losses, NaN without either); average win / loss over winning / losing days;
* exposure: mean of ``in_market`` (the fraction of days with a position); turnover: mean units of
  position change per day; position changes: days with non-zero turnover (NaN when not recorded).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHARPE_STD_FLOOR", "STATISTICS", "series_statistics", "return_and_sharpe", "sharpe_ratio", "pack"]

SHARPE_STD_FLOOR = 1e-12  # a std at most this is a numerically constant series: Sharpe undefined

STATISTICS = (
    "days",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_days",
    "calmar",
    "win_rate",
    "profit_factor",
    "avg_win",
    "avg_loss",
    "exposure",
    "turnover",
    "position_changes",
)


def pack(series: list) -> tuple[np.ndarray, np.ndarray]:
    """``(matrix (N, T) left-aligned with NaN padding, lengths (N,))`` of a list of 1-D arrays."""
    lengths = np.array([len(s) for s in series], dtype=np.int64)
    out = np.full((len(series), int(lengths.max(initial=0))), np.nan)
    for i, s in enumerate(series):
        out[i, : len(s)] = s
    return out, lengths


def sharpe_ratio(mean, std, days_per_year):
    """Annualised Sharpe from per-day mean and ddof-1 std; NaN (undefined) for a numerically constant
    series or a single day: a neutral 0 would hide a strategy that loses the same amount every day
    (its mean says what it earned)."""
    ok = np.isfinite(std) & (std > SHARPE_STD_FLOOR)
    return np.where(ok, mean / np.where(ok, std, 1.0) * np.sqrt(days_per_year), np.nan)


def _safe_div(num, den, empty=np.nan):
    den = np.asarray(den, dtype=np.float64)
    return np.where(den != 0, num / np.where(den != 0, den, 1.0), empty)


def _longest_run(flags: np.ndarray) -> np.ndarray:
    """Longest run of consecutive True per row."""
    count = np.cumsum(flags, axis=1)
    reset = np.maximum.accumulate(np.where(flags, 0, count), axis=1)  # count at the last False
    return (count - reset).max(axis=1, initial=0)


def _core(returns, lengths, days_per_year) -> tuple:
    """The padded days and the moments every statistic starts from (one definition of each)."""
    r = np.asarray(returns, dtype=np.float64)
    n_rows, width = r.shape
    n = np.asarray(lengths, dtype=np.int64)
    days = np.broadcast_to(np.asarray(days_per_year, dtype=np.float64), (n_rows,))
    valid = np.arange(width)[None, :] < n[:, None]
    x = np.where(valid, r, 0.0)  # padding: a flat day after the end (changes no statistic below)
    nf = n.astype(np.float64)
    mean = x.sum(axis=1) / nf
    centred = np.where(valid, x - mean[:, None], 0.0)
    std = np.sqrt(_safe_div((centred**2).sum(axis=1), nf - 1.0))
    growth = np.cumprod(1.0 + x, axis=1)
    total = growth[:, -1] - 1.0 if width else np.zeros(n_rows)
    return x, valid, nf, days, mean, std, growth, total


def return_and_sharpe(returns, lengths, days_per_year) -> tuple[np.ndarray, np.ndarray]:
    """``total_return`` and ``sharpe`` of :func:`series_statistics` alone (the same numbers)."""
    _, _, _, days, mean, std, _, total = _core(returns, lengths, days_per_year)
    return total, sharpe_ratio(mean, std, days)


def series_statistics(returns, lengths, days_per_year, turnover=None, in_market=None) -> dict:
    """Every statistic of :data:`STATISTICS` for each row, as ``{name: (N,) float64}``.

    Parameters
    ----------
    returns : (N, T) daily net returns, row i valid in its first ``lengths[i]`` entries
    lengths : (N,) days per series (>= 1)
    days_per_year : scalar or (N,)
    turnover, in_market : (N, T) like ``returns`` or None (exposure then counts non-zero days;
        turnover and position changes are NaN)
    """
    x, valid, nf, days, mean, std, growth, total = _core(returns, lengths, days_per_year)
    n_rows = x.shape[0]
    cagr = np.where(1.0 + total > 0, np.abs(1.0 + total) ** (days / nf) - 1.0, -1.0)
    downside = np.sqrt((np.minimum(x, 0.0) ** 2).sum(axis=1) / nf)

    peak = np.maximum.accumulate(np.maximum(growth, 1.0), axis=1)  # starting capital is the first peak
    drawdown = growth / peak - 1.0
    max_dd = np.minimum(drawdown.min(axis=1, initial=0.0), 0.0)

    wins, losses = valid & (x > 0), valid & (x < 0)
    gain, loss = np.where(wins, x, 0.0).sum(axis=1), -np.where(losses, x, 0.0).sum(axis=1)
    n_win, n_loss = wins.sum(axis=1), losses.sum(axis=1)
    profit_factor = np.where(loss > 0, gain / np.where(loss > 0, loss, 1.0), np.where(gain > 0, np.inf, np.nan))

    if in_market is None:
        exposure = (valid & (x != 0)).sum(axis=1) / nf
    else:
        exposure = np.where(valid, np.asarray(in_market, dtype=np.float64), 0.0).sum(axis=1) / nf
    if turnover is None:
        mean_turnover = changes = np.full(n_rows, np.nan)
    else:
        t = np.where(valid, np.asarray(turnover, dtype=np.float64), 0.0)
        mean_turnover = t.sum(axis=1) / nf  # NaN when any day's turnover is unknown
        changes = np.where(np.isfinite(mean_turnover), (valid & (t > 0)).sum(axis=1), np.nan)

    return {
        "days": nf,
        "total_return": total,
        "cagr": cagr,
        "annual_volatility": std * np.sqrt(days),
        "sharpe": sharpe_ratio(mean, std, days),
        "sortino": _safe_div(mean, downside) * np.sqrt(days),
        "max_drawdown": max_dd,
        "max_drawdown_days": _longest_run(valid & (drawdown < 0)).astype(np.float64),
        "calmar": _safe_div(cagr, -max_dd),
        "win_rate": _safe_div(n_win.astype(np.float64), n_win + n_loss),
        "profit_factor": profit_factor,
        "avg_win": _safe_div(gain, n_win),
        "avg_loss": _safe_div(-loss, n_loss),
        "exposure": exposure,
        "turnover": mean_turnover,
        "position_changes": changes.astype(np.float64),
    }
