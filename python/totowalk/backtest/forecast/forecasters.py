"""Forecasters the backtest can call: the batched Toto engine, or any Python function.

A forecaster takes a list of 1-D float32 contexts and returns, per context, the one-step point
forecast and the p60 − p40 band (both float32, as the classic loop stores them, §2.3, §3.3). The
engine with the exact estimator forecasts from the predicted mixture itself, so it can also score
each forecast exactly against its outcome (PIT and CRPS) while the mixture is at hand.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ...aggregation import aggregate_with_spec, band_p60_minus_p40

DEFAULT_AGGREGATE = "trimmed_mean_10"  # the classic loop's default spec (§2.3)


@dataclass
class Forecasts:
    """Forecasts of some contexts, in their order.

    Attributes
    ----------
    point, band : (B,) float32, the one-step point forecast and the p60 − p40 band
    pit, crps : (B,) float64, the exact PIT ``F(y)`` and CRPS of each forecast's predicted mixture
        against its outcome ``y`` (NaN where the outcome lies past the data); None when the
        forecaster gives no predictive distribution (sampled estimator, a function, Kronos)
    score_seconds : wall seconds spent scoring
    forecast_seconds : wall seconds the forecaster itself took (None where not measured)
    pending : scores still being computed beside the next forecast (:meth:`settle` waits for them)
    """

    point: np.ndarray
    band: np.ndarray
    pit: np.ndarray | None = None
    crps: np.ndarray | None = None
    score_seconds: float = 0.0
    forecast_seconds: float | None = None
    pending: Future | None = None

    @property
    def scored(self) -> bool:
        return self.pit is not None

    def settle(self) -> "Forecasts":
        """These forecasts with their scores in place (waiting for them where they are being computed)."""
        if self.pending is not None:
            self.pending.result()
            self.pending = None
        return self

    @classmethod
    def unknown(cls, count: int, scored: bool) -> "Forecasts":
        """``count`` forecasts not made yet: NaN everywhere (pit and crps only when ``scored``)."""

        def empty(dtype):
            return np.full(count, np.nan, dtype=dtype)

        scores = (empty(np.float64), empty(np.float64)) if scored else (None, None)
        return cls(empty(np.float32), empty(np.float32), *scores)

    def take(self, rows) -> "Forecasts":
        """The forecasts of contexts ``rows`` (an index array, mask or slice), scores included."""
        pick = [None if v is None else v[rows] for v in (self.pit, self.crps)]
        return Forecasts(self.point[rows], self.band[rows], *pick)

    def put(self, idx: np.ndarray, part: "Forecasts") -> None:
        """Store ``part``, the forecasts of contexts ``idx``, in place (scores only where both score)."""
        self.point[idx], self.band[idx] = part.point, part.band
        if self.scored and part.scored:
            self.pit[idx], self.crps[idx] = part.pit, part.crps
        self.score_seconds += part.score_seconds
        if part.forecast_seconds is not None:
            self.forecast_seconds = (self.forecast_seconds or 0.0) + part.forecast_seconds


class FunctionForecaster:
    """Wrap ``fn(contexts) -> (B,) point forecasts or (B, S) samples``.

    Samples are reduced with the legacy ``aggregate_with_spec`` and give a band; point forecasts
    have a zero band (as ``num_samples`` identical samples would).
    """

    def __init__(self, fn, aggregate: str = DEFAULT_AGGREGATE):
        if not callable(fn):
            raise TypeError(f"forecaster must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.aggregate = aggregate

    def describe(self, hash_weights: bool = False) -> dict:
        name = getattr(self.fn, "__qualname__", None) or type(self.fn).__name__
        return {"kind": "function", "function": name, "aggregate": self.aggregate}

    def __call__(self, contexts: list[np.ndarray]) -> Forecasts:
        out = np.asarray(self.fn(contexts))
        b = len(contexts)
        if out.ndim == 1 and out.shape[0] == b:
            return Forecasts(out.astype(np.float32), np.zeros(b, dtype=np.float32))
        if out.ndim == 2 and out.shape[0] == b and out.shape[1] >= 2:
            point = np.array(
                [np.float32(aggregate_with_spec(row, self.aggregate)[0]) for row in out],
                dtype=np.float32,
            )
            band = np.array([band_p60_minus_p40(row) for row in out], dtype=np.float32)
            return Forecasts(point, band)
        raise ValueError(
            f"forecaster returned shape {out.shape} for {b} contexts; expected ({b},) point "
            f"forecasts or ({b}, S) samples with S >= 2"
        )


class EngineForecaster:
    """One-step forecasts from a :class:`totowalk.ForecastEngine` (aggregate and band on device)."""

    def __init__(self, engine, aggregate: str = DEFAULT_AGGREGATE, model_name: str | None = None):
        self.engine = engine
        self.aggregate = aggregate
        self.model_name = model_name
        self.score_outcomes = True  # backtest(calibration=False) turns the exact scoring off
        self.score_backend = "auto"  # backtest(scores_backend=): where the exact scores are computed

    def describe(self, hash_weights: bool = False) -> dict:
        """Everything of the engine that changes its numbers (a stored run's fingerprint uses it);
        ``hash_weights`` digests weights built in memory too (those loaded from a file always are)."""
        from ...engine.sampling import RANDOM_STREAMS

        info = {
            "kind": "engine",
            "model": self.model_name,
            "aggregate": self.aggregate,
            "num_samples": getattr(self.engine, "num_samples", None),
            "seed": getattr(self.engine, "seed", None),
            "estimator": getattr(self.engine, "estimator", "sampled"),
            "random_streams": RANDOM_STREAMS,
        }
        if info["estimator"] == "exact":  # another backend than the host loop agrees to 1e-9, not bit for bit
            from ...kernels.mixture_exact import resolved_backend

            backend = resolved_backend(getattr(self.engine, "statistics_backend", "auto"))
            if backend != "native":
                info["statistics_backend"] = backend
        model = getattr(self.engine, "model", None)
        if model is not None:
            from ...model.identity import model_identity  # reads the model's identity, no compute

            identity = model_identity(model, hash_memory=hash_weights)
            identity.pop("weights_file")  # where the file lies does not change numbers
            info.update(identity)
        return info

    @property
    def gives_mixture(self) -> bool:
        """Whether its forecasts can be scored exactly: the exact estimator reads them off the
        predicted mixture, through the walk-forward form that hands over each context's outcome."""
        return (
            self.score_outcomes
            and getattr(self.engine, "estimator", "sampled") == "exact"
            and hasattr(self.engine, "forecast_walk_forward")
        )

    def __call__(self, contexts: list[np.ndarray]) -> Forecasts:
        return self._point_band(self.engine.forecast(contexts, prediction_length=1, aggregate=(self.aggregate, "band")))

    def walk_forward(self, series: list, ends: list, outcomes: np.ndarray | None = None, scoring=None) -> Forecasts:
        """The same forecasts for ``series[i][:e]``, e in ``ends[i]`` (in that order), through the
        engine's walk-forward form: each series converted once, its contexts known prefixes.
        ``outcomes`` ((B,) float64, NaN where unknown, same order): also score each forecast, here,
        or on ``scoring`` (an executor) while the caller goes on (:meth:`Forecasts.settle`)."""
        if not hasattr(self.engine, "forecast_walk_forward"):
            return self([s[:e] for s, es in zip(series, ends) for e in es])
        start = time.perf_counter()
        res = self.engine.forecast_walk_forward(series, ends, prediction_length=1, aggregate=(self.aggregate, "band"))
        forecasts = self._point_band(res)
        forecasts.forecast_seconds = time.perf_counter() - start
        if outcomes is not None and self.gives_mixture:
            where = (self.score_backend, getattr(self.engine, "device", None))
            if scoring is None:
                _score(forecasts, res, outcomes, *where)
            else:
                forecasts.pending = scoring.submit(_score, forecasts, res, outcomes, *where)
        return forecasts

    def _point_band(self, res) -> Forecasts:
        point = np.asarray(res.stats[self.aggregate], dtype=np.float32)[:, 0]
        band = np.asarray(res.stats["band"], dtype=np.float32)[:, 0]
        return Forecasts(point, band)


def _score(forecasts: Forecasts, res, outcomes: np.ndarray, backend: str = "auto", device=None) -> None:
    """Fill ``forecasts``' exact PIT and CRPS from the engine result's mixtures (ForecastResult.scores),
    here, where the mixtures are at hand: no forecast is made twice to be scored. ``backend``
    "triton": on the engine's ``device``."""
    start = time.perf_counter()
    found = res.scores(np.asarray(outcomes, dtype=np.float64)[:, None], backend=backend, device=device)
    forecasts.pit, forecasts.crps = found["pit"][:, 0], found["crps"][:, 0]
    forecasts.score_seconds = time.perf_counter() - start


def as_forecaster(engine=None, forecaster=None, aggregate: str = DEFAULT_AGGREGATE):
    """The forecaster a backtest uses: exactly one of ``engine`` or ``forecaster`` must be given."""
    if (engine is None) == (forecaster is None):
        raise ValueError("give exactly one of engine= (a ForecastEngine) or forecaster= (a function)")
    if engine is not None:
        return EngineForecaster(engine, aggregate)
    return FunctionForecaster(forecaster, aggregate)
