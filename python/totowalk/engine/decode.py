"""Autoregressive forecasting beyond one patch, with one shared prefill per context.

The classic forecaster pushes every sample batch's copy of the context through the whole model
again. Here each context is prefilled once; its KV cache is then expanded along the batch to
S sample paths plus one mean path, and decoding proceeds patch by patch: sample the patch from the
predicted mixtures (on the device), feed it back, predict the next. Nothing is copied to the host
inside the loop.

Random streams: the first patch uses exactly the one-pass streams (keys from the content hash and
step, sample index = path), so the first 64 steps equal a 64-step forecast. Later patches draw
one value per path with keys from ``path_stream_keys(content hash, S)`` and the step.
"""

from __future__ import annotations

import dataclasses

import torch

from .sampling import expected_value, path_stream_keys, stream_keys_for

__all__ = ["decode_batch"]


def _sample_rows(params, keys: torch.Tensor, num_samples: int, *, seed, backend, dtype) -> torch.Tensor:
    """Draw from (rows, V, h, K) mixtures with (rows, V, h) keys. Returns (rows, V, h, S)."""
    from ..kernels import sample_mixture

    rows, v, h, k = params.weights.shape
    flat = [t.reshape(-1, k) for t in (params.weights, params.df, params.loc, params.scale)]
    affine_loc = params.scaler_loc[:, :, None].expand(rows, v, h).reshape(-1)
    affine_scale = params.scaler_scale[:, :, None].expand(rows, v, h).reshape(-1)
    # check_values=False: the head's clamps guarantee the ranges, and the value checks would
    # synchronise the host at every decoded patch.
    draws = sample_mixture(
        *flat,
        affine_loc,
        affine_scale,
        keys.reshape(-1),
        num_samples,
        seed=seed,
        backend=backend,
        dtype=dtype,
        check_values=False,
    )
    return draws.reshape(rows, v, h, num_samples)


def _repeat_real_rows(state, real_rows: int, repeats: int):
    """Keep the first ``real_rows`` rows of a prefill state, each repeated ``repeats`` times."""
    if state.batch_size == real_rows:
        return state.repeat_rows(repeats)
    # drop the padding rows first: repeat once, then cut the row-major cache and statistics
    rows = torch.arange(real_rows, device=state.keys.device)
    flat = torch.arange(real_rows * state.num_variates, device=state.keys.device)
    trimmed = dataclasses.replace(
        state,
        keys=state.keys[:, flat],
        values=state.values[:, flat],
        scaler=state.scaler.index(rows),
        group_mask=None if state.group_mask is None else state.group_mask[rows],
        params=state.params.index(rows),
    )
    return trimmed.repeat_rows(repeats)


def decode_batch(
    model,
    values,
    mask,
    content_keys,
    horizon: int,
    num_samples: int,
    specs: list,
    *,
    seed: int,
    return_samples: bool,
    backend: str = "auto",
    dtype=torch.float32,
) -> tuple:
    """Forecast ``horizon`` > patch steps for b contexts with S sample paths each.

    Parameters
    ----------
    model : TotoModel
        Provides ``prefill`` and ``decode_next``.
    values, mask : torch.Tensor
        (b, V, P) left-padded float32 contexts and their padding mask, on the model's device.
    content_keys : np.ndarray
        (b, V) uint64 content hashes.
    horizon : int
        H > patch size.
    num_samples : int
        S sample paths per context.
    specs : list of AggregateSpec
        ``expected`` follows the mean path (each patch's analytic mean fed back, as the classic
        forecaster's mean forecast does); the others reduce the S paths per step.

    Returns
    -------
    stats : dict of str -> torch.Tensor
        (b, V, H) per spec name.
    samples : torch.Tensor or None
        (b, V, H, S) when ``return_samples``.
    params : MixtureParams
        The first patch's predicted parameters, (b, V, patch, K).
    """
    from ..kernels import reduce_samples

    patch = int(model.config.patch_size)
    num_patches = -(-horizon // patch)
    b, v = content_keys.shape  # values may hold extra padding rows after the b real ones
    device = values.device
    want_mean_path = any(s.kind == "expected" for s in specs)
    paths = num_samples + int(want_mean_path)

    state = model.prefill(values, mask, None, max_new_patches=num_patches - 1)
    first = state.params.index(slice(0, b))
    step_keys = stream_keys_for(content_keys.reshape(-1), patch, device).reshape(b, v, patch)
    first_draws = _sample_rows(first, step_keys, num_samples, seed=seed, backend=backend, dtype=dtype)

    # decoded values per path: (b, paths, V, num_patches * patch); path S (if any) is the mean path
    decoded = torch.empty((b, paths, v, num_patches * patch), dtype=torch.float32, device=device)
    decoded[:, :num_samples, :, :patch] = first_draws.permute(0, 3, 1, 2)
    if want_mean_path:
        decoded[:, num_samples, :, :patch] = expected_value(first)

    # (b, V, S) path keys -> per-step keys laid out like the decoding rows: (b * paths, V, num_patches * patch)
    per_path = path_stream_keys(content_keys.reshape(-1), num_samples)  # (b*V, S)
    path_keys = stream_keys_for(per_path.reshape(-1), num_patches * patch, device)
    path_keys = path_keys.reshape(b, v, num_samples, -1).permute(0, 2, 1, 3)
    if want_mean_path:  # the mean path never samples; any key will do
        path_keys = torch.cat([path_keys, path_keys[:, :1]], dim=1)
    path_keys = path_keys.reshape(b * paths, v, -1)

    state = _repeat_real_rows(state, b, paths)  # row c*paths + s = path s of context c
    for p in range(1, num_patches):
        previous = decoded[:, :, :, (p - 1) * patch : p * patch].reshape(b * paths, v, patch)
        params = model.decode_next(state, previous)
        draws = _sample_rows(
            params, path_keys[:, :, p * patch : (p + 1) * patch], 1, seed=seed, backend=backend, dtype=dtype
        )
        draws = draws[..., 0].float().reshape(b, paths, v, patch)
        if want_mean_path:
            mean = expected_value(params).reshape(b, paths, v, patch)
            draws[:, num_samples] = mean[:, num_samples]
        decoded[:, :, :, p * patch : (p + 1) * patch] = draws

    sample_paths = decoded[:, :num_samples, :, :horizon].permute(0, 2, 3, 1)  # (b, V, H, S)
    sampled_specs = [s for s in specs if s.kind != "expected"]
    stats = {}
    if sampled_specs:
        flat = reduce_samples(sample_paths.reshape(b * v * horizon, num_samples), sampled_specs)
        stats = {name: value.reshape(b, v, horizon) for name, value in flat.items()}
    for spec in specs:
        if spec.kind == "expected":
            stats[spec.name] = decoded[:, num_samples, :, :horizon]
    return stats, (sample_paths.contiguous() if return_samples else None), first
