"""CUDA-graph forward in the engine: identical results to the eager forward, per bucket shape."""

import numpy as np
import pytest
import torch

from totowalk.engine import ForecastEngine
from totowalk.model import TotoConfig, build_model

AGGREGATES = ("mean", "trimmed_mean_10", "band", "expected")


def _contexts(seed, lengths):
    rng = np.random.default_rng(seed)
    return [np.cumsum(rng.normal(0, 1, n)).astype(np.float32) for n in lengths]


def _assert_same(a, b):
    for name in AGGREGATES:
        np.testing.assert_allclose(a.stats[name], b.stats[name], rtol=1e-6, atol=1e-7, err_msg=name)
    for field in ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale"):
        np.testing.assert_allclose(
            getattr(a.params, field), getattr(b.params, field), rtol=1e-6, atol=1e-7, err_msg=field
        )


def test_cuda_graphs_flag_is_ignored_off_cuda():
    model = build_model(TotoConfig.preset("toto-tiny"), seed=0)
    contexts = _contexts(0, [70, 130, 200])
    graphed = ForecastEngine(model, num_samples=64, seed=1, cuda_graphs=True)
    eager = ForecastEngine(model, num_samples=64, seed=1)
    assert graphed._graphs is None  # CPU: the eager forward runs
    _assert_same(graphed.forecast(contexts, aggregate=AGGREGATES), eager.forecast(contexts, aggregate=AGGREGATES))


@pytest.mark.cuda
def test_graph_replay_equals_eager_and_follows_new_inputs():
    model = build_model(TotoConfig.preset("toto-tiny"), seed=0).to("cuda")
    graphed = ForecastEngine(model, num_samples=128, seed=3, cuda_graphs=True)
    eager = ForecastEngine(model, num_samples=128, seed=3)
    first = _contexts(1, [100, 120, 300, 310, 1000])  # buckets of 2, 5 and 16 patches
    second = _contexts(2, [90, 128, 260, 320, 990])  # the same bucket shapes, other values
    for contexts in (first, second):  # the second call replays the captured graphs
        _assert_same(
            graphed.forecast(contexts, prediction_length=7, aggregate=AGGREGATES),
            eager.forecast(contexts, prediction_length=7, aggregate=AGGREGATES),
        )
    assert len(graphed._graphs) == 3
    torch.cuda.synchronize()


@pytest.mark.cuda
def test_prefix_shared_batches_replay_as_graphs_and_equal_eager():
    model = build_model(TotoConfig.preset("toto-tiny"), seed=0).to("cuda")
    graphed = ForecastEngine(model, num_samples=128, seed=3, cuda_graphs=True)
    eager = ForecastEngine(model, num_samples=128, seed=3)
    for seed in (4, 5):  # the second call replays the graphs captured by the first
        series = _contexts(seed, [1200])[0]
        contexts = [series[:e] for e in [1200 - 64 * k for k in range(10)] + [1000, 936, 40]]
        _assert_same(
            graphed.forecast(contexts, prediction_length=3, aggregate=AGGREGATES),
            eager.forecast(contexts, prediction_length=3, aggregate=AGGREGATES),
        )
        if seed == 4:
            captured = len(graphed._graphs)
    assert captured == len(graphed._graphs) >= 2
    assert any(key[0] == "forecast_params_at" for key in graphed._graphs._graphs)
    torch.cuda.synchronize()
