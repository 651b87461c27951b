"""The engine's answer: aggregates per request (always), samples and mixture parameters (on request)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ForecastParams", "ForecastResult"]


@dataclass(frozen=True)
class ForecastParams:
    """Predicted mixture and scaler parameters per request, variate and step (request order).

    For one-pass forecasts (prediction_length <= patch size) these are exactly what the model
    predicted. For autoregressive forecasts they cover the first patch only (later patches
    depend on the sample path).

    Attributes
    ----------
    weights, df, loc, scale : np.ndarray
        (B, V, H1, K) float32, in the scaler's normalised space; H1 = min(H, patch size).
    scaler_loc, scaler_scale : np.ndarray
        (B, V) float32: a normalised draw y maps to ``scaler_loc + scaler_scale * y``.
    """

    weights: np.ndarray
    df: np.ndarray
    loc: np.ndarray
    scale: np.ndarray
    scaler_loc: np.ndarray
    scaler_scale: np.ndarray


@dataclass(frozen=True)
class ForecastResult:
    """Forecasts for a batch of requests, in request order.

    Attributes
    ----------
    stats : dict of str -> np.ndarray
        One array per requested aggregate: (B, H), or (B, V, H) for multivariate input.
    samples : np.ndarray or None
        (B, H, S), or (B, V, H, S) for multivariate input, when ``return_samples=True``.
    params : ForecastParams or None
        The predicted distribution parameters (see :class:`ForecastParams`).
    num_unique : int
        Distinct contexts actually forecast (requests with identical contexts share one).
    info : dict
        Planning facts: number of model batches, OOM splits.
    """

    stats: dict
    samples: np.ndarray | None = None
    params: ForecastParams | None = None
    num_unique: int = 0
    info: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.stats[name]
        except KeyError:
            raise KeyError(f"aggregate {name!r} was not requested; available: {sorted(self.stats)}") from None
