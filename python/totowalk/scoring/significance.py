"""Significance tests for forecast evaluation: Diebold-Mariano, exact binomial and Kolmogorov-Smirnov.

Everything is written with numpy and ``math`` in float64 (the Student-T CDF of the Diebold-Mariano
p-value comes from the torch kernel in :mod:`totowalk.kernels.student_t`); scipy serves the tests
as an oracle only.

- :func:`diebold_mariano` compares the losses of two forecasts, with a Newey-West long-run variance
  and the Harvey-Leybourne-Newbold small-sample correction; :func:`newey_west_standard_error` is
  that long-run variance as the standard error of one series' mean.
- :func:`binomial_test` is the exact two-sided binomial test; :func:`coverage_test` applies it to
  the hits of a central prediction interval.
- :func:`ks_uniform` tests PIT values (or any sample) against U(0, 1) with the exact finite-n
  Kolmogorov distribution where it is cheap, and a corrected asymptotic law beyond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..kernels.student_t import student_t_cdf

__all__ = [
    "DieboldMariano",
    "KolmogorovSmirnov",
    "binomial_test",
    "coverage_test",
    "diebold_mariano",
    "ks_uniform",
    "log_factorials",
    "newey_west_standard_error",
]

_EPS = float(np.finfo(np.float64).eps)

# Outcomes whose probability is within this relative distance of the observed one count as "no more
# likely" in the two-sided binomial test: ties such as pmf(k) == pmf(n - k) at p = 1/2 must not be
# split by rounding (scipy.stats.binomtest uses the same tolerance).
_BINOMIAL_RELATIVE_TOLERANCE = 1e-7

# Kolmogorov tail routing. Below this doubled one-sided probability, 2 * P(D+ >= d) is the two-sided
# one up to the chance that both one-sided deviations reach d, which is ~ (p/2)^3 relative there.
_DOUBLED_TAIL_BELOW = 0.02
# Largest Marsaglia-Tsang-Wang matrix (side 2 * floor(n d) + 1) worth its ~log2(n) products.
_MAX_EXACT_MATRIX = 800
_NEGLIGIBLE_ENTRY = 1e-150  # relative to a rescaled matrix's largest entry (see _scaled_matrix_power)
_KOLMOGOROV_SERIES_TERMS = 20


# --------------------------------------------------------------------------------------------------
# Diebold-Mariano
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DieboldMariano:
    """Result of :func:`diebold_mariano`.

    Attributes
    ----------
    mean_difference : float
        Mean of ``loss_a - loss_b`` over the pairs used (negative: model a has the lower loss).
    statistic : float
        The Harvey-Leybourne-Newbold corrected statistic, compared with Student-T(n - 1); NaN when
        the test is undefined (see :func:`diebold_mariano`).
    p_value : float
        Two-sided p-value; NaN when the statistic is.
    lags : int
        Number of autocovariance lags in the Newey-West long-run variance.
    n : int
        Number of loss pairs used (pairs with a NaN dropped).
    """

    mean_difference: float
    statistic: float
    p_value: float
    lags: int
    n: int


def diebold_mariano(loss_a, loss_b, *, horizon: int = 1, lags: int | None = None) -> DieboldMariano:
    """Diebold-Mariano test of equal expected loss of two forecasts, with the HLN correction.

    With the loss differential ``d_t = loss_a[t] - loss_b[t]`` (t = 1..n, pairs where either loss is
    NaN are dropped) and its mean ``dbar``, the long-run variance of ``d`` is estimated as Newey and
    West do: the sample autocovariances ``g_k = (1/n) sum_{t>k} (d_t - dbar)(d_{t-k} - dbar)``
    (divided by n, not n - k) are summed with Bartlett weights,
    ``lrv = g_0 + 2 sum_{k=1..L} (1 - k / (L + 1)) g_k``, which keeps ``lrv`` non-negative. The
    Diebold-Mariano statistic is ``dbar / sqrt(lrv / n)``, asymptotically standard normal under
    equal expected loss. Harvey, Leybourne and Newbold scale it by
    ``sqrt((n + 1 - 2h + h (h - 1) / n) / n)`` for an h-step forecast and compare the result with a
    Student-T with n - 1 degrees of freedom, which holds the size much closer to nominal in short
    samples. The p-value is two-sided.

    Parameters
    ----------
    loss_a, loss_b : array_like
        Per-period losses of the two forecasts (1-D, same length).
    horizon : int, default 1
        Forecast horizon h; h-step forecast errors are serially correlated up to lag h - 1.
    lags : int, optional
        Newey-West lags L. Default ``max(h - 1, floor(4 (n / 100) ** (2 / 9)))``. Capped at n - 1,
        the last lag with any pair.

    Returns
    -------
    DieboldMariano
        A negative statistic means model a has the lower loss. The statistic and p-value are NaN when
        fewer than 3 pairs remain, when the long-run variance is not positive (a constant loss
        differential, up to rounding), or when the HLN factor is not positive (h large against n).

    References
    ----------
    Diebold, F. X. and Mariano, R. S. (1995). Comparing predictive accuracy. Journal of Business &
    Economic Statistics 13(3), 253-263.
    Newey, W. K. and West, K. D. (1987). A simple, positive semi-definite, heteroskedasticity and
    autocorrelation consistent covariance matrix. Econometrica 55(3), 703-708.
    Harvey, D., Leybourne, S. and Newbold, P. (1997). Testing the equality of prediction mean
    squared errors. International Journal of Forecasting 13(2), 281-291.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    if lags is not None and (isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or lags < 0):
        raise ValueError(f"lags must be None or an integer >= 0, got {lags!r}")
    differential = _loss_differential(loss_a, loss_b)
    n = differential.size
    used_lags = _newey_west_lags(n, int(horizon), lags)
    mean_difference = float(differential.mean()) if n else math.nan
    if n < 3:
        return DieboldMariano(mean_difference, math.nan, math.nan, used_lags, n)

    variance = _bartlett_long_run_variance(differential, used_lags)
    hln_factor = (n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n
    # Bartlett weights make the estimate >= 0 in exact arithmetic; a constant differential leaves
    # only rounding noise, which would turn into an absurdly large statistic.
    numerically_zero = (64.0 * _EPS * float(np.abs(differential).max())) ** 2
    if not variance > numerically_zero or not hln_factor > 0:
        return DieboldMariano(mean_difference, math.nan, math.nan, used_lags, n)

    statistic = mean_difference / math.sqrt(variance / n) * math.sqrt(hln_factor)
    return DieboldMariano(mean_difference, statistic, _two_sided_student_t(statistic, n - 1), used_lags, n)


def newey_west_standard_error(values, *, lags: int | None = None) -> float:
    """Standard error of the mean of a serially correlated series: ``sqrt(lrv / n)``.

    ``lrv`` is the Newey-West long-run variance of :func:`diebold_mariano` (Bartlett weights; lags
    by its rule for a one-step horizon unless given); NaN values are dropped. For a loss
    differential, ``mean / newey_west_standard_error`` is the Diebold-Mariano statistic before the
    HLN factor ``sqrt((n - 1) / n)``. NaN below 2 values.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {x.shape}")
    if lags is not None and (isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or lags < 0):
        raise ValueError(f"lags must be None or an integer >= 0, got {lags!r}")
    x = x[~np.isnan(x)]
    n = x.size
    if n < 2:
        return math.nan
    variance = _bartlett_long_run_variance(x, _newey_west_lags(n, 1, lags))
    return math.sqrt(max(variance, 0.0) / n)


def _loss_differential(loss_a, loss_b) -> np.ndarray:
    """``loss_a - loss_b`` as float64, without the pairs where either loss is NaN."""
    a = np.asarray(loss_a, dtype=np.float64)
    b = np.asarray(loss_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"loss_a and loss_b must be 1-D of the same length, got shapes {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep] - b[keep]


def _newey_west_lags(n: int, horizon: int, lags: int | None) -> int:
    """The lags used: the given ones or the default rule, capped at n - 1 (and at least 0)."""
    if lags is None:
        lags = max(horizon - 1, math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)))
    return max(0, min(int(lags), n - 1))


def _bartlett_long_run_variance(differential: np.ndarray, lags: int) -> float:
    """Newey-West long-run variance of a series with Bartlett weights ``1 - k / (lags + 1)``."""
    n = differential.size
    centred = differential - differential.mean()
    variance = float(centred @ centred) / n
    for k in range(1, lags + 1):
        autocovariance = float(centred[k:] @ centred[:-k]) / n
        variance += 2.0 * (1.0 - k / (lags + 1.0)) * autocovariance
    return variance


def _two_sided_student_t(statistic: float, df: int) -> float:
    """``2 P(T_df <= -|statistic|)``, the lower tail evaluated directly so small p-values keep digits."""
    tail = student_t_cdf(
        torch.tensor(-abs(statistic), dtype=torch.float64), torch.tensor(float(df), dtype=torch.float64)
    )
    return min(1.0, 2.0 * float(tail))


# --------------------------------------------------------------------------------------------------
# Exact binomial test
# --------------------------------------------------------------------------------------------------


def binomial_test(successes: int, trials: int, p: float = 0.5, factorials: np.ndarray | None = None) -> float:
    """Exact two-sided binomial test p-value.

    The p-value is the total probability, under Binomial(trials, p), of all outcomes no more likely
    than the observed one (a relative tolerance of 1e-7 on "no more likely" keeps exact ties such as
    the mirror outcome at p = 1/2 on the same side of the cut despite rounding). The probabilities
    are summed in log space from ``math.lgamma`` log-pmfs, so trials up to 10^6 and far tails stay
    accurate (a p-value below ~1e-308 underflows to 0).

    Parameters
    ----------
    successes : int
        Observed successes k, ``0 <= k <= trials``.
    trials : int
        Number of trials n >= 1.
    p : float, default 0.5
        Success probability under the null, in [0, 1].
    factorials : :func:`log_factorials` of ``trials`` or more, made once for several tests of one
        count (the same p-value; at a million trials they are most of a test's time)

    Returns
    -------
    float
        Two-sided p-value in [0, 1].
    """
    k, n = _as_count(successes, "successes"), _as_count(trials, "trials")
    if n < 1 or k > n:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes} of {trials}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    if p == 0.0 or p == 1.0:  # a point mass: the observed outcome is either certain or impossible
        certain = n if p == 1.0 else 0
        return 1.0 if k == certain else 0.0

    log_pmf = _binomial_log_pmf(n, p, factorials)
    cut = log_pmf[k] + math.log1p(_BINOMIAL_RELATIVE_TOLERANCE)
    return min(1.0, math.exp(_log_sum_exp(log_pmf[log_pmf <= cut])))


def coverage_test(hits, nominal: float, factorials: np.ndarray | None = None) -> float:
    """Exact two-sided test that a central interval's hit rate equals its nominal coverage.

    Parameters
    ----------
    hits : array_like of bool
        Whether each observation fell inside its interval (NaN entries of a float array are dropped).
    nominal : float
        The interval's nominal coverage, in (0, 1) (e.g. 0.8 for the 10%-90% interval).
    factorials : as :func:`binomial_test`'s, for the count of observations

    Returns
    -------
    float
        :func:`binomial_test` p-value of the number of hits among the observations.
    """
    values = np.asarray(hits)
    if values.dtype.kind == "f":
        values = values[~np.isnan(values)]
    values = values.ravel()
    if values.size == 0:
        raise ValueError("coverage_test needs at least one observation")
    if not np.isin(values, (0, 1)).all():
        raise ValueError("hits must be booleans (or 0/1)")
    if not 0.0 < float(nominal) < 1.0:
        raise ValueError(f"nominal coverage must lie in (0, 1), got {nominal}")
    return binomial_test(int(np.count_nonzero(values)), int(values.size), float(nominal), factorials)


def _as_count(value, name: str) -> int:
    """A non-negative integer argument (an integral float is accepted)."""
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def log_factorials(n: int) -> np.ndarray:
    """``log(j!)`` for j = 0..n (``math.lgamma``, one value at a time)."""
    return np.fromiter(map(math.lgamma, range(1, n + 2)), dtype=np.float64, count=n + 1)


def _factorials_of(n: int, factorials: np.ndarray | None) -> np.ndarray:
    """``log(j!)`` for j = 0..n: the first n + 1 of ``factorials`` where given, else made."""
    if factorials is None:
        return log_factorials(n)
    if len(factorials) < n + 1:
        raise ValueError(f"factorials hold {len(factorials)} values, fewer than the {n + 1} of {n} trials")
    return factorials[: n + 1]


def _binomial_log_pmf(n: int, p: float, factorials: np.ndarray | None = None) -> np.ndarray:
    """Log-pmf of Binomial(n, p) at every outcome 0..n (0 < p < 1)."""
    log_factorial = _factorials_of(n, factorials)
    outcomes = np.arange(n + 1, dtype=np.float64)
    log_choose = log_factorial[n] - log_factorial - log_factorial[::-1]
    return log_choose + outcomes * math.log(p) + (n - outcomes) * math.log1p(-p)


def _log_sum_exp(values: np.ndarray) -> float:
    """``log(sum(exp(values)))`` without overflow or needless underflow (-inf when empty)."""
    if values.size == 0:
        return -math.inf
    top = float(values.max())
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.exp(values - top).sum()))


# --------------------------------------------------------------------------------------------------
# Kolmogorov-Smirnov against U(0, 1)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KolmogorovSmirnov:
    """Result of :func:`ks_uniform`.

    Attributes
    ----------
    statistic : float
        ``D_n = sup |F_n(x) - x|``, the largest distance between the empirical CDF and U(0, 1)'s.
    p_value : float
        Two-sided p-value ``P(D_n >= statistic)`` under uniformity.
    n : int
        Sample size after dropping NaN (statistic and p-value are NaN when it is 0).
    """

    statistic: float
    p_value: float
    n: int


def ks_uniform(values, factorials: np.ndarray | None = None) -> KolmogorovSmirnov:
    """One-sample two-sided Kolmogorov-Smirnov test of ``values`` against U(0, 1).

    Meant for PIT values: a calibrated forecast gives uniform PITs. NaN values are dropped; values
    outside [0, 1] are compared with the uniform CDF there (0 below, 1 above).

    The p-value ``P(D_n >= d)`` comes from the finite-n distribution of ``D_n``, routed by cost and
    accuracy:

    - ``n d <= 1/2``: 1 (``D_n >= 1/(2n)`` always); ``d >= 1``: 0.
    - Upper tail (doubled one-sided probability below 0.02, or ``d >= 1/2``): twice the exact
      one-sided Smirnov probability, from the Birnbaum-Tingey sum of positive terms in log space.
      The two one-sided events cannot both happen when ``d >= 1/2``; below that their joint
      probability is of relative order ``(p/2)^3`` (1e-6 at p = 0.02).
    - Otherwise, while the matrix stays small (side ``2 floor(n d) + 1 <= 800``, which covers
      n = 50000): the exact CDF by the matrix method of Marsaglia, Tsang and Wang (2003), a
      ``log2(n)``-step matrix power with explicit rescaling, so ``1 - cdf`` is good to ~1e-13.
    - Beyond that (very large n, moderate p): the Kolmogorov limit law evaluated at the corrected
      argument ``sqrt(n) d + 1/(6 sqrt(n)) + (sqrt(n) d - 1)/(4n)`` (Vrbik 2018); the relative
      error is ~4e-6 at n = 2e5 and shrinks like 1/n. (Stephens' (1970) adjustment
      ``d (sqrt(n) + 0.12 + 0.11/sqrt(n))``, built for small-n percentage points, is ~3e-3
      relative off at n = 5000 and ~5e-4 at n = 2e5, hence not used.)

    Parameters
    ----------
    values : array_like
        The sample (e.g. PIT values), any shape; flattened.
    factorials : :func:`log_factorials` of the sample's size or more, shared with other tests (the
        same p-value)

    Returns
    -------
    KolmogorovSmirnov
        Statistic, two-sided p-value and sample size.

    References
    ----------
    Marsaglia, G., Tsang, W. W. and Wang, J. (2003). Evaluating Kolmogorov's distribution. Journal of
    Statistical Software 8(18).
    Birnbaum, Z. W. and Tingey, F. H. (1951). One-sided confidence contours for probability
    distribution functions. Annals of Mathematical Statistics 22(4), 592-596.
    Vrbik, J. (2018). Small-sample corrections to Kolmogorov-Smirnov test statistic. Pioneer Journal
    of Theoretical and Applied Statistics 15(1-2), 15-23.
    Stephens, M. A. (1970). Use of the Kolmogorov-Smirnov, Cramer-von Mises and related statistics
    without extensive tables. Journal of the Royal Statistical Society B 32(1), 115-122.
    """
    sample = np.asarray(values, dtype=np.float64).ravel()
    sample = sample[~np.isnan(sample)]
    n = sample.size
    if n == 0:
        return KolmogorovSmirnov(math.nan, math.nan, 0)
    statistic = _ks_statistic_uniform(sample)
    return KolmogorovSmirnov(statistic, _kolmogorov_sf(statistic, n, factorials), n)


def _ks_statistic_uniform(sample: np.ndarray) -> float:
    """``sup |F_n(x) - x|``: the largest gap just after (D+) or just before (D-) an order statistic."""
    n = sample.size
    cdf = np.clip(np.sort(sample), 0.0, 1.0)
    ranks = np.arange(1, n + 1, dtype=np.float64)
    above = float(np.max(ranks / n - cdf))
    below = float(np.max(cdf - (ranks - 1.0) / n))
    return max(above, below)


def _kolmogorov_sf(d: float, n: int, factorials: np.ndarray | None = None) -> float:
    """``P(D_n >= d)`` for the two-sided statistic of n uniform draws (routing in :func:`ks_uniform`)."""
    if d >= 1.0:
        return 0.0
    if n * d <= 0.5:
        return 1.0
    doubled_tail = 2.0 * _smirnov_sf(d, n, factorials)
    if d >= 0.5 or doubled_tail <= _DOUBLED_TAIL_BELOW:
        return min(1.0, doubled_tail)
    if 2 * math.floor(n * d) + 1 <= _MAX_EXACT_MATRIX:
        return min(1.0, max(0.0, 1.0 - _kolmogorov_cdf_exact(d, n)))
    corrected = math.sqrt(n) * d + 1.0 / (6.0 * math.sqrt(n)) + (math.sqrt(n) * d - 1.0) / (4.0 * n)
    return _kolmogorov_limit_sf(corrected)


def _smirnov_sf(d: float, n: int, factorials: np.ndarray | None = None) -> float:
    """Exact one-sided ``P(D_n^+ >= d)`` for 0 < d < 1 (Birnbaum-Tingey).

    ``d * sum_{j=0}^{floor(n (1 - d))} C(n, j) (1 - d - j/n)^(n - j) (d + j/n)^(j - 1)``: every term
    is positive, so summing in log space loses nothing to cancellation, at O(n) cost.
    """
    last = math.floor(n * (1.0 - d))
    j = np.arange(last + 1, dtype=np.float64)
    log_factorial = _factorials_of(n, factorials)
    log_choose = log_factorial[n] - log_factorial[: last + 1] - log_factorial[n - last : n + 1][::-1]
    room = (n - j) - n * d  # n (1 - d - j/n), formed without subtracting two near-equal fractions
    with np.errstate(divide="ignore"):  # room == 0 (n (1 - d) an integer) is a zero term: log 0 = -inf
        log_terms = log_choose + (n - j) * np.log(np.maximum(room, 0.0) / n) + (j - 1.0) * np.log(d + j / n)
    return d * math.exp(_log_sum_exp(log_terms))


def _kolmogorov_cdf_exact(d: float, n: int) -> float:
    """Exact ``P(D_n < d)`` by the Marsaglia-Tsang-Wang matrix method.

    With ``k = floor(n d) + 1``, ``m = 2k - 1`` and ``h = k - n d``, the m x m matrix H has
    ``1 / (i - j + 1)!`` on and below the superdiagonal (0-based ``i - j + 1 >= 0``), its first column
    and last row reduced by the boundary terms ``h^(i+1) / (i+1)!`` and ``h^(m-j) / (m-j)!``, and
    ``(2h - 1)^m / m!`` added back in the corner when ``2h > 1``. Then
    ``P(D_n < d) = n! / n^n * (H^n)[k-1, k-1]``.
    """
    k = math.floor(n * d) + 1
    m = 2 * k - 1
    h = k - n * d
    matrix = _mtw_matrix(m, h)
    power, log_scale = _scaled_matrix_power(matrix, n)
    corner = power[k - 1, k - 1]
    if corner <= 0.0:  # only rounding can make it so, where the CDF is far below float range
        return 0.0
    log_cdf = math.lgamma(n + 1) - n * math.log(n) + log_scale + math.log(corner)
    return min(1.0, math.exp(log_cdf))


def _mtw_matrix(m: int, h: float) -> np.ndarray:
    """The Marsaglia-Tsang-Wang matrix H of side m for the fractional offset h (see the caller)."""
    index = np.arange(m)
    gap = index[:, None] - index[None, :] + 1  # i - j + 1
    matrix = (gap >= 0).astype(np.float64)
    powers = h ** np.arange(1, m + 1, dtype=np.float64)  # h^1 .. h^m
    matrix[:, 0] -= powers  # row i loses h^(i+1)
    matrix[m - 1, :] -= powers[::-1]  # column j loses h^(m-j)
    if 2.0 * h > 1.0:
        matrix[m - 1, 0] += (2.0 * h - 1.0) ** m
    # Divide by (i - j + 1)! (0! = 1 on the superdiagonal; entries above it are 0 anyway). Factorials
    # beyond float range just give the 0 those entries round to.
    inverse_factorial = np.exp(-log_factorials(m))
    return matrix * inverse_factorial[np.clip(gap, 0, m)]


def _scaled_matrix_power(matrix: np.ndarray, power: int) -> tuple[np.ndarray, float]:
    """``matrix ** power`` as ``(M, log_scale)`` with the true power ``M * exp(log_scale)``.

    Binary exponentiation; each product is divided by its largest magnitude so that neither the
    entries (which grow or shrink geometrically with the power) nor the scale overflow.
    """

    def rescaled(product: np.ndarray, log_scale: float) -> tuple[np.ndarray, float]:
        biggest = float(np.abs(product).max())
        if biggest == 0.0:
            return product, log_scale
        product = product / biggest
        # Entries this far below the largest cannot move any sum above rounding, but their products
        # would be subnormal numbers, on which matrix products run several times slower.
        product[np.abs(product) < _NEGLIGIBLE_ENTRY] = 0.0
        return product, log_scale + math.log(biggest)

    result, result_log = None, 0.0
    base, base_log = rescaled(matrix, 0.0)
    while power:
        if power & 1:
            if result is None:
                result, result_log = base.copy(), base_log
            else:
                result, result_log = rescaled(result @ base, result_log + base_log)
        power >>= 1
        if power:
            base, base_log = rescaled(base @ base, 2.0 * base_log)
    return result, result_log


def _kolmogorov_limit_sf(x: float) -> float:
    """``P(K >= x)`` for the Kolmogorov limit law ``K = sup |Brownian bridge|``.

    Two series for the same function, each used where it converges in a few terms: the alternating
    ``2 sum (-1)^(k-1) exp(-2 k^2 x^2)`` for x >= 1, and ``1 - sqrt(2 pi)/x sum exp(-(2k-1)^2 pi^2 / (8 x^2))``
    (the Jacobi-theta form of the CDF) below.
    """
    if x <= 0.0:
        return 1.0
    k = np.arange(1, _KOLMOGOROV_SERIES_TERMS + 1, dtype=np.float64)
    if x >= 1.0:
        signs = np.where(k % 2 == 1, 1.0, -1.0)
        return float(min(1.0, max(0.0, 2.0 * np.sum(signs * np.exp(-2.0 * k * k * x * x)))))
    odd = 2.0 * k - 1.0
    cdf = math.sqrt(2.0 * math.pi) / x * float(np.sum(np.exp(-odd * odd * math.pi**2 / (8.0 * x * x))))
    return min(1.0, max(0.0, 1.0 - cdf))
