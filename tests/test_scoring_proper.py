"""Exact proper scores of the predicted mixtures (issue 29, item 1), held to scoringrules,
properscoring and scipy's adaptive quadrature."""

import numpy as np
import pytest
from scipy import integrate, stats

from totowalk.scoring.proper import (
    covered,
    mixture_crps,
    mixture_log_score,
    mixture_pit,
    pinball_loss,
    sample_crps,
    student_t_crps,
)

scoringrules = pytest.importorskip("scoringrules")
properscoring = pytest.importorskip("properscoring")

EXTREME_DF = np.array([2 + 1e-6, 2.001, 2.5, 3.0, 10.0, 100.0, 1e4, 1e6])


def _crps_by_quadrature(w, v, m, s, y):
    """integral of (F(x) - 1{x >= y})^2 dx by scipy's adaptive quadrature, split at y."""
    w = w / w.sum()

    def cdf(x):
        return float(np.sum(w * stats.t.cdf((x - m) / s, v)))

    below, _ = integrate.quad(lambda x: cdf(x) ** 2, -np.inf, y, epsabs=0, epsrel=1e-13, limit=1000)
    above, _ = integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, np.inf, epsabs=0, epsrel=1e-13, limit=1000)
    return below + above


def _mixture(rows, k, seed, df_low=2.05):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0.05, 1, (rows, k)),
        df_low + rng.exponential(6, (rows, k)),
        rng.normal(0, 1, (rows, k)),
        rng.uniform(0.05, 2, (rows, k)),
        rng.normal(0, 2, rows),
    )


@pytest.mark.parametrize("scale", [1e-6, 1e-2, 1.0, 1e3])
def test_one_student_t_equals_the_closed_form_of_scoringrules(scale):
    rng = np.random.default_rng(1)
    n = len(EXTREME_DF)
    loc, y = rng.normal(size=n) * scale, rng.normal(size=n) * 3 * scale
    expected = scoringrules.crps_t(y, EXTREME_DF, loc, np.full(n, scale))
    np.testing.assert_allclose(student_t_crps(loc, scale, EXTREME_DF, y), expected, rtol=1e-6)
    # the mixture path with one component takes the same closed form
    one = mixture_crps(
        np.ones((n, 1)), EXTREME_DF[:, None], loc[:, None], np.full((n, 1), scale), np.zeros(n), np.ones(n), y
    )
    np.testing.assert_allclose(one.numpy(), expected, rtol=1e-6)


def test_normal_and_ensemble_forms_equal_properscoring():
    rng = np.random.default_rng(2)
    loc, scale, y = rng.normal(size=50), rng.uniform(0.1, 3, 50), rng.normal(size=50) * 2
    np.testing.assert_allclose(
        student_t_crps(loc, scale, np.inf, y), properscoring.crps_gaussian(y, loc, scale), rtol=1e-12
    )
    draws = rng.standard_t(4, size=(50, 257))
    np.testing.assert_allclose(sample_crps(draws, y), properscoring.crps_ensemble(y, draws), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("k", "seed", "df_low"), [(2, 3, 2.05), (4, 4, 2.0 + 1e-6), (24, 5, 2.6)])
def test_a_mixture_equals_adaptive_quadrature(k, seed, df_low):
    w, v, m, s, y = _mixture(12, k, seed, df_low)
    got = mixture_crps(w, v, m, s, np.zeros(12), np.ones(12), y).numpy()
    expected = np.array([_crps_by_quadrature(w[i], v[i], m[i], s[i], y[i]) for i in range(12)])
    np.testing.assert_allclose(got, expected, rtol=1e-7)


def test_far_apart_narrow_components_and_the_affine_map():
    w = np.array([[0.7, 0.3], [0.5, 0.5]])
    v = np.array([[3.0, 50.0], [2.2, 1e5]])
    m = np.array([[0.0, 40.0], [-5.0, 5.0]])
    s = np.array([[0.01, 0.5], [0.02, 0.02]])
    a, b = np.array([0.1, -0.3]), np.array([0.02, 3.0])  # data space = a + b * y
    y = np.array([0.2, 1.0])
    got = mixture_crps(w, v, m, s, a, b, y).numpy()
    expected = [_crps_by_quadrature(w[i], v[i], a[i] + b[i] * m[i], b[i] * s[i], y[i]) for i in range(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-7)
    from totowalk.scoring.proper import mixture_scores  # the compiled loop where built

    np.testing.assert_allclose(mixture_scores(w, v, m, s, a, b, y)["crps"].numpy(), expected, rtol=1e-7)


def test_a_mixture_agrees_with_a_million_draws_within_four_standard_errors():
    w, v, m, s, y = _mixture(3, 6, 6)
    exact = mixture_crps(w, v, m, s, np.zeros(3), np.ones(3), y).numpy()
    rng = np.random.default_rng(7)
    for i in range(3):
        component = rng.choice(6, size=10**6, p=w[i] / w[i].sum())
        draws = m[i, component] + s[i, component] * rng.standard_t(v[i, component])
        batches = [sample_crps(part[None, :], y[i : i + 1])[0] for part in draws.reshape(10, -1)]
        error = np.std(batches, ddof=1) / np.sqrt(10)
        assert abs(sample_crps(draws[None, :], y[i : i + 1])[0] - exact[i]) < 4 * error


def test_pit_and_log_score_equal_scipy():
    w, v, m, s, y = _mixture(20, 5, 8)
    a, b = np.full(20, 0.5), np.full(20, 2.0)
    wn = w / w.sum(1, keepdims=True)
    xs, xl = a[:, None] + b[:, None] * m, b[:, None] * s
    pit = (wn * stats.t.cdf((y[:, None] - xs) / xl, v)).sum(1)
    density = (wn * stats.t.pdf((y[:, None] - xs) / xl, v) / xl).sum(1)
    np.testing.assert_allclose(mixture_pit(w, v, m, s, a, b, y).numpy(), pit, rtol=1e-10)
    np.testing.assert_allclose(mixture_log_score(w, v, m, s, a, b, y).numpy(), -np.log(density), rtol=1e-10)


def test_coverage_from_pit_and_pinball_loss():
    pit = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    assert list(covered(pit, 0.5)) == [False, False, True, True, True, False, False]
    assert list(covered(pit, 0.8)) == [False, True, True, True, True, True, False]
    loss = pinball_loss(np.array([[1.0, 2.0]]), [0.1, 0.9], np.array([1.5]))
    np.testing.assert_allclose(loss, [[0.1 * 0.5, 0.1 * 0.5]])  # above the 10 % quantile, below the 90 %


def test_engine_results_score_their_own_mixture():
    from totowalk.engine.forecast_engine import ForecastEngine
    from totowalk.loading import resolve_model

    engine = ForecastEngine(resolve_model("toto-mini").model, estimator="exact")
    rng = np.random.default_rng(9)
    result = engine.forecast([rng.normal(0, 0.01, n) for n in (200, 300, 90)], prediction_length=3)
    actual = rng.normal(0, 0.01, (3, 3))
    actual[1, 2] = np.nan
    scores = result.scores(actual)
    p = result.params
    for i, step in ((0, 0), (2, 1)):
        args = [x[i, 0, step][None].astype(np.float64) for x in (p.weights, p.df, p.loc, p.scale)]
        affine = [np.array([float(x[i, 0])]) for x in (p.scaler_loc, p.scaler_scale)]
        y = actual[i, step : step + 1]
        assert scores["crps"][i, step] == pytest.approx(mixture_crps(*args, *affine, y).item(), rel=1e-12)
        assert scores["pit"][i, step] == pytest.approx(mixture_pit(*args, *affine, y).item(), rel=1e-12)
    assert np.isnan(scores["crps"][1, 2]) and np.isfinite(scores["crps"][1, :2]).all()
    assert ((scores["pit"][np.isfinite(actual)] > 0) & (scores["pit"][np.isfinite(actual)] < 1)).all()
    with pytest.raises(ValueError, match="do not match the forecasts"):
        result.scores(np.zeros((2, 3)))


def test_the_compiled_loop_equals_the_torch_path():
    from totowalk._native import native
    from totowalk.scoring.proper import mixture_scores

    if not hasattr(native(), "mixture_scores"):
        pytest.skip("the extension is not built")
    w, v, m, s, y = _mixture(200, 24, 11, df_low=2.0 + 1e-6)
    v[:5, 0] = 1e6  # near-normal components too
    a, b = np.random.default_rng(12).normal(size=200), np.full(200, 0.01)
    compiled = mixture_scores(w, v, m, s, a, b, y, backend="native")
    vectorised = mixture_scores(w, v, m, s, a, b, y, backend="torch")
    for name in ("crps", "pit", "log_score"):
        np.testing.assert_allclose(compiled[name].numpy(), vectorised[name].numpy(), rtol=1e-8, atol=1e-15)
    one = mixture_scores(
        np.ones((3, 1)),
        np.array([[2.5], [30.0], [1e5]]),
        np.zeros((3, 1)),
        np.ones((3, 1)),
        np.zeros(3),
        np.ones(3),
        np.array([0.3, -1.0, 4.0]),
        backend="native",
    )
    np.testing.assert_allclose(
        one["crps"].numpy(),
        scoringrules.crps_t(np.array([0.3, -1.0, 4.0]), np.array([2.5, 30.0, 1e5]), 0.0, 1.0),
        rtol=1e-9,
    )
    bad = s.copy()
    bad[7, 3] = -1.0
    with pytest.raises(RuntimeError, match="row 7"):
        mixture_scores(w, v, m, bad, a, b, y, backend="native")
