"""Classical forecast baselines (totowalk.skill.baselines): no look-ahead for any of them, the random
walk's samples, GARCH(1,1)-t recovering a known process and agreeing with arch's own forecast, ETS
on white noise, and the errors a user can cause."""

import numpy as np
import pytest

import totowalk.errors
from totowalk.errors import MissingExtraError
from totowalk.skill.baselines import BASELINES, MIN_HISTORY, Predictive, forecast_baseline

# a GARCH(1,1)-t process in fractional returns: daily-stock-like volatility, persistent clusters
TRUE_MU, TRUE_OMEGA, TRUE_ALPHA, TRUE_BETA, TRUE_NU = 3e-4, 2e-6, 0.08, 0.90, 6.0


def simulate_garch_t(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(returns, true conditional variances) of ``n`` steps of the process above."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(TRUE_NU, n) * np.sqrt((TRUE_NU - 2) / TRUE_NU)  # unit variance
    variance = np.empty(n)
    returns = np.empty(n)
    variance[0] = TRUE_OMEGA / (1 - TRUE_ALPHA - TRUE_BETA)
    for i in range(n):
        if i:
            variance[i] = TRUE_OMEGA + TRUE_ALPHA * (returns[i - 1] - TRUE_MU) ** 2 + TRUE_BETA * variance[i - 1]
        returns[i] = TRUE_MU + np.sqrt(variance[i]) * shocks[i]
    return returns, variance


def student_t_variance(p: Predictive) -> np.ndarray:
    return p.scale**2 * p.df / (p.df - 2)


def fields(p: Predictive) -> dict:
    return {k: getattr(p, k) for k in ("loc", "scale", "df", "samples") if getattr(p, k) is not None}


def require(name: str):
    if name == "garch_t":
        pytest.importorskip("arch")
    elif name == "ets":
        pytest.importorskip("statsforecast")


# -- no look-ahead ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", BASELINES)
def test_changing_returns_from_t_on_changes_no_forecast_up_to_t(name):
    require(name)
    returns, _ = simulate_garch_t(420, seed=1)
    targets = np.arange(150, 420)
    cut = 277  # inside a refit block (blocks start at 150, 170, ..., 270, 290): the block straddles it
    perturbed = returns.copy()
    perturbed[cut:] = 5 * perturbed[cut:] + np.random.default_rng(2).normal(0, 0.01, len(returns) - cut)

    before, after = (forecast_baseline(name, r, targets, window=100) for r in (returns, perturbed))
    known = targets <= cut  # target `cut` itself uses returns[:cut] only
    for key, values in fields(before).items():
        np.testing.assert_array_equal(values[known], fields(after)[key][known], err_msg=key)
    # ... while the later targets do see the change (so the comparison above could fail)
    assert any(not np.array_equal(values[~known], fields(after)[key][~known]) for key, values in fields(before).items())


@pytest.mark.parametrize("name", BASELINES)
def test_the_forecasts_are_the_same_when_the_series_ends_at_the_last_target(name):
    require(name)
    returns, _ = simulate_garch_t(400, seed=3)
    targets = np.arange(200, 260, 3)
    whole = forecast_baseline(name, returns, targets, refit_every=7)
    cut = forecast_baseline(name, returns[: targets[-1] + 1], targets, refit_every=7)
    for key, values in fields(whole).items():
        np.testing.assert_array_equal(values, fields(cut)[key], err_msg=key)


# -- random walk -----------------------------------------------------------------------------


def test_random_walk_samples_are_the_demeaned_trailing_returns():
    returns = np.random.default_rng(4).normal(0.001, 0.02, 700)
    for targets, size in (([40, 41, 100, 699], 40), ([300, 450, 699], 250)):  # size = min(window, first target)
        samples = forecast_baseline("random_walk", returns, np.array(targets)).samples
        assert samples.shape == (len(targets), size)
        for row, t in zip(samples, targets):
            trailing = returns[t - size : t]
            np.testing.assert_array_equal(row, trailing - trailing.mean())
    p = forecast_baseline("random_walk", returns, np.array([300, 301]), window=50)
    assert p.samples.shape == (2, 50) and np.max(np.abs(p.mean())) < 1e-17  # no drift


# -- GARCH(1,1)-t ----------------------------------------------------------------------------


def test_garch_t_recovers_a_known_process_and_matches_arch_forecast():
    arch = pytest.importorskip("arch")
    returns, true_variance = simulate_garch_t(3000, seed=5)
    targets = np.arange(1000, 3000)
    p = forecast_baseline("garch_t", returns, targets, refit_every=100)

    assert np.all(p.df > 2) and np.all(p.scale > 0)
    assert 4.0 < np.median(p.df) < 9.0  # nu = 6 (its estimate is loose with 1000-3000 returns)
    assert abs(np.median(p.loc) - TRUE_MU) < 5e-4
    assert np.corrcoef(student_t_variance(p), true_variance[targets])[0, 1] > 0.9

    # the last block, and a first one where the recursion's start still shows: what arch forecasts
    # with its own fit's parameters held fixed
    block = targets >= 2900
    mean, variance, nu = arch_forecast(arch, returns, targets[block])
    np.testing.assert_allclose(student_t_variance(p)[block], variance, rtol=1e-10)
    np.testing.assert_allclose(p.loc[block], mean, rtol=1e-12)
    np.testing.assert_array_equal(p.df[block], nu)
    early = np.arange(100, 112)
    _, variance, _ = arch_forecast(arch, returns, early)
    np.testing.assert_allclose(student_t_variance(forecast_baseline("garch_t", returns, early)), variance, rtol=1e-10)


def arch_forecast(arch, returns: np.ndarray, block: np.ndarray):
    """(mean, variance, nu): arch's one-step forecasts of ``returns[block]`` in fractions, arch fitted on the
    returns before the block, then its forecast over the data up to the last target with those
    parameters fixed (row i of it = the forecast of return i + 1)."""

    def model(data):
        return arch.arch_model(100 * data, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)

    params = model(returns[: block[0]]).fit(disp="off").params
    forecast = model(returns[: block[-1]]).forecast(params, horizon=1, start=block[0] - 1, reindex=False)
    assert len(forecast.variance) == len(block)
    return forecast.mean.to_numpy()[:, 0] / 100, forecast.variance.to_numpy()[:, 0] / 100**2, params["nu"]


def test_garch_t_leaves_no_warning_filter_behind():
    pytest.importorskip("arch")
    import warnings

    before = list(warnings.filters)
    forecast_baseline("garch_t", simulate_garch_t(300)[0], np.arange(200, 205))
    assert warnings.filters == before


# -- ETS -------------------------------------------------------------------------------------


def test_ets_on_white_noise_forecasts_zero_with_its_sd():
    pytest.importorskip("statsforecast")
    returns = np.random.default_rng(6).normal(0.0, 0.01, 1400)
    calls = []
    p = forecast_baseline("ets", returns, np.arange(1100, 1400), refit_every=50, progress=calls.append)
    assert np.all(np.isinf(p.df))
    assert np.max(np.abs(p.loc)) < 0.002
    np.testing.assert_allclose(p.scale, 0.01, rtol=0.1)
    assert calls == [50] * 6


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BASELINES)
def test_too_short_a_history_names_the_target_and_its_count(name):
    needed = MIN_HISTORY[name]
    returns = np.zeros(500)
    with pytest.raises(ValueError, match=rf"at least {needed} past returns.*target {needed - 1} has {needed - 1}\b"):
        forecast_baseline(name, returns, np.array([needed - 1, 400]))


def test_other_bad_inputs_say_what_is_wrong():
    returns = np.zeros(500)
    with pytest.raises(ValueError, match="unknown baseline 'arima'; choose one of random_walk, garch_t, ets"):
        forecast_baseline("arima", returns, [200])
    with pytest.raises(ValueError, match="strictly ascending"):
        forecast_baseline("random_walk", returns, [200, 100])
    with pytest.raises(ValueError, match="target 500 is past the end"):
        forecast_baseline("random_walk", returns, [200, 500])
    returns[42] = np.nan
    with pytest.raises(ValueError, match=r"returns\[42\] is nan"):
        forecast_baseline("random_walk", returns, [200])


@pytest.mark.parametrize(("name", "module"), [("garch_t", "arch"), ("ets", "statsforecast")])
def test_a_missing_library_names_the_extra_in_one_line(name, module, monkeypatch):
    real_import = totowalk.errors.import_module

    def without(requested, *args):  # as if not installed
        if requested == module:
            raise ImportError(f"No module named '{module}'")
        return real_import(requested, *args)

    monkeypatch.setattr(totowalk.errors, "import_module", without)
    with pytest.raises(MissingExtraError) as caught:
        forecast_baseline(name, np.zeros(300), np.array([200]))
    message = str(caught.value)
    assert "\n" not in message and f"the {name} baseline needs {module}" in message
    assert "pip install 'totowalk[baselines]'" in message


def test_predictive_holds_exactly_one_form():
    t = Predictive(loc=np.zeros(2), scale=np.ones(2), df=np.full(2, np.inf))
    np.testing.assert_array_equal(t.mean(), [0.0, 0.0])
    np.testing.assert_array_equal(Predictive(samples=np.array([[1.0, 3.0], [2.0, 2.0]])).mean(), [2.0, 2.0])
    with pytest.raises(ValueError, match="not both"):
        Predictive(loc=np.zeros(2), scale=np.ones(2), df=np.ones(2), samples=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="needs all of"):
        Predictive(loc=np.zeros(2))
