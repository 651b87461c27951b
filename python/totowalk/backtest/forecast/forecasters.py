"""Forecasters the backtest can call: the batched Toto engine, or any Python function.

A forecaster takes a list of 1-D float32 contexts and returns, per context, the one-step point
forecast and the p60 − p40 band (both float32, as the classic loop stores them, §2.3, §3.3).
"""

from __future__ import annotations

import numpy as np

from ...aggregation import aggregate_with_spec, band_p60_minus_p40

DEFAULT_AGGREGATE = "trimmed_mean_10"  # the classic loop's default spec (§2.3)


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

    def __call__(self, contexts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out = np.asarray(self.fn(contexts))
        b = len(contexts)
        if out.ndim == 1 and out.shape[0] == b:
            return out.astype(np.float32), np.zeros(b, dtype=np.float32)
        if out.ndim == 2 and out.shape[0] == b and out.shape[1] >= 2:
            point = np.array(
                [np.float32(aggregate_with_spec(row, self.aggregate)[0]) for row in out],
                dtype=np.float32,
            )
            band = np.array([band_p60_minus_p40(row) for row in out], dtype=np.float32)
            return point, band
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
        model = getattr(self.engine, "model", None)
        if model is not None:
            from ...model.identity import model_identity  # reads the model's identity, no compute

            identity = model_identity(model, hash_memory=hash_weights)
            identity.pop("weights_file")  # where the file lies does not change numbers
            info.update(identity)
        return info

    def __call__(self, contexts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return self._point_band(self.engine.forecast(contexts, prediction_length=1, aggregate=(self.aggregate, "band")))

    def walk_forward(self, series: list, ends: list) -> tuple[np.ndarray, np.ndarray]:
        """The same forecasts for ``series[i][:e]``, e in ``ends[i]`` (in that order), through the
        engine's walk-forward form: each series converted once, its contexts known prefixes."""
        if not hasattr(self.engine, "forecast_walk_forward"):
            return self([s[:e] for s, es in zip(series, ends) for e in es])
        return self._point_band(
            self.engine.forecast_walk_forward(series, ends, prediction_length=1, aggregate=(self.aggregate, "band"))
        )

    def _point_band(self, res) -> tuple[np.ndarray, np.ndarray]:
        point = np.asarray(res.stats[self.aggregate], dtype=np.float32)[:, 0]
        band = np.asarray(res.stats["band"], dtype=np.float32)[:, 0]
        return point, band


def as_forecaster(engine=None, forecaster=None, aggregate: str = DEFAULT_AGGREGATE):
    """The forecaster a backtest uses: exactly one of ``engine`` or ``forecaster`` must be given."""
    if (engine is None) == (forecaster is None):
        raise ValueError("give exactly one of engine= (a ForecastEngine) or forecaster= (a function)")
    if engine is not None:
        return EngineForecaster(engine, aggregate)
    return FunctionForecaster(forecaster, aggregate)
