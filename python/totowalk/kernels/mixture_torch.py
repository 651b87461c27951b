"""Torch reference sampler for the Student-T mixture: the CPU path, and the spec of the Triton kernel.

Per row n (a request and step) and sample i, with the words of :func:`stream.philox_block`:

1. component: ``u = U(block0.w0)``; the first k whose sequential float32 cumulative weight
   exceeds ``u * total``; if rounding leaves ``u * total == total``, the first k whose cumulative
   weight reaches ``total``.
2. numerator: ``z = sqrt(-2 log U(block0.w1)) * cos(2 pi U(block0.w2))``.
3. ``G ~ Gamma(a = df/2, 1)`` by Marsaglia-Tsang (2000), ``d = a - 1/3``, ``c = 1/sqrt(9 d)``:
   try ``v = (1 + c x)**3`` and accept if ``v > 0`` and ``log u < x**2/2 + d - d v + d log v``.
   Blocks 1..4 give 8 tries (two Box-Muller normals, two uniforms each). For ``a >= 1`` a try is
   accepted with probability >= 0.95, so all 8 fail with probability < 0.05**8 ~ 4e-11; then
   ``G = d`` (close to the median of the Gamma) is used.
4. Student-T: ``t = z * sqrt(a / G)``; normalised sample ``loc_k + scale_k * t``; data space
   ``affine_loc + affine_scale * (...)``.
5. As the reference forecaster does (toto-ts ``replace_extreme_values``), a value that is NaN,
   infinite or has ``|x| >= finfo(dtype).max / 2`` for the output dtype becomes 0.

In fp16 mode the parameters are rounded to fp16, the arithmetic stays float32 and the samples are
stored in fp16.
"""

from __future__ import annotations

import torch

from .philox import uniform_open01
from .stream import COMPONENT_DRAW, GAMMA_DRAWS, philox_block, philox_block_at
from .validation import MixtureInputs

__all__ = ["sample_mixture_torch"]

# Rows per chunk are chosen so a chunk holds about this many samples: bounds temporary memory.
_SAMPLES_PER_CHUNK = 1 << 20
_TWO_PI = 6.283185307179586  # float64 2*pi; rounds to the same float32 in both backends


def _box_muller(bits_radius: torch.Tensor, bits_angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent standard normals from two words, shape preserved (float32)."""
    radius = torch.sqrt(-2.0 * torch.log(uniform_open01(bits_radius)))
    angle = _TWO_PI * uniform_open01(bits_angle)
    return radius * torch.cos(angle), radius * torch.sin(angle)


def _sequential_cumsum(weights: torch.Tensor) -> torch.Tensor:
    """Left-to-right float32 cumulative sum over K, (N, K) -> (N, K); the kernel adds in this order."""
    cumulative = torch.empty_like(weights)
    running = torch.zeros_like(weights[:, 0])
    for k in range(weights.shape[1]):
        running = running + weights[:, k]
        cumulative[:, k] = running
    return cumulative


def _choose_components(weights: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF component index, weights (N, K), uniform (N, S) -> (N, S) int64."""
    cumulative = _sequential_cumsum(weights)
    total = cumulative[:, -1:]
    threshold = uniform * total
    chosen = torch.searchsorted(cumulative, threshold.contiguous(), right=True)
    fallback = (cumulative < total).sum(dim=1, keepdim=True)
    return torch.minimum(chosen, fallback)


def _marsaglia_tsang_tries(d, c, gamma, done, block):
    """Two tries from one Philox block (words w0..w3); all tensors share one shape."""
    w0, w1, w2, w3 = block
    normal_a, normal_b = _box_muller(w0, w1)
    for normal, bits in ((normal_a, w2), (normal_b, w3)):
        v = 1.0 + c * normal
        v = v * v * v
        log_u = torch.log(uniform_open01(bits))
        positive = v > 0
        log_v = torch.log(torch.where(positive, v, torch.ones_like(v)))  # v <= 0 is rejected anyway
        accept = positive & (log_u < 0.5 * normal * normal + d - d * v + d * log_v)
        gamma = torch.where(accept & ~done, d * v, gamma)
        done = done | accept
    return gamma, done


def _gamma_marsaglia_tsang(shape: torch.Tensor, seed: int, keys: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Gamma(shape, 1) draws for shape >= 1, (N, S) -> (N, S) float32."""
    d = shape - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    gamma = d.clone()  # fallback if every try is rejected (probability < 4e-11)
    done = torch.zeros_like(gamma, dtype=torch.bool)
    first = COMPONENT_DRAW + 1
    gamma, done = _marsaglia_tsang_tries(d, c, gamma, done, philox_block(seed, keys, index, first))
    # Over 99.7 % of samples accept in the first block; later blocks are drawn only for the rest
    # (same counters, so the same values the kernel computes for them).
    for draw in range(first + 1, first + GAMMA_DRAWS):
        row, col = torch.nonzero(~done, as_tuple=True)
        if row.numel() == 0:
            break
        block = philox_block_at(seed, keys[row], index[col], draw)
        sub_gamma, sub_done = _marsaglia_tsang_tries(d[row, col], c[row, col], gamma[row, col], done[row, col], block)
        gamma[row, col] = sub_gamma
        done[row, col] = sub_done
    return gamma


def _sample_rows(params: MixtureInputs, rows: slice, num_samples: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    keys = params.keys[rows]
    index = torch.arange(num_samples, dtype=torch.int64, device=keys.device)
    w0, w1, w2, _ = philox_block(seed, keys, index, COMPONENT_DRAW)
    component = _choose_components(params.weights[rows], uniform_open01(w0))
    df = torch.gather(params.df[rows], 1, component)
    loc = torch.gather(params.loc[rows], 1, component)
    scale = torch.gather(params.scale[rows], 1, component)
    numerator, _ = _box_muller(w1, w2)
    shape = 0.5 * df
    gamma = _gamma_marsaglia_tsang(shape, seed, keys, index)
    student = numerator * torch.sqrt(shape / gamma)
    normalised = loc + scale * student
    data = params.affine_loc[rows, None] + params.affine_scale[rows, None] * normalised
    extreme = ~torch.isfinite(data) | (data.abs() >= torch.finfo(dtype).max / 2)
    return torch.where(extreme, torch.zeros_like(data), data).to(dtype)


def _round_to(params: MixtureInputs, dtype: torch.dtype) -> MixtureInputs:
    """Round the float parameters to ``dtype`` (fp16 mode), keeping float32 storage for the math."""
    if dtype == torch.float32:
        return params
    rounded = {
        name: getattr(params, name).to(dtype).to(torch.float32)
        for name in ("weights", "df", "loc", "scale", "affine_loc", "affine_scale")
    }
    return MixtureInputs(keys=params.keys, **rounded)


def sample_mixture_torch(params: MixtureInputs, num_samples: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Draw ``num_samples`` data-space samples per row with torch ops.

    Parameters
    ----------
    params : MixtureInputs
        Validated parameters of N rows (see :func:`validation.check_mixture_inputs`).
    num_samples : int
        S >= 1.
    seed : int
        Stream seed in [0, 2**63).
    dtype : torch.dtype
        float32 or float16 (parameters rounded to it; math in float32; output in it).

    Returns
    -------
    torch.Tensor, shape (N, S), dtype ``dtype``
    """
    params = _round_to(params, dtype)
    out = torch.empty((params.rows, num_samples), dtype=dtype, device=params.weights.device)
    chunk = max(1, _SAMPLES_PER_CHUNK // num_samples)
    for start in range(0, params.rows, chunk):
        rows = slice(start, min(start + chunk, params.rows))
        out[rows] = _sample_rows(params, rows, num_samples, seed, dtype)
    return out
