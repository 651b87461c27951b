"""Which sigma should a daily-bar backtest use? (the numbers of docs/FILLS.md, "Volatility")

A. Sensitivity of p_long to a mis-scaled sigma (x0.7 ... x1.4) on typical
   bars (range 2-3 sigma) and on all model bars.
B. Sampling noise of trailing range-based estimators (Parkinson,
   Garman-Klass, Rogers-Satchell) of the open-to-close volatility.
C. Constant true sigma: mean booked-minus-true P&L of the long and short round
   trips for several sigma choices and for sigma-free rules.
D. Stochastic volatility (log sigma AR(1), sd 0.3): oracle sigma vs trailing
   estimate vs trailing prior + the bar's own likelihood (p_long_sigma_mixture).
E. Discreteness: bars that are 390-step random walks (limits touched only at
   grid points) booked with the continuous model.

Run:  .venv/bin/python tools/fill_sigma_study.py [n_bars]     (default 200000, ~5 min; the numbers of docs/FILLS.md)
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the simulated bars

from oracles import intrabar as simbars  # noqa: E402
from totowalk.backtest.profiles.clean import bridge as B  # noqa: E402

LN2 = np.log(2.0)


def mean_se(x):
    x = np.asarray(x, float)
    return x.mean(), x.std(ddof=1) / np.sqrt(x.size)


def fmt(m, se):
    return "%+.5f +- %.5f (%+.1f se)" % (m, se, m / se if se > 0 else 0)


# --------------------------------------------------------------------------
# sigma-free and naive rules
# --------------------------------------------------------------------------


def own_bar_sigma_grid(d, n=48):
    R = d["H"] - d["L"]
    z = np.linspace(np.log(0.12), np.log(3.0), n)
    ld = np.array([B.bar_log_density(d["o"], d["y"], d["H"], d["L"], R * np.exp(zi)) for zi in z])
    return R, z, ld


def p_own_mle(d, l, h, short=False):
    """plug in the bar's own maximum-likelihood sigma (scale-free rule)."""
    R, z, ld = own_bar_sigma_grid(d)
    i = np.clip(np.argmax(ld, axis=0), 1, len(z) - 2)
    j = np.arange(R.size)
    a, b, c = ld[i - 1, j], ld[i, j], ld[i + 1, j]
    den = a - 2 * b + c
    off = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1), 0.0)
    zs = z[i] + np.clip(off, -1, 1) * (z[1] - z[0])
    s = R * np.exp(zs)
    return s


def p_scale_free_mixture(d, l, h, short=False):
    """sigma integrated out with the scale-invariant prior 1/sigma and the bar's
    own likelihood: depends only on the shape of the bar (scale-free rule)."""
    R, z, ld = own_bar_sigma_grid(d)
    w = np.exp(ld - ld.max(axis=0, keepdims=True))
    num = np.zeros(R.size)
    for k, zk in enumerate(z):
        s = R * np.exp(zk)
        if short:
            p = B.p_short(d["o"], d["y"], d["H"], d["L"], l, h, s)
        else:
            p = B.p_long(d["o"], d["y"], d["H"], d["L"], l, h, s)
        num += w[k] * np.nan_to_num(p)
    return num / w.sum(axis=0)


def booked_from_p(d, p, short=False):
    o, y, H, L = d["o"], d["y"], d["H"], d["L"]
    if short:
        l, h = d["ls"], d["hs"]
        filled = (h < H) | (h <= o)
        entry = np.where(h <= o, o, h)
        return np.where(filled, (entry - y) + np.nan_to_num(p) * (y - l), 0.0)
    l, h = d["l"], d["h"]
    filled = (l > L) | (l >= o)
    entry = np.where(l >= o, o, l)
    return np.where(filled, (y - entry) + np.nan_to_num(p) * (h - y), 0.0)


def rule_p(d, rule, short=False):
    o, y, H, L = d["o"], d["y"], d["H"], d["L"]
    if short:
        l, h = d["ls"], d["hs"]
        exact = B.p_short(o, y, H, L, l, h, 1.0)
        certain = (exact == 0) | (exact == 1)
        if rule == "pessimistic":  # never assume the exit
            return np.where(certain, exact, 0.0)
        if rule == "optimistic":  # exit whenever the cover level traded
            return np.where(certain, exact, 1.0)
        if rule == "ohlc_order":  # close<open: high first (o->H->L->y)
            return np.where(certain, exact, (y < o).astype(float))
    else:
        l, h = d["l"], d["h"]
        exact = B.p_long(o, y, H, L, l, h, 1.0)
        certain = (exact == 0) | (exact == 1)
        if rule == "pessimistic":
            return np.where(certain, exact, 0.0)
        if rule == "optimistic":
            return np.where(certain, exact, 1.0)
        if rule == "ohlc_order":  # close>open: low first (o->L->H->y)
            return np.where(certain, exact, (y > o).astype(float))
    raise ValueError(rule)


# --------------------------------------------------------------------------
# trailing estimators
# --------------------------------------------------------------------------


def bar_variances(d):
    o, y, H, L = d["o"], d["y"], d["H"], d["L"]
    park = (H - L) ** 2 / (4 * LN2)
    gk = 0.5 * (H - L) ** 2 - (2 * LN2 - 1) * (y - o) ** 2
    rs = (H - o) * (H - y) + (L - o) * (L - y)
    return {"parkinson": park, "garman_klass": gk, "rogers_satchell": rs}


def trailing(v, n):
    """mean of the previous n values (excluding the current one); NaN at start."""
    c = np.concatenate([[0.0], np.cumsum(v)])
    out = np.full(v.size, np.nan)
    out[n:] = (c[n:-1] - c[: -n - 1]) / n
    return out


def ewma_trailing(v, halflife):
    a = 1 - 0.5 ** (1 / halflife)
    out = np.full(v.size, np.nan)
    m = v[:20].mean()
    for t in range(20, v.size):  # simple loop over time (not over elements)
        out[t] = m
        m = (1 - a) * m + a * v[t]
    return out


# --------------------------------------------------------------------------


def part_a(rng, n):
    d = simbars.simulate(n, rng, simbars.uninformative_limits, sigma=1.0, gap_sd=0.3)
    o, y, H, L, l, h = (d[k] for k in ("o", "y", "H", "L", "l", "h"))
    unc = (l > L) & (l < o) & (h > y) & (h < H) & (h > l)
    R = H - L
    print(
        "A. sensitivity of p_long to sigma x k  (uncertain long trades: %d of %d bars;"
        " median range %.2f sigma)" % (unc.sum(), n, np.median(R))
    )
    p0 = B.p_long(o[unc], y[unc], H[unc], L[unc], l[unc], h[unc], 1.0)
    typ = (R[unc] >= 2) & (R[unc] <= 3)
    for k in [0.7, 0.85, 1.2, 1.4]:
        pk = B.p_long(o[unc], y[unc], H[unc], L[unc], l[unc], h[unc], k)
        dp = pk - p0
        for name, m in (("all", np.ones_like(typ)), ("R in [2,3]", typ)):
            bias = dp[m] * (h[unc] - y[unc])[m]
            print(
                "  k=%.2f %-10s mean|dp| %.3f  p90|dp| %.3f  max|dp| %.3f  mean dp %+.3f"
                "  mean dp*(h-y) %+.4f sigma"
                % (
                    k,
                    name,
                    np.abs(dp[m]).mean(),
                    np.percentile(np.abs(dp[m]), 90),
                    np.abs(dp[m]).max(),
                    dp[m].mean(),
                    bias.mean(),
                )
            )
    # a few typical bars
    print("  examples (o, y, H, L, l, h | p at sigma x 0.7, 0.85, 1, 1.2, 1.4):")
    for oo, yy, HH, LL, ll, hh in [
        (0.0, 0.3, 1.4, -1.0, -0.5, 0.9),
        (0.2, -0.4, 1.0, -1.5, -0.6, 0.2),
        (0.0, 0.0, 1.2, -1.2, -0.6, 0.6),
        (0.5, 1.8, 2.2, -0.3, 0.0, 2.0),
    ]:
        ps = [B.p_long(oo, yy, HH, LL, ll, hh, k) for k in (0.7, 0.85, 1.0, 1.2, 1.4)]
        print("   ", (oo, yy, HH, LL, ll, hh), " ".join("%.3f" % v for v in ps))


def part_b(rng, n):
    d = simbars.simulate(n, rng, simbars.uninformative_limits, sigma=1.0, gap_sd=0.3)
    v = bar_variances(d)
    print("B. trailing estimators of sigma (true 1): relative error of sqrt(mean of N bars)")
    for name, x in v.items():
        line = "  %-16s single-bar sd(v)/E(v) %.2f" % (name, x.std() / x.mean())
        for N in (10, 20, 60):
            s = np.sqrt(trailing(x, N))
            s = s[np.isfinite(s)]
            line += "  N=%d: mean %.3f sd %.3f" % (N, s.mean(), s.std())
        print(line)
    # discretely sampled ranges (e.g. from 390 one-minute closes) are biased low
    dd = simbars.simulate(min(n, 50_000), rng, simbars.uninformative_limits, sigma=1.0, gap_sd=0.3, discrete=True)
    vd = bar_variances(dd)
    print(
        "  discrete 390-step range: mean Parkinson sigma^2 %.3f, GK %.3f, RS %.3f (true 1)"
        % (vd["parkinson"].mean(), vd["garman_klass"].mean(), vd["rogers_satchell"].mean())
    )


def report_biases(d, label, sigmas, extra_rules=True, mixture=None):
    print("  %s  (n = %d bars)" % (label, d["o"].size))
    for short in (False, True):
        true = d["true_short" if short else "true_long"]
        m, se = mean_se(true)
        print("    %s  path-wise mean P&L %s" % ("short" if short else "long ", fmt(m, se)))
        for name, s in sigmas.items():
            if short:
                bk = B.expected_pnl_short(d["o"], d["y"], d["H"], d["L"], d["ls"], d["hs"], s)
            else:
                bk = B.expected_pnl_long(d["o"], d["y"], d["H"], d["L"], d["l"], d["h"], s)
            print("      sigma=%-22s booked-true %s" % (name, fmt(*mean_se(bk - true))))
        if mixture is not None:
            s0, lsd = mixture
            l, h = (d["ls"], d["hs"]) if short else (d["l"], d["h"])
            fn = B.p_short_sigma_mixture if short else B.p_long_sigma_mixture
            p = fn(d["o"], d["y"], d["H"], d["L"], l, h, s0, lsd)
            bk = booked_from_p(d, p, short)
            print("      %-28s booked-true %s" % ("trailing prior x own bar", fmt(*mean_se(bk - true))))
        if extra_rules:
            l, h = (d["ls"], d["hs"]) if short else (d["l"], d["h"])
            s_mle = p_own_mle(d, l, h, short)
            if short:
                bk = B.expected_pnl_short(d["o"], d["y"], d["H"], d["L"], l, h, s_mle)
            else:
                bk = B.expected_pnl_long(d["o"], d["y"], d["H"], d["L"], l, h, s_mle)
            print("      %-28s booked-true %s" % ("own-bar MLE (scale-free)", fmt(*mean_se(bk - true))))
            bk = booked_from_p(d, p_scale_free_mixture(d, l, h, short), short)
            print("      %-28s booked-true %s" % ("own-bar 1/sigma mix (sc.-fr.)", fmt(*mean_se(bk - true))))
            for rule in ("pessimistic", "optimistic", "ohlc_order"):
                bk = booked_from_p(d, rule_p(d, rule, short), short)
                print("      %-28s booked-true %s" % ("rule: " + rule, fmt(*mean_se(bk - true))))


def part_c(rng, n):
    print("C. constant sigma = 1; booked minus path-wise P&L (mean +- se, in sigma)")
    for lim, label in (
        (simbars.uninformative_limits, "uninformative limits"),
        (simbars.informative_limits, "informative (look-ahead) limits"),
    ):
        d = simbars.simulate(n, rng, lim, sigma=1.0, gap_sd=0.3)
        v = bar_variances(d)["garman_klass"]
        s_tr = np.sqrt(np.maximum(trailing(v, 20), 1e-12))
        ok = np.isfinite(s_tr)
        d = {k: a[ok] for k, a in d.items()}
        report_biases(d, label, {"1 (true)": 1.0, "0.7": 0.7, "1.4": 1.4, "trailing GK N=20": s_tr[ok]})


def part_d(rng, n, phi=0.95, vol_sd=0.3, halflife=20):
    x = np.zeros(n)
    e = rng.standard_normal(n) * vol_sd * np.sqrt(1 - phi**2)
    x[0] = rng.standard_normal() * vol_sd
    for t in range(1, n):  # AR(1) over time
        x[t] = phi * x[t - 1] + e[t]
    sig = np.exp(x)
    print(
        "D. stochastic volatility: log sigma AR(1) phi=%.2f sd=%.2f; EWMA half-life %d of GK" % (phi, vol_sd, halflife)
    )
    for lim, label in (
        (simbars.uninformative_limits, "uninformative limits"),
        (simbars.informative_limits, "informative (look-ahead) limits"),
    ):
        d = simbars.simulate(n, rng, lim, sigma=1.0, gap_sd=0.3, sigma_per_bar=sig)
        v = bar_variances(d)["garman_klass"]
        s_tr = np.sqrt(np.maximum(ewma_trailing(v, halflife), 1e-12))
        ok = np.isfinite(s_tr)
        d = {k: a[ok] for k, a in d.items()}
        s_tr = s_tr[ok]
        lsd = np.std(np.log(d["sigma"] / s_tr))
        print("   sd(log true/trailing) = %.3f (used as the prior log-sd)" % lsd)
        report_biases(
            d, label, {"true (oracle)": d["sigma"], "trailing EWMA GK": s_tr}, extra_rules=False, mixture=(s_tr, lsd)
        )
        # per-bar accuracy of p (long, uncertain trades) against the oracle
        o, y, H, L, l, h = (d[k] for k in ("o", "y", "H", "L", "l", "h"))
        unc = (l > L) & (l < o) & (h > y) & (h < H) & (h > l)
        pt = B.p_long(o[unc], y[unc], H[unc], L[unc], l[unc], h[unc], d["sigma"][unc])
        ptr = B.p_long(o[unc], y[unc], H[unc], L[unc], l[unc], h[unc], s_tr[unc])
        pm = B.p_long_sigma_mixture(o[unc], y[unc], H[unc], L[unc], l[unc], h[unc], s_tr[unc], lsd)
        print(
            "    rms(p - p_oracle): trailing %.4f, trailing prior x own bar %.4f"
            % (np.sqrt(np.mean((ptr - pt) ** 2)), np.sqrt(np.mean((pm - pt) ** 2)))
        )


def part_e(rng, n):
    print("E. model error from discreteness: 390-step random-walk bars, fills only at grid points")
    for lim, label in (
        (simbars.uninformative_limits, "uninformative limits"),
        (simbars.informative_limits, "informative (look-ahead) limits"),
    ):
        d = simbars.simulate(n, rng, lim, sigma=1.0, gap_sd=0.3, discrete=True)
        report_biases(d, label + ", discrete path", {"1 (true)": 1.0}, extra_rules=False)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    parts = sys.argv[2] if len(sys.argv) > 2 else "abcde"
    rng = np.random.default_rng(2024)
    t0 = time.time()
    if "a" in parts:
        part_a(rng, min(n, 100_000))
    if "b" in parts:
        part_b(rng, n)
    if "c" in parts:
        part_c(rng, n)
    if "d" in parts:
        part_d(rng, n)
    if "e" in parts:
        part_e(rng, n)
    print("(%.0f s)" % (time.time() - t0))


if __name__ == "__main__":
    main()
