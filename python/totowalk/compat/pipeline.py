"""Drop-in replacement for the classic Toto pipeline's ``predict`` (LEGACY_SEMANTICS §2.3).

An existing backtest that did::

    pipeline = TotoPipeline.from_pretrained("Datadog/Toto-Open-Base-1.0", device_map="cuda")
    forecast = pipeline.predict(context=ctx, prediction_length=1, num_samples=3072, samples_per_batch=384)
    samples = forecast[0].numpy()

swaps its forecaster by importing ``TotoPipeline`` from here instead. ``predict`` returns one
forecast object per context row whose ``.numpy()`` has the classic layout: (S,) for one step,
(S, H) for several. The engine draws all S samples from one forward pass, so
``samples_per_batch`` is accepted and ignored.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine import ForecastEngine

__all__ = ["CompatForecast", "TotoPipeline"]


class CompatForecast:
    """Samples of one context, shaped like the classic pipeline's forecast objects.

    Attributes
    ----------
    samples : np.ndarray
        (1, 1, H, S) float32: (row, variate, step, sample).
    """

    def __init__(self, samples: np.ndarray):
        self.samples = samples

    def numpy(self) -> np.ndarray:
        """(S,) when H == 1, else (S, H) — the classic ``forecast.numpy()`` layout."""
        per_step = self.samples[0, 0]  # (H, S)
        return per_step[0] if per_step.shape[0] == 1 else per_step.T

    @property
    def mean(self) -> np.ndarray:
        """(H,) sample mean per step."""
        return self.samples[0, 0].mean(axis=-1)


class TotoPipeline:
    """Classic-pipeline facade over a :class:`ForecastEngine`.

    Parameters
    ----------
    model_or_engine : TotoModel or ForecastEngine
    seed : int
        Engine seed when a model is given.
    device : str, optional
        Where the model runs when a model is given.
    """

    def __init__(self, model_or_engine, seed: int = 0, device=None):
        if isinstance(model_or_engine, ForecastEngine):
            self.engine = model_or_engine
        else:
            self.engine = ForecastEngine(model_or_engine, seed=seed, device=device)

    @classmethod
    def from_pretrained(
        cls, model_id: str = "Datadog/Toto-Open-Base-1.0", device_map: str | None = None, seed: int = 0, **_ignored
    ) -> TotoPipeline:
        """Load weights with ``totowalk.load_model`` (compile/AMP/cache options of the classic are ignored)."""
        from ..loading import load_model

        if device_map == "cuda" and not torch.cuda.is_available():
            device_map = "cpu"
        return cls(load_model(model_id, device=device_map), seed=seed)

    def predict(
        self, context, prediction_length: int, num_samples: int = 4096, samples_per_batch: int | None = None, **_ignored
    ) -> list:
        """Forecast every row of ``context``.

        Parameters
        ----------
        context : torch.Tensor, np.ndarray or list
            (T,) for one series or (B, T) for B series of equal length.
        prediction_length : int
        num_samples : int
        samples_per_batch : int, optional
            Ignored (kept for signature compatibility).

        Returns
        -------
        list of CompatForecast
            One per row, in order.
        """
        if isinstance(context, torch.Tensor):
            context = context.detach().cpu().numpy()
        array = np.asarray(context, dtype=np.float32)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2:
            raise ValueError(f"context: expected shape (T,) or (B, T), got {array.shape}")
        result = self.engine.forecast(
            list(array), prediction_length=prediction_length, num_samples=num_samples, aggregate=(), return_samples=True
        )
        return [CompatForecast(row[None, None]) for row in result.samples]
