"""ForecastEngine on a tiny random-weight Toto: batch invariance, exactness vs the classic loop,
dedupe, horizons, aggregates vs numpy, bad input, OOM splitting and the CLI."""

import dataclasses
import logging

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from totowalk.aggregation import aggregate_numpy, parse_aggregate
from totowalk.engine import ForecastEngine, reference_forecast
from totowalk.model import TotoConfig, build_model

ALL_AGGREGATES = (
    "mean",
    "median",
    "std",
    "trimmed_mean_10",
    "quantile_0.35",
    "p10",
    "p90",
    "p37",
    "band",
    "lower_trimmed_mean_20",
    "mean_minus_std_0.5",
    "mean_quantile_mix_0.4_0.3",
)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(TotoConfig.preset("toto-tiny"), seed=0)


@pytest.fixture(scope="module")
def engine(model):
    return ForecastEngine(model, num_samples=64, seed=3)


def _series(lengths, seed=0):
    """Random-walk-like series (positive scale, varied levels) of the given lengths."""
    rng = np.random.default_rng(seed)
    return [np.cumsum(rng.standard_normal(n)) * rng.uniform(0.1, 5) + rng.uniform(-10, 10) for n in lengths]


def _assert_rel(actual, expected, rel, what):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    denom = np.maximum(np.abs(expected), 1e-6)
    worst = np.max(np.abs(actual - expected) / denom) if actual.size else 0.0
    assert worst <= rel, f"{what}: max relative error {worst:.3g} > {rel}"


# ----------------------------------------------------------------------------- batch invariance
def test_batch_invariance_50_mixed_lengths(engine):
    rng = np.random.default_rng(7)
    # log-uniform lengths: every patch count class is hit without making the test slow
    lengths = np.concatenate(
        [[1, 2, 63, 64, 65, 127, 128, 129, 2000], np.exp(rng.uniform(0, np.log(2000), size=41)).astype(int)]
    )
    contexts = _series(lengths, seed=1)
    together = engine.forecast(contexts, prediction_length=3, aggregate=("mean", "expected"), return_samples=True)
    assert together.num_unique == 50
    for i, ctx in enumerate(contexts):
        alone = engine.forecast([ctx], prediction_length=3, aggregate=("mean", "expected"), return_samples=True)
        for field in ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale"):
            _assert_rel(
                getattr(alone.params, field)[0],
                getattr(together.params, field)[i],
                1e-6,
                f"request {i} (length {lengths[i]}) param {field}",
            )
        _assert_rel(alone.samples[0], together.samples[i], 1e-5, f"request {i} samples")


def test_request_order_does_not_change_results(engine):
    contexts = _series([30, 300, 90, 700], seed=2)
    forward = engine.forecast(contexts, prediction_length=2, return_samples=True)
    backward = engine.forecast(contexts[::-1], prediction_length=2, return_samples=True)
    np.testing.assert_array_equal(forward.samples, backward.samples[::-1])


def test_token_budget_splits_do_not_change_results(model, engine):
    contexts = _series([100, 120, 110, 700, 30, 650], seed=15)
    whole = engine.forecast(contexts, prediction_length=2, return_samples=True)
    split = ForecastEngine(model, num_samples=64, seed=3, max_batch_tokens=2).forecast(
        contexts, prediction_length=2, return_samples=True
    )
    assert whole.info["model_batches"] == 3 and split.info["model_batches"] == 6
    np.testing.assert_array_equal(whole.samples, split.samples)


# ----------------------------------------------------------------------------- exactness vs classic loop
@pytest.mark.parametrize("horizon", [1, 7])
def test_expected_value_matches_reference(model, engine, horizon):
    contexts = _series([5, 64, 200, 1450], seed=3)
    ours = engine.forecast(contexts, prediction_length=horizon, aggregate=("expected",))
    ref = reference_forecast(model, contexts, prediction_length=horizon, num_samples=8, aggregate=("expected",))
    _assert_rel(ours.stats["expected"], ref.stats["expected"], 1e-5, "expected value")
    for field in ("weights", "df", "loc", "scale"):  # atol: loc can sit at ~1e-5 where rel is meaningless
        np.testing.assert_allclose(
            getattr(ours.params, field), getattr(ref.params, field), rtol=1e-5, atol=1e-6, err_msg=field
        )


def test_sample_distribution_matches_reference_ks(model):
    # fixed seeds on both sides: deterministic, so the p-value threshold cannot flake
    contexts = _series([100, 900], seed=4)
    n = 2048
    ours = ForecastEngine(model, num_samples=n, seed=11).forecast(
        contexts, prediction_length=2, aggregate=(), return_samples=True
    )
    ref = reference_forecast(
        model,
        contexts,
        prediction_length=2,
        num_samples=n,
        samples_per_batch=512,
        seed=5,
        aggregate=(),
        return_samples=True,
    )
    for i in range(len(contexts)):
        for step in range(2):
            p = scipy_stats.ks_2samp(ours.samples[i, step], ref.samples[i, step]).pvalue
            assert p > 1e-3, f"context {i} step {step}: KS p-value {p:.2g}"


# ----------------------------------------------------------------------------- dedupe, horizons, aggregates
def test_dedupe_forecasts_each_unique_context_once(engine):
    a, b = _series([150, 150], seed=5)
    res = engine.forecast([a, b, a.copy(), a, b], aggregate=("mean",), return_samples=True)
    assert res.num_unique == 2 and res.info["model_batches"] == 1
    np.testing.assert_array_equal(res.samples[0], res.samples[2])
    np.testing.assert_array_equal(res.samples[1], res.samples[4])
    assert not np.array_equal(res.samples[0], res.samples[1])


@pytest.mark.parametrize("horizon", [1, 7, 64, 65, 130])
def test_every_aggregate_equals_numpy_on_samples(engine, horizon):
    contexts = _series([40, 64, 260], seed=6)
    res = engine.forecast(
        contexts, prediction_length=horizon, aggregate=ALL_AGGREGATES + ("expected",), return_samples=True
    )
    assert res.samples.shape == (3, horizon, 64)
    assert np.isfinite(res.samples).all()
    flat = res.samples.reshape(-1, 64).astype(np.float64)
    for name in ALL_AGGREGATES:
        expected = aggregate_numpy(flat, parse_aggregate(name, extended=True)).reshape(3, horizon)
        np.testing.assert_allclose(res.stats[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)
    assert res.stats["expected"].shape == (3, horizon)


def test_long_horizon_first_patch_equals_one_pass(engine):
    contexts = _series([100, 500], seed=8)
    short = engine.forecast(contexts, prediction_length=64, return_samples=True)
    long = engine.forecast(contexts, prediction_length=130, return_samples=True)
    np.testing.assert_allclose(long.samples[:, :64], short.samples, rtol=1e-6)
    # later patches follow each path's own draws: paths differ, and not all equal the first patch's
    assert np.std(long.samples[:, 64:], axis=-1).min() > 0


def test_long_horizon_matches_reference(model):
    contexts = _series([70, 300], seed=9)
    n = 1024
    ours = ForecastEngine(model, num_samples=n, seed=1).forecast(
        contexts, prediction_length=130, aggregate=("expected",), return_samples=True
    )
    ref = reference_forecast(
        model,
        contexts,
        prediction_length=130,
        num_samples=n,
        samples_per_batch=512,
        seed=2,
        aggregate=("expected",),
        return_samples=True,
    )
    _assert_rel(ours.stats["expected"], ref.stats["expected"], 1e-5, "mean path")
    for i in range(2):
        for step in (64, 100, 129):
            p = scipy_stats.ks_2samp(ours.samples[i, step], ref.samples[i, step]).pvalue
            assert p > 1e-3, f"context {i} step {step}: KS p-value {p:.2g}"


# ----------------------------------------------------------------------------- input handling
def test_empty_input_gives_empty_results(engine):
    res = engine.forecast([], prediction_length=7, aggregate=("mean", "band"), return_samples=True)
    assert res.stats["mean"].shape == (0, 7) and res.samples.shape == (0, 7, 64) and res.num_unique == 0


def test_zero_length_context_is_a_clear_error(engine):
    with pytest.raises(ValueError, match="context 1: zero-length"):
        engine.forecast([np.ones(10), np.array([])])


def test_nan_names_the_request(engine):
    contexts = _series([10, 20, 30], seed=10)
    contexts[2][17] = np.nan
    with pytest.raises(ValueError, match="context 2: non-finite value nan at position 17"):
        engine.forecast(contexts)


def test_bad_arguments(engine):
    with pytest.raises(ValueError, match="prediction_length must be >= 1"):
        engine.forecast([np.ones(5)], prediction_length=0)
    with pytest.raises(ValueError, match="Unknown aggregation|unknown"):
        engine.forecast([np.ones(5)], aggregate=("nonsense",))


def test_array_and_multivariate_inputs(engine):
    rng = np.random.default_rng(12)
    panel = rng.standard_normal((3, 100)).cumsum(axis=1)
    res = engine.forecast(panel, prediction_length=2, return_samples=True)
    listed = engine.forecast(list(panel), prediction_length=2, return_samples=True)
    np.testing.assert_array_equal(res.samples, listed.samples)
    multi = engine.forecast(
        rng.standard_normal((2, 3, 80)), prediction_length=4, aggregate=("mean", "expected"), return_samples=True
    )
    assert multi.stats["mean"].shape == (2, 3, 4) and multi.samples.shape == (2, 3, 4, 64)


# ----------------------------------------------------------------------------- OOM handling
class _OutOfMemoryAboveRows:
    """Wraps a real model; raises torch.OutOfMemoryError when a call has more than ``limit`` rows."""

    def __init__(self, model, limit):
        self.model, self.limit, self.config = model, limit, model.config

    def parameters(self):
        return self.model.parameters()

    def eval(self):
        return self

    def forecast_params(self, values, *args, **kwargs):
        if values.shape[0] > self.limit:
            raise torch.OutOfMemoryError("injected: too many rows")
        return self.model.forecast_params(values, *args, **kwargs)


class _BrokenScaleForLongContexts(_OutOfMemoryAboveRows):
    """Wraps a real model; predicts a negative scale for every row whose context is longer than 150."""

    def __init__(self, model):
        super().__init__(model, limit=10**9)

    def forecast_params(self, values, mask, *args, **kwargs):
        params = self.model.forecast_params(values, mask, *args, **kwargs)
        long = mask.sum(-1).amax(-1) > 150
        return dataclasses.replace(params, scale=torch.where(long[:, None, None, None], -params.scale, params.scale))


@pytest.mark.parametrize("estimator", ["sampled", "exact"])
def test_an_unusable_predicted_distribution_is_an_error_naming_the_request(model, estimator):
    # The engine checks the parameters on the device and reads the flags with the results (no host
    # wait per check); a bad one still fails the call and names the first request that has it.
    contexts = _series([100, 200, 120, 300], seed=21)
    broken = ForecastEngine(_BrokenScaleForLongContexts(model), num_samples=16, seed=0, estimator=estimator)
    with pytest.raises(ValueError, match=r"request 1 \(and 1 more\).*unusable distribution|scale"):
        broken.forecast(contexts)
    assert broken.forecast([contexts[0], contexts[2]]).stats["mean"].shape == (2, 1)


def test_out_of_memory_splits_and_keeps_every_request(model, engine, caplog):
    contexts = _series([100] * 20, seed=13)
    # the engine pads calls to >= 8 rows, so a limit of 8 forces 20 -> 10 + 10 -> 5 + 5 + 5 + 5
    flaky = ForecastEngine(_OutOfMemoryAboveRows(model, 8), num_samples=64, seed=3)
    with caplog.at_level(logging.WARNING, logger="totowalk.engine"):
        res = flaky.forecast(contexts, return_samples=True)
    assert res.info["oom_splits"] == 3 and res.info["model_batches"] == 4 and "splitting" in caplog.text
    np.testing.assert_allclose(res.samples, engine.forecast(contexts, return_samples=True).samples, rtol=1e-5)
    with pytest.raises(RuntimeError, match="single context"):
        ForecastEngine(_OutOfMemoryAboveRows(model, 0), num_samples=8).forecast(contexts[:1])


def test_next_batch_is_staged_while_the_current_one_computes(model, monkeypatch):
    # Order per batch k: queue compute k (and its results' copy back), then pack + copy k+1
    # (overlapping k on a GPU: on CUDA the compute stream waits on copy k+1 only after k), then
    # store k-1's results: the host waits on the card only for a batch with another queued behind it.
    from totowalk.engine import forecast_engine

    events = []
    patches_each = -(-64 // model.config.patch_size)
    engine = ForecastEngine(model, num_samples=8, seed=0, max_batch_tokens=4 * patches_each)
    stage, run_one_pass = engine._stage, engine._run_one_pass
    monkeypatch.setattr(
        engine, "_stage", lambda plan, batch: events.append(("stage", len(batch.members))) or stage(plan, batch)
    )
    monkeypatch.setattr(
        engine, "_run_one_pass", lambda batch, *a: events.append(("run", len(batch.members))) or run_one_pass(batch, *a)
    )
    store = forecast_engine.ResultCollector.store
    monkeypatch.setattr(
        forecast_engine.ResultCollector,
        "store",
        lambda self, done: events.append(("store", len(done.members))) or store(self, done),
    )
    res = engine.forecast(_series([64] * 12, seed=5))  # 4 contexts per batch
    batches = res.info["model_batches"]
    assert batches == 3
    kinds = [kind for kind, _ in events]
    assert kinds == ["stage", "run", "stage"] + ["run", "stage", "store"] * (batches - 2) + ["run", "store", "store"]


# torch 2.11 (the GPU machines') warns that the profiler clears events each cycle: not our concern.
@pytest.mark.filterwarnings("ignore:.*Profiler clears events:UserWarning")
def test_profiler_sees_the_engine_phases(engine):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        engine.forecast(_series([80, 200], seed=8), aggregate=("mean",))
    names = {event.key for event in prof.key_averages()}
    phases = {f"totowalk.{phase}" for phase in ("normalize", "plan", "stage", "forward", "sample", "collect")}
    assert phases <= names, phases - names


# ----------------------------------------------------------------------------- CLI
def test_forecast_cli(tmp_path, capsys):
    import argparse

    from totowalk.commands import forecast as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "forecast.csv"
    args = parser.parse_args(
        [
            "forecast",
            "--dataset",
            "IBM",
            "--rows",
            "200",
            "--model",
            "random:toto-tiny",
            "--allow-random-weights",
            "--prediction-length",
            "3",
            "--num-samples",
            "32",
            "--aggregate",
            "mean",
            "band",
            "--output",
            str(out),
        ]
    )
    assert args.func(args) == 0
    table = out.read_text().splitlines()
    assert table[0] == "step,date,mean,band,Close_at_mean" and len(table) == 4
