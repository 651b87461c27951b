"""Exact proper scores as one Triton kernel: the CRPS, PIT value and log score of each row's
Student-T mixture at its observed value, on the device that holds the parameters.

The algorithm is the host loop's (``score_row`` in ``csrc/mixture_exact.cpp``; the maths in
:mod:`..scoring.proper`), vectorised over a block of rows and their (padded) components:

* ``E|X - y|``, ``F(y)`` and ``-log f(y)`` from every component's CDF and density at ``y``
  (:func:`.mixture_exact_triton._t_cdf_pdf`, the summary kernel's Student-T);
* ``E|X - X'| / 2``, the integral of ``F (1 - F)``, by the trapezoid rule on ``x = c + d sinh(u)``
  with nodes ``u = i limit / n``, ``n = ceil(limit / 0.25)``, the step halved (only the odd nodes
  added) until two successive estimates agree to ``tol`` relative, and both tails beyond the grid
  in closed form. Each row of a block keeps its own grid, and its nodes are summed in the host
  loop's order (``i`` ascending), so the two differ only by their elementary functions;
* one present component needs no quadrature: its closed form needs ``lgamma``, which Triton's
  language lacks, so the wrapper computes it (torch, on the same device) and passes it in.

Everything is float64. One launch covers all rows; nothing leaves the device.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from .mixture_exact_triton import _MAX_TERMS, _load_components, _t_cdf_pdf
from .student_t import log_beta_half, student_t_half_gini

__all__ = ["mixture_scores_triton"]

_BLOCK_ROWS = 8  # rows a program (every row waits for the block's longest grid); 2 or 4 spill on sm_80/90
# the host loop's constants (kFirstStep, kFinestStep, kTailMass)
_FIRST_STEP: tl.constexpr = tl.constexpr(0.25)  # in u; halved until converged
_FINEST_STEP: tl.constexpr = tl.constexpr(1.0 / 4096.0)
_TAIL_MASS: tl.constexpr = tl.constexpr(1e-6)  # bound on 1 - F at the grid's ends


@triton.jit
def _integrand(u, centre, width, w, df, m, s, log_beta, MAX_TERMS: tl.constexpr):
    """``F(x) (1 - F(x)) dx/du`` at ``x = centre + width sinh(u)``, one u per row."""
    grow = tl.exp(u)
    shrink = tl.exp(-u)
    x = centre + width * (0.5 * (grow - shrink))
    cdf_k, _ = _t_cdf_pdf((x[:, None] - m) / s, df, log_beta, MAX_TERMS)
    cdf = tl.sum(w * cdf_k, axis=1)
    return cdf * (1.0 - cdf) * width * (0.5 * (grow + shrink))


@triton.jit
def _upper_tail(r, w, df, m, s, log_beta, MIRRORED: tl.constexpr, MAX_TERMS: tl.constexpr):
    """``sum_k w_k E[(X_k - r)^+]``: the integral of ``1 - F`` from r on (of -X when MIRRORED)."""
    if MIRRORED:
        z = (m + r[:, None]) / s
    else:
        z = (r[:, None] - m) / s
    cdf_k, pdf_k = _t_cdf_pdf(z, df, log_beta, MAX_TERMS)
    return tl.sum(w * s * (pdf_k * (df + z * z) / (df - 1.0) - z * (1.0 - cdf_k)), axis=1)


@triton.jit
def _scores_kernel(
    w_ptr,
    df_ptr,
    loc_ptr,
    scale_ptr,
    log_beta_ptr,
    a_ptr,
    b_ptr,
    y_ptr,
    single_ptr,
    crps_ptr,
    pit_ptr,
    log_score_ptr,
    failed_ptr,
    n_rows,
    n_components,
    tol,
    BLOCK: tl.constexpr,
    KP: tl.constexpr,
    MAX_TERMS: tl.constexpr,
):
    rows, row_ok, w, df, loc, scale, log_beta = _load_components(
        w_ptr, df_ptr, loc_ptr, scale_ptr, log_beta_ptr, n_rows, n_components, BLOCK, KP
    )
    a = tl.load(a_ptr + rows, mask=row_ok, other=0.0)
    b = tl.load(b_ptr + rows, mask=row_ok, other=1.0)
    y = tl.load(y_ptr + rows, mask=row_ok, other=0.0)
    single = tl.load(single_ptr + rows, mask=row_ok, other=0.0)
    # the host loop's checks: a row with an invalid present component, weight or affine map fails
    total = tl.sum(w, axis=1)
    present = w > 0
    bad = present & ((df <= 1.0) | (scale <= 0.0) | (tl.abs(loc) == float("inf")) | (loc != loc))
    bad = bad | (present & ((scale == float("inf")) | (scale != scale)))
    valid = (total > 0) & (total < float("inf")) & (b > 0) & (tl.abs(a) < float("inf")) & (tl.abs(y) < float("inf"))
    valid = valid & (tl.max(bad.to(tl.int32), axis=1) == 0)
    w = w / tl.where(total > 0, total, 1.0)[:, None]
    # an absent component (weight 0) takes harmless parameters: its terms are multiplied by 0
    df = tl.where(present, df, 3.0)
    log_beta = tl.where(present, log_beta, 0.0)
    m = a[:, None] + b[:, None] * tl.where(present, loc, 0.0)
    s = b[:, None] * tl.where(present, scale, 1.0)

    # at the observation: E|X - y|, F(y), -log f(y)
    z = (y[:, None] - m) / s
    cdf_k, pdf_k = _t_cdf_pdf(z, df, log_beta, MAX_TERMS)
    pit = tl.sum(w * cdf_k, axis=1)
    mean_abs_dev = tl.sum(w * s * (z * (2.0 * cdf_k - 1.0) + 2.0 * pdf_k * (df + z * z) / (df - 1.0)), axis=1)
    log_pdf = 0.5 * (df + 1.0) * tl.log(df / (df + z * z)) - 0.5 * tl.log(df) - log_beta
    terms = tl.where(present, tl.log(tl.where(present, w, 1.0)) + log_pdf - tl.log(s), -float("inf"))
    top = tl.max(terms, axis=1)
    log_score = -(top + tl.log(tl.sum(tl.exp(terms - top[:, None]), axis=1)))

    # E|X - X'| / 2 of rows with several components: the host loop's quadrature, row by row
    several = valid & (tl.sum(present.to(tl.int32), axis=1) > 1)
    centre = tl.sum(w * m, axis=1)
    width = tl.min(tl.where(present, s, float("inf")), axis=1)  # the narrowest component
    width = tl.where(several, width, 1.0)
    mean_abs = 2.0 * tl.sqrt(df) / ((df - 1.0) * tl.exp(log_beta))  # E|T|
    bound = mean_abs / _TAIL_MASS  # Markov; Chebyshev where the variance is finite
    bound = tl.where(df > 2.0, tl.minimum(bound, tl.sqrt(df / (df - 2.0) / _TAIL_MASS)), bound)
    reach = tl.max(tl.where(present, tl.abs(m - centre[:, None]) + s * bound, 0.0), axis=1)
    ratio = tl.where(several, reach / width, 1.0)
    limit = tl.log(ratio + tl.sqrt(ratio * ratio + 1.0))  # asinh
    nodes = limit / _FIRST_STEP
    n = nodes.to(tl.int64)
    n = tl.maximum(n + (n.to(tl.float64) < nodes).to(tl.int64), 1)  # ceil, at least 1
    step = limit / n.to(tl.float64)
    total_sum = 0.5 * (
        _integrand(-limit, centre, width, w, df, m, s, log_beta, MAX_TERMS)
        + _integrand(limit, centre, width, w, df, m, s, log_beta, MAX_TERMS)
    )
    count = tl.max(tl.where(several, 2 * n - 1, 0))
    for j in range(count):
        i = (j + 1 - n).to(tl.float64)  # -n + 1, ..., n - 1
        value = _integrand(i * step, centre, width, w, df, m, s, log_beta, MAX_TERMS)
        total_sum += tl.where(j < 2 * n - 1, value, 0.0)
    total_sum *= step
    edge = width * (0.5 * (tl.exp(limit) - tl.exp(-limit)))
    tails = _upper_tail(centre + edge, w, df, m, s, log_beta, False, MAX_TERMS) + _upper_tail(
        -(centre - edge), w, df, m, s, log_beta, True, MAX_TERMS
    )
    previous = total_sum + tails
    half_gini = tl.zeros_like(total_sum) + float("nan")
    active = several & (step > _FINEST_STEP)
    while tl.max(active.to(tl.int32)) > 0:
        n = tl.where(active, 2 * n, n)
        step = tl.where(active, 0.5 * step, step)
        added = tl.zeros_like(total_sum)
        count = tl.max(tl.where(active, n, 0))
        for j in range(count):
            i = (2 * j + 1 - n).to(tl.float64)  # the odd nodes -n + 1, -n + 3, ..., n - 1
            value = _integrand(i * step, centre, width, w, df, m, s, log_beta, MAX_TERMS)
            added += tl.where(active & (j < n), value, 0.0)
        total_sum = tl.where(active, 0.5 * total_sum + step * added, total_sum)
        estimate = total_sum + tails
        close = active & (tl.abs(estimate - previous) <= tol * tl.abs(estimate))
        half_gini = tl.where(close, estimate, half_gini)
        previous = tl.where(active, estimate, previous)
        active = active & (~close) & (step > _FINEST_STEP)  # at the finest step unconverged: NaN
    half_gini = tl.where(several, half_gini, single)

    crps = mean_abs_dev - half_gini
    finite = (tl.abs(crps) < float("inf")) & (tl.abs(pit) < float("inf"))
    failed = row_ok & ((~valid) | (~finite))
    tl.store(crps_ptr + rows, crps, mask=row_ok)
    tl.store(pit_ptr + rows, pit, mask=row_ok)
    tl.store(log_score_ptr + rows, log_score, mask=row_ok)
    tl.store(failed_ptr + rows, failed.to(tl.int32), mask=row_ok)


def _single_half_gini(weights: torch.Tensor, df: torch.Tensor, scale: torch.Tensor, affine_scale: torch.Tensor):
    """``E|X - X'| / 2`` of each row's heaviest component alone (used where it is the row's only one)."""
    k = weights.argmax(1, keepdim=True)
    return student_t_half_gini(df.gather(1, k)[:, 0], affine_scale * scale.gather(1, k)[:, 0])


def mixture_scores_triton(weights, df, loc, scale, affine_loc, affine_scale, y, *, tol: float) -> dict:
    """``crps``, ``pit`` and ``log_score`` of every row (float64, on the parameters' device), as
    :func:`..scoring.proper.mixture_scores` returns them, from one kernel launch. Raises
    RuntimeError naming the first row that failed (invalid parameters, or a quadrature that did not
    converge)."""
    params = [torch.as_tensor(t).to(torch.float64).contiguous() for t in (weights, df, loc, scale)]
    rows, components = params[0].shape
    device = params[0].device
    flat = [
        torch.as_tensor(t, dtype=torch.float64, device=device).expand(rows).contiguous()
        for t in (affine_loc, affine_scale, y)
    ]
    # log B for present components only: an absent one may hold any df (the kernel ignores it)
    log_beta = torch.where(params[0] > 0, log_beta_half(0.5 * params[1].clamp_min(1.0)), 0.0).contiguous()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        single = _single_half_gini(params[0], params[1].clamp_min(1.0), params[3], flat[1]).contiguous()
    crps, pit, log_score = (torch.empty(rows, dtype=torch.float64, device=device) for _ in range(3))
    failed = torch.zeros(rows, dtype=torch.int32, device=device)
    if rows:
        # Triton's CPU interpreter runs on numpy, which would warn about masked lanes' inf - inf
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            _scores_kernel[(triton.cdiv(rows, _BLOCK_ROWS),)](
                *params,
                log_beta,
                *flat,
                single,
                crps,
                pit,
                log_score,
                failed,
                rows,
                components,
                float(tol),
                BLOCK=_BLOCK_ROWS,
                KP=max(2, triton.next_power_of_2(components)),
                MAX_TERMS=_MAX_TERMS,
                enable_fp_fusion=True,  # as the statistics kernel's (mixture_exact_triton.py says why)
            )
        bad = torch.nonzero(failed)
        if bad.numel():
            raise RuntimeError(
                f"exact scores failed for row {int(bad[0, 0])}: non-finite parameters, or a CRPS quadrature that "
                f"did not reach a relative change of {tol:g} (components too narrow for their spread)"
            )
    return {"crps": crps, "pit": pit, "log_score": log_score}
