"""Exact predictive statistics of Student-T mixtures: every aggregate as a population value.

Nothing is drawn. Per row (a request, variate and step) the predicted distribution is
``X = A + B * Y`` with ``Y`` a mixture of Student-T components (weights, df, loc, scale) and the
scaler's affine map ``A``, ``B > 0``. Every aggregate of ``totowalk.aggregation`` is a function of

* the mixture mean ``m`` and standard deviation ``s`` (closed form),
* quantiles ``Q(q)``, solved on the mixture CDF by a bracketed, safeguarded Newton iteration in
  float64 to ``|F(x) - q| <= tol`` and polished by one more Newton step,
* centred partial expectations ``P(q) = E[(Y - m) 1{Y <= Q(q)}]``, in closed form from the
  component CDFs and ``E[T; T <= t] = -(df + t^2) / (df - 1) * pdf(t)``,

e.g. ``trimmed_mean_f = m + (P(1 - f) - P(f)) / (1 - 2f)`` (the mean of the distribution between
its f and 1 - f quantiles, the value the sampled trimmed mean converges to).

Two backends compute (m, s, Q, P): the extension's multithreaded C++ loop (host, the default
wherever it is built, CUDA tensors included) and a vectorised torch version of the same algorithm
(any device). Both are held to scipy by tests.
"""

from __future__ import annotations

import math

import torch

from .._native import native
from ..aggregation import AggregateSpec
from .backend import triton_can_run
from .student_t import log_beta_half, student_t_cdf, student_t_logpdf

__all__ = [
    "BackendUnavailable",
    "DEFAULT_TOLERANCE",
    "STATISTICS_BACKENDS",
    "exact_statistics",
    "mixture_summary",
    "required_levels",
    "resolved_backend",
]

#: |F(Q) - q| the quantile iteration reaches before its final polishing step.
DEFAULT_TOLERANCE = 1e-10
# where the statistics run (mixture_summary(backend=), ForecastEngine(statistics_backend=))
STATISTICS_BACKENDS = ("auto", "native", "torch", "triton")
_MAX_NEWTON = 400
_EPS = 2.220446049250313e-16


def required_levels(specs) -> list[float]:
    """The quantile levels in (0, 1) that ``specs`` need, sorted and unique."""
    levels = set()
    for spec in specs:
        kind, params = spec.kind, spec.params
        if kind == "median":
            levels.add(0.5)
        elif kind == "quantile":
            levels.add(params[0])
        elif kind == "band":
            levels.update((0.4, 0.6))
        elif kind == "trimmed_mean" and params[0] > 0:
            levels.update((params[0], 1.0 - params[0]))
        elif kind == "lower_trimmed_mean" and params[0] > 0:
            levels.add(1.0 - params[0])
        elif kind == "upper_trimmed_mean" and params[0] > 0:
            levels.add(params[0])
        elif kind == "mean_quantile_mix":
            levels.add(params[0])
    for spec in specs:
        if spec.kind in ("lower_trimmed_mean", "upper_trimmed_mean") and spec.params[0] >= 1.0:
            raise ValueError(
                f"aggregate {spec.name!r} keeps no probability mass; its exact value is "
                "not defined (use a fraction below 1)"
            )
    return sorted(q for q in levels if 0.0 < q < 1.0)


# ---------------------------------------------------------------------------- torch backend
def _evaluate(y, weights, df, loc, scale, log_beta, mean):
    """Mixture CDF, density and centred partial expectation at y (R,) for rows of (R, K) parameters."""
    t = (y[:, None] - loc) / scale
    cdf = student_t_cdf(t, df)
    pdf = torch.exp(student_t_logpdf(t, df))
    partial_t = -(df + t * t) / (df - 1.0) * pdf
    return (
        (weights * cdf).sum(1),
        (weights * pdf / scale).sum(1),
        (weights * ((loc - mean[:, None]) * cdf + scale * partial_t)).sum(1),
    )


def _normal_quantile(q: float) -> float:
    return math.sqrt(2.0) * torch.erfinv(torch.tensor(2.0 * q - 1.0, dtype=torch.float64)).item()


def _solve_level(q, weights, df, loc, scale, log_beta, mean, std, tol):
    """Quantile and centred partial expectation of every row at level q (torch, float64)."""
    rows = weights.shape[0]
    side = min(q, 1.0 - q)
    mean_abs = 2.0 * torch.sqrt(df) / ((df - 1.0) * torch.exp(log_beta))
    reach = scale * mean_abs / (2.0 * side)  # P(T <= -c) <= E|T| / (2c): every F_k brackets q
    present = weights > 0
    inf = torch.full_like(loc, math.inf)
    lo = torch.where(present, loc - reach, inf).amin(1)
    hi = torch.where(present, loc + reach, -inf).amax(1)
    y = mean + std * _normal_quantile(q)
    y = torch.where(torch.isfinite(y) & (y > lo) & (y < hi), y, 0.5 * (lo + hi))
    quantile = torch.full((rows,), math.nan, dtype=torch.float64, device=weights.device)
    partial = torch.full_like(quantile, math.nan)
    index = torch.arange(rows, device=weights.device)
    params = (weights, df, loc, scale, log_beta, mean)
    for _ in range(_MAX_NEWTON):
        cdf, pdf, part = _evaluate(y, *params)
        residual = cdf - q
        exhausted = hi - lo <= 4.0 * _EPS * torch.maximum(lo.abs(), hi.abs())
        done = (residual.abs() <= tol) | exhausted
        if bool(done.any()):
            step = torch.where(pdf > 0, -residual / pdf, torch.zeros_like(pdf))
            step = torch.where((y + step >= lo) & (y + step <= hi), step, torch.zeros_like(step))
            quantile[index[done]] = (y + step)[done]
            partial[index[done]] = (part + (y - params[5]) * pdf * step)[done]
            keep = ~done
            if not bool(keep.any()):
                return quantile, partial
            index, y, lo, hi, residual, pdf = (t[keep] for t in (index, y, lo, hi, residual, pdf))
            params = tuple(t[keep] for t in params)
        lo = torch.where(residual < 0, y, lo)
        hi = torch.where(residual < 0, hi, y)
        newton = y - residual / pdf
        y = torch.where((pdf > 0) & (newton > lo) & (newton < hi), newton, 0.5 * (lo + hi))
    raise RuntimeError(f"quantile {q} did not converge for {index.numel()} rows (e.g. row {int(index[0])})")


def _summary_torch(weights, df, loc, scale, levels, tol):
    weights = weights / weights.sum(1, keepdim=True)
    mean = (weights * loc).sum(1)
    spread = torch.where(df > 2, scale * scale * df / (df - 2.0), torch.full_like(df, math.inf))
    spread = torch.where(weights > 0, spread, torch.zeros_like(spread))  # 0 * inf would be NaN
    std = torch.sqrt((weights * (spread + (loc - mean[:, None]) ** 2)).sum(1))
    log_beta = log_beta_half(0.5 * df)
    solved = [_solve_level(q, weights, df, loc, scale, log_beta, mean, std, tol) for q in levels]
    empty = weights.new_zeros((weights.shape[0], 0))
    quantile = torch.stack([s[0] for s in solved], 1) if solved else empty
    partial = torch.stack([s[1] for s in solved], 1) if solved else empty
    return mean, std, quantile, partial


def _check_parameters(weights, df, loc, scale) -> None:
    ok = (
        (weights >= 0).all(1)
        & (weights.sum(1) > 0)
        & torch.isfinite(weights).all(1)
        & (df > 1).all(1)
        & torch.isfinite(df).all(1)
        & torch.isfinite(loc).all(1)
        & (scale > 0).all(1)
        & torch.isfinite(scale).all(1)
    )
    if not bool(ok.all()):
        row = int(torch.nonzero(~ok)[0, 0])
        raise ValueError(
            f"mixture parameters of row {row} are outside the distribution's domain "
            "(weights >= 0 with a positive sum, df > 1, finite loc, scale > 0)"
        )


# ---------------------------------------------------------------------------- public
def mixture_summary(
    weights, df, loc, scale, levels, *, tol: float = DEFAULT_TOLERANCE, backend: str = "auto", wait: bool = True
):
    """Mean, standard deviation, quantiles and centred partial expectations of Student-T mixtures.

    Parameters
    ----------
    weights, df, loc, scale : torch.Tensor, shape (N, K)
        Weights >= 0 (normalised here), df > 1 (the standard deviation is infinite for df <= 2),
        locations, scales > 0.
    levels : sequence of float
        Quantile levels in (0, 1).
    tol : float
        ``|F(Q) - q|`` reached before the final Newton polish.
    backend : {"auto", "native", "torch", "triton"}
        auto: the extension's C++ loop when it is built, whatever the parameters' device (on CUDA
        they are copied to the host and back: the torch iteration on the card took 4.4 s for 24,576
        rows on an H200, the C++ loop 36 us per row per core here; bench/RESULTS.md), torch otherwise.
        triton: one fused kernel on the parameters' device (:mod:`.mixture_exact_triton`; held to
        the C++ loop in Triton's interpreter, not yet timed on a card).
    wait : bool
        True (default): the parameters and each row's convergence are checked here (ValueError /
        RuntimeError naming the row). False, for the triton backend: nothing here waits for the
        device (the checks read values back): parameters are not checked and a row whose iteration
        did not converge is NaN in every output; the caller checks both when it reads the results,
        as the engine's collector does. The other backends check whatever ``wait`` says.

    Returns
    -------
    mean, std : torch.Tensor, shape (N,), float64
    quantile, partial : torch.Tensor, shape (N, J), float64
        ``partial[:, j] = E[(Y - mean) 1{Y <= quantile[:, j]}]``. On the parameters' device.
    """
    params = [t.to(torch.float64) for t in (weights, df, loc, scale)]
    levels = [float(q) for q in levels]
    if any(not 0.0 < q < 1.0 for q in levels):
        raise ValueError(f"levels must lie in (0, 1); got {levels}")
    backend = resolved_backend(backend)
    if wait or backend != "triton":
        _check_parameters(*params)
    device = params[0].device
    if backend == "triton":
        from .mixture_exact_triton import mixture_summary_triton

        guesses = [_normal_quantile(q) for q in levels]
        return mixture_summary_triton(*params, levels, guesses, tol=tol, wait=wait)
    if backend == "torch":
        return _summary_torch(*params, levels, tol)
    native = _native()  # there: resolved_backend refuses "native" without it
    arrays = [t.detach().cpu().contiguous().numpy() for t in params]
    import numpy as np

    mean, std, quantile, partial, failed = native.mixture_summary(*arrays, np.asarray(levels, dtype=np.float64), tol, 0)
    if failed >= 0:
        raise RuntimeError(f"exact mixture statistics failed to converge for row {failed}")
    return tuple(torch.from_numpy(a).to(device) for a in (mean, std, quantile, partial))


class BackendUnavailable(ValueError):
    """A statistics backend that cannot run here (not built, or not on this device)."""


def resolved_backend(backend: str, device=None) -> str:
    """The backend ``backend`` computes with here: "auto" is the C++ loop where it is built, else torch.
    With ``device`` (where the parameters will be), also that the choice can run there (ValueError
    naming the fix otherwise: :class:`BackendUnavailable`)."""
    if backend not in STATISTICS_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, STATISTICS_BACKENDS))}; got {backend!r}")
    if backend == "auto":
        return "native" if _native() is not None else "torch"
    if backend == "native" and _native() is None:
        raise BackendUnavailable("statistics backend 'native' needs the totowalk._C extension, which is not built")
    if backend == "triton" and device is not None and not triton_can_run(device):
        raise BackendUnavailable(
            f"statistics backend 'triton' runs on a CUDA device with triton installed (got {device}); use "
            "'auto' (the host's compiled loop) or set TRITON_INTERPRET=1 (slow, for tests)"
        )
    return backend


def _native():
    """The extension when it has the compiled loop (an older build may not)."""
    compiled = native()
    return compiled if hasattr(compiled, "mixture_summary") else None


def exact_statistics(
    weights,
    df,
    loc,
    scale,
    affine_loc,
    affine_scale,
    specs: list[AggregateSpec],
    *,
    tol: float = DEFAULT_TOLERANCE,
    backend: str = "auto",
    wait: bool = True,
) -> dict:
    """Every aggregate of ``specs`` as the population value of each row's predictive distribution.

    Parameters
    ----------
    weights, df, loc, scale : torch.Tensor, shape (N, K)
        Mixture parameters in the scaler's normalised space.
    affine_loc, affine_scale : torch.Tensor, shape (N,)
        Data space is ``affine_loc + affine_scale * y`` (affine_scale > 0).
    specs : list of AggregateSpec
    tol, backend, wait
        As :func:`mixture_summary`'s (with ``wait=False`` a row that did not converge is NaN).

    Returns
    -------
    dict of str -> torch.Tensor
        (N,) float64 per spec name. ``quantile_0`` / ``p0`` are -inf and ``p100`` +inf (the
        support's ends); the standard deviation is infinite where a weighted component has df <= 2.
    """
    levels = required_levels(specs)
    mean, std, quantile, partial = mixture_summary(weights, df, loc, scale, levels, tol=tol, backend=backend, wait=wait)
    a = affine_loc.to(device=mean.device, dtype=torch.float64)
    b = affine_scale.to(device=mean.device, dtype=torch.float64)
    column = {q: j for j, q in enumerate(levels)}

    def q_of(level):  # normalised-space quantile
        if level <= 0.0:
            return torch.full_like(mean, -math.inf)
        if level >= 1.0:
            return torch.full_like(mean, math.inf)
        return quantile[:, column[level]]

    def p_of(level):  # centred partial expectation; 0 at both ends of the support
        return torch.zeros_like(mean) if level <= 0.0 or level >= 1.0 else partial[:, column[level]]

    out = {}
    for spec in specs:
        kind, params = spec.kind, spec.params
        if kind in ("mean", "expected"):
            y = mean
        elif kind == "std":
            out[spec.name] = b * std
            continue
        elif kind == "median":
            y = q_of(0.5)
        elif kind == "quantile":
            y = q_of(params[0])
        elif kind == "band":
            out[spec.name] = torch.clamp(b * (q_of(0.6) - q_of(0.4)), min=0.0)
            continue
        elif kind == "trimmed_mean":
            f = params[0]
            y = mean if f == 0 else mean + (p_of(1.0 - f) - p_of(f)) / (1.0 - 2.0 * f)
        elif kind == "lower_trimmed_mean":
            f = params[0]
            y = mean if f == 0 else mean + p_of(1.0 - f) / (1.0 - f)
        elif kind == "upper_trimmed_mean":
            f = params[0]
            y = mean if f == 0 else mean - p_of(f) / (1.0 - f)
        elif kind in ("mean_minus_std", "mean_plus_std"):
            sign = -1.0 if kind == "mean_minus_std" else 1.0
            # a zero multiple is the mean, also where the std is infinite (0 * inf would be NaN)
            y = mean if params[0] == 0 else mean + sign * params[0] * std
        elif kind == "mean_quantile_mix":
            q, w = params
            y = w * mean + (1.0 - w) * q_of(q)
        else:  # pragma: no cover - AggregateSpec validates kinds
            raise ValueError(f"no exact value for aggregate {spec.name!r}")
        out[spec.name] = a + b * y
    return out
