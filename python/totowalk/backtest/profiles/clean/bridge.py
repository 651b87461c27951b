r"""Fill probabilities of limit orders inside a daily OHLC bar (docs/FILLS.md).

Model
=====
Inside one bar the price is a driftless Brownian motion ``W`` on the bar's
clock ``t in [0, 1]`` with volatility ``sigma`` (so ``Var W_1 - W_0 = sigma^2``),
started at the open ``W_0 = o`` and conditioned on the three other numbers the
bar reports: the close ``W_1 = y``, the high ``max W = H`` and the low
``min W = L``.  All prices are plain real numbers ("moves" relative to the
previous close); only differences matter.

Quantities returned
-------------------
``p_long(o, y, H, L, l, h, sigma)``
    A buy limit at ``l`` (``L < l <= o``) is filled at ``tau_l``, the first time
    the path touches ``l``; afterwards a sell limit at ``h`` (``y < h < H``) is
    live.  ``p_long`` is the conditional probability that the path touches
    ``h`` after ``tau_l``:  ``P(sup_{[tau_l, 1]} W >= h | o, y, H, L)``.
    The booked P&L of the round trip is ``(y - l) + p (h - y)``.
``p_short(o, y, H, L, l, h, sigma)``
    The mirror trade: sell limit at ``h`` (``o <= h < H``), filled at ``tau_h``,
    then a buy (cover) limit at ``l`` (``L < l < y``); probability that the path
    touches ``l`` after ``tau_h``.  By the reflection ``W -> -W``
    ``p_short(o, y, H, L, l, h) = p_long(-o, -y, -L, -H, -h, -l)``.
``q_max_first(o, y, H, L, sigma)``
    Probability that the high is printed before the low.

Certain cases (no probability needed), applied in this order by ``p_long``:
  * entry not filled (``l <= L`` and ``l < o``)      -> NaN  (no trade)
  * entry at the open (``l >= o``)                   -> 1 if ``h < H`` else 0
  * close at or above the target (``y >= h``)        -> 1
  * target at or above the high (``h >= H``)         -> 0
  * target at or below the fill price (``h <= l``)   -> 1 (``W(tau_l) = l >= h``)
Touching the high (low) exactly is treated as *not* trading there, the
convention ``h >= H -> 0`` of the fill rules (:mod:`.fills`).  Note that p is
continuous in h up to H but does NOT tend to 0 as h -> H-: the limit is the
probability that the high is printed after the fill (every target below the
high is then touched); p jumps to 0 at h = H by the convention.

Derivation
==========
Work in units of ``sigma`` and translate so that ``L = 0``; write ``R = H - L``.
Let ``phi`` be the standard normal density and ``phi_t`` the N(0, t) density.

1. Brownian motion killed outside an interval, by the method of images (the
   classical reflection argument: Feller, *An Introduction to Probability
   Theory and its Applications*, vol. II, absorbing barriers; tabulated in
   Borodin & Salminen, *Handbook of Brownian Motion - Facts and Formulae*,
   Part II, ch. 1, for W killed at the exit from (a, b); the trivariate
   density of (min, max, W_t) is also discussed by Choi & Roh, Stat. Prob.
   Letters 2013): for ``a < x, z < b``,  ``w = b - a``,

       P_x(a < min, max < b, W_t in dz)/dz
           = sum_k [ phi_t(z - x + 2kw) - phi_t(z + x - 2a + 2kw) ],

   and the density of the first exit through ``a`` (before ``b``) at time s is
   ``f(s) = sum_k d_k/s phi_s(d_k)``, ``d_k = x - a + 2kw``.  Mixed derivatives
   ``-d^2/(da db)`` turn these "stay inside" probabilities into densities of an
   exact max ``b`` and exact min ``a``.  In particular the joint density of
   (max, min, close) is

       D = sum_{k!=0} 4k^2 phi''(y - o + 2kR) - sum_{k!=0,-1} 4k(k+1) phi''(y + o + 2kR)

   (the classical trivariate density; also written as a theta-function /
   eigenfunction series, used below for small ranges:
   ``D = sum_n exp(-kap^2/2)/R^3 {...}``, ``kap = n pi / R``).

2. The event that the long trade does *not* exit at h.  Because ``h < H`` and
   the path reaches ``H``, "no touch of h after tau_l" happens iff the high is
   printed before ``tau_l`` and the path stays below ``h`` after ``tau_l``.
   Conversely the low ``L < l`` must then be printed after ``tau_l``.  By the
   strong Markov property at ``tau_l``, the joint density of
   (max = H, min = L, close = y, no exit) is

       N = -d^2/(da db) int_0^1 f^{(l,b)}_o(s) q^{(a,h)}_l(y; 1-s) ds  at b=H, a=L

   where ``f^{(l,b)}_o`` is the density of the first passage from ``o`` to
   ``l`` before ``b`` and ``q^{(a,h)}_l`` is the density of a path started at
   ``l`` that stays in ``(a, h)``.

3. The time convolution is explicit.  For every ``A > 0`` and real ``e``

       int_0^1 A/s phi_s(A) * phi_{1-s}(e) ds = phi(A + |e|)

   (both sides are the density of W_1 at A + e for a Brownian path from 0
   that has hit the level A by time 1: for e >= 0 every path ending above A
   has hit it; for e < 0 reflect the path after the hitting time, which is
   the reflection principle).  Expanding both
   kernels into images therefore gives a double series of Gaussians, and the
   derivatives in ``a`` and ``b`` act on the image distances only.  With
   ``x0 = o - l``, ``w1 = H - l``, ``v = h - L``, ``dl = y - l``, ``g = y + l - 2L``:

       N = - sum_{k>=1} 2k sum_{(e, om)} om [ phi''(2k w1 + x0 + e) - phi''(2k w1 - x0 + e) ]

   with the list of (image distance, weight)

       (2jv + dl, -2j), (2jv - dl, -2j)        j >= 1
       (g + 2jv, 2(j+1))                         j >= 0
       (2(j+1)v - g, 2j)                         j >= 1.

   Then   ``p_long = 1 - N / D``.   ``q_max_first = N(l=L, h=H) / D``, and the
   identity ``D = N_q(bar) + N_q(mirrored bar)`` holds term by term
   (checked in the tests).

Numerics
========
* Closed form (default).  All terms share the factor ``exp(-A^2/2)``,
  ``A = 2R - |y - o|`` (the shortest path o->H->L->y or o->L->H->y); it is
  divided out, so nothing under/overflows for any range.  Terms beyond
  ``exp(-40)`` of that scale are dropped; the truncation is chosen per element
  and elements are grouped by the number of terms needed, so the work is
  vectorised over elements (only the short loop over groups is Python).  A
  running rounding-error estimate ``eps * sum|terms| / |D|`` is kept.
* Fallback (small range ``R < 0.5 sigma`` -- the image sums then cancel
  catastrophically because ``D ~ exp(-pi^2/(2 R^2))`` -- or rounding estimate
  above 1e-10, or a very narrow corridor ``H - l`` / ``h - L`` that would need
  more than 2048 image pairs): ``N = int_0^1 P(s) Q(1-s) ds`` is integrated
  numerically.  ``P`` (first passage o -> l at time s with exact maximum H)
  and ``Q`` (path from l over time u with exact minimum L, staying below h,
  ending at y) are each evaluated with whichever of the image series (short
  times) or the eigenfunction series (long times) converges fast; when both
  ends of the post-fill path sit just below h the four images that cancel to
  second order are replaced by the exact identity
  ``F(c+s)+F(c-s)-F(c+d)-F(c-d) = int int F''`` over a small rectangle.  The
  integrand is scaled by an explicit convex envelope ``exp(-Phi(s))`` so it
  never under/overflows, and composite Gauss-Legendre rules in ``logit(s)``
  cover the window ``Phi - min Phi < 60`` (panels of at most 4 logit units, so
  boundary layers at fill times down to ~1e-80 are resolved).  ``D`` then uses the
  eigenfunction series (``R < 1``) or the image series.
* Accuracy (test-suite, against a 40-250 digit mpmath evaluation in
  ``reference.py`` and an independent mpmath quadrature): worst absolute error
  ~3e-9 over 130 random bars whose levels sit up to 1e-7 range from each
  other, ~2e-10 on ordinary bars; the target is 1e-6.

Assumptions and where they fail
===============================
* No drift inside the bar (a drift mu enters as exp(mu (y-o) - mu^2/2) which
  cancels given the close: the bridge is drift-free, so this is exact for
  constant drift).  Time-varying volatility (U-shaped intraday) only changes
  the clock; since nothing here depends on *when* things happen, p is
  unaffected if sigma is the bar's total open-to-close volatility.
* Continuous path: prices gap (opening auction is handled by the open itself,
  but halts / news gaps inside the day are not), trade on a tick grid, and
  highs and lows printed by single odd-lot trades are not always reachable by
  a resting order.  Discreteness makes the true touch probability lower near
  the extremes (a limit one tick inside the high is often not filled).
* Queue position: a limit touched is not necessarily a limit filled.
* sigma must be the intrabar (open-to-close diffusive) volatility in the same
  units as the prices; docs/FILLS.md says how the run estimates it and how
  sensitive p is to it.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.legendre import leggauss

__all__ = [
    "p_long",
    "p_short",
    "mirrored_bar",
    "q_max_first",
    "q",
    "expected_pnl_long",
    "expected_pnl_short",
    "bar_log_density",
    "p_long_sigma_mixture",
    "p_short_sigma_mixture",
]

_LOG_SQRT2PI = 0.5 * np.log(2.0 * np.pi)
_PI = np.pi
_PI2 = np.pi * np.pi
_TCUT = 40.0  # drop terms below exp(-40) ~ 4e-18 of the common scale
_ERR_TARGET = 1e-10  # max estimated rounding error accepted from the closed form
_MAX_TERMS = 2048  # max (k, image) pairs per element for the closed form
_R_SMALL = 0.5  # ranges (in sigma) below this go straight to the fallback
_R_SPEC_D = 1.0  # below this D uses the eigenfunction series
_BLOCK = 1 << 16  # max elements*terms per vectorised block
_QUAD_N = 16  # Gauss-Legendre nodes per panel (fallback)
_QUAD_PANEL_W = 4.0  # max panel width, in units of logit(fill time)
_QUAD_C = 60.0  # integrate where Phi - min(Phi) < _QUAD_C
_QUAD_XMAX = 200.0  # |logit(fill time)| <= 200
_GL_X, _GL_W = leggauss(_QUAD_N)
_GL8_X, _GL8_W = leggauss(8)

_BUCKETS = np.array(
    [
        1,
        2,
        3,
        4,
        5,
        6,
        8,
        10,
        12,
        16,
        20,
        24,
        32,
        40,
        48,
        64,
        80,
        96,
        128,
        160,
        192,
        256,
        320,
        384,
        512,
        640,
        768,
        1024,
        1280,
        1536,
        2048,
    ]
)


def _bucket(n):
    """Round term counts up to a small set of sizes (limits the number of groups)."""
    i = np.searchsorted(_BUCKETS, n)
    return _BUCKETS[np.minimum(i, len(_BUCKETS) - 1)]


# --------------------------------------------------------------------------
# closed form (image series), standardised units with L = 0
# --------------------------------------------------------------------------


def _psi(x, A2):
    """sqrt(2 pi) * phi''(x) * exp(A^2/2) = (x^2 - 1) exp(-(x^2 - A^2)/2)."""
    x2 = x * x
    return (x2 - 1.0) * np.exp(-0.5 * (x2 - A2))


def _images_D(o, y, R, A2):
    """Joint density of (max, min, close), scaled by sqrt(2 pi) exp(A^2/2).

    Returns (D_scaled, sum of |terms|)."""
    X = np.sqrt(A2 + 2 * _TCUT)
    kd = np.ceil((X + np.abs(y - o) + y + o) / (2 * R)).astype(np.int64) + 1
    Ds = np.zeros_like(o)
    Da = np.zeros_like(o)
    kb_all = _bucket(kd)
    for kb in np.unique(kb_all):
        idx = np.nonzero(kb_all == kb)[0]
        # zero-weight terms (k = 0 in the first sum, k = 0, -1 in the second)
        # are left out: their arguments may be < A and would overflow
        k1 = np.concatenate([np.arange(-kb, 0), np.arange(1, kb + 1)]).astype(np.float64)
        k2 = np.concatenate([np.arange(-kb, -1), np.arange(1, kb + 1)]).astype(np.float64)
        for s in range(0, idx.size, max(1, _BLOCK // (2 * kb + 1))):
            ii = idx[s : s + max(1, _BLOCK // (2 * kb + 1))]
            oo, yy, RR, aa = o[ii, None], y[ii, None], R[ii, None], A2[ii, None]
            t1 = (4 * k1 * k1) * _psi(yy - oo + 2 * k1 * RR, aa)
            t2 = (4 * k2 * (k2 + 1)) * _psi(yy + oo + 2 * k2 * RR, aa)
            Ds[ii] = np.sum(t1, axis=1) - np.sum(t2, axis=1)
            Da[ii] = np.sum(np.abs(t1), axis=1) + np.sum(np.abs(t2), axis=1)
    return Ds, Da


_PAIR_CACHE = {}


def _pairs(kb, jb):
    """(k, j) index pairs that can matter for any element of a (kb, jb) bucket:
    (2k-1)/(2kb-1) + (j-1)/(jb-1) <= 1 (see _images_N)."""
    key = (kb, jb)
    if key not in _PAIR_CACHE:
        k, j = np.meshgrid(np.arange(1, kb + 1), np.arange(1, jb + 1), indexing="ij")
        keep = (2 * k - 1) / (2 * kb - 1) + (j - 1) / max(jb - 1, 1) <= 1 + 1e-12
        _PAIR_CACHE[key] = (k[keep].astype(np.float64), j[keep].astype(np.float64))
    return _PAIR_CACHE[key]


def _images_N(o, y, R, l, h, A2):
    """Numerator N (density of 'high before the fill, then stays below h'),
    same scaling as _images_D.  Returns (N_scaled, sum|terms|, ok-mask).

    Term (k, j, family f, sign +-) has argument
        x = 2k w1 +- x0 + c_f + 2 j v,   c_f in {dl, -dl, g - 2v, 2v - g}
    and weight -(2k)(2j) s_f (+-1), s_f = (-1, -1, +1, +1).  Since
    2k w1 - x0 >= (2k-1) w1 and c_f >= -2v, a term can exceed exp(-TCUT) only
    if (2k-1) w1 + 2 (j-1) v <= X = sqrt(A^2 + 2 TCUT); with
    K = ceil((X + w1) / (2 w1)), J = ceil(X / (2v)) + 1 this is implied by
    (2k-1)/(2K-1) + (j-1)/(J-1) <= 1, which also holds with K, J rounded up.
    """
    X = np.sqrt(A2 + 2 * _TCUT)
    x0 = o - l
    w1 = R - l
    v = h
    dl = y - l
    g = y + l
    K = np.maximum(1, np.ceil((X + w1) / (2 * w1)))
    J = np.maximum(2, np.ceil(X / (2 * v)) + 1)
    ok = (K * J) <= _MAX_TERMS
    Ns = np.full_like(o, np.nan)
    Na = np.full_like(o, np.nan)
    kb_all = _bucket(np.where(ok, K, 1).astype(np.int64))
    jb_all = _bucket(np.where(ok, J, 2).astype(np.int64))
    key = kb_all * 100000 + jb_all
    sf = np.array([-1.0, -1.0, 1.0, 1.0])
    for kk in np.unique(key[ok]):
        idx = np.nonzero((key == kk) & ok)[0]
        kb, jb = int(kk // 100000), int(kk % 100000)
        kp, jp = _pairs(kb, jb)
        npair = kp.size
        wgt = (-(2 * kp) * (2 * jp))[:, None] * sf[None, :]  # (npair, 4)
        step = max(1, _BLOCK // (8 * npair))
        for s in range(0, idx.size, step):
            ii = idx[s : s + step]
            vv = v[ii, None, None]
            cf = np.stack([dl[ii], -dl[ii], g[ii] - 2 * v[ii], 2 * v[ii] - g[ii]], axis=1)[:, None, :]
            base = 2 * kp[None, :, None] * w1[ii, None, None] + cf + 2 * jp[None, :, None] * vv
            aa = A2[ii, None, None]
            xx = x0[ii, None, None]
            tp = _psi(base + xx, aa)
            tm = _psi(base - xx, aa)
            Ns[ii] = np.einsum("mpf,pf->m", tp - tm, wgt)
            Na[ii] = np.einsum("mpf,pf->m", np.abs(tp) + np.abs(tm), np.abs(wgt))
    return Ns, Na, ok


# --------------------------------------------------------------------------
# eigenfunction series and quadrature fallback (standardised, L = 0)
# --------------------------------------------------------------------------


def _spectral_D(o, y, R, nterms=10):
    """D via the eigenfunction expansion; returns (D_scaled, log_scale) with
    D = D_scaled * exp(log_scale), log_scale = -pi^2/(2R^2)."""
    tot = np.zeros_like(o)
    w = R
    for n in range(1, nterms + 1):
        k = n * _PI / w
        sa, ca = np.sin(k * o), np.cos(k * o)
        sb, cb = np.sin(k * y), np.cos(k * y)
        k2 = k * k
        t = (
            2 * k2 * (2 * o * y - w * o - w * y) * ca * cb
            + 2 * k * (k2 - 2) * ((w - 2 * o) * ca * sb + (w - 2 * y) * sa * cb)
            + (2 * k2 * (o * (w - o) + y * (w - y)) + 2 * k2 * k2 - 10 * k2 + 4) * sa * sb
        )
        tot = tot + np.exp(-0.5 * (n * n - 1) * _PI2 / (w * w)) * t / w**3
    return tot, -0.5 * _PI2 / (R * R)


def _P_hat(s, x0, w1, d1, lam1):
    """P(s) * exp(d1^2/(2s) + lam1 s); P = density of first passage o -> l at
    time s with the pre-fill maximum exactly H (derivative in the upper wall)."""
    out = np.empty_like(s)
    img = s < w1 * w1
    if np.any(img):
        ss, xx, ww, dd, la = s[img], x0[img], w1[img], d1[img], lam1[img]
        acc = np.zeros_like(ss)
        for k in range(1, 7):
            ap = 2 * k * ww + xx
            am = 2 * k * ww - xx
            acc += (
                2
                * k
                * (
                    (1 - ap * ap / ss) * np.exp(-(ap * ap - dd * dd) / (2 * ss))
                    - (1 - am * am / ss) * np.exp(-(am * am - dd * dd) / (2 * ss))
                )
            )
        out[img] = acc * np.exp(la * ss) / (ss * np.sqrt(2 * _PI * ss))
    sp = ~img
    if np.any(sp):
        ss, xx, ww, dd = s[sp], x0[sp], w1[sp], d1[sp]
        acc = np.zeros_like(ss)
        for n in range(1, 7):
            th = n * _PI * xx / ww
            sn, cs = np.sin(th), np.cos(th)
            F = _PI * n / ww**2 * sn
            Fp = _PI * n * (-2 * sn / ww**3 - n * _PI * xx / ww**4 * cs)
            lamp = -n * n * _PI2 / ww**3
            acc += (Fp - ss * lamp * F) * np.exp(-0.5 * (n * n - 1) * _PI2 / (ww * ww) * ss)
        out[sp] = acc * np.exp(dd * dd / (2 * ss))
    return out


def _Q_hat(u, y, l, h, d2, mu1):
    """Q(u) * exp(d2^2/(2u) + mu1 u); Q = density of a path from l over time u
    that stays below h, has minimum exactly L = 0 and ends at y."""
    out = np.empty_like(u)
    v = h
    img = u < v * v
    if np.any(img):
        uu, yy, ll, vv, dd, mm = u[img], y[img], l[img], v[img], d2[img], mu1[img]
        p1, p2 = vv - ll, vv - yy  # distances of start / end below h
        s_, d_ = p1 + p2, np.abs(p1 - p2)
        pmax = np.maximum(p1, p2)
        dd2 = dd * dd
        acc = np.zeros_like(uu)
        for j in range(1, 8):
            c = 2 * j * vv
            # direct: F(c+s) + F(c-s) - F(c+d) - F(c-d),  F(e) = e/u exp(-(e^2-d2^2)/2u)
            br = np.zeros_like(uu)
            for e, sg in ((c + s_, 1.0), (c - s_, 1.0), (c + d_, -1.0), (c - d_, -1.0)):
                br += sg * (e / uu) * np.exp(-(e * e - dd2) / (2 * uu))
            # when both distances are small against the kernel scale u/e the
            # four terms cancel to second order: use the exact identity
            # bracket = int_{-p1}^{p1} int_{-p2}^{p2} F''(c + a + b) da db
            rect = pmax * (c + s_) / uu < 0.7
            if np.any(rect):
                cc, P1, P2, U = c[rect], p1[rect], p2[rect], uu[rect]
                a_ = P1[:, None, None] * _GL8_X[None, :, None]
                b_ = P2[:, None, None] * _GL8_X[None, None, :]
                e = cc[:, None, None] + a_ + b_
                U3 = U[:, None, None]
                f2 = (e / U3**2) * (e * e / U3 - 3) * np.exp(-(e * e - dd2[rect][:, None, None]) / (2 * U3))
                wq = _GL8_W[None, :, None] * _GL8_W[None, None, :]
                br[rect] = np.sum(f2 * wq, axis=(1, 2)) * P1 * P2
            acc += 2 * j * br
        out[img] = acc * np.exp(mm * uu) / np.sqrt(2 * _PI * uu)
    sp = ~img
    if np.any(sp):
        uu, yy, ll, vv, dd = u[sp], y[sp], l[sp], v[sp], d2[sp]
        acc = np.zeros_like(uu)
        for m in range(1, 7):
            al = m * _PI * ll / vv
            be = m * _PI * yy / vv
            sa, ca, sb, cb = np.sin(al), np.cos(al), np.sin(be), np.cos(be)
            G = 2 / vv * sa * sb
            dG = 2 / vv**2 * sa * sb + 2 / vv * (
                ca * sb * (-m * _PI * (vv - ll) / vv**2) + sa * cb * (-m * _PI * (vv - yy) / vv**2)
            )
            dmu = m * m * _PI2 / vv**3
            acc += -(dG - uu * dmu * G) * np.exp(-0.5 * (m * m - 1) * _PI2 / (vv * vv) * uu)
        out[sp] = acc * np.exp(dd * dd / (2 * uu))
    return out


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _quad_N(o, y, R, l, h):
    """N by quadrature over the fill time. Returns (N_scaled, log_scale) with
    N = N_scaled * exp(log_scale).

    N = int_0^1 P(s) Q(1-s) ds.  With x = logit(s) the integrand is written as
    P_hat Q_hat exp(-Phi) s (1-s), where the convex envelope
        Phi(s) = d1^2/(2s) + lam1 s + d2^2/(2(1-s)) + mu1 (1-s)
    carries the exponential behaviour of P (small s: first passage over the
    distance d1 = (H-o) + (H-l); large s: decay rate lam1 of the corridor
    (l, H)) and of Q (distance d2 = (y-L) + (l-L), corridor (L, h)), so that
    P_hat and Q_hat vary only polynomially.  The x-window where
    Phi - min Phi < _QUAD_C is cut into panels of at most _QUAD_PANEL_W logit
    units (this resolves the boundary layers at s ~ d1^2 and 1-s ~ d2^2, which
    dominate when the fill is almost instantaneous or happens just before the
    close), each with a _QUAD_N-point Gauss-Legendre rule.
    """
    x0 = o - l
    w1 = R - l
    v = h
    d1 = 2 * w1 - x0
    d2 = y + l
    lam1 = 0.5 * _PI2 / (w1 * w1)
    mu1 = 0.5 * _PI2 / (v * v)

    def phi_env(x):
        s, u = _expit(x), _expit(-x)
        return d1 * d1 / (2 * s) + lam1 * s + d2 * d2 / (2 * u) + mu1 * u

    def dphi_env(x):
        s, u = _expit(x), _expit(-x)
        return -d1 * d1 / (2 * s * s) + lam1 + d2 * d2 / (2 * u * u) - mu1

    X = _QUAD_XMAX
    lo = np.full_like(o, -X)
    hi = np.full_like(o, X)
    with np.errstate(over="ignore"):
        for _ in range(80):  # argmin of the convex envelope
            mid = 0.5 * (lo + hi)
            pos = dphi_env(mid) > 0
            hi = np.where(pos, mid, hi)
            lo = np.where(pos, lo, mid)
        xs = 0.5 * (lo + hi)
        phis = phi_env(xs)

        # solve Phi(x) = Phi* + C on [-X, xs] (row 0: Phi falls there) and [xs, X] (row 1: it rises),
        # both rows in one bisection (the same steps element by element as two, half the calls)
        a, b = np.stack([np.full_like(xs, -X), xs]), np.stack([xs, np.full_like(xs, X)])
        right = np.array([[False], [True]])
        for _ in range(80):
            mid = 0.5 * (a + b)
            move_a = ((phi_env(mid) - phis - _QUAD_C) > 0) ^ right  # left: above the level; right: below
            a, b = np.where(move_a, mid, a), np.where(move_a, b, mid)
        left_end, right_end = 0.5 * (a + b)
        xa = np.where(phi_env(-X + 0 * xs) - phis - _QUAD_C <= 0, -X, left_end)
        xb = np.where(phi_env(X + 0 * xs) - phis - _QUAD_C <= 0, X, right_end)
    nl = np.maximum(1, np.ceil((xs - xa) / _QUAD_PANEL_W)).astype(np.int64)
    nr = np.maximum(1, np.ceil((xb - xs) / _QUAD_PANEL_W)).astype(np.int64)
    Nsc = np.empty_like(o)
    key = nl * 1000 + nr
    for kk in np.unique(key):
        g = np.nonzero(key == kk)[0]
        kl, kr = int(kk // 1000), int(kk % 1000)
        tl = np.linspace(0, 1, kl + 1)[None, :]
        tr = np.linspace(0, 1, kr + 1)[None, 1:]
        edges = np.concatenate([xa[g, None] + (xs - xa)[g, None] * tl, xs[g, None] + (xb - xs)[g, None] * tr], axis=1)
        a_, b_ = edges[:, :-1], edges[:, 1:]
        half = 0.5 * (b_ - a_)
        m = g.size
        xn = ((0.5 * (a_ + b_))[:, :, None] + half[:, :, None] * _GL_X[None, None, :]).reshape(m, -1)
        wn = (half[:, :, None] * _GL_W[None, None, :]).reshape(m, -1)
        nn = xn.shape[1]

        def rep(z):
            return np.broadcast_to(z[g, None], (m, nn)).ravel()

        sn, un = _expit(xn), _expit(-xn)
        env = (
            (d1 * d1)[g, None] / (2 * sn)
            + lam1[g, None] * sn
            + (d2 * d2)[g, None] / (2 * un)
            + mu1[g, None] * un
            - phis[g, None]
        )
        s, u = sn.ravel(), un.ravel()
        Ph = _P_hat(s, rep(x0), rep(w1), rep(d1), rep(lam1)).reshape(m, nn)
        Qh = _Q_hat(u, rep(y), rep(l), rep(h), rep(d2), rep(mu1)).reshape(m, nn)
        Nsc[g] = np.sum(Ph * Qh * np.exp(-env) * sn * un * wn, axis=1)
    return Nsc, -phis


# --------------------------------------------------------------------------
# driver on standardised inputs
# --------------------------------------------------------------------------


def _solve(o, y, R, l, h, method="auto"):
    """For 1-D standardised arrays (L = 0, sigma = 1, all cases uncertain)
    return (ratio, logD) with ratio = N/D and D the (max, min, close) density."""
    n = o.size
    ratio = np.full(n, np.nan)
    logD = np.full(n, np.nan)
    if n == 0:
        return ratio, logD
    fb = np.zeros(n, dtype=bool)
    if method in ("auto", "series"):
        cand = (R >= _R_SMALL) if method == "auto" else np.ones(n, dtype=bool)
        idx = np.nonzero(cand)[0]
        fb[~cand] = True
        if idx.size:
            oo, yy, RR, ll, hh = o[idx], y[idx], R[idx], l[idx], h[idx]
            A = 2 * RR - np.abs(yy - oo)
            A2 = A * A
            Ds, Da = _images_D(oo, yy, RR, A2)
            Ns, Na, ok = _images_N(oo, yy, RR, ll, hh, A2)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = Ns / Ds
                err = np.finfo(float).eps * (Na + Da * np.abs(r)) / np.abs(Ds)
            good = ok & (Ds > 0) & np.isfinite(r)
            if method == "auto":
                good &= err < _ERR_TARGET
            ratio[idx[good]] = r[good]
            with np.errstate(divide="ignore"):
                logD[idx[good]] = np.log(Ds[good]) - 0.5 * A2[good] - _LOG_SQRT2PI
            fb[idx[~good]] = True
            if method == "series":
                bad = idx[~good]
                ratio[bad] = r[~good]
                fb[:] = False
    elif method == "quad":
        fb[:] = True
    else:
        raise ValueError("method must be 'auto', 'series' or 'quad'")
    idx = np.nonzero(fb)[0]
    if idx.size:
        oo, yy, RR, ll, hh = o[idx], y[idx], R[idx], l[idx], h[idx]
        Nsc, lN = _quad_N(oo, yy, RR, ll, hh)
        spec = RR < _R_SPEC_D
        Dsc = np.empty_like(oo)
        lD = np.empty_like(oo)
        if np.any(spec):
            Dsc[spec], lD[spec] = _spectral_D(oo[spec], yy[spec], RR[spec])
        if np.any(~spec):
            A = 2 * RR[~spec] - np.abs(yy[~spec] - oo[~spec])
            d, _ = _images_D(oo[~spec], yy[~spec], RR[~spec], A * A)
            Dsc[~spec] = d
            lD[~spec] = -0.5 * A * A - _LOG_SQRT2PI
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio[idx] = Nsc / Dsc * np.exp(lN - lD)
            logD[idx] = np.log(Dsc) + lD
    return ratio, logD


def _as_arrays(*args):
    arrs = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in args])
    shape = arrs[0].shape
    return [a.ravel() for a in arrs], shape


def _out(x, shape):
    x = x.reshape(shape)
    return x[()] if x.ndim == 0 else x


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def _p_long_flat(o, y, H, L, l, h, sigma, method="auto"):
    p = np.full(o.shape, np.nan)
    bad = ~(
        np.isfinite(o)
        & np.isfinite(y)
        & np.isfinite(H)
        & np.isfinite(L)
        & np.isfinite(l)
        & np.isfinite(h)
        & np.isfinite(sigma)
        & (sigma > 0)
        & (L <= np.minimum(o, y))
        & (np.maximum(o, y) <= H)
    )
    filled = (l > L) | (l >= o)
    at_open = (l >= o) & ~bad
    p[at_open] = (h[at_open] < H[at_open]).astype(float)
    rest = ~bad & filled & ~at_open
    c1 = rest & (y >= h)
    p[c1] = 1.0
    rest &= ~c1
    c2 = rest & (h >= H)
    p[c2] = 0.0
    rest &= ~c2
    c3 = rest & (h <= l)
    p[c3] = 1.0
    rest &= ~c3
    idx = np.nonzero(rest)[0]
    if idx.size:
        s = sigma[idx]
        Lr = L[idx]
        r, _ = _solve(
            (o[idx] - Lr) / s, (y[idx] - Lr) / s, (H[idx] - Lr) / s, (l[idx] - Lr) / s, (h[idx] - Lr) / s, method
        )
        p[idx] = np.clip(1.0 - r, 0.0, 1.0)
    return p


def p_long(o, y, H, L, l, h, sigma, method="auto"):
    """P(take-profit at h is touched after the buy limit at l fills | bar).

    o, y, H, L: open, close, high, low of the bar; l: buy limit; h: sell
    limit (take profit); sigma: intrabar volatility (open-to-close standard
    deviation, same units as prices).  All arguments broadcast; returns float64
    array of the broadcast shape.  NaN where the entry is not filled
    (l <= L < o) or the bar is inconsistent.  ``method`` ('auto', 'series',
    'quad') is for testing only.
    """
    (o, y, H, L, l, h, sigma), shape = _as_arrays(o, y, H, L, l, h, sigma)
    return _out(_p_long_flat(o, y, H, L, l, h, sigma, method), shape)


def mirrored_bar(o, y, H, L, l, h) -> tuple:
    """The bar and limits seen upside down, ``(-o, -y, -L, -H, -h, -l)``: a short trade's chance
    (sell at ``h``, cover at ``l``) is the long trade's on it."""
    return -o, -y, -L, -H, -h, -l


def p_short(o, y, H, L, l, h, sigma, method="auto"):
    """P(cover limit at l is touched after the sell limit at h fills | bar).

    Sell limit (entry) at h (o <= h < H), cover (take profit) at l (L < l < y).
    Equals p_long(-o, -y, -L, -H, -h, -l, sigma).  NaN if the entry is not
    filled (h >= H > o)."""
    (o, y, H, L, l, h, sigma), shape = _as_arrays(o, y, H, L, l, h, sigma)
    return _out(_p_long_flat(*mirrored_bar(o, y, H, L, l, h), sigma, method), shape)


def q_max_first(o, y, H, L, sigma, method="auto"):
    """P(the high is printed before the low | bar).  NaN for H == L."""
    (o, y, H, L, sigma), shape = _as_arrays(o, y, H, L, sigma)
    out = np.full(o.shape, np.nan)
    ok = (
        np.isfinite(o)
        & np.isfinite(y)
        & np.isfinite(H)
        & np.isfinite(L)
        & np.isfinite(sigma)
        & (sigma > 0)
        & (L <= np.minimum(o, y))
        & (np.maximum(o, y) <= H)
        & (H > L)
    )
    idx = np.nonzero(ok)[0]
    if idx.size:
        s = sigma[idx]
        Lr = L[idx]
        R = (H[idx] - Lr) / s
        r, _ = _solve((o[idx] - Lr) / s, (y[idx] - Lr) / s, R, np.zeros_like(R), R, method)
        out[idx] = np.clip(r, 0.0, 1.0)
    return _out(out, shape)


q = q_max_first


def bar_log_density(o, y, H, L, sigma):
    """log of the joint density of (close, high, low) at (y, H, L) given the
    open o, for a driftless Brownian motion with volatility sigma, in price
    units (density w.r.t. dy dH dL).  Useful as a likelihood for sigma."""
    (o, y, H, L, sigma), shape = _as_arrays(o, y, H, L, sigma)
    out = np.full(o.shape, -np.inf)
    ok = (sigma > 0) & (L < np.minimum(o, y)) & (np.maximum(o, y) < H)
    idx = np.nonzero(ok)[0]
    if idx.size:
        s = sigma[idx]
        Lr = L[idx]
        R = (H[idx] - Lr) / s
        oo, yy = (o[idx] - Lr) / s, (y[idx] - Lr) / s
        ld = np.empty_like(R)
        small = R < _R_SPEC_D
        if np.any(small):
            d, lsc = _spectral_D(oo[small], yy[small], R[small])
            with np.errstate(divide="ignore", invalid="ignore"):
                ld[small] = np.log(d) + lsc
        if np.any(~small):
            A = 2 * R[~small] - np.abs(yy[~small] - oo[~small])
            d, _ = _images_D(oo[~small], yy[~small], R[~small], A * A)
            with np.errstate(divide="ignore", invalid="ignore"):
                ld[~small] = np.log(d) - 0.5 * A * A - _LOG_SQRT2PI
        out[idx] = ld - 3 * np.log(s)
    return _out(out, shape)


def expected_pnl_long(o, y, H, L, l, h, sigma, method="auto"):
    """Booked expected P&L of the long round trip (buy limit l, take profit h,
    else exit at the close y): E[P&L | bar].  0 where the entry is not filled.
    Entry price is l, or the open o if o < l (marketable buy)."""
    (o, y, H, L, l, h, sigma), shape = _as_arrays(o, y, H, L, l, h, sigma)
    p = _p_long_flat(o, y, H, L, l, h, sigma, method)
    entry = np.where(l >= o, o, l)
    pnl = (y - entry) + p * (h - y)
    pnl = np.where(np.isnan(p) & (l <= L) & (l < o), 0.0, pnl)
    return _out(pnl, shape)


def expected_pnl_short(o, y, H, L, l, h, sigma, method="auto"):
    """Booked expected P&L of the short round trip (sell limit h, cover at l,
    else cover at the close y).  0 where the entry is not filled.  Entry price
    is h, or the open o if o > h."""
    (o, y, H, L, l, h, sigma), shape = _as_arrays(o, y, H, L, l, h, sigma)
    p = _p_long_flat(*mirrored_bar(o, y, H, L, l, h), sigma, method)
    entry = np.where(h <= o, o, h)
    pnl = (entry - y) + p * (y - l)
    pnl = np.where(np.isnan(p) & (h >= H) & (h > o), 0.0, pnl)
    return _out(pnl, shape)


def _mixture(o, y, H, L, l, h, sigma, log_sd, n, short):
    (o, y, H, L, l, h, sigma, log_sd), shape = _as_arrays(o, y, H, L, l, h, sigma, log_sd)
    z = np.linspace(-4.0, 4.0, n)  # prior nodes in units of log_sd
    lw = -0.5 * z * z  # log prior weights (uniform grid)
    num = np.zeros(o.shape)
    den = np.zeros(o.shape)
    lds, ps = [], []
    for zi in z:
        si = sigma * np.exp(log_sd * zi)
        if short:
            ps.append(_p_long_flat(*mirrored_bar(o, y, H, L, l, h), si))
        else:
            ps.append(_p_long_flat(o, y, H, L, l, h, si))
        lds.append(bar_log_density(o, y, H, L, si))
    LD = np.array(lds).reshape(n, -1) + lw[:, None]
    LD = LD - np.max(LD, axis=0, keepdims=True)
    W = np.exp(LD)
    P = np.array(ps).reshape(n, -1)
    num = np.sum(W * P, axis=0)
    den = np.sum(W, axis=0)
    return _out(num / den, shape)


def p_long_sigma_mixture(o, y, H, L, l, h, sigma, log_sd=0.3, n=41):
    """p_long averaged over the posterior of sigma given the bar: log-normal
    prior (median ``sigma``, e.g. a trailing estimate, log-sd ``log_sd``, the
    day-to-day dispersion of the true volatility around it) times the bar's
    own likelihood ``bar_log_density``; ``n``-point grid over +-4 prior sd."""
    return _mixture(o, y, H, L, l, h, sigma, log_sd, n, short=False)


def p_short_sigma_mixture(o, y, H, L, l, h, sigma, log_sd=0.3, n=41):
    """Short-trade analogue of p_long_sigma_mixture."""
    return _mixture(o, y, H, L, l, h, sigma, log_sd, n, short=True)
