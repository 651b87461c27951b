"""The classic forecasting semantics inside this codebase: the baseline for tests and benchmarks.

``reference_forecast`` does what the classic pipeline did for each context, one call per context:
the context is repeated ``samples_per_batch`` times and pushed through the model once per sample
batch; each step is sampled with ``torch.distributions`` (mixture component, Student-T, then the
scaler's affine map) from the global torch generator; non-finite or extreme draws become 0; beyond
one patch every path feeds its own draws back, patch by patch. Nothing is deduplicated, batched
across contexts or shared between sample batches. It is deliberately slow.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Categorical, MixtureSameFamily, StudentT

from ..aggregation import aggregate_numpy
from .inputs import normalize_contexts
from .packing import pack_batch
from .plan import num_patches
from .result import ForecastParams, ForecastResult
from .sampling import parse_engine_aggregates

__all__ = ["reference_forecast", "replace_extreme_values"]


def replace_extreme_values(values: torch.Tensor) -> torch.Tensor:
    """The classic forecaster's guard: NaN, +-inf and |x| >= max/2 of the dtype become 0."""
    limit = torch.finfo(values.dtype).max / 2
    bad = ~torch.isfinite(values) | (values.abs() >= limit)
    return torch.where(bad, torch.zeros((), dtype=values.dtype, device=values.device), values)


def _draw(params, steps: slice) -> torch.Tensor:
    """One draw per row and step from the predicted mixtures. Returns (rows, V, h) in data space."""
    mixture = MixtureSameFamily(
        Categorical(probs=params.weights[:, :, steps]),
        StudentT(params.df[:, :, steps], params.loc[:, :, steps], params.scale[:, :, steps], validate_args=False),
        validate_args=False,
    )
    normalised = mixture.sample()
    return replace_extreme_values(params.scaler_loc[..., None] + params.scaler_scale[..., None] * normalised)


def _analytic_mean(params) -> torch.Tensor:
    """(rows, V, H) mean of the predictive mixture in data space."""
    component_mean = (params.weights * params.loc).sum(-1)
    return params.scaler_loc[..., None] + params.scaler_scale[..., None] * component_mean


def _decode_paths(model, values, mask, horizon: int, patch: int, pick) -> torch.Tensor:
    """Autoregressive decoding of ``values.shape[0]`` rows: ``pick(params)`` chooses each patch's values.

    Returns (rows, V, ceil(H/patch)*patch) decoded values.
    """
    extra = -(-horizon // patch) - 1
    state = model.prefill(values, mask, None, max_new_patches=extra)
    chunks = [pick(state.params)]
    for _ in range(extra):
        chunks.append(pick(model.decode_next(state, chunks[-1])))
    return torch.cat(chunks, dim=-1)


def _forecast_one_context(model, values, mask, horizon, num_samples, samples_per_batch, patch, need_samples):
    """Samples (V, H, S), params of the first patch (batch of 1) and the expected path (V, H)."""
    batches = []
    for _ in range(num_samples // samples_per_batch if need_samples else 0):
        rows = values.repeat(samples_per_batch, 1, 1)
        row_mask = mask.repeat(samples_per_batch, 1, 1)
        if horizon <= patch:
            params = model.forecast_params(rows, row_mask, None, horizon=horizon)
            batches.append(_draw(params, slice(None)))
        else:
            batches.append(
                _decode_paths(model, rows, row_mask, horizon, patch, lambda p: _draw(p, slice(None)))[..., :horizon]
            )
    samples = torch.cat(batches, dim=0).permute(1, 2, 0) if batches else None
    if horizon <= patch:
        params = model.forecast_params(values, mask, None, horizon=horizon)
        expected = _analytic_mean(params)[0]
    else:
        # no closed form past one patch: the classic mean path feeds each patch's mean back
        params = model.forecast_params(values, mask, None, horizon=patch)
        expected = _decode_paths(
            model, values, mask, horizon, patch, lambda p: replace_extreme_values(_analytic_mean(p))
        )[0, :, :horizon]
    return samples, params, expected


def reference_forecast(
    model,
    contexts,
    prediction_length: int = 1,
    num_samples: int = 256,
    samples_per_batch: int | None = None,
    aggregate=("mean",),
    seed: int = 0,
    return_samples: bool = False,
) -> ForecastResult:
    """Forecast each context on its own, the classic way (see the module docstring).

    Parameters
    ----------
    model : totowalk.model.TotoModel
    contexts : list of array-like, or array-like
        As for :meth:`ForecastEngine.forecast`.
    prediction_length : int
        H >= 1.
    num_samples : int
        S draws per step; must be a multiple of ``samples_per_batch``.
    samples_per_batch : int, optional
        Context copies per model call (default: all S at once).
    aggregate : str or sequence of str
        Reduced with ``totowalk.aggregation.aggregate_numpy`` (float64) on the draws; ``expected``
        is the analytic mixture mean (H <= patch) or the mean path (H > patch).
    seed : int
        Seeds the global torch generator for the call (restored afterwards).

    Returns
    -------
    ForecastResult
        Same layout as the engine's; ``num_unique`` is the number of calls made.
    """
    horizon = int(prediction_length)
    if horizon < 1:
        raise ValueError(f"prediction_length must be >= 1, got {prediction_length}")
    samples_per_batch = num_samples if samples_per_batch is None else int(samples_per_batch)
    if samples_per_batch < 1 or num_samples % samples_per_batch:
        raise ValueError(
            f"num_samples ({num_samples}) must be a positive multiple of samples_per_batch ({samples_per_batch})"
        )
    specs = parse_engine_aggregates(aggregate)
    need_samples = return_samples or any(s.kind != "expected" for s in specs)
    batch = normalize_contexts(contexts)
    patch = int(model.config.patch_size)
    device = next(model.parameters()).device
    stats = {s.name: [] for s in specs}
    all_samples, all_params = [], []
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), torch.inference_mode():
        torch.manual_seed(seed)
        for series in batch.series:
            values, mask = pack_batch([series], num_patches(series.shape[-1], patch) * patch)
            values, mask = torch.from_numpy(values).to(device), torch.from_numpy(mask).to(device)
            samples, params, expected = _forecast_one_context(
                model, values, mask, horizon, num_samples, samples_per_batch, patch, need_samples
            )
            v = series.shape[0]
            flat = samples.reshape(v * horizon, num_samples).double().cpu().numpy() if samples is not None else None
            for spec in specs:
                value = (
                    expected.cpu().numpy()
                    if spec.kind == "expected"
                    else aggregate_numpy(flat, spec).reshape(v, horizon)
                )
                stats[spec.name].append(value)
            if return_samples:
                all_samples.append(samples.cpu().numpy())
            all_params.append(
                {
                    f: getattr(params, f)[0].cpu().numpy()
                    for f in ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale")
                }
            )

    def stack(arrays, shape):
        out = np.stack(arrays) if arrays else np.zeros(shape)
        return out if batch.multivariate else out[:, 0]

    v = batch.num_variates
    result_stats = {name: stack(values, (0, v, horizon)) for name, values in stats.items()}
    samples_out = stack(all_samples, (0, v, horizon, num_samples)) if return_samples else None
    params_out = None
    if all_params:
        params_out = ForecastParams(**{f: np.stack([p[f] for p in all_params]) for f in all_params[0]})
    return ForecastResult(
        stats=result_stats,
        samples=samples_out,
        params=params_out,
        num_unique=len(batch),
        info={"model_calls": len(batch)},
    )
