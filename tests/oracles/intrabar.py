"""Simulated daily bars with exact path-wise limit-order outcomes.

Each bar is a driftless Brownian motion with volatility ``sigma`` started at
the open ``o`` (optionally a Gaussian overnight gap from the previous close 0),
sampled on ``nsteps`` grid points.  Between grid points the path is a Brownian
bridge: the maximum and minimum of every segment are drawn exactly from their
conditional laws, so H and L are the extremes of the *continuous* path and
limit touches are detected without discretisation bias.  (The max and min of
one segment are drawn independently, and the order of two events inside one
segment is ignored; both only matter for a segment spanning two levels at
least 0.2 sigma apart within dt = 1/nsteps, probability < exp(-2*0.04*nsteps),
i.e. < 3e-14 for nsteps = 390.)

``discrete=True`` instead treats the grid itself as the price path (a
390-step random walk: high/low are the grid extremes and a limit is touched
only at grid points, filled at the limit price), which is what a backtest on
minute data with optimistic fills would do; used to show the model error
caused by discreteness.
"""

import numpy as np


def uninformative_limits(o, y, H, L, rng, sigma=1.0):
    """Limits that carry no information about the bar's path (set before it)."""
    n = o.size
    a = rng.uniform(-0.3, 1.5, n) * sigma
    l = o - a
    h = l + rng.uniform(0.2, 2.5, n) * sigma
    a2 = rng.uniform(-0.3, 1.5, n) * sigma
    hs = o + a2
    ls = hs - rng.uniform(0.2, 2.5, n) * sigma
    return l, h, ls, hs


def informative_limits(o, y, H, L, rng, sigma=1.0):
    """Limits that peek at the bar's OHLC (look-ahead): buy near the low,
    sell towards the high, etc.  The path-wise mean P&L is then far from 0,
    but the booked P&L must still match it because the limits are functions of
    (o, y, H, L) only."""
    n = o.size
    l = L + rng.uniform(0.1, 1.0, n) * (o - L)
    h = np.maximum(y + rng.uniform(0.0, 1.0, n) * (H - y), l + 0.2 * sigma)
    hs = o + rng.uniform(0.0, 0.9, n) * (H - o)
    ls = np.minimum(y - rng.uniform(0.0, 1.0, n) * (y - L), hs - 0.2 * sigma)
    return l, h, ls, hs


def _trades(X, Mseg, mseg, o, y, l, h, ls, hs):
    n, ns = Mseg.shape
    idx = np.arange(ns)[None, :]
    # long: buy limit l, take profit h
    at_open = l >= o
    hit = mseg <= l[:, None]
    filled = at_open | hit.any(axis=1)
    first = np.where(at_open, -1, np.argmax(hit, axis=1))
    exit_ = np.any((Mseg >= h[:, None]) & (idx > first[:, None]), axis=1)
    entry = np.where(at_open, o, l)
    long_pnl = np.where(filled, np.where(exit_, h, y) - entry, 0.0)
    # short: sell limit hs, cover ls
    at_open = hs <= o
    hit = Mseg >= hs[:, None]
    filled = at_open | hit.any(axis=1)
    first = np.where(at_open, -1, np.argmax(hit, axis=1))
    exit_ = np.any((mseg <= ls[:, None]) & (idx > first[:, None]), axis=1)
    entry = np.where(at_open, o, hs)
    short_pnl = np.where(filled, entry - np.where(exit_, ls, y), 0.0)
    return long_pnl, short_pnl


def simulate(
    n,
    rng,
    limits=uninformative_limits,
    sigma=1.0,
    nsteps=390,
    gap_sd=0.0,
    chunk=4000,
    discrete=False,
    sigma_per_bar=None,
):
    """Simulate ``n`` bars; return dict of arrays o, y, H, L, l, h, ls, hs,
    sigma (per bar), true_long, true_short (path-wise P&L of the two round
    trips; 0 when the entry is not filled)."""
    out = {k: [] for k in ("o", "y", "H", "L", "l", "h", "ls", "hs", "sigma", "true_long", "true_short")}
    dt = 1.0 / nsteps
    for s0 in range(0, n, chunk):
        m = min(chunk, n - s0)
        sig = np.full(m, float(sigma)) if sigma_per_bar is None else np.asarray(sigma_per_bar[s0 : s0 + m], dtype=float)
        sd = sig[:, None] * np.sqrt(dt)
        o = rng.standard_normal(m) * gap_sd * sig
        X = np.concatenate([o[:, None], o[:, None] + np.cumsum(rng.standard_normal((m, nsteps)) * sd, axis=1)], axis=1)
        a, b = X[:, :-1], X[:, 1:]
        if discrete:
            Mseg, mseg = np.maximum(a, b), np.minimum(a, b)
        else:
            d2 = (b - a) ** 2
            Mseg = 0.5 * (a + b + np.sqrt(d2 - 2 * sd * sd * np.log(rng.random(a.shape))))
            mseg = 0.5 * (a + b - np.sqrt(d2 - 2 * sd * sd * np.log(rng.random(a.shape))))
        y = X[:, -1]
        H, L = Mseg.max(axis=1), mseg.min(axis=1)
        l, h, ls, hs = limits(o, y, H, L, rng, sig)
        tl, ts = _trades(X, Mseg, mseg, o, y, l, h, ls, hs)
        for k, v in zip(out, (o, y, H, L, l, h, ls, hs, sig, tl, ts)):
            out[k].append(v)
    return {k: np.concatenate(v) for k, v in out.items()}
