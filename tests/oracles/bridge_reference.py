"""High-precision (mpmath) reference for bridge.py.

Evaluates the same image series as bridge.py's closed form, but in
arbitrary precision (enough digits to absorb the cancellation of the series
for small ranges) and with a truncation far beyond double precision.  It is an
independent implementation (plain Python loops, no grouping, no scaling
tricks); together with the Monte-Carlo fixture and the quadrature route it
pins down the numpy code.  Slow: use for a few hundred points at most.
"""

import math

import mpmath as mp


def _phi2(x):
    return (x * x - 1) * mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def _setup(o, y, H, L, sigma):
    R = (H - L) / sigma
    A = 2 * R - abs(y - o) / sigma
    lam = math.pi**2 / (2 * R * R)
    lost = max(0.0, lam - A * A / 2) / math.log(10)
    dps = int(40 + lost * 1.1)
    # log of the size of the answer relative to exp(-x^2/2) terms
    X = math.sqrt(2 * (max(A * A / 2, lam) + 90))
    return dps, X


def ref_D(o, y, H, L, sigma=1.0):
    dps, X = _setup(o, y, H, L, sigma)
    with mp.workdps(dps):
        s = mp.mpf(sigma)
        o_, y_, R = (mp.mpf(o) - L) / s, (mp.mpf(y) - L) / s, (mp.mpf(H) - L) / s
        K = int(X / (2 * float(R))) + 3
        tot = mp.mpf(0)
        for k in range(-K, K + 1):
            tot += 4 * k * k * _phi2(y_ - o_ + 2 * k * R) - 4 * k * (k + 1) * _phi2(y_ + o_ + 2 * k * R)
        return tot


def ref_N(o, y, H, L, l, h, sigma=1.0):
    dps, X = _setup(o, y, H, L, sigma)
    with mp.workdps(dps):
        s = mp.mpf(sigma)
        o_, y_, R = (mp.mpf(o) - L) / s, (mp.mpf(y) - L) / s, (mp.mpf(H) - L) / s
        l_, h_ = (mp.mpf(l) - L) / s, (mp.mpf(h) - L) / s
        x0, w1, v, dl, g = o_ - l_, R - l_, h_, y_ - l_, y_ + l_
        es = []
        j = 0
        while True:
            new = []
            if j >= 1:
                new += [(2 * j * v + dl, -2 * j), (2 * j * v - dl, -2 * j), (2 * (j + 1) * v - g, 2 * j)]
            new.append((g + 2 * j * v, 2 * (j + 1)))
            es += new
            if 2 * j * v - max(abs(dl), g) > X:
                break
            j += 1
        tot = mp.mpf(0)
        k = 1
        while 2 * k * w1 - x0 <= X + 1:
            ap, am = 2 * k * w1 + x0, 2 * k * w1 - x0
            for e, w in es:
                if am + e > X + 1:
                    continue
                tot += 2 * k * w * (_phi2(ap + e) - _phi2(am + e))
            k += 1
        return -tot


def ref_p_long(o, y, H, L, l, h, sigma=1.0):
    """Uncertain case only (L < l < o, max(y, l) < h < H)."""
    dps, _ = _setup(o, y, H, L, sigma)
    with mp.workdps(dps):
        return 1 - ref_N(o, y, H, L, l, h, sigma) / ref_D(o, y, H, L, sigma)


def ref_q(o, y, H, L, sigma=1.0):
    dps, _ = _setup(o, y, H, L, sigma)
    with mp.workdps(dps):
        return ref_N(o, y, H, L, L, H, sigma) / ref_D(o, y, H, L, sigma)


# ---------------------------------------------------------------------------
# second, independent route: numerical integration over the fill time
# ---------------------------------------------------------------------------


def _P(s, x0, w):
    """density of first passage o -> l at time s with pre-fill max exactly H
    (x0 = o - l, w = H - l); images for short times, eigenfunctions otherwise."""
    if s < w * w:
        tot = mp.mpf(0)
        for k in list(range(1, 14)) + list(range(-13, 0)):
            d = x0 + 2 * k * w
            tot += 2 * k * (1 - d * d / s) * mp.exp(-d * d / (2 * s)) / (s * mp.sqrt(2 * mp.pi * s))
        return tot
    tot = mp.mpf(0)
    for n in range(1, 14):
        th = n * mp.pi * x0 / w
        F = mp.pi * n / w**2 * mp.sin(th)
        Fp = mp.pi * n * (-2 * mp.sin(th) / w**3 - n * mp.pi * x0 / w**4 * mp.cos(th))
        lam = n * n * mp.pi**2 / (2 * w * w)
        lamp = -n * n * mp.pi**2 / w**3
        tot += (Fp - s * lamp * F) * mp.exp(-lam * s)
    return tot


def _Q(u, y, l, v):
    """density of a path from l over time u staying below h = v, with minimum
    exactly 0 and ending at y (coordinates with L = 0)."""
    if u < v * v:
        tot = mp.mpf(0)
        for j in range(-14, 15):
            for e, c in ((y - l + 2 * j * v, 2 * j), (y + l + 2 * j * v, -2 * (j + 1))):
                tot += c * (-(e / u)) * mp.exp(-e * e / (2 * u)) / mp.sqrt(2 * mp.pi * u)
        return tot
    tot = mp.mpf(0)
    h = v
    for m in range(1, 14):
        a = m * mp.pi * l / v
        b = m * mp.pi * y / v
        G = 2 / v * mp.sin(a) * mp.sin(b)
        dG = 2 / v**2 * mp.sin(a) * mp.sin(b) + 2 / v * (
            mp.cos(a) * mp.sin(b) * (-m * mp.pi * (h - l) / v**2)
            + mp.sin(a) * mp.cos(b) * (-m * mp.pi * (h - y) / v**2)
        )
        mu = m * m * mp.pi**2 / (2 * v * v)
        dmu = m * m * mp.pi**2 / v**3
        tot += -(dG - u * dmu * G) * mp.exp(-mu * u)
    return tot


def ref_N_quad(o, y, H, L, l, h, sigma=1.0, dps=45):
    """N = int_0^1 P(s) Q(1-s) ds by mpmath tanh-sinh quadrature."""
    with mp.workdps(dps):
        s_ = mp.mpf(sigma)
        o_, y_, R = (mp.mpf(o) - L) / s_, (mp.mpf(y) - L) / s_, (mp.mpf(H) - L) / s_
        l_, h_ = (mp.mpf(l) - L) / s_, (mp.mpf(h) - L) / s_
        x0, w = o_ - l_, R - l_
        q4 = [mp.mpf(10) ** (-mp.mpf(e) / 4) for e in range(80, 2, -1)]  # quarter decades
        pts = [mp.mpf(0)] + q4 + [mp.mpf(1) / 2] + [1 - t for t in q4[::-1]] + [mp.mpf(1)]

        def f(s):
            return _P(s, x0, w) * _Q(1 - s, y_, l_, h_) if 0 < s < 1 else mp.mpf(0)

        val, err = mp.quad(f, pts, error=True)
        if not err < mp.mpf(10) ** (-25) * abs(val) + mp.mpf(10) ** (-dps + 5):
            raise RuntimeError("reference quadrature did not converge: %s +- %s" % (val, err))
        return val


def ref_p_long_quad(o, y, H, L, l, h, sigma=1.0):
    dps, _ = _setup(o, y, H, L, sigma)
    with mp.workdps(dps):
        D = ref_D(o, y, H, L, sigma)
    with mp.workdps(max(45, dps)):
        return 1 - ref_N_quad(o, y, H, L, l, h, sigma, dps=max(45, dps)) / D
