"""Stationary block bootstrap (Politis and Romano, 1994) interval of the Sharpe ratio, for many
series at once.

A replicate of an n-day series is read in blocks that start at a uniform day and continue day by
day (wrapping around the end); each next day starts a new block with probability 1 / L, so block
lengths are geometric with mean L. L is sized to the series' own autocorrelation
(:func:`optimal_block_length`, Politis and White 2004 with the correction of Patton, Politis and
White 2009): about 1 day for independent returns, longer the longer a series remembers. A
replicate's Sharpe needs only how often it drew each day, so the replicates' means and variances
of all series of one length and block are two matrix products of those counts with the series;
they share one seeded set of replicates (the seed, n and L choose it, so a series' interval does
not depend on what else is in the run).
"""

from __future__ import annotations

import functools

import numpy as np

from .measures import SHARPE_STD_FLOOR

__all__ = [
    "BOOTSTRAP_REPLICATES",
    "CONFIDENCE",
    "mean_block_length",
    "block_lengths",
    "optimal_block_length",
    "optimal_block_lengths",
    "stationary_counts",
    "sharpe_interval",
]

BOOTSTRAP_REPLICATES = 1000
CONFIDENCE = 0.95
# series per matrix product: one shape for every product (see _tile_interval). A run's series
# split into many (length, block) groups of a few dozen each (W2: 432 series in 21 groups), and
# every group pays for whole tiles: 32 columns make W2's statistics table 15 % faster than 64 did
# (and 64 half the cost of 256), a 9,000-series universe's within 1 % (bench/RESULTS.md); the
# intervals' bits were unchanged on the machine measured.
_TILE = 32


def optimal_block_length(x) -> float:
    """Mean block length of the stationary bootstrap for the series ``x``, from its autocorrelation.

    With centred values, autocovariances R(k) = sum_t x_t x_{t+k} / n and autocorrelations
    rho(k) = R(k) / R(0): the smallest m after which K = max(5, ceil(sqrt(log10 n))) autocorrelations
    in a row are inside +-2 sqrt(log10 n / n) is the correlation's reach; M = 2m lags (at most
    ceil(sqrt n) + K) enter the flat-top window lambda(t) = 1 for |t| <= 1/2, 2 (1 - |t|) up to 1.
    Then G = sum_|k|<=M lambda(k/M) |k| R(k), g = sum_|k|<=M lambda(k/M) R(k) and

        L = (2 G^2 / D)^(1/3) n^(1/3),   D = 2 g^2,

    bounded to [1, min(3 sqrt n, n / 3)]. For an AR(1) with coefficient phi it tends to
    (2 phi / (1 - phi^2))^(2/3) n^(1/3).
    """
    return float(optimal_block_lengths(np.asarray(x, dtype=np.float64)[None, :])[0])


def optimal_block_lengths(series: np.ndarray) -> np.ndarray:
    """:func:`optimal_block_length` of each row of a (rows, n) array of series of one length, the
    same bits as one call a row: per-row steps stay per row where numpy's rounding depends on the
    call (a row's dot product, its transform, its weighted sums of one length), the rest are
    elementwise over the rows at once."""
    x = np.ascontiguousarray(series, dtype=np.float64)
    rows, n = x.shape
    out = np.ones(rows)
    if n < 4 or rows == 0:
        return out
    e = x - x.mean(axis=1)[:, None]  # a contiguous row's mean is the 1-D mean, bit for bit
    r0 = np.array([float(row @ row) for row in e]) / n
    live = np.flatnonzero(r0 > 0)
    if not live.size:
        return out
    e, r0 = e[live], r0[live]
    reach = max(5, int(np.ceil(np.sqrt(np.log10(n)))))
    most = min(int(np.ceil(np.sqrt(n))) + reach, n - 1)
    # every lag's sum of products at once (zero-padded: no wrap-around), one transform a row
    spectra = [np.fft.rfft(row, 2 * n) for row in e]  # a 2-D transform can round differently
    acov = np.stack([np.fft.irfft(f * np.conj(f), 2 * n)[: most + 1] for f in spectra]) / n
    inside = np.abs(acov[:, 1:] / r0[:, None]) < 2.0 * np.sqrt(np.log10(n) / n)  # inside[:, k - 1]: lag k
    # m: the first lag after which `reach` autocorrelations in a row are inside (most when none is)
    m = np.full(len(live), most)
    if most - reach + 1 > 0:
        runs = np.concatenate([np.zeros((len(live), 1), np.int64), np.cumsum(inside, axis=1)], axis=1)
        window = (runs[:, reach : most + 1] - runs[:, : most - reach + 1]) == reach
        m = np.where(window.any(axis=1), window.argmax(axis=1), most)
    lags = np.minimum(2 * np.maximum(m, 1), most)
    cap = float(np.ceil(min(3.0 * np.sqrt(n), n / 3.0)))
    for width in np.unique(lags):
        group = np.flatnonzero(lags == width)
        k = np.arange(1, width + 1)
        taper = np.where(k / width <= 0.5, 1.0, 2.0 * (1.0 - k / width))
        part = acov[group, 1 : width + 1]
        longs = np.sum(taper * part, axis=1)  # a product's contiguous row sums as the row alone would
        biases = np.sum(taper * k * part, axis=1)
        for row, long_sum, bias_sum in zip(group, longs.tolist(), biases.tolist()):
            g_long = float(r0[row]) + 2.0 * long_sum
            g_bias = 2.0 * bias_sum
            if not g_long != 0:
                continue
            length = (2.0 * g_bias**2 / (2.0 * g_long**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
            out[live[row]] = min(max(length, 1.0), cap)
    return out


def mean_block_length(x) -> int:
    """The integer mean block length the bootstrap reads ``x`` with (``round`` of
    :func:`optimal_block_length`, at least 1): series of one length and block share replicates."""
    return _whole_block(optimal_block_length(x))


def _whole_block(length: float) -> int:
    return max(1, int(round(float(length))))


_CACHED_TABLE_BYTES = 32 << 20  # larger replicate tables are recomputed rather than kept


def _seeded_counts(seed: int, n: int, replicates: int, block: int) -> np.ndarray:
    """The replicates of series of ``n`` days read in blocks of mean ``block`` for ``seed``
    (read-only). They depend on nothing else, so a process keeps the recent small tables however
    many series and runs use them."""
    if n * replicates * 8 > _CACHED_TABLE_BYTES:
        return _compute_counts(seed, n, replicates, block)
    return _cached_counts(seed, n, replicates, block)


def _compute_counts(seed: int, n: int, replicates: int, block: int) -> np.ndarray:
    counts = stationary_counts(n, replicates, block, np.random.default_rng([seed, n, block]))
    counts.flags.writeable = False
    return counts


_cached_counts = functools.lru_cache(maxsize=32)(_compute_counts)


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
    blocks=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval ``(low (N,), high (N,))`` of the annualised Sharpe (ddof 1, the
    conventions of :func:`.measures.sharpe_ratio`); NaN for series of fewer than 2 days and for a
    series whose every replicate is constant. ``blocks``:
    each series' mean block length, :func:`block_lengths` of the same series when not given."""
    r = np.asarray(returns, dtype=np.float64)
    n_all = np.asarray(lengths, dtype=np.int64)
    days = np.broadcast_to(np.asarray(days_per_year, dtype=np.float64), n_all.shape)
    low, high = np.full(n_all.shape, np.nan), np.full(n_all.shape, np.nan)
    tail = 100.0 * (1.0 - confidence) / 2.0
    blocks = block_lengths(r, n_all) if blocks is None else np.asarray(blocks, dtype=np.int64)
    for n, block in sorted({(int(n), int(b)) for n, b in zip(n_all, blocks)}):
        if n < 2:
            continue
        counts = _seeded_counts(int(seed), n, int(replicates), block)
        group = np.flatnonzero((n_all == n) & (blocks == block))
        for first in range(0, len(group), _TILE):
            rows = group[first : first + _TILE]
            low[rows], high[rows] = _tile_interval(counts, r[rows, :n], days[rows], tail)
    return low, high


def _tile_interval(counts: np.ndarray, x: np.ndarray, days: np.ndarray, tail: float) -> tuple:
    """The interval of up to :data:`_TILE` series (rows of ``x``) of one length from their replicates'
    ``counts``; the products always have :data:`_TILE` columns (zero rows pad ``x``), so a series'
    interval is the same bits whichever series share its tile (a product's rounding can depend on
    its shape)."""
    count, n = x.shape
    mean = x.mean(axis=1)
    centred = np.zeros((_TILE, n))
    centred[:count] = x - mean[:, None]  # centring keeps the variance free of cancellation
    m1 = (counts @ centred.T)[:, :count] / n  # (replicates, series)
    var = (counts @ (centred * centred).T)[:, :count] / n
    var -= m1 * m1
    var *= n / (n - 1.0)
    m1 += mean  # the replicates' means
    # sharpe_ratio's convention (undefined for a numerically constant replicate), in place: large
    # arrays. An undefined replicate is left out, not counted as 0 (an interval end must not snap
    # to 0); a series whose replicates are all undefined has no interval.
    ok = var > SHARPE_STD_FLOOR**2
    np.sqrt(var, out=var, where=ok)
    sharpe = np.divide(m1, var, out=np.full_like(m1, np.nan), where=ok)
    sharpe *= np.sqrt(days)[None, :]
    return _percentiles(sharpe, ok, (tail, 100.0 - tail))


def _percentiles(values: np.ndarray, defined: np.ndarray, q: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Percentiles ``q`` of each column over its defined rows (NaN for a column with none)."""
    if defined.all():
        return tuple(np.percentile(values, q, axis=0))
    out = np.full((len(q), values.shape[1]), np.nan)
    for j in range(values.shape[1]):
        kept = values[defined[:, j], j]
        if kept.size:
            out[:, j] = np.percentile(kept, q)
    return out[0], out[1]


def block_lengths(returns, lengths) -> np.ndarray:
    """(N,) int: the mean block length each left-aligned series row is bootstrapped with
    (:func:`mean_block_length` of each; the series of one length together)."""
    r = np.asarray(returns, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.ones(len(lengths), dtype=np.int64)
    for n in np.unique(lengths):
        rows = np.flatnonzero(lengths == n)
        optimal = optimal_block_lengths(r[rows, :n])
        out[rows] = [_whole_block(v) for v in optimal]
    return out
