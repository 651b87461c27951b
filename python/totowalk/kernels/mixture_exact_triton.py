"""Exact mixture statistics as one Triton kernel: mean, standard deviation, quantiles and centred
partial expectations of each row's Student-T mixture, on the device that holds the parameters.

The algorithm is the host loop's (``csrc/mixture_exact.cpp``) and the torch backend's
(:mod:`.mixture_exact`), vectorised over a block of rows and their (padded) components:

* the Student-T CDF ``F(t) = 1/2 + sign(t)/2 * I_y(1/2, nu/2)``, ``y = t^2 / (nu + t^2)``, with the
  regularised incomplete beta from its continued fraction on the side of the symmetry
  ``I_x(a, b) = 1 - I_{1-x}(b, a)`` where it converges fast, evaluated by its fundamental
  recurrences (no division until the end, as the host loop does) until every element of the block
  has converged;
* each quantile by a bracketed Newton iteration (bisection where a step leaves the bracket) to
  ``|F(x) - q| <= tol``, then one more Newton step, and its centred partial expectation
  ``E[(Y - m) 1{Y <= x}]`` from ``E[T; T <= t] = -(nu + t^2) / (nu - 1) * pdf(t)``.

Everything is float64. One launch covers all rows and levels: the parameters never leave the
device. ``log B(nu/2, 1/2)`` comes from :func:`.student_t.log_beta_half` (torch, on the device),
the starting points of the iteration from the normal quantile of each level (host, J numbers).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import triton
import triton.language as tl

from .student_t import log_beta_half

__all__ = ["mixture_summary_triton"]

_EPS = 2.220446049250313e-16
_MAX_TERMS = 5000  # the continued fraction's terms; the host loop's bound
_MAX_NEWTON = 400
_BLOCK_ROWS = 8  # rows a program: 16 spilled registers on sm_90 (ptxas), 8 do not


@triton.jit
def _append(a_prev, b_prev, a_last, b_last, num, den):
    """The fraction's next term num / den, multiplied through by den: no division."""
    a_next = den * a_last + num * a_prev
    b_next = den * b_last + num * b_prev
    return a_last * den, b_last * den, a_next, b_next


@triton.jit
def _beta_fraction(x, a, b, MAX_TERMS: tl.constexpr):
    """The continued-fraction factor of I_x(a, b) for every element, NaN where it did not converge."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    # convergents A/B of 1/(1 + d1/(1 + d2/(...))): the last two, scaled alike
    a_prev = tl.zeros_like(x)
    b_prev = tl.zeros_like(x) + 1.0
    a_last = tl.zeros_like(x) + 1.0
    b_last = tl.zeros_like(x) + 1.0
    a_prev, b_prev, a_last, b_last = _append(a_prev, b_prev, a_last, b_last, -qab * x, qap)
    result = tl.zeros_like(x) + float("nan")
    open_ = x == x  # elements still iterating
    m = 1
    while (m <= MAX_TERMS) & (tl.max(open_.to(tl.int32)) > 0):
        mf = m * 1.0
        m2 = 2.0 * mf
        a_prev, b_prev, a_last, b_last = _append(
            a_prev, b_prev, a_last, b_last, mf * (b - mf) * x, (qam + m2) * (a + m2)
        )
        a_pair = a_prev
        b_pair = b_prev
        a_prev, b_prev, a_last, b_last = _append(
            a_prev, b_prev, a_last, b_last, -(a + mf) * (qab + mf) * x, (a + m2) * (qap + m2)
        )
        close = tl.abs(a_last * b_pair - a_pair * b_last) <= 2.220446049250313e-16 * tl.abs(a_last * b_pair)
        result = tl.where(open_ & close, a_last / b_last, result)
        open_ = open_ & (~close)
        size = tl.abs(b_last)
        rescale = (size > 1e100) | (size < 1e-100)
        factor = tl.where(rescale, 1.0 / tl.where(size > 0, size, 1.0), 1.0)
        a_last = a_last * factor
        b_last = b_last * factor
        a_prev = a_prev * factor
        b_prev = b_prev * factor
        m += 1
    return result


@triton.jit
def _t_cdf_pdf(t, df, log_beta, MAX_TERMS: tl.constexpr):
    """Standard Student-T CDF and density at t (elementwise)."""
    a = 0.5 * df
    t2 = tl.minimum(t * t, 1e300)
    inv = 1.0 / (df + t2)
    x = df * inv  # x + y = 1
    y = t2 * inv
    log_x = tl.log(x)
    pdf = tl.exp((a + 0.5) * log_x - 0.5 * tl.log(df) - log_beta)
    front = tl.sqrt(y) * tl.exp(a * log_x - log_beta)  # y^(1/2) x^a / B
    small = y < 1.5 / (a + 2.5)
    fraction = _beta_fraction(tl.where(small, y, x), tl.where(small, 0.5, a), tl.where(small, a, 0.5), MAX_TERMS)
    tail = tl.where(small, 0.5 - front * fraction, 0.5 * front * fraction / a)  # P(T > |t|)
    cdf = tl.where(t > 0, 1.0 - tail, tail)
    return tl.where(t2 == 0.0, 0.5, cdf), pdf


@triton.jit
def _load_components(
    w_ptr, df_ptr, loc_ptr, scale_ptr, log_beta_ptr, n_rows, n_components, BLOCK: tl.constexpr, KP: tl.constexpr
):
    """This program's BLOCK rows, which of them exist, and their components' parameters padded to KP
    (padding: weight 0 and harmless values)."""
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cols = tl.arange(0, KP)
    row_ok = rows < n_rows
    tile = row_ok[:, None] & (cols[None, :] < n_components)
    at = rows[:, None] * n_components + cols[None, :]
    w = tl.load(w_ptr + at, mask=tile, other=0.0)
    df = tl.load(df_ptr + at, mask=tile, other=3.0)
    loc = tl.load(loc_ptr + at, mask=tile, other=0.0)
    scale = tl.load(scale_ptr + at, mask=tile, other=1.0)
    log_beta = tl.load(log_beta_ptr + at, mask=tile, other=0.0)
    return rows, row_ok, w, df, loc, scale, log_beta


@triton.jit
def _summary_kernel(
    w_ptr,
    df_ptr,
    loc_ptr,
    scale_ptr,
    log_beta_ptr,
    levels_ptr,
    guess_ptr,
    mean_ptr,
    std_ptr,
    quantile_ptr,
    partial_ptr,
    failed_ptr,
    n_rows,
    n_components,
    n_levels,
    tol,
    BLOCK: tl.constexpr,
    KP: tl.constexpr,
    MAX_NEWTON: tl.constexpr,
    MAX_TERMS: tl.constexpr,
):
    rows, row_ok, w, df, loc, scale, log_beta = _load_components(
        w_ptr, df_ptr, loc_ptr, scale_ptr, log_beta_ptr, n_rows, n_components, BLOCK, KP
    )
    total = tl.sum(w, axis=1)
    w = w / tl.where(row_ok, total, 1.0)[:, None]
    present = w > 0
    mean = tl.sum(w * loc, axis=1)
    spread = tl.where(df > 2.0, scale * scale * df / (df - 2.0), float("inf"))
    spread = tl.where(present, spread, 0.0)  # 0 * inf would be NaN
    centred = loc - mean[:, None]
    std = tl.sqrt(tl.sum(w * (spread + centred * centred), axis=1))
    tl.store(mean_ptr + rows, mean, mask=row_ok)
    tl.store(std_ptr + rows, std, mask=row_ok)
    mean_abs = 2.0 * tl.sqrt(df) / ((df - 1.0) * tl.exp(log_beta))  # E|T|
    failed = rows < 0
    for j in range(n_levels):
        q = tl.load(levels_ptr + j)
        guess = tl.load(guess_ptr + j)
        side = tl.minimum(q, 1.0 - q)
        reach = scale * mean_abs / (2.0 * side)  # P(T <= -c) <= E|T| / (2c): every F_k brackets q
        lo = tl.min(tl.where(present, loc - reach, float("inf")), axis=1)
        hi = tl.max(tl.where(present, loc + reach, -float("inf")), axis=1)
        y = mean + std * guess
        y = tl.where((y > lo) & (y < hi), y, 0.5 * (lo + hi))  # NaN or infinite guesses fail both
        quantile = tl.zeros_like(mean) + float("nan")
        partial = tl.zeros_like(mean) + float("nan")
        done = ~row_ok
        it = 0
        while (it < MAX_NEWTON) & (tl.min(done.to(tl.int32)) == 0):
            t = (y[:, None] - loc) / scale
            cdf_k, pdf_k = _t_cdf_pdf(t, df, log_beta, MAX_TERMS)
            cdf = tl.sum(w * cdf_k, axis=1)
            pdf = tl.sum(w * pdf_k / scale, axis=1)
            part = tl.sum(w * (centred * cdf_k - scale * (df + t * t) / (df - 1.0) * pdf_k), axis=1)
            residual = cdf - q
            exhausted = hi - lo <= 4.0 * 2.220446049250313e-16 * tl.maximum(tl.abs(lo), tl.abs(hi))
            now = (~done) & ((tl.abs(residual) <= tol) | exhausted) & (cdf == cdf)
            step = tl.where(pdf > 0, -residual / tl.where(pdf > 0, pdf, 1.0), 0.0)
            step = tl.where((y + step >= lo) & (y + step <= hi), step, 0.0)
            quantile = tl.where(now, y + step, quantile)
            partial = tl.where(now, part + (y - mean) * pdf * step, partial)
            done = done | now | (cdf != cdf)  # a NaN CDF (a fraction that did not converge) fails the row
            lo = tl.where(residual < 0, y, lo)
            hi = tl.where(residual < 0, hi, y)
            newton = y - residual / tl.where(pdf > 0, pdf, 1.0)
            y = tl.where((pdf > 0) & (newton > lo) & (newton < hi), newton, 0.5 * (lo + hi))
            it += 1
        failed = failed | (row_ok & (quantile != quantile))
        tl.store(quantile_ptr + rows * n_levels + j, quantile, mask=row_ok)
        tl.store(partial_ptr + rows * n_levels + j, partial, mask=row_ok)
    tl.store(failed_ptr + rows, failed.to(tl.int32), mask=row_ok)


def mixture_summary_triton(weights, df, loc, scale, levels, guesses, *, tol: float, wait: bool = True):
    """(mean, std, quantile, partial) of each row, as :func:`.mixture_exact.mixture_summary`
    returns them (float64, on the parameters' device), from one kernel launch. ``guesses``: the
    standard normal quantile of each level (the iteration starts at mean + std * guess).

    ``wait`` True: raises RuntimeError naming the first row whose iteration did not converge (a
    host wait on a card). False: nothing waits for the device; such a row is NaN in every output,
    for the caller to find when it reads the results."""
    params = [t.to(torch.float64).contiguous() for t in (weights, df, loc, scale)]
    rows, components = params[0].shape
    device = params[0].device
    log_beta = log_beta_half(0.5 * params[1]).contiguous()
    levels = [float(q) for q in levels]
    level_t, guess_t = _level_tensors(device, tuple(levels), tuple(float(g) for g in guesses))
    mean = torch.empty(rows, dtype=torch.float64, device=device)
    std = torch.empty_like(mean)
    quantile = torch.empty((rows, len(levels)), dtype=torch.float64, device=device)
    partial = torch.empty_like(quantile)
    failed = torch.zeros(rows, dtype=torch.int32, device=device)
    if rows:
        grid = (triton.cdiv(rows, _BLOCK_ROWS),)
        # Triton's CPU interpreter runs on numpy, which would warn about the padding's inf - inf
        # (those lanes are masked out); compiled, this changes nothing
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            _launch_summary(grid, params, log_beta, level_t, guess_t, mean, std, quantile, partial, failed, tol)
        if not wait:
            unconverged = failed != 0
            nan = float("nan")
            mean, std = mean.masked_fill(unconverged, nan), std.masked_fill(unconverged, nan)
            quantile = quantile.masked_fill(unconverged[:, None], nan)
            partial = partial.masked_fill(unconverged[:, None], nan)
            return mean, std, quantile, partial
        bad = torch.nonzero(failed)
        if bad.numel():
            raise RuntimeError(f"exact mixture statistics failed to converge for row {int(bad[0, 0])}")
    return mean, std, quantile, partial


@functools.lru_cache(maxsize=64)
def _level_tensors(device: torch.device, levels: tuple, guesses: tuple) -> tuple:
    """The levels and starting points on the device, made once per (device, levels): copying a host
    list to a card waits for the card's queue, once per call otherwise."""
    level_t = torch.tensor(levels or (0.5,), dtype=torch.float64, device=device)
    guess_t = torch.tensor(guesses or (0.0,), dtype=torch.float64, device=device)
    return level_t, guess_t


def _launch_summary(grid, params, log_beta, level_t, guess_t, mean, std, quantile, partial, failed, tol):
    rows, components = params[0].shape
    _summary_kernel[grid](
        *params,
        log_beta,
        level_t,
        guess_t,
        mean,
        std,
        quantile,
        partial,
        failed,
        rows,
        components,
        quantile.shape[1],
        float(tol),
        BLOCK=_BLOCK_ROWS,
        KP=max(2, triton.next_power_of_2(components)),
        MAX_NEWTON=_MAX_NEWTON,
        MAX_TERMS=_MAX_TERMS,
        # fused multiply-adds (Triton 3.6's default, stated: 3.9 warns where a launch leaves it unset):
        # the kernel is held to the host loop to 1e-9, not bit for bit
        enable_fp_fusion=True,
    )
