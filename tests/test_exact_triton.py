"""The exact statistics' Triton kernel equals the host loop (csrc/mixture_exact.cpp) to 1e-9, row
for row: means, standard deviations, quantiles and partial expectations, on ordinary and extreme
mixtures (runs in Triton's interpreter without a GPU, compiled on one)."""

from _triton import require_triton

require_triton()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from totowalk.kernels.mixture_exact import mixture_summary  # noqa: E402

pytest.importorskip("totowalk._C")

LEVELS = [0.001, 0.1, 0.4, 0.5, 0.6, 0.9, 0.999]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _mixtures(rows: int, components: int, seed: int, df_range=(1.2, 60.0)):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(components), size=rows)
    df = np.exp(rng.uniform(np.log(df_range[0]), np.log(df_range[1]), size=(rows, components)))
    loc = rng.normal(0, 1, size=(rows, components)) * 10.0 ** rng.uniform(-3, 1, size=(rows, 1))
    scale = np.exp(rng.normal(-2, 1.5, size=(rows, components)))
    return [torch.tensor(a, dtype=torch.float64) for a in (weights, df, loc, scale)]


def _on_device(params):
    """The kernel's inputs where it runs: the card, or the CPU under the interpreter."""
    return [p.to(DEVICE) for p in params]


def _agree(params, levels=LEVELS):
    host = mixture_summary(*params, levels, backend="native")
    kernel = mixture_summary(*_on_device(params), levels, backend="triton")
    quantiles = mixture_summary(*params, [0.01, 0.99], backend="native")[2]
    width = (quantiles[:, 1] - quantiles[:, 0])[:, None]  # the distribution's own scale
    for name, want, got in zip(("mean", "std", "quantile", "partial"), host, kernel):
        got = got.cpu()
        assert got.shape == want.shape, name
        finite = torch.isfinite(want)
        assert torch.equal(finite, torch.isfinite(got)) and torch.equal(got[~finite], want[~finite]), name
        scale = (width if want.dim() == 2 else width[:, 0]).expand_as(want)
        error = ((got - want).abs() / scale)[finite]
        assert (error <= 1e-9).all(), (name, error.max())


def test_the_kernel_equals_the_host_loop_on_ordinary_mixtures():
    _agree(_mixtures(16, 24, seed=0, df_range=(2.2, 6.0)))  # Toto's shape: 24 components, df 2-6


def test_the_kernel_equals_the_host_loop_at_extreme_degrees_of_freedom_and_scales():
    params = _mixtures(16, 5, seed=1, df_range=(1.05, 1e4))
    params[0][0] = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # one component
    params[0][1, 2] = 0.0  # a component without weight
    params[2][3] = torch.tensor([-1e3, 0.0, 1e3, 5.0, -5.0], dtype=torch.float64)  # far apart
    params[3][4] = torch.tensor([1e-6, 1.0, 1e3, 1e-3, 10.0], dtype=torch.float64)
    _agree(params, [0.001, 0.5, 0.999])


def test_a_nearly_normal_component():
    params = [torch.tensor(a, dtype=torch.float64) for a in ([[0.6, 0.4]], [[1e6, 3.0]], [[0.0, 1.0]], [[1.0, 0.5]])]
    _agree(params, [0.5])  # the fraction takes hundreds of terms at df = 1e6


def test_rows_past_one_block_and_no_levels():
    params = _mixtures(19, 3, seed=4)  # two programs, the second mostly padding
    _agree(params, [0.25])
    mean, std, quantile, partial = mixture_summary(*_on_device(params), [], backend="triton")
    assert quantile.shape == partial.shape == (19, 0)
    np.testing.assert_allclose(mean.cpu(), mixture_summary(*params, [], backend="native")[0], rtol=1e-12)


def test_a_row_that_does_not_converge_is_named(monkeypatch):
    from totowalk.kernels import mixture_exact_triton

    monkeypatch.setattr(mixture_exact_triton, "_MAX_NEWTON", 1)  # no row converges in one step
    with pytest.raises(RuntimeError, match="failed to converge for row 0"):
        mixture_summary(*_on_device(_mixtures(2, 3, seed=5)), [0.3], backend="triton")


def test_an_engine_on_the_triton_backend_equals_the_host_loop():
    # ForecastEngine(statistics_backend="triton") computes every exact aggregate with the kernel on
    # the engine's device; the forecasts agree with the host loop's to 1e-9 of their scale.
    from totowalk.engine import ForecastEngine
    from totowalk.model import TotoConfig, build_model

    model = build_model(TotoConfig.preset("toto-tiny"), seed=0)
    rng = np.random.default_rng(0)
    contexts = [100.0 + np.cumsum(rng.normal(0, 1, n)) for n in (70, 96, 130)]
    aggregate = ("mean", "median", "trimmed_mean_10", "p10", "band", "std")
    results = {
        backend: ForecastEngine(model, device=DEVICE, estimator="exact", statistics_backend=backend).forecast(
            contexts, prediction_length=2, aggregate=aggregate
        )
        for backend in ("native", "triton")
    }
    scale = np.asarray(results["native"].stats["std"])
    for name in aggregate:
        want, got = np.asarray(results["native"].stats[name]), np.asarray(results["triton"].stats[name])
        assert got.shape == want.shape == (3, 2), name
        assert (np.abs(got - want) <= 1e-9 * scale).all(), (name, np.abs(got - want).max())


def test_an_engine_refuses_a_statistics_backend_that_cannot_run(monkeypatch):
    from totowalk.engine import ForecastEngine
    from totowalk.model import TotoConfig, build_model

    model = build_model(TotoConfig.preset("toto-tiny"), seed=0)
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'native', 'torch', 'triton'; got 'gpu'"):
        ForecastEngine(model, estimator="exact", statistics_backend="gpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        with pytest.raises(ValueError, match="runs on a CUDA device"):
            ForecastEngine(model, device="cpu", estimator="exact", statistics_backend="triton")


def test_without_waiting_a_row_that_does_not_converge_is_nan_and_the_engine_names_its_request(monkeypatch):
    # wait=False (the engine's path on a card) reads nothing back: the row comes back NaN, and the
    # engine's collector names the request when it reads the batch
    from totowalk.engine import ForecastEngine
    from totowalk.kernels import mixture_exact_triton
    from totowalk.model import TotoConfig, build_model

    params = _mixtures(3, 3, seed=6)
    monkeypatch.setattr(mixture_exact_triton, "_MAX_NEWTON", 1)
    mean, std, quantile, partial = mixture_summary(*_on_device(params), [0.3], backend="triton", wait=False)
    assert torch.isnan(quantile).all() and torch.isnan(mean).all() and torch.isnan(partial).all()
    model = build_model(TotoConfig.preset("toto-tiny"), seed=0)
    engine = ForecastEngine(model, device=DEVICE, estimator="exact", statistics_backend="triton")
    with pytest.raises(RuntimeError, match=r"request 0 \(and 1 more\): the exact statistics .* did not converge"):
        engine.forecast([np.arange(80.0), np.arange(90.0) ** 0.5], aggregate=("median",))
