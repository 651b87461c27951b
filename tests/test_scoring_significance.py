"""The significance tests of totowalk.scoring.significance, held to hand computations and to scipy.

scipy is the oracle only: ``scipy.stats.binomtest`` for the exact binomial test, ``scipy.stats.kstest``
(the exact ``kstwo`` distribution) for Kolmogorov-Smirnov, ``scipy.stats.t`` for the Diebold-Mariano
p-value of a by-hand computation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from totowalk.scoring.significance import (
    DieboldMariano,
    KolmogorovSmirnov,
    binomial_test,
    coverage_test,
    diebold_mariano,
    ks_uniform,
    log_factorials,
    newey_west_standard_error,
)

# --------------------------------------------------------------------------------------------------
# Diebold-Mariano
# --------------------------------------------------------------------------------------------------

LOSS_A = [1.3, 0.2, 2.5, 0.7, math.nan, 1.9, 0.4, 3.1, 0.8, 1.1, 0.05, 2.2, 1.6]
LOSS_B = [0.9, 0.6, 1.4, 1.2, 0.5, 1.0, math.nan, 2.0, 1.5, 0.3, 0.9, 1.2, 1.1]


def _dm_by_hand(loss_a, loss_b, horizon, lags):
    """Diebold-Mariano with the HLN correction, written out loop by loop (statistic, p-value, n)."""
    d = [a - b for a, b in zip(loss_a, loss_b) if not (math.isnan(a) or math.isnan(b))]
    n = len(d)
    mean = sum(d) / n
    gamma = []
    for k in range(lags + 1):
        total = 0.0
        for t in range(k, n):
            total += (d[t] - mean) * (d[t - k] - mean)
        gamma.append(total / n)
    lrv = gamma[0]
    for k in range(1, lags + 1):
        lrv += 2.0 * (1.0 - k / (lags + 1)) * gamma[k]
    dm = mean / math.sqrt(lrv / n)
    hln = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic = dm * hln
    return statistic, 2.0 * stats.t.sf(abs(statistic), n - 1), n, mean


@pytest.mark.parametrize(("horizon", "lags"), [(1, 0), (1, 2), (2, 1), (3, 4)])
def test_dm_matches_hand_computation(horizon, lags):
    result = diebold_mariano(LOSS_A, LOSS_B, horizon=horizon, lags=lags)
    statistic, p_value, n, mean = _dm_by_hand(LOSS_A, LOSS_B, horizon, lags)
    assert isinstance(result, DieboldMariano)
    assert (result.n, result.lags) == (n, lags) == (11, lags)
    assert result.mean_difference == pytest.approx(mean, rel=1e-14)
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-10)


def test_dm_default_lags_follow_the_rule():
    n = 11  # pairs left after dropping the two NaN pairs
    rule = math.floor(4 * (n / 100) ** (2 / 9))
    assert diebold_mariano(LOSS_A, LOSS_B).lags == max(0, rule) == 2
    assert diebold_mariano(LOSS_A, LOSS_B, horizon=5).lags == 4  # horizon - 1 wins
    big = np.random.default_rng(3).standard_normal(1000)
    assert diebold_mariano(big, np.zeros(1000)).lags == math.floor(4 * 10 ** (2 / 9)) == 6
    # Lags past the data are capped at n - 1, where the last autocovariance has a pair.
    assert diebold_mariano(LOSS_A, LOSS_B, lags=50).lags == 10
    statistic, _, _, _ = _dm_by_hand(LOSS_A, LOSS_B, 1, 10)
    assert diebold_mariano(LOSS_A, LOSS_B, lags=50).statistic == pytest.approx(statistic, rel=1e-12)


def test_dm_sign_and_symmetry():
    forward = diebold_mariano(LOSS_A, LOSS_B, lags=1)
    backward = diebold_mariano(LOSS_B, LOSS_A, lags=1)
    assert forward.statistic == pytest.approx(-backward.statistic, rel=1e-14)
    assert forward.p_value == pytest.approx(backward.p_value, rel=1e-14)
    # a lower loss for model a gives a negative statistic
    rng = np.random.default_rng(11)
    better = diebold_mariano(np.abs(0.5 * rng.standard_normal(100)), np.abs(rng.standard_normal(100)))
    assert better.mean_difference < 0 and better.statistic < 0


def test_dm_undefined_cases_are_nan():
    constant = diebold_mariano(np.full(20, 1.3), np.full(20, 1.0))  # d constant: no variance
    assert constant.n == 20 and constant.mean_difference == pytest.approx(0.3)
    assert math.isnan(constant.statistic) and math.isnan(constant.p_value)
    short = diebold_mariano([1.0, 2.0, math.nan], [0.0, 0.5, 1.0])
    assert short.n == 2 and math.isnan(short.statistic) and math.isnan(short.p_value)
    long_horizon = diebold_mariano(LOSS_A, LOSS_B, horizon=11)  # HLN factor (n+1-2h+h(h-1)/n)/n < 0
    assert math.isnan(long_horizon.statistic)


def test_dm_rejects_bad_arguments():
    with pytest.raises(ValueError):
        diebold_mariano([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        diebold_mariano(LOSS_A, LOSS_B, horizon=0)
    with pytest.raises(ValueError):
        diebold_mariano(LOSS_A, LOSS_B, lags=-1)


@pytest.mark.parametrize("lags", [0, 2, None])
def test_newey_west_standard_error_is_the_dm_variance_of_one_series(lags):
    d = np.array(LOSS_A) - np.array(LOSS_B)  # the NaN pairs are dropped, as diebold_mariano drops them
    statistic, _, n, mean = _dm_by_hand(LOSS_A, LOSS_B, 1, 2 if lags is None else lags)  # default: 2 lags at n = 11
    se = newey_west_standard_error(d, lags=lags)
    assert mean / se * math.sqrt((n - 1) / n) == pytest.approx(statistic, rel=1e-12)  # the HLN factor at h = 1
    assert newey_west_standard_error(d[np.isfinite(d)], lags=lags) == se


def test_newey_west_standard_error_edge_cases():
    assert newey_west_standard_error(np.full(10, 0.25)) == 0.0  # constant: no variance
    assert math.isnan(newey_west_standard_error([1.0, math.nan]))  # under 2 values
    assert newey_west_standard_error([1.0, 3.0], lags=0) == pytest.approx(math.sqrt(1.0 / 2))
    with pytest.raises(ValueError):
        newey_west_standard_error(np.zeros((2, 2)))
    with pytest.raises(ValueError):
        newey_west_standard_error([1.0, 2.0], lags=-1)


def _ma1_squared_errors(rng, n):
    """Squared MA(1) errors, the serial correlation of 2-step forecast errors."""
    shocks = rng.standard_normal(n + 1)
    return (shocks[1:] + 0.5 * shocks[:-1]) ** 2


@pytest.mark.parametrize("horizon", [1, 2])
def test_dm_size_under_equal_loss(horizon):
    """Equal expected loss: p-values roughly uniform, about 5% of them below 0.05."""
    p_values = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        if horizon == 1:
            loss_a, loss_b = np.abs(rng.standard_normal(300)), np.abs(rng.standard_normal(300))
        else:
            loss_a, loss_b = _ma1_squared_errors(rng, 300), _ma1_squared_errors(rng, 300)
        p_values.append(diebold_mariano(loss_a, loss_b, horizon=horizon).p_value)
    p_values = np.array(p_values)
    assert 0.02 <= np.mean(p_values < 0.05) <= 0.10
    assert 0.35 <= np.mean(p_values < 0.5) <= 0.65  # not just the tail: the bulk is uniform too


def test_dm_detects_a_real_difference():
    rng = np.random.default_rng(7)
    loss_a = (0.7 * rng.standard_normal(500)) ** 2
    loss_b = rng.standard_normal(500) ** 2
    result = diebold_mariano(loss_a, loss_b)
    assert result.statistic < 0
    assert result.p_value < 1e-6


# --------------------------------------------------------------------------------------------------
# Exact binomial and coverage tests
# --------------------------------------------------------------------------------------------------

BINOMIAL_GRID = [
    (0, 1, 0.5),
    (1, 1, 0.5),
    (3, 10, 0.5),
    (7, 10, 0.5),
    (5, 10, 0.5),
    (7, 10, 0.3),
    (0, 20, 0.1),
    (20, 20, 0.9),
    (10, 100, 0.02),
    (50, 100, 0.5),
    (93, 100, 0.8),
    (480, 1000, 0.5),
    (0, 1000, 0.001),
    (1, 1000, 0.001),
    (9, 1000, 0.001),
    (49_000, 100_000, 0.5),
    (50_500, 100_000, 0.5),
    (1200, 100_000, 0.01),
    (98_900, 100_000, 0.99),
    (30_100, 100_000, 0.3),
    (0, 100_000, 0.3),
    (501_000, 1_000_000, 0.5),
]


@pytest.mark.parametrize(("successes", "trials", "p"), BINOMIAL_GRID)
def test_binomial_matches_scipy(successes, trials, p):
    expected = stats.binomtest(successes, trials, p).pvalue
    got = binomial_test(successes, trials, p)
    assert isinstance(got, float)
    # lgamma of numbers ~1e6 carries ~1e-9 relative error into the pmf: the bound is relative
    assert math.isclose(got, expected, rel_tol=1e-8, abs_tol=0.0), (got, expected)


def test_binomial_ties_and_point_masses():
    assert binomial_test(3, 10) == pytest.approx(binomial_test(7, 10), rel=1e-14)  # mirror outcomes tie
    assert binomial_test(5, 10) == pytest.approx(1.0, abs=1e-14)
    assert binomial_test(0, 7, 0.0) == 1.0 and binomial_test(1, 7, 0.0) == 0.0
    assert binomial_test(7, 7, 1.0) == 1.0 and binomial_test(6, 7, 1.0) == 0.0
    for bad in [(-1, 10, 0.5), (11, 10, 0.5), (1, 0, 0.5), (2.5, 10, 0.5), (1, 10, 1.5)]:
        with pytest.raises(ValueError):
            binomial_test(*bad)


def test_coverage_test_is_the_binomial_test_of_hits():
    rng = np.random.default_rng(5)
    hits = rng.random(400) < 0.74  # an 80% interval that covers only ~74%
    expected = stats.binomtest(int(hits.sum()), hits.size, 0.8).pvalue
    assert coverage_test(hits, 0.8) == pytest.approx(expected, rel=1e-10)
    assert coverage_test(hits.astype(float), 0.8) == pytest.approx(expected, rel=1e-10)
    with_nan = np.append(hits.astype(float), math.nan)
    assert coverage_test(with_nan, 0.8) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError):
        coverage_test([0.0, 0.5, 1.0], 0.8)
    with pytest.raises(ValueError):
        coverage_test(hits, 1.0)


def test_shared_factorials_give_the_same_p_values_for_any_smaller_count():
    rng = np.random.default_rng(6)
    factorials = log_factorials(1_000)
    for size, nominal in [(1_000, 0.8), (400, 0.5), (37, 0.95)]:
        hits = rng.random(size) < nominal - 0.03
        assert coverage_test(hits, nominal, factorials) == coverage_test(hits, nominal)  # exactly
    with pytest.raises(ValueError, match="fewer than the 1002 of 1001 trials"):
        binomial_test(10, 1_001, 0.5, factorials)
    for size in (1_000, 300):  # the Kolmogorov-Smirnov tail sums over the same factorials
        pit = rng.beta(1.2, 1.0, size)
        assert ks_uniform(pit, factorials) == ks_uniform(pit)


# --------------------------------------------------------------------------------------------------
# Kolmogorov-Smirnov against U(0, 1)
# --------------------------------------------------------------------------------------------------


def _assert_ks_matches_scipy(sample, n):
    """``ks_uniform`` agrees with ``scipy.stats.kstest(sample, "uniform")`` within the bound for n."""
    got = ks_uniform(sample)
    expected = stats.kstest(sample, "uniform")
    assert isinstance(got, KolmogorovSmirnov) and got.n == n
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-14, abs=1e-15)
    if n <= 1000:
        bound = KS_EXACT_ATOL[n]
        assert abs(got.p_value - expected.pvalue) <= bound, (got, expected.pvalue)
    else:
        assert math.isclose(got.p_value, expected.pvalue, rel_tol=1e-4, abs_tol=1e-8), (got, expected.pvalue)


# Absolute bounds against scipy. scipy is exact itself for n <= 140, so the small n are held tight (the
# 7e-9 at n = 30 is the doubled one-sided tail near p = 0.02). For 140 < n <= 1000 scipy switches to the
# Pelz-Good asymptotic expansion in the mid range, which we measured 1.5e-6 off its own exact
# (Pomeranz) routine at n = 200 and 6e-8 at n = 1000: those bounds carry scipy's error, not ours.
KS_EXACT_ATOL = {5: 1e-12, 30: 2e-8, 200: 2e-6, 1000: 1e-6}
KS_SIZES = [5, 30, 200, 1000, 5000, 50_000]


def _sample_with_statistic(d, n):
    """Evenly spread points shifted up by ``d - 1/(2n)``: their KS statistic is exactly d."""
    return np.arange(n) / n + d  # (i - 1/2)/n + (d - 1/(2n)) for i = 1..n; points above 1 are clipped


@pytest.mark.parametrize("n", KS_SIZES)
def test_ks_matches_scipy_across_statistics(n):
    """A grid over the whole range of the statistic: the body (a / sqrt(n)), the far tail, the edges."""
    scaled = np.linspace(0.25, 2.6, 10 if n >= 5000 else 30) / math.sqrt(n)
    edges = [0.5 / n, 0.75 / n, 1.0 / n, 1.5 / n, 0.3, 0.5, 0.7, 1 - 1 / n, 1 - 0.5 / n]
    for d in np.concatenate([scaled, edges]):
        if 0.5 / n <= d < 1.0:
            _assert_ks_matches_scipy(_sample_with_statistic(float(d), n), n)


@pytest.mark.parametrize("n", KS_SIZES)
def test_ks_matches_scipy_on_samples(n):
    """Uniform samples (p spread over (0, 1)) and beta samples that drift off uniform (small p)."""
    rng = np.random.default_rng(n)
    for _ in range(4 if n <= 1000 else 2):
        _assert_ks_matches_scipy(rng.random(n), n)
    for shift in (1.0, 3.0, 8.0):
        tilt = 1.0 + shift / math.sqrt(n)
        _assert_ks_matches_scipy(stats.beta.rvs(tilt, 1.0, size=n, random_state=rng), n)
        _assert_ks_matches_scipy(stats.beta.rvs(1.0 / tilt, 1.0 / tilt, size=n, random_state=rng), n)


def test_ks_beyond_the_exact_range_matches_scipy():
    """n = 2e5: mid-range p-values come from the corrected limit law (the exact matrix would be too big)."""
    n = 200_000
    for d in (0.7, 1.2, 1.5, 2.0):
        _assert_ks_matches_scipy(_sample_with_statistic(d / math.sqrt(n), n), n)
    _assert_ks_matches_scipy(np.random.default_rng(9).random(n), n)


def test_ks_p_values_reach_small_values():
    rng = np.random.default_rng(2)
    skewed = stats.beta.rvs(1.3, 1.0, size=2000, random_state=rng)
    result = ks_uniform(skewed)
    expected = stats.kstest(skewed, "uniform").pvalue
    assert result.p_value < 1e-6
    assert math.isclose(result.p_value, expected, rel_tol=1e-6)


def test_ks_edge_cases():
    empty = ks_uniform([math.nan, math.nan])
    assert empty.n == 0 and math.isnan(empty.statistic) and math.isnan(empty.p_value)
    with_nan = ks_uniform([0.1, math.nan, 0.6, 0.35])
    assert with_nan == ks_uniform([0.1, 0.6, 0.35])
    assert with_nan.n == 3
    # outside [0, 1] the uniform CDF is 0 or 1, as in scipy
    outside = np.array([-0.5, 0.2, 0.4, 1.7, 0.9])
    assert ks_uniform(outside).statistic == pytest.approx(stats.kstest(outside, "uniform").statistic)
    assert ks_uniform(outside).p_value == pytest.approx(stats.kstest(outside, "uniform").pvalue, abs=1e-12)
    single = ks_uniform([0.3])  # D = max(x, 1 - x) = 0.7, P(D >= 0.7) = 2 * 0.3
    assert single.statistic == pytest.approx(0.7) and single.p_value == pytest.approx(0.6, rel=1e-12)
