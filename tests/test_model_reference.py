"""A model loaded from a weights file travels to a Ray worker as a reference to that file (the
worker loads it, its sha256 checked), not as its weights; one built in memory travels whole."""

from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import pytest
import torch

import totowalk as tw
from totowalk.backtest.forecast.forecasters import EngineForecaster
from totowalk.backtest.forecast.ray_executor import shipped
from totowalk.errors import CheckpointError
from totowalk.loading import load_model, model_reference
from totowalk.model.checkpoint import build_model, save_checkpoint
from totowalk.model.resolve import random_config


@pytest.fixture()
def saved(tmp_path):
    """A random toto-tiny written as a checkpoint folder, and that folder."""
    folder = save_checkpoint(build_model(random_config("toto-tiny"), seed=3), tmp_path / "tiny")
    return folder


def _forecasts(forecaster):
    rng = np.random.default_rng(0)
    contexts = [np.cumsum(rng.normal(size=n)).astype(np.float32) for n in (40, 57, 64)]
    result = forecaster.engine.forecast(contexts, prediction_length=1, aggregate=("mean", "median"))
    return {k: np.asarray(v) for k, v in result.stats.items()}


def test_a_file_loaded_model_ships_as_its_reference_and_computes_the_same(saved):
    forecaster = EngineForecaster(tw.ForecastEngine(load_model(saved), num_samples=8, seed=0))
    sent = shipped(forecaster)
    whole = len(pickle.dumps(forecaster))
    light = len(pickle.dumps(sent))
    assert light < whole / 5, (light, whole)  # no weights inside
    restored = pickle.loads(pickle.dumps(sent)).restore()
    assert restored.describe() == forecaster.describe()  # same digest, precision, settings
    want, got = _forecasts(forecaster), _forecasts(restored)
    assert want.keys() == got.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])
    assert shipped(forecaster, ship_weights=True) is forecaster


def test_a_model_built_in_memory_ships_whole():
    forecaster = EngineForecaster(tw.ForecastEngine(build_model(random_config("toto-tiny"), seed=1)))
    assert shipped(forecaster) is forecaster
    assert model_reference(forecaster.engine.model) is None


def test_a_file_rewritten_after_loading_is_not_referenced(saved):
    model = load_model(saved)
    weights = saved / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as if written again
    assert model_reference(model) is None


def test_a_worker_refuses_weights_whose_digest_differs(saved):
    reference = model_reference(load_model(saved))
    forged = dataclasses.replace(reference, sha256="0" * 64)
    with pytest.raises(CheckpointError, match=r"model\.safetensors has sha256 [0-9a-f]{64}, not the driver's 0{64}"):
        forged.load()


def test_a_worker_without_the_file_says_where_it_looked(saved, tmp_path):
    reference = dataclasses.replace(
        model_reference(load_model(saved)), path=str(tmp_path / "elsewhere" / "model.safetensors"), spec="no-such"
    )
    with pytest.raises(
        CheckpointError, match=r"cannot read the weights the driver loaded .*elsewhere.*ship_weights=True"
    ):
        reference.load()


def test_the_reference_keeps_the_precision_and_loads_it(saved):
    with pytest.warns(UserWarning, match="bf16"):  # the driver is told the precision is not gated
        reference = model_reference(load_model(saved, precision="bf16"))
    assert reference.precision == "bf16"
    assert os.path.isabs(reference.path)
    model = reference.load()  # the worker is not told again (warnings are errors here)
    assert next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).weight.dtype == torch.bfloat16
