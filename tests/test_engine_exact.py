"""ForecastEngine with estimator='exact': seed-, S- and batch-independent population statistics that
equal the kernel applied to the returned parameters, and the refusals that keep it honest."""

import numpy as np
import pytest
import torch

from totowalk.aggregation import parse_aggregate
from totowalk.engine import ForecastEngine
from totowalk.kernels import exact_statistics
from totowalk.model import TotoConfig, build_model

NAMES = (
    "mean",
    "expected",
    "std",
    "median",
    "trimmed_mean_10",
    "band",
    "p10",
    "quantile_0.35",
    "lower_trimmed_mean_20",
    "mean_quantile_mix_0.4_0.3",
)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def model():
    return build_model(TotoConfig.preset("toto-tiny"), seed=0)


def _series(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [np.cumsum(rng.standard_normal(n)) * rng.uniform(0.1, 5) + rng.uniform(-10, 10) for n in lengths]


def test_exact_results_ignore_seed_samples_and_batching(model):
    contexts = _series([5, 64, 65, 300, 129, 700, 40], seed=1)
    base = ForecastEngine(model, num_samples=64, seed=0, estimator="exact").forecast(
        contexts, prediction_length=3, aggregate=NAMES
    )
    others = [
        ForecastEngine(model, num_samples=7, seed=123, estimator="exact").forecast(
            contexts, prediction_length=3, aggregate=NAMES
        ),
        ForecastEngine(model, num_samples=64, seed=0, estimator="exact", max_batch_tokens=2).forecast(
            contexts, prediction_length=3, aggregate=NAMES
        ),
    ]
    for other in others:
        for name in NAMES:
            np.testing.assert_array_equal(other.stats[name], base.stats[name], err_msg=name)
    # Each context alone (other neighbours, other buckets) gives the same values up to float rounding
    # of the forward pass; the statistics themselves add none.
    std = base.stats["std"]
    for i, ctx in enumerate(contexts):
        alone = ForecastEngine(model, estimator="exact").forecast([ctx], prediction_length=3, aggregate=NAMES)
        for name in NAMES:
            assert np.max(np.abs(alone.stats[name][0] - base.stats[name][i]) / std[i]) < 1e-5, (i, name)


def test_exact_equals_the_kernel_on_the_returned_parameters(model):
    contexts = _series([80, 250, 400], seed=2)
    res = ForecastEngine(model, estimator="exact").forecast(contexts, prediction_length=4, aggregate=NAMES)
    p = res.params
    b, h, k = p.weights.shape[0], p.weights.shape[2], p.weights.shape[3]

    def rows(a):
        return torch.as_tensor(a[:, 0].reshape(b * h, k))

    expanded = [torch.as_tensor(np.repeat(a[:, 0], h)) for a in (p.scaler_loc, p.scaler_scale)]
    specs = [parse_aggregate(n, extended=True) for n in NAMES]
    direct = exact_statistics(rows(p.weights), rows(p.df), rows(p.loc), rows(p.scale), *expanded, specs)
    for name in NAMES:
        np.testing.assert_allclose(res.stats[name], direct[name].numpy().reshape(b, h), rtol=1e-12, atol=0)


def test_per_call_override_and_sampled_converges_to_exact(model):
    contexts = _series([200, 333], seed=3)
    engine = ForecastEngine(model, num_samples=4096, seed=1)
    sampled = engine.forecast(contexts, prediction_length=2, aggregate=("mean", "median", "std"))
    exact = engine.forecast(contexts, prediction_length=2, aggregate=("mean", "median", "std"), estimator="exact")
    assert engine.estimator == "sampled"
    std = exact.stats["std"]
    # 4,096 draws: the mean's standard error is std / 64; allow 5 of them.
    assert np.all(np.abs(sampled.stats["mean"] - exact.stats["mean"]) < 5 * std / 64)
    assert np.all(np.abs(sampled.stats["median"] - exact.stats["median"]) < 8 * std / 64)
    assert not np.array_equal(sampled.stats["mean"], exact.stats["mean"])


def test_exact_refuses_what_it_cannot_compute(model):
    engine = ForecastEngine(model, estimator="exact")
    contexts = _series([100], seed=4)
    with pytest.raises(ValueError, match="horizons up to the patch size"):
        engine.forecast(contexts, prediction_length=65)
    with pytest.raises(ValueError, match="return_samples=True needs estimator='sampled'"):
        engine.forecast(contexts, return_samples=True)
    with pytest.raises(ValueError, match="estimator must be one of"):
        ForecastEngine(model, estimator="analytic")
    with pytest.raises(ValueError, match="estimator must be one of"):
        engine.forecast(contexts, estimator="Exact")
    # Beyond one patch the sampled estimator still serves.
    out = engine.forecast(contexts, prediction_length=65, estimator="sampled", num_samples=8)
    assert out.stats["mean"].shape == (1, 65)
