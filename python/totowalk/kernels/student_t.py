"""The standard Student-T distribution in float64 torch: CDF, density and partial expectation.

torch has no incomplete beta function, which the Student-T CDF needs for non-integer degrees of
freedom, so it is computed here: ``F(t) = 1/2 + sign(t)/2 * I_y(1/2, nu/2)`` with
``y = t^2 / (nu + t^2)`` (equivalently ``1 - I_x(nu/2, 1/2) / 2`` for t > 0, ``x = 1 - y``).
``I`` is evaluated by its classical continued fraction (modified Lentz), always on the side of
the symmetry ``I_x(a, b) = 1 - I_{1-x}(b, a)`` where the fraction converges fast
(``x < (a + 1) / (a + b + 2)``). Elements leave the iteration as they converge, so the cost
follows the slowest elements only for those elements.

Everything runs on any torch device (CPU and CUDA) with plain tensor operations; scipy is used
by the tests as an oracle only.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "log_beta_half",
    "student_t_cdf",
    "student_t_half_gini",
    "student_t_logpdf",
    "student_t_mean_abs",
    "student_t_partial_expectation",
    "regularized_incomplete_beta",
]

_EPS = 2.220446049250313e-16  # float64 machine epsilon: the fraction's convergence test
_TINY = 1e-300  # Lentz's guard against division by zero
_MAX_TERMS = 5000  # far above what df in [2, 1e7] needs (tests); reaching it is an error
_LGAMMA_HALF = 0.5 * math.log(math.pi)
# Above this a, log Gamma(a + 1/2) - log Gamma(a) comes from its asymptotic series (error below
# 1e-16 there); lgamma differences of two ~a log a numbers would lose ~a * 1e-16 absolute.
_SERIES_FROM = 200.0


def log_beta_half(a: torch.Tensor) -> torch.Tensor:
    """``log B(a, 1/2)`` for a > 0, accurate for large a too (float64)."""
    a = a.to(torch.float64)
    direct = torch.lgamma(a) - torch.lgamma(a + 0.5)
    big = torch.clamp(a, min=_SERIES_FROM)
    inv = 1.0 / big
    inv2 = inv * inv
    # log Gamma(a + 1/2) - log Gamma(a) = log(a)/2 - 1/(8a) + 1/(192 a^3) + 1/(640 a^5) - 17/(14336 a^7) + ...
    ratio = 0.5 * torch.log(big) - inv * (0.125 - inv2 * (1.0 / 192.0 + inv2 * (1.0 / 640.0 - inv2 * (17.0 / 14336.0))))
    return _LGAMMA_HALF + torch.where(a >= _SERIES_FROM, -ratio, direct)


def _continued_fraction(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The continued-fraction factor of ``I_x(a, b)`` (modified Lentz), element-wise.

    Converges fast where ``x < (a + 1) / (a + b + 2)``; converged elements are set aside so later
    iterations only touch the rest.
    """
    out = torch.empty_like(x)
    index = torch.arange(x.numel(), device=x.device)
    x, a, b = x.reshape(-1), a.reshape(-1), b.reshape(-1)
    qab, qap, qam = a + b, a + 1.0, a - 1.0

    def guard(v):
        return torch.where(v.abs() < _TINY, torch.full_like(v, _TINY), v)

    c = torch.ones_like(x)
    d = 1.0 / guard(1.0 - qab * x / qap)
    h = d.clone()
    flat_out = out.view(-1)
    for m in range(1, _MAX_TERMS + 1):
        m2 = 2.0 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / guard(1.0 + even * d)
        c = guard(1.0 + even / c)
        h = h * d * c
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / guard(1.0 + odd * d)
        c = guard(1.0 + odd / c)
        step = d * c
        h = h * step
        done = (step - 1.0).abs() <= _EPS
        if bool(done.all()):
            flat_out[index] = h
            return out
        if bool(done.any()):
            flat_out[index[done]] = h[done]
            keep = ~done
            index, x, a, b, qab, qap, qam, c, d, h = (t[keep] for t in (index, x, a, b, qab, qap, qam, c, d, h))
    raise RuntimeError(
        f"incomplete beta continued fraction did not converge in {_MAX_TERMS} terms "
        f"for {index.numel()} elements (e.g. x={x[0].item()}, a={a[0].item()}, b={b[0].item()})"
    )


def regularized_incomplete_beta(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``I_x(a, b)`` for x in [0, 1], a, b > 0 (float64, broadcasting)."""
    x, a, b = torch.broadcast_tensors(*(t.to(torch.float64) for t in (x, a, b)))
    flip = x > (a + 1.0) / (a + b + 2.0)
    xs, as_, bs = torch.where(flip, 1.0 - x, x), torch.where(flip, b, a), torch.where(flip, a, b)
    log_front = (
        as_ * torch.log(xs) + bs * torch.log1p(-xs) - (torch.lgamma(as_) + torch.lgamma(bs) - torch.lgamma(as_ + bs))
    )
    value = torch.exp(log_front) * _continued_fraction(xs, as_, bs) / as_
    value = torch.where(flip, 1.0 - value, value)
    return torch.where(x <= 0, torch.zeros_like(value), torch.where(x >= 1, torch.ones_like(value), value))


def student_t_cdf(t: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    """``P(T <= t)`` for a standard Student-T with ``df`` > 0 degrees of freedom (float64, broadcasting)."""
    t, df = torch.broadcast_tensors(t.to(torch.float64), df.to(torch.float64))
    a = 0.5 * df
    t2 = t * t
    # y = t^2/(df + t^2) and x = df/(df + t^2) = 1 - y, both computed without cancellation.
    log_y = 2.0 * torch.log(t.abs()) - torch.log(df + t2)
    log_x = -torch.log1p(t2 / df)
    # I_y(1/2, a) directly where it converges fast, else 1 - I_x(a, 1/2).
    small_y = torch.exp(log_y) < 1.5 / (a + 2.5)
    half = torch.full_like(a, 0.5)
    first = torch.where(small_y, half, a)
    second = torch.where(small_y, a, half)
    arg = torch.where(small_y, torch.exp(log_y), torch.exp(log_x))
    log_front = (0.5 * log_y + a * log_x) - log_beta_half(a)
    fraction = _continued_fraction(arg, first, second)
    part = torch.exp(log_front) * fraction / first  # I_arg(first, second)
    central = torch.where(small_y, part, 1.0 - part)  # I_y(1/2, a) = P(|T| <= |t|)
    central = torch.where(t2 == 0, torch.zeros_like(central), central)
    tail = 0.5 * torch.where(small_y, 1.0 - part, part)  # P(T > |t|), accurate in the far tail
    return torch.where(t >= 0, 0.5 + 0.5 * central, tail)


def student_t_logpdf(t: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    """Log density of the standard Student-T (float64, broadcasting)."""
    t, df = t.to(torch.float64), df.to(torch.float64)
    return -0.5 * (df + 1.0) * torch.log1p(t * t / df) - 0.5 * torch.log(df) - log_beta_half(0.5 * df)


def student_t_partial_expectation(t: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    """``E[T; T <= t] = -(df + t^2) / (df - 1) * pdf(t)`` for df > 1 (float64, broadcasting).

    (Differentiating gives ``t * pdf(t)``, and the expression vanishes as t -> -inf for df > 1.)
    """
    t, df = t.to(torch.float64), df.to(torch.float64)
    return -(df + t * t) / (df - 1.0) * torch.exp(student_t_logpdf(t, df))


def student_t_mean_abs(df: torch.Tensor) -> torch.Tensor:
    """``E|T| = 2 sqrt(df) / ((df - 1) B(df/2, 1/2))`` for df > 1 (float64)."""
    df = df.to(torch.float64)
    return 2.0 * torch.sqrt(df) / ((df - 1.0) * torch.exp(log_beta_half(0.5 * df)))


def student_t_half_gini(df: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``E|X - X'| / 2`` of a Student-T of scale ``scale`` (closed form, the CRPS's spread term):
    ``2 s sqrt(df) B(1/2, df - 1/2) / ((df - 1) B(1/2, df/2)^2)``."""
    log_ratio = (
        torch.lgamma(torch.full_like(df, 0.5))
        + torch.lgamma(df - 0.5)
        - torch.lgamma(df)
        - 2.0 * log_beta_half(0.5 * df)
    )
    return 2.0 * scale * torch.sqrt(df) / (df - 1.0) * torch.exp(log_ratio)
