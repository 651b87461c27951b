"""Toto's causal patch std-mean scaler, written as a scan so decoding can continue it.

For each (row, variate) and each time step t the official scaler keeps, in float64, the
running weighted count ``n_t``, sum ``s_t`` and Welford second moment
``m2_t = sum_i w_i (x_i - mean_{i-1}) (x_i - mean_i)`` (``mean_t = s_t / max(n_t, 1)``),
and its scale is ``sqrt(m2_t / max(max(n_t, 1) - 1, 1) + min_scale)`` (Bessel corrected).
That scale is then clamped to ``[max(min_scale, g * 10**-e), g * 10**e]`` where ``g`` is
the *global* std of the context prefix, ``sqrt(var + min_scale)`` without Bessel correction.
Every step of a patch uses the statistics at the patch's last step.

Decoding appends patches: the official forecaster re-runs the scaler over the whole extended
series with ``prefix_length`` = the original (padded) context length, so the running sums
simply continue over the appended values while ``g`` stays the context's. ``ScalerState``
carries exactly those sums (and ``g``) so appending a patch is the same computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ScalerState:
    """Running statistics after the last processed step, per (row, variate), float64.

    Attributes
    ----------
    count, total, m2 : Tensor, shape (B, V)
        Weighted count, weighted sum and Welford second moment so far.
    global_scale : Tensor, shape (B, V)
        Stabilisation reference: the std of the original context prefix.
    """

    count: torch.Tensor
    total: torch.Tensor
    m2: torch.Tensor
    global_scale: torch.Tensor

    def index(self, rows: torch.Tensor) -> ScalerState:
        return ScalerState(self.count[rows], self.total[rows], self.m2[rows], self.global_scale[rows])


def _global_scale(x: torch.Tensor, w: torch.Tensor, min_scale: float) -> torch.Tensor:
    """Non-causal std of the weighted values, (B, V, T) -> (B, V), float64."""
    denominator = w.sum(-1).clamp_min(1.0)
    mean = torch.nan_to_num((w * x).sum(-1) / denominator)
    variance = (((x - mean.unsqueeze(-1)) * w) ** 2).sum(-1) / denominator
    return torch.sqrt(variance + min_scale)


def causal_patch_scale(
    values: torch.Tensor,
    padding_mask: torch.Tensor,
    patch_size: int,
    *,
    min_scale: float = 0.1,
    stabilize_with_global: bool = True,
    scale_factor_exponent: float = 10.0,
    state: ScalerState | None = None,
    prefix_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, ScalerState]:
    """Normalise ``values`` with the causal patch statistics, continuing ``state`` if given.

    Parameters
    ----------
    values : Tensor, shape (B, V, T), T a multiple of ``patch_size``
        Series; positions where ``padding_mask`` is False are treated as 0 (as the official
        left zero-padding).
    padding_mask : Tensor of bool, shape (B, V, T)
        True where a value is real.
    state : ScalerState, optional
        Statistics of everything before ``values`` (decoding). None starts from scratch and
        computes the global scale from the first ``prefix_length`` steps (default: all).

    Returns
    -------
    normalised : Tensor, shape (B, V, T), dtype of ``values``
        ``(x - loc_p) / scale_p`` with each step's patch statistics.
    loc, scale : Tensor, shape (B, V, T // patch_size), dtype of ``values``
        Per-patch statistics.
    new_state : ScalerState
        Statistics after the last step, to continue with appended patches.
    """
    dtype = values.dtype
    real = padding_mask.to(torch.bool)
    x32 = torch.where(real, values, torch.zeros((), dtype=dtype, device=values.device))
    x = x32.to(torch.float64)
    w = real.to(torch.float64)

    if state is None:
        zeros = torch.zeros(x.shape[:-1], dtype=torch.float64, device=x.device)
        count0, total0, m2_0 = zeros, zeros, zeros
        if stabilize_with_global:
            cut = x.shape[-1] if prefix_length is None else prefix_length
            global_scale = _global_scale(x[..., :cut], w[..., :cut], min_scale)
        else:
            global_scale = zeros
    else:
        count0, total0, m2_0, global_scale = state.count, state.total, state.m2, state.global_scale

    count = count0.unsqueeze(-1) + torch.cumsum(w, -1)
    total = total0.unsqueeze(-1) + torch.cumsum(w * x, -1)
    denominator = count.clamp_min(1.0)
    mean = total / denominator
    previous_mean = torch.cat([(total0 / count0.clamp_min(1.0)).unsqueeze(-1), mean[..., :-1]], dim=-1)
    # Welford increment; zero weight (padding) contributes nothing.
    m2 = m2_0.unsqueeze(-1) + torch.cumsum((x - previous_mean) * (x - mean) * w, -1)

    # Only each patch's last step matters from here on.
    last = slice(patch_size - 1, None, patch_size)
    patch_mean = mean[..., last]
    patch_var = m2[..., last] / (denominator[..., last] - 1.0).clamp_min(1.0)
    patch_scale = torch.sqrt(patch_var + min_scale)
    if stabilize_with_global:
        g = global_scale.unsqueeze(-1)
        lower = torch.clamp_min(g * 10.0 ** (-scale_factor_exponent), min_scale)
        patch_scale = torch.clamp(patch_scale, min=lower, max=g * 10.0**scale_factor_exponent)

    loc = patch_mean.to(dtype)
    scale = patch_scale.to(dtype)
    normalised = (x32 - loc.repeat_interleave(patch_size, -1)) / scale.repeat_interleave(patch_size, -1)
    new_state = ScalerState(count[..., -1], total[..., -1], m2[..., -1], global_scale)
    return normalised, loc, scale, new_state
