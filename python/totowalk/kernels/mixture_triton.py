"""Fused Triton kernel: Student-T mixture sampling plus sorted-sample reductions, one launch.

One program per row (request and step) draws all S samples of that row into registers (S padded to
a power of two, padding masked), writes them to the samples buffer (a scratch buffer when the
caller does not keep them), sorts them on chip with ``tl.sort`` and evaluates every row of the
:class:`~.reduction_plan.ReductionPlan`, writing (N, n_stats). The store is unconditional on
purpose: one compiled kernel serves both cases, so the statistics are bit-identical whether or not the
samples are returned (a kernel without the store gets other register layouts from Triton, hence
other float summation orders; seen on an H200). Above 2,048 samples a row is drawn in chunks
written to that buffer and read back for the sort, so no thread holds more than one sample's
Philox and Gamma state at a time (see :func:`_launch_settings`).
The math and the random stream are those of :mod:`.mixture_torch`, step for step, so the two
backends agree up to float rounding of the transcendental functions (and, through those, on the
rare accept/reject decision that lies within rounding of its boundary).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..devices import to_device_async
from .reduction_plan import COLUMNS, ReductionPlan
from .stream import GAMMA_DRAWS, seed_words
from .validation import MixtureInputs

__all__ = ["sample_and_reduce_triton"]

_TWO_PI = 6.283185307179586
_COL = {name: i for i, name in enumerate(COLUMNS)}


@triton.jit
def _uniform_open01(bits):
    # ((bits >> 9) + 0.5) * 2**-23: exact in float32, never 0 or 1 (same as philox.uniform_open01).
    return ((bits >> 9).to(tl.float32) + 0.5) * 1.1920928955078125e-07


@triton.jit
def _box_muller(bits_radius, bits_angle):
    radius = tl.sqrt(-2.0 * tl.log(_uniform_open01(bits_radius)))
    angle = 6.283185307179586 * _uniform_open01(bits_angle)
    return radius * tl.cos(angle), radius * tl.sin(angle)


@triton.jit
def _marsaglia_tsang_try(normal, bits, d, c, gamma, done):
    # v = (1 + c x)^3; accept if v > 0 and log u < x^2/2 + d - d v + d log v.
    v = 1.0 + c * normal
    v = v * v * v
    log_u = tl.log(_uniform_open01(bits))
    positive = v > 0
    log_v = tl.log(tl.where(positive, v, 1.0))  # v <= 0 is rejected anyway; avoids log of negatives
    accept = positive & (log_u < 0.5 * normal * normal + d - d * v + d * log_v)
    gamma = tl.where(accept & (~done), d * v, gamma)
    return gamma, done | accept


@triton.jit
def _order_stat(sorted_x, offs, index):
    # x_(index) of the sorted row as a scalar (a masked sum: one element survives).
    return tl.sum(tl.where(offs == index, sorted_x, 0.0), axis=0)


@triton.jit
def _plan_quantile(sorted_x, offs, plan_row, LO: tl.constexpr, HI: tl.constexpr, T: tl.constexpr):
    # numpy's two-sided lerp between x_(lo) and x_(hi) with weight t.
    a = _order_stat(sorted_x, offs, tl.load(plan_row + LO).to(tl.int32))
    b = _order_stat(sorted_x, offs, tl.load(plan_row + HI).to(tl.int32))
    t = tl.load(plan_row + T)
    diff = b - a
    return tl.where(t >= 0.5, b - diff * (1.0 - t), a + diff * t)


@triton.jit
def _draw_samples(
    offs,
    row,
    weights_ptr,
    df_ptr,
    loc_ptr,
    scale_ptr,
    affine_loc_ptr,
    affine_scale_ptr,
    keys_ptr,
    seed,
    extreme_limit,
    out_dtype: tl.constexpr,
    K: tl.constexpr,
    GAMMA_BLOCKS: tl.constexpr,
):
    # Samples number ``offs`` of ``row``, in ``out_dtype``: the mixture draw of mixture_torch, step for step.
    params_row = row * K

    # Philox counter (sample index, block, key_lo, key_hi), key = seed (see stream.py).
    key = tl.load(keys_ptr + row).to(tl.uint64, bitcast=True)
    zeros_u32 = offs.to(tl.uint32) * 0
    c0 = offs.to(tl.uint32)
    c2 = zeros_u32 + key.to(tl.uint32)
    c3 = zeros_u32 + (key >> 32).to(tl.uint32)

    w0, w1, w2, _ = tl.philox(seed, c0, zeros_u32, c2, c3)
    numerator, _ = _box_muller(w1, w2)  # first, so w1 and w2 die early (register pressure)
    # Component by inverse CDF over the sequential float32 cumulative weights.
    total = tl.load(weights_ptr + params_row).to(tl.float32)
    for k in tl.static_range(1, K):
        total = total + tl.load(weights_ptr + params_row + k).to(tl.float32)
    threshold = _uniform_open01(w0) * total
    done = offs < 0
    component = tl.zeros_like(offs).to(tl.int32)
    cumulative = tl.zeros_like(offs).to(tl.float32)  # a vector: scalar/vector bool ops trip the interpreter
    for k in tl.static_range(K):
        cumulative = cumulative + tl.load(weights_ptr + params_row + k).to(tl.float32)
        take = ((threshold < cumulative) | (cumulative >= total)) & (~done)
        component = tl.where(take, k, component)
        done = done | take
    # Per-sample gathers of the chosen component's parameters (K values per row, cached) rather
    # than K-way select chains: keeps 3K scalars out of the registers.
    df = tl.load(df_ptr + params_row + component).to(tl.float32)

    # Gamma(df/2) by Marsaglia-Tsang: two tries per Philox block; fallback d (p < 4e-11).
    shape = 0.5 * df
    d = shape - 1.0 / 3.0
    c = 1.0 / tl.sqrt(9.0 * d)
    gamma = d
    accepted = offs < 0
    for draw in range(1, 1 + GAMMA_BLOCKS):
        g0, g1, g2, g3 = tl.philox(seed, c0, zeros_u32 + draw, c2, c3)
        normal_a, normal_b = _box_muller(g0, g1)
        gamma, accepted = _marsaglia_tsang_try(normal_a, g2, d, c, gamma, accepted)
        gamma, accepted = _marsaglia_tsang_try(normal_b, g3, d, c, gamma, accepted)
    student = numerator * tl.sqrt(shape / gamma)

    # loc and scale of the chosen component are gathered only now (one index vector stays live,
    # not two float vectors, through the Gamma loop).
    loc = tl.load(loc_ptr + params_row + component).to(tl.float32)
    scale = tl.load(scale_ptr + params_row + component).to(tl.float32)
    normalised = loc + scale * student
    data = tl.load(affine_loc_ptr + row).to(tl.float32) + tl.load(affine_scale_ptr + row).to(tl.float32) * normalised
    # The reference forecaster's replace_extreme_values: NaN, inf or |x| >= max/2 -> 0.
    extreme = (data != data) | (tl.abs(data) >= extreme_limit)
    data = tl.where(extreme, 0.0, data)
    return data.to(out_dtype)


@triton.jit
def _mixture_sample_reduce_kernel(
    weights_ptr,  # [N, K] mixture weights (float32 or float16)
    df_ptr,  # [N, K] degrees of freedom >= 2
    loc_ptr,  # [N, K] component locations (normalised space)
    scale_ptr,  # [N, K] component scales > 0
    affine_loc_ptr,  # [N] scaler loc
    affine_scale_ptr,  # [N] scaler scale
    keys_ptr,  # [N] int64 stream keys
    plan_ptr,  # [N_STATS, N_COLUMNS] float32 reduction plan
    stats_ptr,  # [N, N_STATS] float32 output
    samples_ptr,  # [N, S] samples (the caller's or a scratch buffer); read back when CHUNK_S < BLOCK_S
    seed,  # Philox key, in [0, 2**63)
    num_samples,  # S (an int; Triton may specialise S == 1 to a constant)
    sample_count,  # S as a float, for the means
    extreme_limit,  # finfo(sample dtype).max / 2: |x| at or above it becomes 0
    K: tl.constexpr,
    BLOCK_S: tl.constexpr,
    CHUNK_S: tl.constexpr,  # samples drawn per step (BLOCK_S: all at once)
    N_STATS: tl.constexpr,
    N_COLUMNS: tl.constexpr,
    GAMMA_BLOCKS: tl.constexpr,
    W_MEAN: tl.constexpr,
    W_STD: tl.constexpr,
    W_RANGE: tl.constexpr,
    RANGE_LO: tl.constexpr,
    RANGE_HI: tl.constexpr,
    W_Q1: tl.constexpr,
    Q1_LO: tl.constexpr,
    Q1_HI: tl.constexpr,
    Q1_T: tl.constexpr,
    W_Q2: tl.constexpr,
    Q2_LO: tl.constexpr,
    Q2_HI: tl.constexpr,
    Q2_T: tl.constexpr,
    CLAMP: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK_S)
    valid = offs < num_samples

    if CHUNK_S < BLOCK_S:
        # Draw the row in chunks through the samples buffer: a thread then holds few samples'
        # Philox and Gamma state at a time, so large S does not spill registers; the sort below
        # reads the whole row back.
        for start in range(0, BLOCK_S, CHUNK_S):
            chunk = start + tl.arange(0, CHUNK_S)
            drawn = _draw_samples(
                chunk,
                row,
                weights_ptr,
                df_ptr,
                loc_ptr,
                scale_ptr,
                affine_loc_ptr,
                affine_scale_ptr,
                keys_ptr,
                seed,
                extreme_limit,
                samples_ptr.dtype.element_ty,
                K,
                GAMMA_BLOCKS,
            )
            tl.store(samples_ptr + row * num_samples + chunk, drawn, mask=chunk < num_samples)
        tl.debug_barrier()  # every thread's chunk stores land before any thread reads the row
        stored = tl.load(samples_ptr + row * num_samples + offs, mask=valid, other=0.0)
    else:
        stored = _draw_samples(
            offs,
            row,
            weights_ptr,
            df_ptr,
            loc_ptr,
            scale_ptr,
            affine_loc_ptr,
            affine_scale_ptr,
            keys_ptr,
            seed,
            extreme_limit,
            samples_ptr.dtype.element_ty,
            K,
            GAMMA_BLOCKS,
        )
        tl.store(samples_ptr + row * num_samples + offs, stored, mask=valid)

    if N_STATS > 0:
        x = stored.to(tl.float32)  # reduce what was stored (fp16-rounded in fp16 mode)
        n = sample_count
        mean = tl.sum(tl.where(valid, x, 0.0), axis=0) / n
        centred = tl.where(valid, x - mean, 0.0)
        std = tl.sqrt(tl.sum(centred * centred, axis=0) / n)
        sorted_x = tl.sort(tl.where(valid, x, float("inf")))
        for j in tl.static_range(N_STATS):
            plan_row = plan_ptr + j * N_COLUMNS
            lo = tl.load(plan_row + RANGE_LO).to(tl.int32)
            hi = tl.load(plan_row + RANGE_HI).to(tl.int32)
            in_range = (offs >= lo) & (offs < hi)
            range_mean = tl.sum(tl.where(in_range, sorted_x, 0.0), axis=0) / (hi - lo).to(tl.float32)
            value = (
                tl.load(plan_row + W_MEAN) * mean
                + tl.load(plan_row + W_STD) * std
                + tl.load(plan_row + W_RANGE) * range_mean
                + tl.load(plan_row + W_Q1) * _plan_quantile(sorted_x, offs, plan_row, Q1_LO, Q1_HI, Q1_T)
                + tl.load(plan_row + W_Q2) * _plan_quantile(sorted_x, offs, plan_row, Q2_LO, Q2_HI, Q2_T)
            )
            value = tl.where(tl.load(plan_row + CLAMP) > 0, tl.maximum(value, 0.0), value)
            tl.store(stats_ptr + row * N_STATS + j, value)


_SCRATCH_BYTES = 128 << 20  # scratch samples buffer per launch when the caller does not keep the samples


def _scratch_rows(num_samples: int, dtype: torch.dtype) -> int:
    """Rows per launch whose samples fit the scratch buffer (8,192 at S = 4096 fp32; W2's 24,576
    rows of 128 samples in one launch)."""
    return max(1, _SCRATCH_BYTES // (num_samples * torch.empty((), dtype=dtype).element_size()))


def _launch_settings(num_samples: int) -> tuple[int, int, int]:
    """(block, warps, chunk): a power-of-two block covering S (>= 16 for the sort), warps for <= 4
    samples per thread, and the samples a row draws per step.

    From ptxas' reports (``python -m totowalk.benchmarks.offline_compile``, sm_80/sm_90, Triton 3.6
    and 3.9): a thread needs ~48 registers to draw 1 sample, ~115 for 4 and ~210 for 8. Up to
    S = 2048 a row draws all its samples at once, 4 per thread, without spills. S = 4096 would need
    8 per thread at 16 warps (spilling ~200 bytes per thread); it draws 512 per step instead, one
    per thread (1024 per step still spilled 20 bytes on sm_80 with Triton 3.9).
    """
    block = max(16, triton.next_power_of_2(num_samples))
    warps = min(16, max(4, block // 128))
    chunk = block if block <= 2048 else 32 * warps
    return block, warps, chunk


def plan_columns() -> dict[str, int]:
    """The reduction plan's column indices under the kernel's constexpr names (``w_mean`` -> ``W_MEAN``)."""
    return {"CLAMP" if name == "clamp_zero" else name.upper(): index for name, index in _COL.items()}


def sample_and_reduce_triton(
    params: MixtureInputs,
    num_samples: int,
    seed: int,
    dtype: torch.dtype,
    plan: ReductionPlan,
    return_samples: bool,
    *,
    num_warps: int | None = None,
    chunk_samples: int | None = None,
):
    """Launch the fused kernel over all N rows.

    Parameters
    ----------
    params : MixtureInputs
        Validated float32 parameters (cast here to ``dtype``).
    num_samples : int
        1 <= S <= 4096.
    seed : int
    dtype : torch.float32 or torch.float16
    plan : ReductionPlan
        Built for S.
    return_samples : bool
    num_warps : int, optional
        Overrides :func:`_launch_settings`' choice (``bench/bench_sampling.py --sweep-warps``).
        The samples do not depend on it; reductions may differ in the last float bit.
    chunk_samples : int, optional
        Overrides the number of samples a row draws per step (a power of two; >= the block: all
        at once). Neither samples nor statistics depend on it.

    Returns
    -------
    stats : torch.Tensor, shape (N, n_stats), float32
    samples : torch.Tensor, shape (N, S), ``dtype``, or None
    """
    seed_words(seed)  # validates the range
    device = params.weights.device
    rows = params.rows
    cast = {
        name: getattr(params, name).to(dtype).contiguous()
        for name in ("weights", "df", "loc", "scale", "affine_loc", "affine_scale")
    }
    n_stats = len(plan.specs)
    table = to_device_async(plan.table.to(torch.float32), device)  # no host wait on the card
    stats = torch.empty((rows, n_stats), dtype=torch.float32, device=device)
    block, warps, chunk = _launch_settings(num_samples)
    warps = num_warps or warps
    chunk = min(chunk_samples or chunk, block)
    if rows == 0:
        empty = torch.empty((0, num_samples), dtype=dtype, device=device)
        return stats, (empty if return_samples else None)
    keys = params.keys.contiguous()
    # Without returned samples the kernel writes them to a scratch buffer, reused launch after
    # launch: at most _scratch_rows rows per launch bound its size.
    step = rows if return_samples else min(rows, _scratch_rows(num_samples, dtype))
    samples = torch.empty((step, num_samples), dtype=dtype, device=device)
    for first in range(0, rows, step):
        part = slice(first, min(first + step, rows))
        samples_arg = samples[part] if return_samples else samples
        _mixture_sample_reduce_kernel[(part.stop - part.start,)](
            cast["weights"][part],
            cast["df"][part],
            cast["loc"][part],
            cast["scale"][part],
            cast["affine_loc"][part],
            cast["affine_scale"][part],
            keys[part],
            table if n_stats else stats,
            stats[part],
            samples_arg,
            int(seed),
            num_samples,
            float(num_samples),
            float(torch.finfo(dtype).max / 2),
            K=params.components,
            BLOCK_S=block,
            CHUNK_S=chunk,
            N_STATS=n_stats,
            N_COLUMNS=len(COLUMNS),
            GAMMA_BLOCKS=GAMMA_DRAWS,
            num_warps=warps,
            # No FMA contraction: keeps op-by-op float32 rounding, as in the torch reference (and
            # states the choice instead of relying on Triton 3.9's changing default).
            enable_fp_fusion=False,
            **plan_columns(),
        )
    return stats, (samples if return_samples else None)
