"""Stationary block bootstrap (Politis and Romano, 1994) interval of the Sharpe ratio, for many
series at once.

A replicate of an n-day series is read in blocks that start at a uniform day and continue day by
day (wrapping around the end); each next day starts a new block with probability 1 / L, so block
lengths are geometric with mean L = max(1, round(n ** (1/3))). A replicate's Sharpe needs only
how often it drew each day, so the replicates' means and variances of all series of one length
are two matrix products of those counts with the series; all series of one length share one
seeded set of replicates (the seed and n choose it, so a series' interval does not depend on
what else is in the run).
"""

from __future__ import annotations

import functools

import numpy as np

from .measures import SHARPE_STD_FLOOR

__all__ = ["BOOTSTRAP_REPLICATES", "CONFIDENCE", "mean_block_length", "stationary_counts", "sharpe_interval"]

BOOTSTRAP_REPLICATES = 1000
CONFIDENCE = 0.95


def mean_block_length(n: int) -> int:
    return max(1, int(round(n ** (1.0 / 3.0))))


_CACHED_TABLE_BYTES = 32 << 20  # larger replicate tables are recomputed rather than kept


def _seeded_counts(seed: int, n: int, replicates: int) -> np.ndarray:
    """The replicates of series of ``n`` days for ``seed`` (read-only). They depend on nothing else,
    so a process keeps the recent small tables however many series and runs use them."""
    if n * replicates * 8 > _CACHED_TABLE_BYTES:
        return _compute_counts(seed, n, replicates)
    return _cached_counts(seed, n, replicates)


def _compute_counts(seed: int, n: int, replicates: int) -> np.ndarray:
    counts = stationary_counts(n, replicates, mean_block_length(n), np.random.default_rng([seed, n]))
    counts.flags.writeable = False
    return counts


_cached_counts = functools.lru_cache(maxsize=8)(_compute_counts)


def stationary_counts(n: int, replicates: int, block: float, rng: np.random.Generator) -> np.ndarray:
    """(replicates, n) float64: how many times each replicate drew day j."""
    t = np.arange(n)
    start = rng.integers(0, n, size=(replicates, n))
    restart = rng.random((replicates, n)) < 1.0 / block
    restart[:, 0] = True
    first = np.maximum.accumulate(np.where(restart, t, 0), axis=1)  # where the current block began
    days = (np.take_along_axis(start, first, axis=1) + (t - first)) % n
    flat = days + n * np.arange(replicates)[:, None]
    return np.bincount(flat.ravel(), minlength=replicates * n).reshape(replicates, n).astype(np.float64)


def sharpe_interval(
    returns,
    lengths,
    days_per_year,
    seed: int = 0,
    replicates: int = BOOTSTRAP_REPLICATES,
    confidence: float = CONFIDENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval ``(low (N,), high (N,))`` of the annualised Sharpe (ddof 1, the
    conventions of :func:`.measures.sharpe_ratio`); NaN for series of fewer than 2 days."""
    r = np.asarray(returns, dtype=np.float64)
    n_all = np.asarray(lengths, dtype=np.int64)
    days = np.broadcast_to(np.asarray(days_per_year, dtype=np.float64), n_all.shape)
    low, high = np.full(n_all.shape, np.nan), np.full(n_all.shape, np.nan)
    tail = 100.0 * (1.0 - confidence) / 2.0
    for n in np.unique(n_all):
        if n < 2:
            continue
        rows = np.flatnonzero(n_all == n)
        counts = _seeded_counts(int(seed), int(n), int(replicates))
        x = r[rows, :n]
        mean = x.mean(axis=1)
        centred = x - mean[:, None]  # centring keeps the variance free of cancellation
        m1 = counts @ centred.T / n  # (replicates, series)
        var = counts @ (centred * centred).T / n
        var -= m1 * m1
        var *= n / (n - 1.0)
        m1 += mean  # the replicates' means
        # sharpe_ratio's convention (0 for a numerically constant replicate), in place: large arrays
        ok = var > SHARPE_STD_FLOOR**2
        np.sqrt(var, out=var, where=ok)
        sharpe = np.divide(m1, var, out=np.zeros_like(m1), where=ok)
        sharpe *= np.sqrt(days[rows])[None, :]
        low[rows], high[rows] = np.percentile(sharpe, [tail, 100.0 - tail], axis=0)
    return low, high
