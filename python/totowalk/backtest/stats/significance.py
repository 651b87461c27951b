"""Could a Sharpe ratio be luck: the probabilistic and the deflated Sharpe ratio.

Bailey and Lopez de Prado, "The Sharpe Ratio Efficient Frontier" (2012) and "The Deflated Sharpe
Ratio" (2014). With the per-day Sharpe ``s`` (ddof 1, not annualised) of n days, the skewness g3
and (non-excess) kurtosis g4 of the returns (moment estimators, ddof 0):

    PSR(s*) = Phi((s - s*) sqrt(n - 1) / sqrt(1 - g3 s + (g4 - 1) / 4 s^2))

the probability that the true Sharpe exceeds s*. The deflated Sharpe ratio is PSR(s0) with s0 the
Sharpe the best of N independent trials would show by luck alone:

    s0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

with V the variance of the trials' per-day Sharpe ratios and gamma the Euler-Mascheroni constant
(:func:`deflated_sharpes`: the null's sampling variance, 1 / (n - 1)).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = [
    "EULER_GAMMA",
    "moments",
    "probabilistic_sharpe",
    "expected_max_sharpe",
    "deflated_sharpe",
    "trial_count",
    "GRID_TRIALS",
    "deflated_sharpes",
]

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
_cdf = np.vectorize(_NORMAL.cdf, otypes=[np.float64])

# Configurations a strategy tries before reporting one: the MaxDiff offsets are two sweeps of a
# 500-point grid, MaxDiffAlwaysOn's an 81 x 81 grid (LEGACY_SEMANTICS §6.6-6.7, both profiles).
GRID_TRIALS = {"maxdiff": 2 * 500, "maxdiffalwayson": 81 * 81}


def trial_count(strategies) -> int:
    """Trials behind a run's best strategy: one per strategy, its offset grid for MaxDiff/AlwaysOn."""
    return int(sum(GRID_TRIALS.get(s, 1) for s in strategies))


def moments(returns, lengths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-day Sharpe (ddof 1), skewness and kurtosis (ddof 0) of left-aligned series rows."""
    r = np.asarray(returns, dtype=np.float64)
    n = np.asarray(lengths, dtype=np.int64)
    valid = np.arange(r.shape[1])[None, :] < n[:, None]
    nf = n.astype(np.float64)
    mean = np.where(valid, r, 0.0).sum(axis=1) / nf
    c = np.where(valid, r - mean[:, None], 0.0)
    c2 = c * c
    m2, m3, m4 = c2.sum(axis=1) / nf, (c2 * c).sum(axis=1) / nf, (c2 * c2).sum(axis=1) / nf
    ok = (n > 1) & (m2 > 0)
    safe2 = np.where(ok, m2, 1.0)
    sharpe = np.where(ok, mean / np.sqrt(safe2 * nf / np.where(n > 1, nf - 1.0, 1.0)), np.nan)
    return sharpe, np.where(ok, m3 / safe2**1.5, np.nan), np.where(ok, m4 / safe2**2, np.nan)


def probabilistic_sharpe(sharpe, n, skew, kurtosis, benchmark=0.0) -> np.ndarray:
    """PSR: probability that the true per-day Sharpe exceeds ``benchmark`` (per day)."""
    s = np.asarray(sharpe, dtype=np.float64)
    var = 1.0 - skew * s + (kurtosis - 1.0) / 4.0 * s**2  # >= (1 - skew s / 2)^2 >= 0
    ok = np.isfinite(s) & np.isfinite(var) & (var > 0)
    z = (s - benchmark) * np.sqrt(np.asarray(n, dtype=np.float64) - 1.0) / np.sqrt(np.where(ok, var, 1.0))
    return np.where(ok, _cdf(np.where(ok, z, 0.0)), np.nan)


def expected_max_sharpe(trials: int, variance: float) -> float:
    """s0: the per-day Sharpe the best of ``trials`` would reach by luck (0 for a single trial)."""
    if trials <= 1 or not variance > 0:
        return 0.0
    quantile = _NORMAL.inv_cdf
    z = (1.0 - EULER_GAMMA) * quantile(1.0 - 1.0 / trials) + EULER_GAMMA * quantile(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(variance) * z


def deflated_sharpe(sharpe, n, skew, kurtosis, trials: int, variance: float) -> np.ndarray:
    """DSR = PSR(expected_max_sharpe(trials, variance))."""
    return probabilistic_sharpe(sharpe, n, skew, kurtosis, expected_max_sharpe(trials, variance))


def deflated_sharpes(per_day, lengths, skew, kurtosis, strategies) -> tuple[np.ndarray, int]:
    """The DSR of each of one owner's strategy series (one symbol, or the portfolio) against the best of
    ``trial_count(strategies)`` trials that all have a true Sharpe of 0; and that trial count.

    V is the variance of an n-day per-day Sharpe estimate under that null, 1 / (n - 1) (the trials'
    Sharpes spread by sampling alone). The spread of the run's own strategies' Sharpes is not used:
    strategies with a real edge differ from each other by more than noise, and that spread would
    raise the bar with the edge (an oracle's strategies, Sharpe 5 to 25, would never pass). The
    offset grids' trials are far from independent, so the count is conservative.
    """
    per_day = np.asarray(per_day, dtype=np.float64)
    n = np.asarray(lengths, dtype=np.int64)
    trials = trial_count(strategies)
    out = np.full(per_day.shape, np.nan)
    for length in np.unique(n[n > 1]):
        rows = n == length
        out[rows] = deflated_sharpe(per_day[rows], n[rows], skew[rows], kurtosis[rows], trials, 1.0 / (length - 1.0))
    return out, trials
