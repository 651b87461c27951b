"""totowalk.compat: the classic pipeline's predict() on top of the engine."""

import numpy as np
import pytest
import torch

from totowalk.compat import TotoPipeline
from totowalk.engine import ForecastEngine
from totowalk.model import TotoConfig, build_model


@pytest.fixture(scope="module")
def engine():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: threads only contend on a loaded 2-core machine
    yield ForecastEngine(build_model(TotoConfig.preset("toto-tiny"), seed=0), num_samples=64, seed=3)
    torch.set_num_threads(threads)


def test_compat_pipeline_matches_classic_layout(engine):
    pipeline = TotoPipeline(engine)
    ctx = torch.tensor(np.cumsum(np.random.default_rng(14).standard_normal(120)), dtype=torch.float32)
    one = pipeline.predict(context=ctx, prediction_length=1, num_samples=64, samples_per_batch=32)
    assert len(one) == 1 and one[0].numpy().shape == (64,)
    np.testing.assert_array_equal(one[0].numpy(), engine.forecast([ctx.numpy()], return_samples=True).samples[0, 0])
    rows = pipeline.predict(context=torch.stack([ctx, ctx + 1]), prediction_length=3, num_samples=64)
    assert len(rows) == 2 and rows[1].numpy().shape == (64, 3)


def test_compat_rejects_bad_context_shape(engine):
    with pytest.raises(ValueError, match=r"context: expected shape \(T,\) or \(B, T\)"):
        TotoPipeline(engine).predict(context=np.ones((2, 2, 5)), prediction_length=1, num_samples=8)
