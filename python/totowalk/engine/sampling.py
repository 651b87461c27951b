"""From predicted mixture parameters to aggregates (and optionally samples), on the device.

This is the engine's single entry to the sampling kernels: ``totowalk.kernels.sample_and_reduce``
picks the torch path on CPU and the fused Triton kernel on CUDA behind the same call.

Random streams: row (request, variate, step) uses the key ``request_keys(content hash, H)[step]``
and sample index s, so a draw depends only on (seed, content, step, s) and that row's parameters.
Autoregressive sample paths beyond the first patch draw one value per path: path s of a request
uses the key derived from :func:`path_stream_keys` (content hash mixed with s) and sample index 0.
"""

from __future__ import annotations

import numpy as np
import torch

from ..aggregation import parse_aggregate
from ..devices import to_device_async

# Which random streams sampled forecasts draw from; part of a stored run's fingerprint, so a run
# resumed by a version whose streams differ is refused instead of mixing two sets of draws.
# v2: request keys hash a context's values before its shape (v1: shape first).
RANDOM_STREAMS = "philox4x32-10; keys blake2b(values, shape) v2"

__all__ = [
    "ESTIMATORS",
    "RANDOM_STREAMS",
    "check_estimator",
    "draw_and_reduce",
    "exact_reduce",
    "expected_value",
    "parse_engine_aggregates",
    "path_stream_keys",
    "stream_keys_for",
]

#: How aggregates are computed: from seeded Monte Carlo draws, or as population values.
ESTIMATORS = ("sampled", "exact")


def check_estimator(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")
    return estimator


# An odd constant different from request_keys' step increment, so path keys and step keys stay apart.
_PATH_INCREMENT = np.uint64(0xD1B54A32D192ED03)


def parse_engine_aggregates(aggregate) -> list:
    """Parse aggregate names (engine vocabulary, ``extended=True``); names must be unique.

    Returns
    -------
    list of AggregateSpec, in the caller's order.
    """
    if isinstance(aggregate, str):
        aggregate = (aggregate,)
    specs = [parse_aggregate(name, extended=True) for name in aggregate]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"aggregate: duplicate names {duplicates}")
    return specs


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 (wrapping arithmetic): a well-mixed bijection."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def path_stream_keys(content_keys: np.ndarray, num_paths: int) -> np.ndarray:
    """Per-path content keys for autoregressive decoding.

    Parameters
    ----------
    content_keys : np.ndarray
        (R,) uint64 content hashes (one per request row and variate).
    num_paths : int
        S sample paths.

    Returns
    -------
    np.ndarray
        (R, S) uint64: ``splitmix64(key + (s + 1) * 0xD1B54A32D192ED03)``; depends only on (key, s).
    """
    paths = np.arange(1, num_paths + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = content_keys.astype(np.uint64)[:, None] + paths[None, :] * _PATH_INCREMENT
    return _splitmix64(mixed)


def stream_keys_for(content_keys: np.ndarray, horizon: int, device) -> torch.Tensor:
    """(R, H) int64 per-step stream keys on ``device`` for (R,) uint64 content hashes."""
    from ..kernels import request_keys

    keys = request_keys(np.ascontiguousarray(content_keys, dtype=np.uint64), horizon)
    return to_device_async(keys, torch.device(device))


def flatten_rows(params) -> tuple:
    """(b, V, H, K) mixture tensors -> (N, K) rows and (N,) affine terms, N = b*V*H."""
    b, v, h, k = params.weights.shape
    rows = [t.reshape(b * v * h, k) for t in (params.weights, params.df, params.loc, params.scale)]
    affine_loc = params.scaler_loc[:, :, None].expand(b, v, h).reshape(-1)
    affine_scale = params.scaler_scale[:, :, None].expand(b, v, h).reshape(-1)
    return rows, affine_loc, affine_scale


def expected_value(params) -> torch.Tensor:
    """Analytic mean of the predictive mixture in data space.

    Returns
    -------
    torch.Tensor
        (b, V, H): scaler_loc + scaler_scale * sum_k weights_k * loc_k.
    """
    from ..kernels import mixture_mean

    b, v, h, _ = params.weights.shape
    (weights, _, loc, _), affine_loc, affine_scale = flatten_rows(params)
    return mixture_mean(weights, loc, affine_loc, affine_scale).reshape(b, v, h)


def draw_and_reduce(
    params,
    keys: torch.Tensor,
    num_samples: int,
    specs: list,
    *,
    seed: int,
    return_samples: bool,
    backend: str = "auto",
    dtype=torch.float32,
    check_values: bool = True,
) -> tuple:
    """Sample the predicted mixtures and reduce each row's draws.

    Parameters
    ----------
    params : MixtureParams
        weights/df/loc/scale (b, V, H, K), scaler_loc/scaler_scale (b, V).
    keys : torch.Tensor
        (b, V, H) int64 stream keys (see module docstring).
    num_samples : int
        S draws per row.
    specs : list of AggregateSpec
        ``expected`` is computed analytically; every other kind from the draws.
    check_values : bool
        Check the parameters' ranges first (a host wait on CUDA); False for callers that check
        them on the device with their results (the engine: ``collect.invalid_contexts``).

    Returns
    -------
    stats : dict of str -> torch.Tensor
        (b, V, H) per spec name, on the parameters' device.
    samples : torch.Tensor or None
        (b, V, H, S) when ``return_samples``.
    """
    from ..kernels import sample_and_reduce

    b, v, h, _ = params.weights.shape
    sampled_specs = [s for s in specs if s.kind != "expected"]
    stats = {}
    samples = None
    if sampled_specs or return_samples:
        (weights, df, loc, scale), affine_loc, affine_scale = flatten_rows(params)
        flat_stats, flat_samples = sample_and_reduce(
            weights,
            df,
            loc,
            scale,
            affine_loc,
            affine_scale,
            keys.reshape(-1),
            num_samples,
            sampled_specs,
            seed=seed,
            return_samples=return_samples,
            backend=backend,
            dtype=dtype,
            check_values=check_values,
        )
        stats = {name: value.reshape(b, v, h) for name, value in flat_stats.items()}
        if return_samples:
            samples = flat_samples.reshape(b, v, h, num_samples)
    if any(s.kind == "expected" for s in specs):
        mean = expected_value(params)
        for s in specs:
            if s.kind == "expected":
                stats[s.name] = mean
    return stats, samples


def exact_reduce(params, specs: list, backend: str = "auto") -> dict:
    """Every aggregate as the population value of the predicted mixtures (nothing is drawn), computed
    by ``backend`` (``totowalk.kernels.STATISTICS_BACKENDS``).

    Returns
    -------
    dict of str -> torch.Tensor
        (b, V, H) float64 per spec name, on the parameters' device.
    """
    from ..kernels import exact_statistics

    b, v, h, _ = params.weights.shape
    (weights, df, loc, scale), affine_loc, affine_scale = flatten_rows(params)
    # wait=False: on a card nothing here reads values back; the collector checks the parameters
    # (invalid_contexts) and finds a row the iteration left NaN when it reads the batch
    stats = exact_statistics(weights, df, loc, scale, affine_loc, affine_scale, specs, backend=backend, wait=False)
    return {name: value.reshape(b, v, h) for name, value in stats.items()}
