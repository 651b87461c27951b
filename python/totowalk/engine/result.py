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

    def scores(self, actuals, *, tol: float | None = None, backend: str = "auto", device=None) -> dict:
        """Exact proper scores of the predicted distributions against what happened.

        Parameters
        ----------
        actuals : array-like
            (B, H), or (B, V, H) for multivariate input: the realised value of each step (NaN where
            unknown). H at most the steps the parameters cover (one patch).
        tol : float, optional
            Quadrature tolerance of the CRPS (:data:`totowalk.scoring.proper.DEFAULT_TOLERANCE`).
        backend : str
            As :func:`totowalk.scoring.proper.mixture_scores`: "auto" (the host loop), "native",
            "torch" or "triton" (one kernel on ``device``, default "cuda": the parameters are
            copied there).

        Returns
        -------
        dict of str -> np.ndarray
            ``crps``, ``log_score`` (``-log f(y)``) and ``pit`` (``F(y)``), shaped as ``actuals``, float64;
            NaN where the actual is. Computed from the mixture, no sampling (totowalk.scoring.proper).
        """
        from ..scoring.proper import DEFAULT_TOLERANCE, mixture_scores

        if self.params is None:
            raise ValueError("scores need the predicted mixture parameters; this result carries none")
        p = self.params
        y = np.asarray(actuals, dtype=np.float64)
        batch, variates, steps, components = p.weights.shape
        shape = (batch, steps) if y.ndim == 2 else (batch, variates, steps)
        if y.ndim not in (2, 3) or y.shape[-1] > steps or y.shape[:-1] != shape[:-1]:
            raise ValueError(
                f"actuals of shape {y.shape} do not match the forecasts: expected {shape[:-1]} + (steps <= {steps},)"
            )
        if y.ndim == 2 and variates != 1:
            raise ValueError(f"multivariate forecasts ({variates} variates) need actuals of shape (B, V, H)")
        horizon = y.shape[-1]
        y3 = y.reshape(batch, variates, horizon)

        def rows(a):  # (B, V, H, K) -> (N, K) over the steps that have actuals
            return a[:, :, :horizon].reshape(-1, components)

        affine = [
            np.repeat(a.astype(np.float64).reshape(batch, variates, 1), horizon, 2).reshape(-1)
            for a in (p.scaler_loc, p.scaler_scale)
        ]
        params = [rows(a) for a in (p.weights, p.df, p.loc, p.scale)]
        flat = y3.reshape(-1)
        known = np.isfinite(flat)
        out = {name: np.full(flat.shape, np.nan) for name in ("crps", "log_score", "pit")}
        if known.any():
            args = [a[known] for a in params] + [a[known] for a in affine] + [flat[known]]
            if backend == "triton":  # the kernel runs where its inputs are
                import torch

                target = torch.device(device or "cuda")
                args = [torch.as_tensor(a, dtype=torch.float64, device=target) for a in args]
            found = mixture_scores(*args, tol=DEFAULT_TOLERANCE if tol is None else tol, backend=backend)
            for name, values in out.items():
                values[known] = found[name].cpu().numpy()
        return {name: values.reshape(y.shape) for name, values in out.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.stats[name]
        except KeyError:
            raise KeyError(f"aggregate {name!r} was not requested; available: {sorted(self.stats)}") from None
