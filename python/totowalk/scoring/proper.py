"""Proper scores of predictive distributions against what happened, exact where the distribution is known.

The engine predicts, per context and step, ``X = A + B * Y`` with ``Y`` a mixture of Student-T
components (weights ``w_k``, degrees of freedom ``v_k``, locations ``mu_k``, scales ``s_k``), so in
data space component k is a Student-T at ``m_k = A + B mu_k`` with scale ``B s_k``. Its scores:

* **CRPS** ``= E|X - y| - E|X - X'| / 2`` (Gneiting and Raftery 2007). The first term is closed
  form per component: for ``T`` standard Student-T and ``z = (y - m) / s``,
  ``E|T - z| = z (2 F(z) - 1) + 2 f(z) (v + z^2) / (v - 1)``, since ``E[T; T <= z] = -f(z) (v + z^2) / (v - 1)``.
  The second term ``E|X - X'| / 2 = integral of F (1 - F) dx`` couples components with different
  degrees of freedom, which has no closed form; it does not depend on ``y`` and its integrand is
  smooth, so it is integrated numerically: the trapezoid rule on ``x = c + d sinh(u)`` (geometric
  convergence for an analytic integrand; the map turns the algebraic tails into exponential ones),
  the step halved until two successive estimates agree to ``tol`` relative, and the two tails
  beyond the grid added in closed form (``integral from R of (1 - F) dx = sum_k w_k E[(X_k - R)^+]``,
  the neglected ``(1 - F)^2`` term bounded by ``(1 - F(R))`` times it). One component needs no
  quadrature: ``E|T - T'| = 4 sqrt(v) B(1/2, v - 1/2) / ((v - 1) B(1/2, v/2)^2)``.
* **log score** ``-log f(y)`` and the **PIT** value ``F(y)`` (the central ``1 - a`` interval
  covers ``y`` exactly when ``a/2 <= F(y) <= 1 - a/2``, so coverage needs no quantiles).
* **pinball loss** at a level ``q`` from the quantile ``Q(q)`` (:mod:`..kernels.mixture_exact`).

For forecasts known only by samples (Kronos' sampled paths, a sampled estimator) the CRPS of the
empirical distribution of the S draws, ``mean |x_i - y| - sum_{i,j} |x_i - x_j| / (2 S^2)``, is
computed exactly in ``O(S log S)`` from the sorted draws.

Everything is float64. :func:`mixture_scores` gives all three scores of a batch, on the host from
the extension's multithreaded C++ loop (``csrc/mixture_exact.cpp``, the same algorithm row by row)
where it is built, else from the torch functions, which run on the parameters' device vectorised
over rows; tests hold the two to each other and both to scipy.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._native import native
from ..kernels.student_t import log_beta_half, student_t_cdf, student_t_half_gini, student_t_logpdf

__all__ = [
    "COVERAGE_LEVELS",
    "DEFAULT_TOLERANCE",
    "covered",
    "mixture_crps",
    "mixture_log_score",
    "mixture_pit",
    "mixture_scores",
    "pinball_loss",
    "sample_crps",
    "student_t_crps",
    "student_t_scores",
]

#: Relative agreement of two successive quadrature estimates of ``E|X - X'| / 2``.
DEFAULT_TOLERANCE = 1e-7
#: Central interval coverages reported by default.
COVERAGE_LEVELS = (0.5, 0.8, 0.95)
_FIRST_STEP = 0.25  # in u; halved until converged (geometric convergence: 3-4 halvings at most)
_FINEST_STEP = 1.0 / 4096.0  # reached only by rows with a narrow component far from the rest
_CHUNK = 1 << 21  # grid values evaluated at once (rows x nodes): bounds memory on fine grids
_TAIL_MASS = 1e-6  # bound on 1 - F at the grid's ends: the neglected (1 - F)^2 tail is this fraction of the tail added


def _components(weights, df, loc, scale, affine_loc, affine_scale):
    """(w, v, m, s) in data space, float64 (N, K), weights normalised."""
    w, v, mu, sigma = (torch.as_tensor(t, dtype=torch.float64) for t in (weights, df, loc, scale))
    device = w.device
    a = torch.as_tensor(affine_loc, dtype=torch.float64, device=device)[:, None]
    b = torch.as_tensor(affine_scale, dtype=torch.float64, device=device)[:, None]
    w = w / w.sum(1, keepdim=True)
    return w, v.to(device), a + b * mu.to(device), b * sigma.to(device)


def _observed(w, v, m, s, y) -> tuple:
    """``E|X - y|``, ``F(y)`` and ``-log f(y)`` of each row: every component's CDF and density at ``y``
    evaluated once (``E|X - y|`` closed form per component, see the module docstring)."""
    z = (y[:, None] - m) / s
    cdf = student_t_cdf(z, v)
    log_pdf = student_t_logpdf(z, v)
    per_component = s * (z * (2.0 * cdf - 1.0) + 2.0 * torch.exp(log_pdf) * (v + z * z) / (v - 1.0))
    log_score = -torch.logsumexp(torch.log(w) + log_pdf - torch.log(s), dim=1)
    return (w * per_component).sum(1), (w * cdf).sum(1), log_score


def _prepared(weights, df, loc, scale, affine_loc, affine_scale, y) -> tuple:
    """(w, v, m, s) in data space and ``y`` as a float64 tensor on their device."""
    w, v, m, s = _components(weights, df, loc, scale, affine_loc, affine_scale)
    return w, v, m, s, torch.as_tensor(y, dtype=torch.float64, device=w.device)


def _upper_tail_integral(w, v, m, s, r):
    """``integral from r to inf of (1 - F(x)) dx = sum_k w_k E[(X_k - r)^+]`` per row (closed form)."""
    z = (r[:, None] - m) / s
    survival = student_t_cdf(-z, v)
    pdf = torch.exp(student_t_logpdf(z, v))
    return (w * s * (pdf * (v + z * z) / (v - 1.0) - z * survival)).sum(1)


def _half_gini(w, v, m, s, tol: float):
    """``E|X - X'| / 2 = integral of F (1 - F) dx`` per row, and each row's last relative change."""
    rows = w.shape[0]
    out = torch.empty(rows, dtype=torch.float64, device=w.device)
    change = torch.zeros_like(out)
    single = (w > 0).sum(1) == 1
    if bool(single.any()):
        k = w[single].argmax(1, keepdim=True)
        out[single] = student_t_half_gini(v[single].gather(1, k)[:, 0], s[single].gather(1, k)[:, 0])
    index = torch.nonzero(~single)[:, 0]
    if index.numel() == 0:
        return out, change
    w, v, m, s = w[index], v[index], m[index], s[index]
    present = w > 0
    centre = (w * m).sum(1)
    narrowest = torch.where(present, s, torch.full_like(s, math.inf)).amin(1)  # the map resolves the finest feature
    limit = torch.asinh(_tail_reach(v, m, s, present, centre) / narrowest)
    # Row r's nodes are u = limit_r * i / n, i = -n..n: halving the step (n -> 2n) only adds the odd
    # nodes, and the trapezoid sum is updated as T(h / 2) = T(h) / 2 + (h / 2) sum over the new nodes.
    n = max(1, int(math.ceil(float(limit.max()) / _FIRST_STEP)))
    grid = (w, v, m, s, centre, narrowest)
    step = limit / n
    ends = _integrand(limit[:, None] * torch.tensor([-1.0, 1.0], dtype=torch.float64, device=w.device), *grid)
    inside = torch.arange(-n + 1, n, dtype=torch.float64, device=w.device)
    total = step * (0.5 * ends.sum(1) + _integrand(step[:, None] * inside, *grid).sum(1))
    tails = _tails(limit, *grid)
    previous = total + tails
    active = torch.arange(index.numel(), device=w.device)
    result, achieved = previous.clone(), torch.full_like(previous, math.inf)
    while n * 2 <= int(math.ceil(float(limit.max()) / _FINEST_STEP)) and active.numel():
        n *= 2
        step = step / 2.0
        odd = torch.arange(-n + 1, n, 2, dtype=torch.float64, device=w.device)
        part = tuple(t[active] for t in grid)
        total = 0.5 * total + step * _integrand(step[:, None] * odd, *part).sum(1)
        value = total + tails[active]
        relative = (value - previous).abs() / value.abs().clamp_min(1e-300)
        result[active], achieved[active] = value, relative
        keep = relative > tol
        active, total, step, previous = active[keep], total[keep], step[keep], value[keep]
    if active.numel():
        row = int(index[active[0]])
        raise RuntimeError(
            f"the CRPS quadrature of row {row} did not reach a relative change of {tol:g} at the finest step "
            f"(last change {float(achieved[active[0]]):.3g}); its components are too narrow for their spread"
        )
    out[index], change[index] = result, achieved
    return out, change


def _tail_reach(v, m, s, present, centre):
    """A distance from the centre beyond which ``1 - F`` and ``F`` are below :data:`_TAIL_MASS` for
    every component: Chebyshev's ``P(|T| > t) <= Var T / t^2`` where the variance is finite, Markov's
    ``P(|T| > t) <= E|T| / t`` (any v > 1) otherwise."""
    mean_abs = 2.0 * torch.sqrt(v) / ((v - 1.0) * torch.exp(log_beta_half(0.5 * v)))
    markov = mean_abs / _TAIL_MASS
    chebyshev = torch.sqrt(v / (v - 2.0).clamp_min(1e-300) / _TAIL_MASS)
    reach = torch.where(v > 2.0, torch.minimum(markov, chebyshev), markov)
    far = (m - centre[:, None]).abs() + s * reach
    return torch.where(present, far, torch.zeros_like(far)).amax(1)


def _integrand(u, w, v, m, s, centre, width):
    """``F(x) (1 - F(x)) dx/du`` at ``x = centre + width sinh(u)``; u (R, G), evaluated in column chunks."""
    columns = max(1, _CHUNK // max(1, u.shape[0]))
    if u.shape[1] > columns:
        return torch.cat(
            [_integrand(u[:, i : i + columns], w, v, m, s, centre, width) for i in range(0, u.shape[1], columns)], 1
        )
    x = centre[:, None] + width[:, None] * torch.sinh(u)
    cdf = torch.zeros_like(x)
    for k in range(w.shape[1]):  # one component at a time keeps memory at (R, G)
        cdf += w[:, k : k + 1] * student_t_cdf((x - m[:, k : k + 1]) / s[:, k : k + 1], v[:, k : k + 1])
    return cdf * (1.0 - cdf) * width[:, None] * torch.cosh(u)


def _tails(limit, w, v, m, s, centre, width):
    """Both tails beyond the grid, ``integral of (1 - F)`` right and ``integral of F`` left, in closed form."""
    high = centre + width * torch.sinh(limit)
    low = centre - width * torch.sinh(limit)
    return _upper_tail_integral(w, v, m, s, high) + _upper_tail_integral(w, v, -m, s, -low)


def mixture_crps(weights, df, loc, scale, affine_loc, affine_scale, y, *, tol: float = DEFAULT_TOLERANCE):
    """CRPS of each row's Student-T mixture at the observed ``y`` (float64, the parameters' device).

    Parameters
    ----------
    weights, df, loc, scale : tensor-like, shape (N, K)
        Mixture parameters in the scaler's normalised space (weights normalised here, df > 1).
    affine_loc, affine_scale : tensor-like, shape (N,)
        Data space is ``affine_loc + affine_scale * Y``.
    y : tensor-like, shape (N,)
        The observed values, in data space.
    tol : float
        Relative agreement of two successive quadrature estimates of ``E|X - X'| / 2``.

    Returns
    -------
    torch.Tensor, shape (N,)
        Lower is better; in the units of ``y``.
    """
    w, v, m, s, y = _prepared(weights, df, loc, scale, affine_loc, affine_scale, y)
    return _observed(w, v, m, s, y)[0] - _half_gini(w, v, m, s, tol)[0]


def mixture_scores(
    weights, df, loc, scale, affine_loc, affine_scale, y, *, tol: float = DEFAULT_TOLERANCE, backend: str = "auto"
) -> dict:
    """``crps``, ``pit`` and ``log_score`` of every row (float64 tensors of shape (N,)).

    Arguments as :func:`mixture_crps`. ``backend``: "native" (the extension's C++ loop, on the host),
    "torch" (vectorised, any device), "triton" (one fused kernel on the parameters' device,
    :mod:`..kernels.mixture_scores_triton`; held to the host loop by tests) or "auto" (native for
    host tensors where the extension is built, else torch).
    Raises RuntimeError naming the first row whose CRPS quadrature did not converge.
    """
    if backend not in ("auto", "native", "torch", "triton"):
        raise ValueError(f"backend must be 'auto', 'native', 'torch' or 'triton'; got {backend!r}")
    if backend == "triton":
        from ..kernels.mixture_scores_triton import mixture_scores_triton

        return mixture_scores_triton(weights, df, loc, scale, affine_loc, affine_scale, y, tol=tol)
    compiled = native()
    on_host = not (isinstance(weights, torch.Tensor) and weights.device.type != "cpu")
    if backend == "native" or (backend == "auto" and on_host and hasattr(compiled, "mixture_scores")):
        if not hasattr(compiled, "mixture_scores"):
            raise RuntimeError("backend='native' needs the totowalk._C extension with mixture_scores")
        w = np.ascontiguousarray(torch.as_tensor(weights).detach().cpu().numpy(), dtype=np.float64)
        rows = [
            np.ascontiguousarray(torch.as_tensor(a).detach().cpu().numpy(), dtype=np.float64) for a in (df, loc, scale)
        ]
        flat = [
            np.ascontiguousarray(
                np.broadcast_to(torch.as_tensor(a).detach().cpu().numpy(), (w.shape[0],)), dtype=np.float64
            )
            for a in (affine_loc, affine_scale, y)
        ]
        crps, pit, log_score, failed = compiled.mixture_scores(w, *rows, *flat, tol, 0)
        if failed >= 0:
            raise RuntimeError(
                f"exact scores failed for row {failed}: non-finite parameters, or a CRPS quadrature that did not "
                f"reach a relative change of {tol:g} (components too narrow for their spread)"
            )
        return {name: torch.from_numpy(v) for name, v in (("crps", crps), ("pit", pit), ("log_score", log_score))}
    w, v, m, s, y = _prepared(weights, df, loc, scale, affine_loc, affine_scale, y)
    mean_abs, pit, log_score = _observed(w, v, m, s, y)  # the components at y, once for all three
    return {"crps": mean_abs - _half_gini(w, v, m, s, tol)[0], "pit": pit, "log_score": log_score}


def mixture_pit(weights, df, loc, scale, affine_loc, affine_scale, y):
    """``F(y)``: the probability integral transform of each observation (uniform when calibrated)."""
    return _observed(*_prepared(weights, df, loc, scale, affine_loc, affine_scale, y))[1]


def mixture_log_score(weights, df, loc, scale, affine_loc, affine_scale, y):
    """``-log f(y)``, the logarithmic score (lower is better), computed in log space."""
    return _observed(*_prepared(weights, df, loc, scale, affine_loc, affine_scale, y))[2]


def student_t_scores(loc, scale, df, y) -> dict:
    """``crps``, ``pit`` and ``log_score`` of location-scale Student-T forecasts (``df = inf``: normal)
    at ``y``, all closed form (numpy in, numpy out)."""
    loc, scale, df, y = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (loc, scale, df, y)))
    z = torch.from_numpy(((y - loc) / scale).copy())
    v, s = torch.from_numpy(df.copy()), torch.from_numpy(scale.copy())
    normal = ~torch.isfinite(v)
    cdf, log_pdf, half_gini = (torch.empty_like(z) for _ in range(3))
    zn = z[normal]
    cdf[normal] = torch.special.ndtr(zn)
    log_pdf[normal] = -0.5 * zn * zn - 0.5 * math.log(2.0 * math.pi)
    half_gini[normal] = s[normal] / math.sqrt(math.pi)
    t, vt = z[~normal], v[~normal]
    cdf[~normal] = student_t_cdf(t, vt)
    log_pdf[~normal] = student_t_logpdf(t, vt)
    half_gini[~normal] = student_t_half_gini(vt, s[~normal])
    pdf = torch.exp(log_pdf)
    # E|T - z| = z (2F - 1) + 2 f (v + z^2) / (v - 1); as v -> inf the last factor is 1 (the normal)
    tail = torch.where(normal, torch.ones_like(z), (v + z * z) / (v - 1.0))
    crps = s * (z * (2.0 * cdf - 1.0) + 2.0 * pdf * tail) - half_gini
    return {"crps": crps.numpy(), "pit": cdf.numpy(), "log_score": (torch.log(s) - log_pdf).numpy()}


def student_t_crps(loc, scale, df, y) -> np.ndarray:
    """CRPS of location-scale Student-T forecasts (``df = inf``: normal) at ``y``, closed form (numpy in, out)."""
    return student_t_scores(loc, scale, df, y)["crps"]


def sample_crps(samples, y) -> np.ndarray:
    """CRPS of the empirical distribution of each row's draws at ``y`` (exact for that distribution).

    ``samples`` (N, S), ``y`` (N,). Uses ``sum_{i,j} |x_i - x_j| = 2 sum_i (2i - S - 1) x_(i)`` over
    the sorted draws (i from 1), so the cost is a sort, not S^2 differences.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64), axis=1)
    y = np.asarray(y, dtype=np.float64)
    count = x.shape[1]
    rank = 2.0 * np.arange(1, count + 1) - count - 1.0
    spread = (x * rank).sum(1) / (count * count)  # = sum_{i,j} |x_i - x_j| / (2 S^2)
    return np.abs(x - y[:, None]).mean(1) - spread


def sample_pit(samples, y) -> np.ndarray:
    """PIT of each row's draws at ``y``: the share of draws below it, and half the share equal to it
    (the mid-point of the empirical CDF's jump, so ties neither push the PIT up nor down)."""
    x = np.asarray(samples, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)[:, None]
    return (x < y).mean(1) + 0.5 * (x == y).mean(1)


def pinball_loss(quantiles, levels, y) -> np.ndarray:
    """Quantile (pinball) loss per row and level: ``(1{y < Q} - q) (Q - y)``; quantiles (N, J)."""
    q = np.asarray(levels, dtype=np.float64)[None, :]
    quantiles = np.asarray(quantiles, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)[:, None]
    return ((y < quantiles).astype(np.float64) - q) * (quantiles - y)


def covered(pit, level: float) -> np.ndarray:
    """Whether the central ``level`` interval covered each observation, from its PIT value."""
    pit = np.asarray(pit, dtype=np.float64)
    tail = 0.5 * (1.0 - level)
    return (pit >= tail) & (pit <= 1.0 - tail)
