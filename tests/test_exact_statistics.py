"""Exact predictive statistics: the Student-T functions and the mixture summaries against scipy
(and mpmath), both backends against each other, and the sampled estimator converging to them."""

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate, optimize, special
from scipy import stats as scipy_stats

from totowalk.aggregation import aggregate_numpy, parse_aggregate
from totowalk.kernels import exact_statistics, mixture_summary, sample_and_reduce
from totowalk.kernels.student_t import (
    log_beta_half,
    regularized_incomplete_beta,
    student_t_cdf,
    student_t_partial_expectation,
)

EXACT_NAMES = (
    "mean",
    "expected",
    "std",
    "median",
    "p10",
    "p90",
    "quantile_0.35",
    "band",
    "trimmed_mean_10",
    "trimmed_mean_25",
    "lower_trimmed_mean_20",
    "upper_trimmed_mean_15",
    "mean_minus_std_0.5",
    "mean_plus_std_1.5",
    "mean_quantile_mix_0.4_0.3",
)
DF_GRID = (2.0 + 1e-6, 2.05, 2.5, 4.0, 7.3, 30.0, 300.0, 1e4, 1e6)


def _specs(names=EXACT_NAMES):
    return [parse_aggregate(n, extended=True) for n in names]


def _t64(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


# ------------------------------------------------------------------ the Student-T functions
@pytest.mark.parametrize("df", DF_GRID)
def test_student_t_cdf_matches_scipy(df):
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.standard_normal(400) * 3, [0.0, 1e-9, -1e-9, 7.5, -40.0, 1e3, -1e4]])
    got = student_t_cdf(_t64(t), _t64(df)).numpy()
    # Slowly converging fractions near the symmetry switch lose a few ulps per term at df ~ 1e6
    # (measured 2.3e-12 there, mpmath-confirmed); elsewhere the error is ~1e-15.
    np.testing.assert_allclose(got, scipy_stats.t.cdf(t, df), rtol=0, atol=1e-11 if df > 1e4 else 1e-13)
    # Far lower tail: relative accuracy, not just absolute (the tail is computed directly).
    far = np.array([-30.0, -200.0])
    np.testing.assert_allclose(
        student_t_cdf(_t64(far), _t64(df)).numpy(), scipy_stats.t.cdf(far, df), rtol=1e-9, atol=1e-300
    )


def test_student_t_cdf_against_mpmath_at_extremes():
    mpmath.mp.dps = 40
    for df, t in ((2.000001, -3.0), (2.000001, 250.0), (1e6, 1.3), (1e6, -6.0), (3.7, -1e5)):
        n, x = mpmath.mpf(df), mpmath.mpf(t)
        # P(T <= t) = I_{df/(df+t^2)}(df/2, 1/2) / 2 for t < 0 (and 1 minus that for t > 0)
        half_tail = mpmath.betainc(n / 2, mpmath.mpf(1) / 2, 0, n / (n + x * x), regularized=True) / 2
        expected = float(half_tail if t < 0 else 1 - half_tail)
        got = student_t_cdf(_t64(t), _t64(df)).item()
        assert got == pytest.approx(expected, rel=1e-10, abs=1e-15), (df, t)


def test_incomplete_beta_and_log_beta_match_scipy():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 300)
    a = rng.uniform(0.2, 40, 300)
    b = rng.uniform(0.2, 40, 300)
    got = regularized_incomplete_beta(_t64(x), _t64(a), _t64(b)).numpy()
    np.testing.assert_allclose(got, special.betainc(a, b, x), rtol=1e-11, atol=1e-14)
    # mpmath, not scipy: scipy's betaln is off by 2e-10 at a = 5e5.
    mpmath.mp.dps = 40
    big = [0.3, 5.0, 150.0, 199.9, 200.0, 2e3, 5e5, 1e7]
    expected = [float(mpmath.log(mpmath.beta(a, mpmath.mpf(1) / 2))) for a in big]
    np.testing.assert_allclose(log_beta_half(_t64(big)).numpy(), expected, rtol=0, atol=2e-13)


@pytest.mark.parametrize("df", (2.0 + 1e-6, 2.7, 12.0, 1e5))
def test_partial_expectation_matches_quadrature(df):
    for t in (-4.0, -0.3, 0.0, 2.2):
        expected, _ = integrate.quad(lambda u: u * scipy_stats.t.pdf(u, df), -np.inf, t, epsabs=1e-13, limit=200)
        got = student_t_partial_expectation(_t64(t), _t64(df)).item()
        assert got == pytest.approx(expected, rel=1e-8, abs=1e-10)


# ------------------------------------------------------------------ mixtures against scipy
def _oracle(w, df, loc, scale, a, b, name):
    """Population value of one aggregate by scipy root finding and quadrature, data space."""
    w = np.asarray(w, dtype=np.float64) / np.sum(w)
    keep = w > 0
    w, df, loc, scale = w[keep], np.asarray(df)[keep], np.asarray(loc)[keep], np.asarray(scale)[keep]

    def cdf(y):
        return float(np.sum(w * scipy_stats.t.cdf((y - loc) / scale, df)))

    def partial(y):  # E[Y 1{Y <= y}], componentwise closed form checked against quad above
        t = (y - loc) / scale
        pe = -(df + t * t) / (df - 1) * scipy_stats.t.pdf(t, df)
        return float(np.sum(w * (loc * scipy_stats.t.cdf(t, df) + scale * pe)))

    mean = float(np.sum(w * loc))
    var = float(np.sum(w * (scale**2 * df / (df - 2) + loc**2))) - mean**2
    std = math.sqrt(max(var, 0.0))

    def quantile(q):
        span = np.max(np.abs(loc)) + np.max(scale) * 10
        lo, hi = -span, span
        while cdf(lo) > q:
            lo *= 2
        while cdf(hi) < q:
            hi *= 2
        return optimize.brentq(lambda y: cdf(y) - q, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=500)

    spec = parse_aggregate(name, extended=True)
    kind, p = spec.kind, spec.params
    if kind in ("mean", "expected"):
        y = mean
    elif kind == "std":
        return b * std
    elif kind == "median":
        y = quantile(0.5)
    elif kind == "quantile":
        y = quantile(p[0])
    elif kind == "band":
        return b * (quantile(0.6) - quantile(0.4))
    elif kind == "trimmed_mean":
        y = (partial(quantile(1 - p[0])) - partial(quantile(p[0]))) / (1 - 2 * p[0])
    elif kind == "lower_trimmed_mean":
        y = partial(quantile(1 - p[0])) / (1 - p[0])
    elif kind == "upper_trimmed_mean":
        y = (mean - partial(quantile(p[0]))) / (1 - p[0])
    elif kind == "mean_minus_std":
        y = mean - p[0] * std
    elif kind == "mean_plus_std":
        y = mean + p[0] * std
    elif kind == "mean_quantile_mix":
        y = p[1] * mean + (1 - p[1]) * quantile(p[0])
    return a + b * y


def _mixture_cases():
    rng = np.random.default_rng(7)
    k = 6
    cases = []
    for df in DF_GRID:
        cases.append(
            (
                "df=%g" % df,
                rng.dirichlet(np.ones(k)),
                np.full(k, df),
                rng.normal(0, 0.3, k),
                rng.uniform(0.3, 1.5, k),
                0.01,
                0.02,
            )
        )
    dominant = np.full(k, 1e-12)
    dominant[2] = 1.0
    cases.append(
        ("one component ~1", dominant, rng.uniform(2.2, 40, k), rng.normal(0, 1, k), rng.uniform(0.5, 2, k), 100.0, 3.0)
    )
    cases.append(
        (
            "tiny scales",
            rng.dirichlet(np.ones(k)),
            rng.uniform(2.5, 9, k),
            rng.normal(0, 1e-8, k),
            rng.uniform(1e-9, 2e-9, k),
            1e-3,
            1.0,
        )
    )
    cases.append(
        (
            "huge scales",
            rng.dirichlet(np.ones(k)),
            rng.uniform(2.5, 9, k),
            rng.normal(0, 1e7, k),
            rng.uniform(1e8, 3e8, k),
            -5.0,
            1e3,
        )
    )
    # (weights chosen so that no level of interest falls in the flat valley between modes, where
    # every point is a quantile to within the tolerance)
    cases.append(
        (
            "separated modes",
            np.array([0.3, 0.25, 0.45, 0, 0, 0]),
            rng.uniform(3, 30, k),
            np.array([-40.0, 0.0, 35.0, 1.0, 2.0, 3.0]),
            rng.uniform(0.5, 1.0, k),
            0.0,
            1.0,
        )
    )
    cases.append(
        (
            "mixed df",
            rng.dirichlet(np.ones(k)),
            np.array([2.000001, 2.3, 5.0, 60.0, 1e4, 1e6]),
            rng.normal(0, 0.5, k),
            rng.uniform(0.2, 2, k),
            1.0,
            0.5,
        )
    )
    return cases


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_mixture_aggregates_match_scipy_within_1e_7_std(backend):
    if backend == "native":
        pytest.importorskip("totowalk._C")
    for label, w, df, loc, scale, a, b in _mixture_cases():
        got = exact_statistics(
            _t64([w]), _t64([df]), _t64([loc]), _t64([scale]), _t64([a]), _t64([b]), _specs(), backend=backend
        )
        std = _oracle(w, df, loc, scale, a, b, "std")
        # For df -> 2 the std diverges; the tolerance then follows a robust spread (the IQR).
        spread = min(std, 3 * _oracle(w, df, loc, scale, 0.0, b, "p90") - 3 * _oracle(w, df, loc, scale, 0.0, b, "p10"))
        for name in EXACT_NAMES:
            expected = _oracle(w, df, loc, scale, a, b, name)
            value = got[name].item()
            if name in ("std", "mean_minus_std_0.5", "mean_plus_std_1.5"):
                assert value == pytest.approx(expected, rel=1e-9), (label, name)
            else:
                assert abs(value - expected) <= 1e-7 * spread, (label, name, value, expected)


def test_native_and_torch_backends_agree():
    pytest.importorskip("totowalk._C")
    rng = np.random.default_rng(3)
    n, k = 300, 24
    params = (
        _t64(rng.dirichlet(np.ones(k) * 0.3, n)),
        _t64(2 + rng.exponential(8, (n, k))),
        _t64(rng.normal(0, 0.4, (n, k))),
        _t64(rng.uniform(0.1, 2, (n, k))),
    )
    levels = [0.1, 0.4, 0.5, 0.6, 0.9]
    native = mixture_summary(*params, levels, backend="native")
    reference = mixture_summary(*params, levels, backend="torch")
    std = reference[1]
    for got, want in zip(native, reference):
        scale = std[:, None] if got.ndim == 2 else std
        assert float(((got - want).abs() / scale).max()) < 1e-9


def test_quantile_residuals_meet_the_tolerance():
    rng = np.random.default_rng(4)
    n, k = 50, 24
    w, df = rng.dirichlet(np.ones(k), n), 2 + rng.exponential(5, (n, k))
    loc, scale = rng.normal(0, 1, (n, k)), rng.uniform(0.1, 3, (n, k))
    levels = [0.001, 0.1, 0.6, 0.999]
    _, _, quantile, _ = mixture_summary(_t64(w), _t64(df), _t64(loc), _t64(scale), levels)
    for row in range(n):
        for j, q in enumerate(levels):
            cdf = np.sum(w[row] * scipy_stats.t.cdf((quantile[row, j].item() - loc[row]) / scale[row], df[row]))
            assert abs(cdf - q) <= 1e-10


def test_support_ends_and_undefined_trims():
    w, df, loc, scale = _t64([[0.5, 0.5]]), _t64([[3.0, 4.0]]), _t64([[0.0, 1.0]]), _t64([[1.0, 1.0]])
    out = exact_statistics(w, df, loc, scale, _t64([0.0]), _t64([1.0]), _specs(("p0", "p100", "trimmed_mean_0")))
    assert out["p0"].item() == -math.inf and out["p100"].item() == math.inf
    assert out["trimmed_mean_0"].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="keeps no probability mass"):
        exact_statistics(w, df, loc, scale, _t64([0.0]), _t64([1.0]), _specs(("lower_trimmed_mean_100",)))
    with pytest.raises(ValueError, match="row 0"):
        exact_statistics(w, _t64([[1.0, 4.0]]), loc, scale, _t64([0.0]), _t64([1.0]), _specs(("mean",)))
    # a weighted component with df <= 2 has no finite std: zero multiples of it are the mean, others infinite
    heavy = _t64([[1.5, 4.0]])
    out = exact_statistics(w, heavy, loc, scale, _t64([0.0]), _t64([1.0]), _specs(("mean", "mean_minus_std_0", "std")))
    assert out["mean_minus_std_0"].item() == out["mean"].item() == pytest.approx(0.5)
    assert out["std"].item() == math.inf


# ------------------------------------------------------------------ the sampled estimator converges
def test_sampled_estimator_at_65536_lands_within_5_standard_errors():
    rng = np.random.default_rng(11)
    n, k, s, parts = 6, 24, 65_536, 16
    w = torch.tensor(rng.dirichlet(np.ones(k) * 0.5, n), dtype=torch.float32)
    df = torch.tensor(3 + rng.exponential(6, (n, k)), dtype=torch.float32)
    loc = torch.tensor(rng.normal(0, 0.3, (n, k)), dtype=torch.float32)
    scale = torch.tensor(rng.uniform(0.2, 1.5, (n, k)), dtype=torch.float32)
    a, b = (
        torch.tensor(rng.normal(0, 1, n), dtype=torch.float32),
        torch.tensor(rng.uniform(0.5, 2, n), dtype=torch.float32),
    )
    names = ("mean", "median", "trimmed_mean_10", "p10", "p90", "band", "std")
    exact = exact_statistics(w, df, loc, scale, a, b, _specs(names))
    _, samples = sample_and_reduce(
        w, df, loc, scale, a, b, torch.arange(n), s, [], seed=5, return_samples=True, backend="torch"
    )
    draws = samples.double().numpy()
    for name in names:
        full = aggregate_numpy(draws, name)
        # Standard error from 16 independent batch estimates (batch-means), scaled to the full S.
        batches = np.stack([aggregate_numpy(part, name) for part in np.split(draws, parts, axis=1)])
        standard_error = batches.std(axis=0, ddof=1) / math.sqrt(parts)
        z = np.abs(full - exact[name].numpy()) / standard_error
        assert np.all(z < 5), (name, z)


@pytest.mark.cuda
def test_cuda_matches_cpu_within_1e_6_std():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    rng = np.random.default_rng(9)
    n, k = 2048, 24
    params = [
        _t64(rng.dirichlet(np.ones(k) * 0.3, n)),
        _t64(2 + rng.exponential(8, (n, k))),
        _t64(rng.normal(0, 0.4, (n, k))),
        _t64(rng.uniform(0.1, 2, (n, k))),
    ]
    affine = [_t64(rng.normal(0, 1, n)), _t64(rng.uniform(0.01, 2, n))]
    specs = _specs()
    cpu = exact_statistics(*params, *affine, specs)
    on_card = [t.cuda() for t in params + affine]
    # the torch iteration on the card, and the default there (the C++ loop on the host, results
    # returned on the card)
    for backend in ("torch", "auto"):
        gpu = exact_statistics(*on_card, specs, backend=backend)
        std = cpu["std"]
        for name in EXACT_NAMES:
            assert gpu[name].device.type == "cuda"
            assert float(((gpu[name].cpu() - cpu[name]).abs() / std).max()) < 1e-6, (backend, name)
