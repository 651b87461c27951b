"""totowalk.compat.gluonts: TotoPredictor as a GluonTS Predictor (exact quantiles, batched engine calls).

gluonts pins pandas < 3 and the suite runs on the pandas a plain install gets, so gluonts is not in
the test extra: these tests skip without it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():  # gluonts warns on import when neither orjson nor ujson is installed
    warnings.simplefilter("ignore")
    pytest.importorskip("gluonts")
    import gluonts.json  # noqa: F401

from gluonts.dataset.common import ListDataset  # noqa: E402
from gluonts.dataset.pandas import PandasDataset  # noqa: E402
from gluonts.dataset.split import split  # noqa: E402
from gluonts.ev.metrics import MASE, MeanWeightedSumQuantileLoss  # noqa: E402
from gluonts.model import evaluate_model  # noqa: E402
from gluonts.model.forecast import QuantileForecast, SampleForecast  # noqa: E402
from gluonts.model.predictor import Predictor  # noqa: E402
from gluonts.model.seasonal_naive import SeasonalNaivePredictor  # noqa: E402

import totowalk.errors  # noqa: E402
from totowalk.compat import gluonts as compat  # noqa: E402
from totowalk.data import datasets  # noqa: E402
from totowalk.engine import ForecastEngine  # noqa: E402
from totowalk.errors import MissingExtraError  # noqa: E402
from totowalk.loading import resolve_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")

SYMBOLS = ("AAPL", "IBM", "MSFT", "GOOG")
LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
HORIZON = 20


@pytest.fixture(scope="module")
def engine():
    return ForecastEngine(resolve_model("toto-mini").model, num_samples=16)


@pytest.fixture(scope="module")
def returns():
    """Daily Close returns of the bundled symbols (toto-mini forecasts returns), the first one NaN
    as pct_change leaves it. Trading days are numbered as consecutive calendar days ("D"):
    GluonTS needs a regular index, and pandas deprecates business-day periods."""
    out = {}
    for symbol in SYMBOLS:
        close = datasets.load(symbol)["Close"]
        out[symbol] = pd.Series(
            close.pct_change().to_numpy(), index=pd.date_range(close.index[0], periods=len(close), freq="D")
        )
    return out


def list_dataset(returns) -> ListDataset:
    return ListDataset(
        [{"target": s.to_numpy(), "start": s.index[0], "item_id": name} for name, s in returns.items()], freq="D"
    )


def test_evaluate_model_scores_exact_quantiles(engine, returns):
    _, template = split(list_dataset(returns), offset=-3 * HORIZON)
    test_data = template.generate_instances(prediction_length=HORIZON, windows=3)
    metrics = [MASE(), MeanWeightedSumQuantileLoss(quantile_levels=LEVELS)]
    predictor = compat.TotoPredictor(engine, HORIZON, quantile_levels=LEVELS)
    assert isinstance(predictor, Predictor) and predictor.estimator == "exact"

    toto = evaluate_model(predictor, test_data=test_data, metrics=metrics).iloc[0]
    naive = evaluate_model(SeasonalNaivePredictor(HORIZON, season_length=1), test_data=test_data, metrics=metrics)
    naive = naive.iloc[0]
    mase, wql = toto["MASE[0.5]"], toto["mean_weighted_sum_quantile_loss"]
    # measured: MASE 0.462, weighted quantile loss 0.738 (random walk: 0.813 and 1.719)
    assert np.isfinite([mase, wql]).all()
    assert 0.3 < mase < 0.7 and mase < 0.7 * naive["MASE[0.5]"]
    assert 0.5 < wql < 0.95 and wql < 0.6 * naive["mean_weighted_sum_quantile_loss"]
    # sample paths of the same mixtures score alike (measured: 0.459 and 0.740 with 256 paths)
    sampled = compat.TotoPredictor(engine, HORIZON, num_samples=256)
    sampled = evaluate_model(sampled, test_data=test_data, metrics=metrics).iloc[0]
    assert sampled["MASE[0.5]"] == pytest.approx(mase, rel=0.05)
    assert sampled["mean_weighted_sum_quantile_loss"] == pytest.approx(wql, rel=0.05)


def test_quantiles_are_the_engines_exact_quantiles(engine, returns):
    _, template = split(list_dataset(returns), offset=-HORIZON)
    inputs = list(template.generate_instances(prediction_length=HORIZON).input)
    forecasts = list(compat.TotoPredictor(engine, HORIZON, quantile_levels=LEVELS).predict(inputs))

    contexts = [compat.clean_target(entry["target"]) for entry in inputs]
    names = [f"quantile_{q}" for q in LEVELS]
    expected = engine.forecast(contexts, HORIZON, aggregate=("mean", *names), estimator="exact").stats
    assert [f.item_id for f in forecasts] == list(SYMBOLS)
    for row, (entry, forecast) in enumerate(zip(inputs, forecasts)):
        assert isinstance(forecast, QuantileForecast) and forecast.info == {"estimator": "exact"}
        assert forecast.forecast_keys == [str(q) for q in LEVELS] + ["mean"]
        assert forecast.start_date == entry["start"] + len(entry["target"])
        assert forecast.start_date == pd.Period(returns[entry["item_id"]].index[-HORIZON], "D")
        for q, name in zip(LEVELS, names):
            np.testing.assert_array_equal(forecast.quantile(q), expected[name][row])
        np.testing.assert_array_equal(forecast.mean, expected["mean"][row])
        assert forecast.forecast_array.shape == (len(LEVELS) + 1, HORIZON)
        assert (np.diff(forecast.forecast_array[:-1], axis=0) > 0).all()  # strictly increasing in the level


def test_default_levels_and_median_always_present(engine, returns):
    _, template = split(list_dataset(returns), offset=-HORIZON)
    inputs = template.generate_instances(prediction_length=HORIZON).input
    (forecast, *_) = compat.TotoPredictor(engine, HORIZON).predict(inputs)
    assert forecast.forecast_keys == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "mean"]
    (forecast, *_) = compat.TotoPredictor(engine, HORIZON, quantile_levels=[0.9, 0.1]).predict(inputs)
    assert forecast.forecast_keys == ["0.1", "0.5", "0.9", "mean"]


def test_many_series_take_few_engine_calls(engine, returns):
    # 4 symbols x 10 windows = 40 series of 20 different lengths, from a PandasDataset
    _, template = split(PandasDataset(dict(returns)), offset=-10 * 5)
    inputs = list(template.generate_instances(prediction_length=5, windows=10).input)
    assert len(inputs) == 40 and len({len(entry["target"]) for entry in inputs}) == 20
    calls = []

    class Counting(ForecastEngine):
        def forecast(self, contexts, *args, **kwargs):
            calls.append(len(contexts))
            return super().forecast(contexts, *args, **kwargs)

    counting = Counting(engine.model)
    forecasts = list(compat.TotoPredictor(counting, 5, batch_size=16).predict(inputs))
    assert calls == [16, 16, 8]
    assert [f.item_id for f in forecasts] == [entry["item_id"] for entry in inputs]
    assert [f.start_date for f in forecasts] == [entry["start"] + len(entry["target"]) for entry in inputs]
    calls.clear()
    assert len(list(compat.TotoPredictor(counting, 5).predict(inputs))) == 40 and calls == [40]
    calls.clear()
    assert list(compat.TotoPredictor(counting, 5).predict([])) == [] and calls == []


def test_sample_forecasts(engine, returns):
    _, template = split(list_dataset(returns), offset=-HORIZON)
    inputs = list(template.generate_instances(prediction_length=HORIZON).input)
    predictor = compat.TotoPredictor(engine, HORIZON, num_samples=32)
    forecasts = list(predictor.predict(inputs))
    assert all(isinstance(f, SampleForecast) for f in forecasts)
    assert [f.samples.shape for f in forecasts] == [(32, HORIZON)] * len(inputs)
    assert np.isfinite(np.stack([f.samples for f in forecasts])).all()
    assert forecasts[0].start_date == inputs[0]["start"] + len(inputs[0]["target"])
    assert forecasts[0].info == {"estimator": "sampled", "num_samples": 32}
    again = list(predictor.predict(inputs))  # the engine's streams are seeded by content
    np.testing.assert_array_equal(again[1].samples, forecasts[1].samples)
    # make_evaluation_predictions passes num_samples to predict: a sampling predictor takes it
    assert next(iter(predictor.predict(inputs, num_samples=8))).samples.shape == (8, HORIZON)
    # a quantile predictor ignores it
    quantile = compat.TotoPredictor(engine, HORIZON)
    assert isinstance(next(iter(quantile.predict(inputs, num_samples=8))), QuantileForecast)


def test_long_horizon_falls_back_to_sampled_quantiles(engine, returns):
    series = {name: s.iloc[-400:] for name, s in list(returns.items())[:2]}
    predictor = compat.TotoPredictor(engine, 70, quantile_levels=LEVELS)
    assert predictor.estimator == "sampled"
    forecasts = list(predictor.predict(list_dataset(series)))
    for forecast in forecasts:
        assert forecast.info == {"estimator": "sampled", "num_samples": 16}
        assert forecast.forecast_array.shape == (len(LEVELS) + 1, 70)
        assert np.isfinite(forecast.forecast_array).all()
        assert (np.diff(forecast.forecast_array[:-1], axis=0) >= 0).all()


def test_missing_values_rule():
    nan = np.nan
    np.testing.assert_array_equal(compat.clean_target([nan, nan, 1.0, nan, nan, 2.0, nan]), [1, 1, 1, 2, 2])
    np.testing.assert_array_equal(compat.clean_target([3.0, 4.0]), [3, 4])
    with pytest.raises(ValueError, match="item_id 'x': target has no observed"):
        compat.clean_target([nan, nan], "x")
    with pytest.raises(ValueError, match="item_id 'y': target holds an infinite value at index 1"):
        compat.clean_target([1.0, np.inf], "y")
    with pytest.raises(ValueError, match="item_id 'z': target has shape \\(2, 3\\); .* univariate"):
        compat.clean_target(np.zeros((2, 3)), "z")


def test_nan_targets_forecast_as_forward_filled(engine, returns):
    values = returns["IBM"].to_numpy()[-300:].copy()
    gappy = values.copy()
    gappy[[100, 101, 250]] = np.nan
    filled = gappy.copy()
    filled[[100, 101]], filled[250] = values[99], values[249]
    start = pd.Period("2020-01-01", "D")
    predictor = compat.TotoPredictor(engine, 5)
    a, b = predictor.predict(
        ListDataset(
            [{"target": gappy, "start": start, "item_id": "gappy"}, {"target": filled, "start": start, "item_id": "f"}],
            freq="D",
        )
    )
    np.testing.assert_array_equal(a.forecast_array, b.forecast_array)
    assert a.start_date == start + 300
    with pytest.raises(ValueError, match="item_id 'empty'"):
        list(predictor.predict([{"target": np.full(5, np.nan), "start": start, "item_id": "empty"}]))


def test_bad_arguments(engine):
    with pytest.raises(ValueError, match="quantile_levels must lie in \\(0, 1\\), got 1.0"):
        compat.TotoPredictor(engine, 5, quantile_levels=(0.5, 1.0))
    with pytest.raises(ValueError, match="prediction_length must be an integer >= 1"):
        compat.TotoPredictor(engine, 0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        compat.TotoPredictor(engine, 5, batch_size=0)
    with pytest.raises(TypeError, match="a pandas.Period is needed"):
        list(compat.TotoPredictor(engine, 5).predict([{"target": np.ones(10), "start": "2020-01-01"}]))
    with pytest.raises(NotImplementedError, match="holds a model"):
        compat.TotoPredictor(engine, 5).serialize(None)


def test_missing_gluonts_is_one_line_naming_the_extra(monkeypatch):
    real_import = importlib.import_module

    def without_gluonts(name, *args):  # as if not installed
        if name == "gluonts" or name.startswith("gluonts."):
            raise ImportError("No module named 'gluonts'")
        return real_import(name, *args)

    monkeypatch.setattr(totowalk.errors, "import_module", without_gluonts)
    with pytest.raises(MissingExtraError) as caught:
        compat.TotoPredictor  # noqa: B018
    message = str(caught.value)
    assert "\n" not in message and "the GluonTS predictor needs gluonts" in message
    assert "pip install 'totowalk[gluonts]'" in message


def test_importing_the_module_does_not_import_gluonts():
    code = "import sys, totowalk.compat.gluonts; assert 'gluonts' not in sys.modules, 'gluonts imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_forecasts_are_what_gluonts_own_constructor_builds(engine, returns, monkeypatch):
    from totowalk.compat.gluonts import _same_forecast

    real, calls = QuantileForecast.__init__, []

    def counted(self, *args, **kwargs):
        calls.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(QuantileForecast, "__init__", counted)
    forecasts = list(compat.TotoPredictor(engine, 3, quantile_levels=[0.1, 0.5, 0.9]).predict(list_dataset(returns)))
    assert len(forecasts) == len(returns) > 1
    assert len(calls) == 1  # the constructor built the first, to check the others against; they are built once
    monkeypatch.setattr(QuantileForecast, "__init__", real)
    for forecast in forecasts:
        theirs = QuantileForecast(
            forecast_arrays=forecast.forecast_array,
            start_date=forecast.start_date,
            forecast_keys=["0.1", "0.5", "0.9", "mean"],
            item_id=forecast.item_id,
            info=forecast.info,
        )
        assert type(forecast) is QuantileForecast and _same_forecast(forecast, theirs)
        assert vars(forecast).keys() == vars(theirs).keys()
        np.testing.assert_array_equal(forecast.quantile(0.8), theirs.quantile(0.8))


def test_a_gluonts_whose_constructor_differs_gets_its_constructor(engine, returns):
    from totowalk.compat.gluonts import quantile_forecasts

    class Extended(QuantileForecast):  # a later GluonTS that sets one more attribute
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.extra = "set by the constructor"

    build = quantile_forecasts(Extended, ["0.5", "mean"])
    made = [build(np.ones((2, 3)), pd.Period("2020-01-01", "D"), f"s{i}", {}) for i in range(3)]
    assert all(f.extra == "set by the constructor" for f in made)
