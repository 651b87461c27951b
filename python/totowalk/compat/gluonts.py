"""GluonTS drop-in: :class:`TotoPredictor`, a ``gluonts.model.predictor.Predictor`` backed by the engine.

An evaluation written for GluonTS runs Toto unchanged::

    from gluonts.dataset.split import split
    from gluonts.ev.metrics import MASE, MeanWeightedSumQuantileLoss
    from gluonts.model import evaluate_model
    from totowalk import load_model
    from totowalk.compat.gluonts import TotoPredictor

    _, template = split(dataset, offset=-20)
    predictor = TotoPredictor(load_model("toto-mini"), prediction_length=20)
    evaluate_model(predictor, test_data=template.generate_instances(20),
                   metrics=[MASE(), MeanWeightedSumQuantileLoss([0.1, 0.5, 0.9])])

``predict`` reads the dataset in chunks of ``batch_size`` series and forecasts each chunk with one
engine call (the engine groups contexts of different lengths itself), so a dataset costs
``ceil(len / batch_size)`` engine calls, not one per series.

gluonts is optional (``pip install 'totowalk[gluonts]'``): importing this module does not need it;
the first use of ``TotoPredictor`` imports it (and names the extra when it is missing).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..engine import ForecastEngine
from ..errors import require_extra

# TotoPredictor is made on first access (module __getattr__ below), hence F822
__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_QUANTILE_LEVELS", "TotoPredictor", "clean_target"]  # noqa: F822

DEFAULT_QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# series per engine call: bounds the host memory of one chunk; the engine splits model batches itself
DEFAULT_BATCH_SIZE = 1024

_predictor_class = None  # built on first use, once gluonts is importable


def __getattr__(name: str):
    # PEP 562: TotoPredictor subclasses gluonts' Predictor, so it can only exist once gluonts is
    # imported. require_extra runs on every access (a dict look-up once gluonts is loaded), so a
    # missing gluonts is reported as the one-line MissingExtraError however often it is asked.
    if name == "TotoPredictor":
        return _predictor()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _predictor():
    global _predictor_class
    require_extra("gluonts", "gluonts", "the GluonTS predictor")
    if _predictor_class is None:
        from gluonts.model.predictor import Predictor

        cls = type("TotoPredictor", (_TotoPredictorMixin, Predictor), {"__module__": __name__})
        cls.__doc__ = _TotoPredictorMixin.__doc__
        _predictor_class = cls
    return _predictor_class


class _TotoPredictorMixin:
    """A GluonTS ``Predictor`` that forecasts with a Toto model through :class:`ForecastEngine`.

    Parameters
    ----------
    model_or_engine : TotoModel or ForecastEngine
        A model (e.g. ``load_model("toto-mini")`` or ``resolve_model(...).model``) is wrapped in a
        new engine with ``seed`` and ``device``; an engine is used as it is.
    prediction_length : int
        H >= 1, steps forecast after the end of each series.
    quantile_levels : sequence of float
        Levels in (0, 1) of the quantiles a :class:`~gluonts.model.forecast.QuantileForecast`
        carries (keys ``str(level)``, e.g. ``"0.1"``). 0.5 is always included: GluonTS's point
        metrics (MASE, MAE, ...) read the median. A metric asking for another level gets
        GluonTS's interpolation between these, not an exact quantile: list the levels it uses.
    num_samples : int, optional
        None (default): yield ``QuantileForecast`` objects with the quantiles and the mean (key
        ``"mean"``). An integer S: yield ``SampleForecast`` objects of S sample paths each
        (``samples`` of shape (S, H)), drawn by the engine's seeded streams.
    batch_size : int
        Series per engine call.
    context_length : int, optional
        Forecast from at most the last ``context_length`` values of each series (after the
        missing-value rule below). Default: the whole series.
    seed : int
        Engine seed when a model is given (fixes every draw; exact quantiles draw nothing).
    device : str or torch.device, optional
        Where the model runs when a model is given.

    Notes
    -----
    *Estimator.* For ``prediction_length`` up to the model's patch size (64), quantiles and mean
    are exact: population values of the predicted Student-T mixture of each step (engine
    ``estimator="exact"``), nothing is sampled. Beyond one patch the engine decodes
    autoregressively and exact marginals do not exist: quantiles and mean are then *estimated*
    from the engine's ``num_samples`` seeded sample paths (``estimator="sampled"``); each forecast's
    ``info["estimator"]`` says which was used.

    *Missing values.* GluonTS targets may hold NaN; the model needs finite values. Each series is
    cleaned by :func:`clean_target`: leading NaNs are dropped and every later NaN takes the last
    observed value before it (forward fill). A series with no finite value, or with an infinite
    value, raises ``ValueError`` naming its ``item_id``. The forecast still starts one period
    after the series' last timestamp (NaN or not).

    *Targets.* Univariate only (1-D ``target``); ``start`` must be a ``pandas.Period`` (as GluonTS
    datasets yield it). ``item_id`` is carried to each forecast.

    *Serialization.* The predictor holds a model, not hyperparameters: ``serialize`` raises.
    """

    def __init__(
        self,
        model_or_engine,
        prediction_length: int,
        *,
        quantile_levels=DEFAULT_QUANTILE_LEVELS,
        num_samples: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        context_length: int | None = None,
        seed: int = 0,
        device=None,
    ):
        horizon = _positive_int(prediction_length, "prediction_length")
        super().__init__(prediction_length=horizon)
        if isinstance(model_or_engine, ForecastEngine):
            self.engine = model_or_engine
        else:
            self.engine = ForecastEngine(model_or_engine, seed=seed, device=device)
        self.quantile_levels = _checked_levels(quantile_levels)
        self.num_samples = None if num_samples is None else _positive_int(num_samples, "num_samples")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.context_length = None if context_length is None else _positive_int(context_length, "context_length")

    @property
    def estimator(self) -> str:
        """ "exact" or "sampled": how this predictor's quantile forecasts are computed (see Notes)."""
        return "exact" if self.prediction_length <= self.engine.patch_size else "sampled"

    def predict(self, dataset, **kwargs):
        """Yield one forecast per entry of ``dataset``, in order.

        ``num_samples=S`` in ``kwargs`` (as ``gluonts.evaluation.make_evaluation_predictions``
        passes it) sets the sample count of a sampling predictor (one built with ``num_samples``);
        a quantile predictor, and every other keyword, ignores it.
        """
        samples = self.num_samples
        if samples is not None and kwargs.get("num_samples") is not None:
            samples = _positive_int(kwargs["num_samples"], "num_samples")
        entries = iter(dataset)
        while chunk := list(itertools.islice(entries, self.batch_size)):
            yield from self._predict_chunk(chunk, samples)

    def serialize(self, path) -> None:
        raise NotImplementedError(
            "TotoPredictor holds a model, not hyperparameters: rebuild it with TotoPredictor(load_model(...), ...)"
        )

    def _predict_chunk(self, entries: list, samples: int | None) -> list:
        from gluonts.model.forecast import QuantileForecast, SampleForecast

        contexts, starts, item_ids = [], [], []
        for entry in entries:
            item_id = entry.get("item_id")
            context = clean_target(entry["target"], item_id)
            if self.context_length is not None:
                context = context[-self.context_length :]
            contexts.append(context)
            starts.append(_forecast_start(entry, item_id))
            item_ids.append(item_id)
        horizon = self.prediction_length
        if samples is not None:
            result = self.engine.forecast(
                contexts, horizon, num_samples=samples, aggregate=(), return_samples=True, estimator="sampled"
            )
            info = {"estimator": "sampled", "num_samples": samples}
            return [
                SampleForecast(samples=paths.T, start_date=start, item_id=item_id, info=dict(info))
                for paths, start, item_id in zip(result.samples, starts, item_ids)
            ]
        names = {level: "quantile_" + np.format_float_positional(level, trim="-") for level in self.quantile_levels}
        estimator = self.estimator
        result = self.engine.forecast(contexts, horizon, aggregate=("mean", *names.values()), estimator=estimator)
        # (keys, B, H) -> one (keys, H) array per series; keys as GluonTS spells them ("0.1", "mean")
        keys = [str(level) for level in self.quantile_levels] + ["mean"]
        stacked = np.stack([result.stats[names[level]] for level in self.quantile_levels] + [result.stats["mean"]])
        info = {"estimator": estimator}
        if estimator == "sampled":
            info["num_samples"] = self.engine.num_samples
        build = quantile_forecasts(QuantileForecast, keys)
        return [
            build(np.ascontiguousarray(stacked[:, row]), start, item_id, dict(info))
            for row, (start, item_id) in enumerate(zip(starts, item_ids))
        ]


def quantile_forecasts(forecast_class, keys: list):
    """``build(arrays, start, item_id, info)`` making ``forecast_class`` (GluonTS's QuantileForecast)
    objects with these ``keys``. GluonTS's constructor parses every key of every forecast again (its
    pydantic Quantile: 61 ms of a 1,000-series call, 7.5 % of the engine's time); this one does it
    once and sets the attributes the constructor sets. It is checked against the constructor on a
    first forecast: any attribute or value differing (another GluonTS) means the constructor itself
    builds every object."""
    normalised = None

    def fast(arrays, start, item_id, info):
        forecast = forecast_class.__new__(forecast_class)
        forecast.forecast_array, forecast.start_date = arrays, start
        forecast.forecast_keys, forecast.item_id, forecast.info = list(normalised), item_id, info
        forecast._dim, forecast.prediction_length = None, arrays.shape[1]
        forecast._forecast_dict = {k: arrays[i] for i, k in enumerate(forecast.forecast_keys)}
        forecast._nan_out = np.full(arrays.shape[1], np.nan)
        return forecast

    def slow(arrays, start, item_id, info):
        return forecast_class(forecast_arrays=arrays, start_date=start, forecast_keys=keys, item_id=item_id, info=info)

    def first(arrays, start, item_id, info):
        nonlocal normalised, build
        made = slow(arrays, start, item_id, info)
        normalised = list(made.forecast_keys)
        build = fast if _same_forecast(fast(arrays, start, item_id, info), made) else slow
        return made

    build = first
    return lambda *args: build(*args)


def _same_forecast(ours, theirs) -> bool:
    """Every attribute of two forecasts equal (arrays by dtype and value, dicts entry by entry)."""
    return _equal(vars(ours), vars(theirs))


def _equal(a, b) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        same_kind = isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
        return same_kind and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    return bool(a == b)


def clean_target(target, item_id=None) -> np.ndarray:
    """A GluonTS target as the finite 1-D float64 context the engine needs.

    Leading NaNs are dropped; every later NaN is replaced by the last value before it (forward
    fill). Raises ``ValueError`` naming ``item_id`` for a target that is not 1-D, has no finite
    value, or holds an infinite value.
    """
    values = np.asarray(target, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(
            f"item_id {item_id!r}: target has shape {values.shape}; TotoPredictor forecasts univariate (1-D) targets"
        )
    if np.isinf(values).any():
        raise ValueError(
            f"item_id {item_id!r}: target holds an infinite value at index {int(np.isinf(values).argmax())}"
        )
    observed = ~np.isnan(values)
    if not observed.any():
        raise ValueError(f"item_id {item_id!r}: target has no observed (non-NaN) value to forecast from")
    if observed.all():
        return values
    first = int(observed.argmax())
    values, observed = values[first:], observed[first:]
    # index of the last observed value at or before each position (observed[0] is True)
    last = np.maximum.accumulate(np.where(observed, np.arange(values.size), 0))
    return values[last]


def _forecast_start(entry, item_id):
    """The period after the entry's last timestamp."""
    import pandas as pd

    start = entry["start"]
    if not isinstance(start, pd.Period):
        raise TypeError(
            f"item_id {item_id!r}: start is {type(start).__name__}; a pandas.Period is needed "
            "(GluonTS datasets convert it; a plain list of dicts does not)"
        )
    return start + len(entry["target"])


def _checked_levels(levels) -> tuple:
    """Distinct levels in (0, 1), sorted, 0.5 included."""
    try:
        values = {float(level) for level in levels}
    except (TypeError, ValueError):
        raise ValueError(f"quantile_levels must be numbers in (0, 1), got {levels!r}") from None
    bad = sorted(level for level in values if not 0.0 < level < 1.0)
    if bad:
        raise ValueError(f"quantile_levels must lie in (0, 1), got {bad[0]}")
    return tuple(sorted(values | {0.5}))


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
