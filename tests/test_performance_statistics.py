"""Daily-series statistics against empyrical-reloaded / quantstats on the same series, the deflated
Sharpe against worked values, and the stationary bootstrap's defining properties."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from totowalk.backtest.stats.bootstrap import (
    block_lengths,
    mean_block_length,
    optimal_block_length,
    optimal_block_lengths,
    sharpe_interval,
    stationary_counts,
)
from totowalk.backtest.stats.measures import pack, series_statistics
from totowalk.backtest.stats.significance import (
    EULER_GAMMA,
    deflated_sharpe,
    expected_max_sharpe,
    moments,
    probabilistic_sharpe,
    trial_count,
)

ep = pytest.importorskip("empyrical", reason="empyrical-reloaded is a test oracle (pip install '.[test]')")
qs_stats = pytest.importorskip("quantstats.stats", reason="quantstats is a test oracle (pip install '.[test]')")


def _series():
    """Uneven lengths and shapes: drifting, losing, flat days, fat tails, a short one."""
    rng = np.random.default_rng(7)
    out = [
        rng.normal(0.0008, 0.012, 250),
        rng.normal(-0.001, 0.02, 180),
        np.where(rng.random(120) < 0.4, 0.0, rng.standard_t(3, 120) * 0.01),
        rng.normal(0.002, 0.01, 9),
    ]
    out.append(np.concatenate([[0.05], rng.normal(0, 0.01, 60)]))  # the peak is after day 1
    out.append(np.concatenate([[-0.05], rng.normal(0, 0.01, 60)]))  # a first-day loss is a drawdown
    return out


@pytest.fixture(scope="module")
def computed():
    series = _series()
    matrix, lengths = pack(series)
    days = np.array([252.0, 252.0, 365.0, 252.0, 252.0, 252.0])
    return series, days, series_statistics(matrix, lengths, days)


def test_statistics_match_empyrical(computed):
    series, days, got = computed
    for i, r in enumerate(series):
        p = int(days[i])
        assert got["total_return"][i] == pytest.approx(ep.cum_returns_final(r), rel=1e-12)
        assert got["cagr"][i] == pytest.approx(ep.annual_return(r, annualization=p), rel=1e-10)
        assert got["annual_volatility"][i] == pytest.approx(ep.annual_volatility(r, annualization=p), rel=1e-10)
        assert got["sharpe"][i] == pytest.approx(ep.sharpe_ratio(r, annualization=p), rel=1e-10)
        assert got["sortino"][i] == pytest.approx(ep.sortino_ratio(r, annualization=p), rel=1e-10)
        assert got["max_drawdown"][i] == pytest.approx(ep.max_drawdown(r), rel=1e-10, abs=1e-15)
        assert got["calmar"][i] == pytest.approx(ep.calmar_ratio(r, annualization=p), rel=1e-10)


def test_statistics_match_quantstats(computed):
    series, days, got = computed
    for i, r in enumerate(series):
        s = pd.Series(r, index=pd.bdate_range("2020-01-01", periods=len(r)))
        assert got["win_rate"][i] == pytest.approx(qs_stats.win_rate(s, prepare_returns=False), rel=1e-12)
        assert got["profit_factor"][i] == pytest.approx(qs_stats.profit_factor(s, prepare_returns=False), rel=1e-12)
        assert got["avg_win"][i] == pytest.approx(qs_stats.avg_win(s, prepare_returns=False), rel=1e-12)
        assert got["avg_loss"][i] == pytest.approx(qs_stats.avg_loss(s, prepare_returns=False), rel=1e-12)
        # quantstats rounds exposure up to a whole percent
        assert math.ceil(got["exposure"][i] * 100) / 100 == qs_stats.exposure(s, prepare_returns=False)
        assert got["sharpe"][i] == pytest.approx(qs_stats.sharpe(s, periods=int(days[i])), rel=1e-10)


def test_drawdown_duration_matches_quantstats(computed):
    series, _, got = computed
    compared = 0
    for i, r in enumerate(series):
        # a calendar-day index: quantstats counts a drawdown's calendar days, here trading days
        s = pd.Series(r, index=pd.date_range("2020-01-01", periods=len(r), freq="D"))
        details = qs_stats.drawdown_details(qs_stats.to_drawdown_series(s))
        if len(details) == 0:  # quantstats lists no period for a series that starts underwater
            assert r[0] < 0
            continue
        assert got["max_drawdown_days"][i] == details["days"].max()
        compared += 1
    assert compared >= 3


def test_drawdown_duration_and_edge_cases():
    r = np.array([0.1, -0.05, -0.05, 0.02, 0.2, -0.01, 0.0, 0.0])
    flat = np.zeros(5)
    gains = np.array([0.01, 0.02])
    m, n = pack([r, flat, gains, np.array([0.01])])
    got = series_statistics(m, n, 252.0, turnover=np.where(np.isfinite(m), 0.5, np.nan), in_market=(m != 0) * 1.0)
    # days 2-4 below the day-1 peak (recovered on day 5), days 6-8 below the day-5 peak, unfinished
    assert got["max_drawdown_days"].tolist() == [3.0, 0.0, 0.0, 0.0]
    assert got["max_drawdown"][0] == pytest.approx(1.1 * 0.95 * 0.95 / 1.1 - 1.0)
    assert np.isnan(got["sharpe"][1]) and np.isnan(got["sharpe"][3])  # constant, single day: undefined
    assert np.isnan(got["sortino"][2]) and got["profit_factor"][2] == np.inf and np.isnan(got["calmar"][2])
    assert np.isnan(got["profit_factor"][1]) and np.isnan(got["win_rate"][1])
    assert got["exposure"][0] == pytest.approx(6 / 8)
    assert got["turnover"][0] == 0.5 and got["position_changes"][0] == 8.0


def test_probabilistic_sharpe_equals_the_formula_with_scipy_moments(computed):
    series, _, _ = computed
    m, n = pack(series)
    sr, g3, g4 = moments(m, n)
    psr = probabilistic_sharpe(sr, n, g3, g4)
    for i, r in enumerate(series):
        s = r.mean() / r.std(ddof=1)
        skew, kurt = sps.skew(r), sps.kurtosis(r, fisher=False)
        assert sr[i] == pytest.approx(s, rel=1e-12) and g3[i] == pytest.approx(skew, rel=1e-9)
        z = s * math.sqrt(len(r) - 1) / math.sqrt(1 - skew * s + (kurt - 1) / 4 * s * s)
        assert psr[i] == pytest.approx(sps.norm.cdf(z), rel=1e-9)


def test_deflated_sharpe_reproduces_the_papers_numerical_example():
    # Bailey & Lopez de Prado (2014), section 6: N = 100 trials, V[SR] = 1/2 (annual), best annual
    # SR 2.5, T = 1,250 days, skewness -3, kurtosis 10, 250 days a year. Worked by hand:
    # Z = 0.4228 * Phi^-1(0.99) + 0.5772 * Phi^-1(1 - 1/(100 e)) = 0.98355 + 1.54710 = 2.53065
    # s0 = sqrt(0.5 / 250) * 2.53065 = 0.11317 per day (the paper: 0.1132)
    # z = (2.5 / sqrt(250) - 0.11317) * sqrt(1249) / sqrt(1 + 3 * 0.15811 + 9 / 4 * 0.15811^2) = 1.2837
    s0 = expected_max_sharpe(100, 0.5 / 250)
    assert s0 == pytest.approx(0.11317, abs=5e-6)
    assert (1 - EULER_GAMMA) * sps.norm.ppf(0.99) + EULER_GAMMA * sps.norm.ppf(1 - 1 / (100 * math.e)) == pytest.approx(
        s0 / math.sqrt(0.002), rel=1e-12
    )
    dsr = deflated_sharpe(
        np.array([2.5 / math.sqrt(250)]),
        np.array([1250]),
        np.array([-3.0]),
        np.array([10.0]),
        trials=100,
        variance=0.5 / 250,
    )
    assert dsr[0] == pytest.approx(0.9004, abs=1e-4)  # the paper's DSR
    assert expected_max_sharpe(1, 0.1) == 0.0  # one trial: nothing to deflate, DSR = PSR


def test_expected_maximum_matches_simulated_best_of_trials():
    # independent check of s0: the mean of the largest of N standard normals, by simulation (the
    # formula is the extreme-value approximation, within 1 % from N = 1,000 on)
    rng = np.random.default_rng(1)
    best = rng.standard_normal((4000, 1000)).max(axis=1).mean()
    assert expected_max_sharpe(1000, 1.0) == pytest.approx(best, rel=0.01)
    assert expected_max_sharpe(1000, 4.0) == pytest.approx(2 * expected_max_sharpe(1000, 1.0), rel=1e-12)


def test_trial_count_counts_the_offset_grids():
    assert trial_count(["simple_strategy", "buy_hold"]) == 2
    assert trial_count(["simple_strategy", "maxdiff", "maxdiffalwayson"]) == 1 + 1000 + 6561


def test_stationary_bootstrap_draws_blocks_of_the_stated_mean_length():
    rng = np.random.default_rng(3)
    n, reps = 200, 400
    counts = stationary_counts(n, reps, 6.0, rng)
    assert (counts.sum(axis=1) == n).all()
    assert counts.mean(axis=0) == pytest.approx(np.ones(n), abs=0.35)  # every day equally likely
    assert mean_block_length(np.zeros(1)) == 1 and mean_block_length(np.zeros(50)) == 1


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=n)
    x = np.empty(n)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@pytest.mark.parametrize("phi", [0.3, 0.5, 0.8])
def test_block_length_follows_the_autocorrelation(phi):
    # Politis-White's rule tends to (2 phi / (1 - phi^2))^(2/3) n^(1/3) for an AR(1) as n grows
    n = 20000
    theory = (2 * phi / (1 - phi**2)) ** (2 / 3) * n ** (1 / 3)
    assert optimal_block_length(_ar1(phi, n, 7)) == pytest.approx(theory, rel=0.1)
    # independent days need no blocks; a series that remembers longer gets longer blocks
    assert optimal_block_length(np.random.default_rng(8).normal(size=n)) < 2.0
    assert optimal_block_length(_ar1(phi, 1000, 9)) < optimal_block_length(_ar1(min(phi + 0.15, 0.95), 1000, 9))


def _one_block_length(x: np.ndarray) -> float:
    """Politis-White's block length of one series, step by step as the docstring states it (the
    reference the rows-at-once version must equal bit for bit)."""
    n = x.size
    if n < 4:
        return 1.0
    e = x - x.mean()
    r0 = float(e @ e) / n
    if not r0 > 0:
        return 1.0
    reach = max(5, int(np.ceil(np.sqrt(np.log10(n)))))
    most = min(int(np.ceil(np.sqrt(n))) + reach, n - 1)
    spectrum = np.fft.rfft(e, 2 * n)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), 2 * n)[: most + 1] / n
    inside = np.abs(acov[1:] / r0) < 2.0 * np.sqrt(np.log10(n) / n)
    m = most
    for k in range(0, most - reach + 1):
        if inside[k : k + reach].all():
            m = k
            break
    lags = min(2 * max(m, 1), most)
    k = np.arange(1, lags + 1)
    window = np.where(k / lags <= 0.5, 1.0, 2.0 * (1.0 - k / lags))
    g_long = r0 + 2.0 * float(np.sum(window * acov[1 : lags + 1]))
    g_bias = 2.0 * float(np.sum(window * k * acov[1 : lags + 1]))
    if not g_long != 0:
        return 1.0
    length = (2.0 * g_bias**2 / (2.0 * g_long**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(min(max(length, 1.0), np.ceil(min(3.0 * np.sqrt(n), n / 3.0))))


def test_block_lengths_of_many_series_at_once_equal_each_series_alone():
    rng = np.random.default_rng(12)
    width = 1460
    rows, lengths = [], []
    for i in range(240):
        n = int(rng.choice([3, 4, 5, 9, 17, 60, 250, 251, 480, 999, 1460]))
        series = _ar1(float(rng.choice([0.0, 0.3, 0.7, 0.95])), n, i) * 0.01
        if i % 17 == 0:
            series[:] = 0.004  # constant: no autocovariance, block 1
        rows.append(np.concatenate([series, np.full(width - n, np.nan)]))
        lengths.append(n)
    returns, lengths = np.stack(rows), np.array(lengths)
    for n in np.unique(lengths):
        group = returns[lengths == n, :n]
        want = np.array([_one_block_length(x) for x in group])
        assert np.array_equal(optimal_block_lengths(group), want)  # bit for bit
        assert [optimal_block_length(x) for x in group] == want.tolist()
    blocks = block_lengths(returns, lengths)
    assert blocks.tolist() == [mean_block_length(returns[i, :n]) for i, n in enumerate(lengths)]
    assert (blocks >= 1).all() and blocks.max() > 3  # the remembering series get longer blocks


def test_sharpe_interval_is_seeded_independent_of_neighbours_and_covers_the_estimate():
    series = _series()
    m, n = pack(series)
    low, high = sharpe_interval(m, n, 252.0, seed=0)
    low2, high2 = sharpe_interval(m[:2], n[:2], 252.0, seed=0)
    np.testing.assert_array_equal(low[:2], low2)
    np.testing.assert_array_equal(high[:2], high2)
    other, _ = sharpe_interval(m, n, 252.0, seed=1)
    assert not np.array_equal(low, other)
    sharpe = series_statistics(m, n, 252.0)["sharpe"]
    assert (low < sharpe).all() and (sharpe < high).all()
    # a long, clearly positive series has an interval above 0; iid noise one around 0
    rng = np.random.default_rng(5)
    m2, n2 = pack([rng.normal(0.003, 0.01, 1000), rng.normal(0.0, 0.01, 1000)])
    lo, hi = sharpe_interval(m2, n2, 252.0)
    assert lo[0] > 0 and lo[1] < 0 < hi[1]


def test_sharpe_interval_of_a_series_is_the_same_bits_in_any_company():
    # hundreds of series of one length and block share matrix products; a series' interval must not
    # depend on how many others (or which) share them: BLAS may round by the product's shape
    rng = np.random.default_rng(12)
    m = rng.normal(0.0005, 0.01, (600, 120))
    n, blocks = np.full(600, 120), np.full(600, 2)
    low, high = sharpe_interval(m, n, 252.0, blocks=blocks)
    for i in (0, 255, 256, 599):
        alone = sharpe_interval(m[i : i + 1], n[i : i + 1], 252.0, blocks=blocks[i : i + 1])
        assert (alone[0][0], alone[1][0]) == (low[i], high[i])
    order = rng.permutation(600)
    shuffled = sharpe_interval(m[order], n, 252.0, blocks=blocks)
    np.testing.assert_array_equal(shuffled[0], low[order])
    np.testing.assert_array_equal(shuffled[1], high[order])


def test_bootstrap_replicate_sharpe_equals_the_resampled_series():
    # the count-matrix shortcut is the Sharpe of the series read at the replicate's days
    rng = np.random.default_rng(11)
    r = rng.normal(0.001, 0.01, 40)
    counts = stationary_counts(40, 1, 4.0, np.random.default_rng(2))[0]
    resampled = np.repeat(r, counts.astype(int))
    m, n = pack([resampled])
    direct = series_statistics(m, n, 252.0)["sharpe"][0]
    mean = r @ counts / 40
    var = ((r - mean) ** 2) @ counts / 39
    assert mean / math.sqrt(var) * math.sqrt(252) == pytest.approx(direct, rel=1e-12)


def test_probabilistic_sharpe_formula_matches_quantstats(computed):
    # quantstats estimates skewness / kurtosis with pandas' bias-corrected estimators (ours are the
    # moment estimators of the paper); given the same moments the PSR formula must agree exactly
    series, _, _ = computed
    for r in series:
        s = pd.Series(r, index=pd.bdate_range("2020-01-01", periods=len(r)))
        g3, g4 = s.skew(), s.kurt() + 3.0
        sr = r.mean() / r.std(ddof=1)
        mine = probabilistic_sharpe(np.array([sr]), np.array([len(r)]), np.array([g3]), np.array([g4]))[0]
        assert mine == pytest.approx(qs_stats.probabilistic_sharpe_ratio(s), rel=1e-9)


def test_bootstrap_tables_kept_per_process_equal_fresh_ones_and_stay_read_only():
    from totowalk.backtest.stats import bootstrap

    kept = bootstrap._seeded_counts(3, 40, 200, 2)
    assert kept is bootstrap._seeded_counts(3, 40, 200, 2)  # computed once
    fresh = bootstrap.stationary_counts(40, 200, 2, np.random.default_rng([3, 40, 2]))
    np.testing.assert_array_equal(kept, fresh)
    with pytest.raises(ValueError, match="read-only"):
        kept[0, 0] = 1.0
    big = 1 + bootstrap._CACHED_TABLE_BYTES // (8 * 200)  # too large to keep: recomputed, same values
    assert bootstrap._seeded_counts(3, big, 200, 2) is not bootstrap._seeded_counts(3, big, 200, 2)
