"""Public sampling and reduction entry points; dispatch between torch and Triton.

N rows (one per request and forecast step), K mixture components, S samples per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..aggregation import AggregateSpec, parse_aggregate
from .backend import SamplingBackend, resolve_backend
from .mixture_torch import sample_mixture_torch
from .reduction_plan import build_reduction_plan, reduce_with_plan
from .validation import check_mixture_inputs, check_sample_dtype

__all__ = ["MAX_TRITON_SAMPLES", "mixture_mean", "reduce_samples", "sample_and_reduce", "sample_mixture"]

#: Largest S the fused kernel keeps on chip (one power-of-two sort per row).
MAX_TRITON_SAMPLES = 4096


def _pick_backend(backend, device: torch.device, num_samples: int) -> SamplingBackend:
    choice = resolve_backend(backend, device)
    if choice is SamplingBackend.TRITON and num_samples > MAX_TRITON_SAMPLES:
        if SamplingBackend(backend) is SamplingBackend.AUTO:
            return SamplingBackend.TORCH  # documented: auto uses torch above the on-chip limit
        raise ValueError(f"backend='triton' supports num_samples <= {MAX_TRITON_SAMPLES}; got {num_samples}")
    return choice


def sample_mixture(
    weights,
    df,
    loc,
    scale,
    affine_loc,
    affine_scale,
    keys,
    num_samples: int,
    *,
    seed: int = 0,
    backend: str = "auto",
    dtype: torch.dtype = torch.float32,
    check_values: bool = True,
) -> torch.Tensor:
    """Draw S samples per row from a Student-T mixture, in data space.

    Sample i of row n depends only on ``(seed, keys[n], i)`` and row n's parameters, never on the
    batch; the torch and Triton backends draw the same samples up to float rounding.

    Parameters
    ----------
    weights, df, loc, scale : torch.Tensor, shape (N, K)
        Mixture weights (>= 0, positive row sum; need not be normalised), degrees of freedom
        (>= 2), component locations and scales (> 0), in the scaler's normalised space.
    affine_loc, affine_scale : torch.Tensor, shape (N,)
        The scaler's affine map back to data space: ``x = affine_loc + affine_scale * y``.
    keys : torch.Tensor, shape (N,), int64
        Per-row stream keys, e.g. from :func:`request_keys`.
    num_samples : int
        S >= 1 (the Triton backend keeps S <= 4096 on chip).
    seed : int
        Stream seed in [0, 2**63).
    backend : {"auto", "torch", "triton"}
    dtype : torch.float32 or torch.float16
        fp16 rounds the parameters and the samples to fp16; arithmetic stays float32.
    check_values : bool
        Check the parameters' value ranges (a host synchronisation on CUDA). Shapes, dtypes and
        devices are always checked.

    Returns
    -------
    torch.Tensor, shape (N, S), dtype ``dtype``
    """
    _, samples = sample_and_reduce(
        weights,
        df,
        loc,
        scale,
        affine_loc,
        affine_scale,
        keys,
        num_samples,
        (),
        seed=seed,
        return_samples=True,
        backend=backend,
        dtype=dtype,
        check_values=check_values,
    )
    return samples


def _split_expected(aggregates) -> tuple[list[AggregateSpec], list[AggregateSpec]]:
    if isinstance(aggregates, (str, AggregateSpec)):
        aggregates = (aggregates,)
    specs = [a if isinstance(a, AggregateSpec) else parse_aggregate(a, extended=True) for a in aggregates]
    return [s for s in specs if s.kind != "expected"], [s for s in specs if s.kind == "expected"]


def sample_and_reduce(
    weights,
    df,
    loc,
    scale,
    affine_loc,
    affine_scale,
    keys,
    num_samples: int,
    aggregates: Sequence[str | AggregateSpec],
    *,
    seed: int = 0,
    return_samples: bool = False,
    backend: str = "auto",
    dtype: torch.dtype = torch.float32,
    check_values: bool = True,
):
    """Sample as :func:`sample_mixture` and reduce each row to the requested statistics.

    On the Triton backend this is one kernel launch that keeps the samples on chip and writes only
    the statistics (and the samples when asked). ``expected`` is :func:`mixture_mean`, not sampled.

    Parameters
    ----------
    weights, df, loc, scale, affine_loc, affine_scale, keys, num_samples, seed, backend, dtype, check_values
        As for :func:`sample_mixture`.
    aggregates : sequence of str or AggregateSpec
        Names as accepted by ``parse_aggregate(..., extended=True)``: ``"mean"``, ``"std"``,
        ``"median"``, ``"p10"``, ``"quantile_0.35"``, ``"trimmed_mean_10"``, ``"band"``, ...
    return_samples : bool
        Also return the (N, S) samples.

    Returns
    -------
    stats : dict of str to torch.Tensor, shape (N,), float32
        Keyed by each aggregate's name as given.
    samples : torch.Tensor, shape (N, S), dtype ``dtype``, or None
    """
    dtype = check_sample_dtype(dtype)
    params = check_mixture_inputs(
        weights, df, loc, scale, affine_loc, affine_scale, keys, num_samples, check_values=check_values
    )
    sampled_specs, expected_specs = _split_expected(aggregates)
    plan = build_reduction_plan(sampled_specs, num_samples)
    choice = _pick_backend(backend, params.weights.device, num_samples)
    if choice is SamplingBackend.TRITON:
        from .mixture_triton import sample_and_reduce_triton  # triton is only imported when used

        table, samples = sample_and_reduce_triton(params, num_samples, seed, dtype, plan, return_samples)
    else:
        samples = sample_mixture_torch(params, num_samples, seed, dtype)
        table = _reduce_table(samples, plan)
    stats = {spec.name: table[:, i] for i, spec in enumerate(plan.specs)}
    for spec in expected_specs:
        stats[spec.name] = mixture_mean(weights, loc, affine_loc, affine_scale)
    return stats, (samples if return_samples else None)


def _reduce_table(samples: torch.Tensor, plan) -> torch.Tensor:
    """(N, S) samples -> (N, n_stats) float32, reduced in float64 after an ascending sort."""
    if not plan.specs:
        return torch.empty((samples.shape[0], 0), dtype=torch.float32, device=samples.device)
    sorted_samples = torch.sort(samples.to(torch.float64), dim=1).values
    return reduce_with_plan(sorted_samples, plan).to(torch.float32)


def reduce_samples(samples: torch.Tensor, aggregates: Sequence[str | AggregateSpec]) -> dict[str, torch.Tensor]:
    """Reduce given samples row by row (torch ops on the samples' device, float64 accumulation).

    Parameters
    ----------
    samples : torch.Tensor, shape (N, S), floating
    aggregates : sequence of str or AggregateSpec
        As for :func:`sample_and_reduce`, except ``expected`` (it needs the mixture parameters).

    Returns
    -------
    dict of str to torch.Tensor, shape (N,), float32
    """
    if not isinstance(samples, torch.Tensor) or samples.ndim != 2 or not samples.is_floating_point():
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(f"samples must be a floating (N, S) tensor; got {shape}")
    sampled_specs, expected_specs = _split_expected(aggregates)
    if expected_specs:
        raise ValueError(
            f"aggregate {expected_specs[0].name!r} needs the mixture parameters: use sample_and_reduce or mixture_mean"
        )
    plan = build_reduction_plan(sampled_specs, samples.shape[1])
    table = _reduce_table(samples, plan)
    return {spec.name: table[:, i] for i, spec in enumerate(plan.specs)}


def mixture_mean(
    weights: torch.Tensor, loc: torch.Tensor, affine_loc: torch.Tensor, affine_scale: torch.Tensor
) -> torch.Tensor:
    """Analytic mean of the mixture in data space (the ``expected`` aggregate).

    ``affine_loc + affine_scale * sum_k w_k loc_k / sum_k w_k`` (a Student-T with df >= 2 > 1 has
    mean loc), computed in float64; non-finite or extreme results become 0 as in the reference
    forecaster.

    Parameters
    ----------
    weights, loc : torch.Tensor, shape (N, K)
    affine_loc, affine_scale : torch.Tensor, shape (N,)

    Returns
    -------
    torch.Tensor, shape (N,), float32
    """
    if weights.ndim != 2 or loc.shape != weights.shape:
        raise ValueError(
            f"weights and loc must share a shape (N, K); got {tuple(weights.shape)} and {tuple(loc.shape)}"
        )
    rows = weights.shape[0]
    for name, tensor in (("affine_loc", affine_loc), ("affine_scale", affine_scale)):
        if tensor.shape != (rows,):
            raise ValueError(f"{name} must have shape (N,) = ({rows},); got {tuple(tensor.shape)}")
    w = weights.to(torch.float64)
    normalised = (w * loc.to(torch.float64)).sum(dim=1) / w.sum(dim=1)
    mean = (affine_loc.to(torch.float64) + affine_scale.to(torch.float64) * normalised).to(torch.float32)
    extreme = ~torch.isfinite(mean) | (mean.abs() >= torch.finfo(torch.float32).max / 2)
    return torch.where(extreme, torch.zeros_like(mean), mean)
