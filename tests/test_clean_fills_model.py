"""The fill model's probabilities (profiles/clean/bridge.py, docs/FILLS.md) against brute force and
high precision, and the martingale property of the booked P&L.

Fixtures (committed with the scripts that make them):
  tests/fixtures/fills/mc_fixture.npz   -- brute-force conditioned-path Monte Carlo (make_mc_fixture.py)
  tests/fixtures/fills/ref_fixture.npz  -- high-precision mpmath values (make_reference.py)
"""

import os

import numpy as np
import pytest
from numpy.polynomial.legendre import leggauss

from oracles import bridge_reference as ref
from oracles import intrabar as simbars
from totowalk.backtest.profiles.clean import bridge as B

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "fills")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def random_uncertain(rng, n, Rlo=0.6, Rhi=4.0, sigma=1.0):
    """Random bars / limits in the uncertain region L < l < o, max(y,l) < h < H."""
    L = rng.normal(0, 1, n)
    R = rng.uniform(Rlo, Rhi, n)
    H = L + R
    o = L + rng.uniform(0.02, 0.98, n) * R
    y = L + rng.uniform(0.0, 1.0, n) * R
    l = L + rng.uniform(0.02, 0.98, n) * (o - L)
    lo = np.maximum(y, l)
    h = lo + rng.uniform(0.02, 0.98, n) * (H - lo)
    return [v * sigma for v in (o, y, H, L, l, h)]


def window_average(fn, o, y, H, L, s, eps, n=12):
    """Average of fn(H', L') over the acceptance window of the Monte Carlo,
    weighted by the joint density of (max, min, close) (Gauss-Legendre)."""
    x, w = leggauss(n)
    HH, LL = np.meshgrid(H + 0.5 * eps * x, L + 0.5 * eps * x, indexing="ij")
    wt = np.exp(B.bar_log_density(o, y, HH, LL, s)) * np.outer(w, w)
    return float(np.sum(wt * fn(HH, LL)) / np.sum(wt))


# ---------------------------------------------------------------------------
# (a) brute-force Monte Carlo of conditioned paths
# ---------------------------------------------------------------------------

MC = np.load(os.path.join(HERE, "mc_fixture.npz"))


@pytest.mark.parametrize("i", range(len(MC["cases"])))
def test_against_conditioned_path_monte_carlo(i):
    o, y, H, L, l, h, ls, hs, s, eps = MC["cases"][i]
    n = int(MC["n_acc"][i])
    assert n >= 100_000
    e = eps * s
    checks = [
        ("p_long", MC["n_long"][i], lambda HH, LL: B.p_long(o, y, HH, LL, l, h, s)),
        ("p_short", MC["n_short"][i], lambda HH, LL: B.p_short(o, y, HH, LL, ls, hs, s)),
        ("q_max_first", MC["n_maxfirst"][i], lambda HH, LL: B.q_max_first(o, y, HH, LL, s)),
        # limits h -> H- (resp. l -> L+): the high (low) is printed after the fill
        ("p_long(h->H-)", MC["n_maxafter"][i], lambda HH, LL: B.p_long(o, y, HH, LL, l, HH - 1e-10 * (HH - LL), s)),
        ("p_short(l->L+)", MC["n_minafter"][i], lambda HH, LL: B.p_short(o, y, HH, LL, LL + 1e-10 * (HH - LL), hs, s)),
    ]
    for name, k, fn in checks:
        freq = k / n
        exact = window_average(fn, o, y, H, L, s, e)
        se = np.sqrt(exact * (1 - exact) / n)
        assert abs(freq - exact) < 4 * se, (name, freq, exact, se)
        if eps < 0.1:  # narrow window: the centre value itself must also agree
            centre = float(fn(np.float64(H), np.float64(L)))
            assert abs(freq - centre) < 4 * se + 2e-3, (name, freq, centre, se)


# ---------------------------------------------------------------------------
# accuracy against the high-precision reference
# ---------------------------------------------------------------------------

REF = np.load(os.path.join(HERE, "ref_fixture.npz"))


def test_p_long_against_mpmath_reference():
    P = REF["p_in"]
    p = B.p_long(*P.T)
    err = np.abs(p - REF["p_ref"])
    assert np.all(np.isfinite(p))
    assert err.max() < 1e-8, (err.max(), P[np.argmax(err)])
    # both numerical routes, separately
    pq = B.p_long(*P.T, method="quad")
    assert np.abs(pq - REF["p_ref"]).max() < 1e-8
    big = P[:, 2] - P[:, 3] >= 0.5 * P[:, 6]  # closed form on its own domain
    ps = B.p_long(*P[big].T, method="series")  # NaN where it needs > _MAX_TERMS terms
    fin = np.isfinite(ps)
    assert fin.mean() > 0.8
    assert np.abs(ps[fin] - REF["p_ref"][big][fin]).max() < 1e-6


def test_p_short_and_q_against_mpmath_reference():
    P = REF["p_in"]
    o, y, H, L, l, h, s = P.T
    ps = B.p_short(-o, -y, -L, -H, -h, -l, s)  # mirrored bar -> same number
    assert np.abs(ps - REF["p_ref"]).max() < 1e-8
    Q = REF["q_in"]
    q = B.q_max_first(*Q.T)
    assert np.abs(q - REF["q_ref"]).max() < 1e-8


def test_live_mpmath_spot_checks():
    cases = [
        (0.3, -0.2, 1.1, -0.9, -0.3, 0.5, 0.7),
        (0.0, 0.4, 1.3, -0.6, -0.3, 0.9, 1.0),
        (0.05, 0.1, 0.3, -0.2, -0.1, 0.2, 1.0),
    ]
    for c in cases:
        assert abs(B.p_long(*c) - float(ref.ref_p_long(*c))) < 1e-10
    assert abs(B.q_max_first(0.2, 0.5, 1.0, -0.8, 1.0) - float(ref.ref_q(0.2, 0.5, 1.0, -0.8))) < 1e-10


def test_series_and_quadrature_agree():
    rng = np.random.default_rng(3)
    args = random_uncertain(rng, 400, Rlo=0.6, Rhi=5.0)
    a = B.p_long(*args, 1.0, method="series")
    b = B.p_long(*args, 1.0, method="quad")
    assert np.abs(a - b).max() < 1e-9


# ---------------------------------------------------------------------------
# (b) symmetries and identities
# ---------------------------------------------------------------------------


def test_short_is_mirrored_long():
    rng = np.random.default_rng(1)
    o, y, H, L, l, h = random_uncertain(rng, 2000)
    s = rng.uniform(0.5, 2.0, o.size)
    # short trade on the mirrored bar: sell at -l (entry), cover at -h
    ps = B.p_short(-o, -y, -L, -H, -h, -l, s)
    pl = B.p_long(o, y, H, L, l, h, s)
    np.testing.assert_array_equal(ps, pl)
    # certain cases of the short trade mirror those of the long one
    assert B.p_short(0.0, -0.7, 1.0, -1.0, -0.6, 0.3, 1.0) == 1.0  # y <= l: cover certain
    assert B.p_short(0.0, 0.2, 1.0, -1.0, -1.0, 0.3, 1.0) == 0.0  # l <= L: never covered
    assert B.p_short(0.0, 0.2, 1.0, -1.0, -0.5, -0.2, 1.0) == 1.0  # h < o: sold at the open, L < l
    assert np.isnan(B.p_short(0.0, 0.2, 1.0, -1.0, -0.5, 1.0, 1.0))  # h >= H: not filled


def test_q_symmetries_and_density_identity():
    rng = np.random.default_rng(2)
    o, y, H, L, _, _ = random_uncertain(rng, 3000, Rlo=0.2, Rhi=6.0)
    q = B.q_max_first(o, y, H, L, 1.0)
    # mirror: the max of -W is minus the min of W
    np.testing.assert_allclose(q, 1 - B.q_max_first(-o, -y, -L, -H, 1.0), atol=1e-10)
    # time reversal: swapping open and close swaps the order
    np.testing.assert_allclose(q, 1 - B.q_max_first(y, o, H, L, 1.0), atol=1e-10)
    # D = N_q + N_q(mirror) on the closed-form route, term by term
    Lz = np.zeros_like(o)
    R, oo, yy = H - L, o - L, y - L
    A = 2 * R - np.abs(yy - oo)
    big = R > 0.6
    D, _ = B._images_D(oo[big], yy[big], R[big], (A * A)[big])
    N1, _, ok1 = B._images_N(oo[big], yy[big], R[big], Lz[big], R[big], (A * A)[big])
    N2, _, ok2 = B._images_N((R - oo)[big], (R - yy)[big], R[big], Lz[big], R[big], (A * A)[big])
    m = ok1 & ok2
    np.testing.assert_allclose((N1 + N2)[m], D[m], rtol=1e-10, atol=1e-12 * np.abs(D[m]).max())


def test_scale_and_translation_invariance():
    rng = np.random.default_rng(4)
    o, y, H, L, l, h = random_uncertain(rng, 1000)
    p = B.p_long(o, y, H, L, l, h, 1.0)
    c, t = 3.7, -1.3
    p2 = B.p_long(c * o + t, c * y + t, c * H + t, c * L + t, c * l + t, c * h + t, c)
    np.testing.assert_allclose(p, p2, atol=1e-12)


# ---------------------------------------------------------------------------
# (c) limits and monotonicity
# ---------------------------------------------------------------------------


def test_limits_in_h_and_monotone():
    rng = np.random.default_rng(5)
    o, y, H, L, l, _ = random_uncertain(rng, 300)
    lo = np.maximum(y, l)
    t = np.concatenate([[1e-9, 1e-6], np.linspace(0.001, 0.999, 199), [1 - 1e-6, 1 - 1e-9]])
    hh = lo[:, None] + t[None, :] * (H - lo)[:, None]
    p = B.p_long(o[:, None], y[:, None], H[:, None], L[:, None], l[:, None], hh, 1.0)
    assert np.all(np.diff(p, axis=1) <= 1e-12)  # non-increasing in h
    # h -> max(y, l)+: p -> 1 (right after the fill the path is at l, resp. ends at y)
    assert np.all(p[:, 0] > 1 - 1e-5)
    assert np.all((p >= 0) & (p <= 1))
    # h -> H-: p does NOT go to 0 but to P(the high is printed after the fill)
    # (checked against the Monte Carlo in test_against_conditioned_path_monte_carlo);
    # p is continuous there, and jumps to 0 at h = H by the no-touch convention.
    np.testing.assert_allclose(p[:, -1], p[:, -2], atol=1e-4)
    assert np.all(B.p_long(o, y, H, L, l, H, 1.0) == 0.0)
    assert np.mean(p[:, -1]) > 0.1


def test_limit_in_l_and_continuity():
    rng = np.random.default_rng(6)
    o, y, H, L, _, h = random_uncertain(rng, 200)
    h = np.maximum(h, o + 0.01 * (H - o))
    h = np.minimum(h, H - 0.01 * (H - np.maximum(o, y)))
    keep = (h > y) & (h > o) & (h < H)
    o, y, H, L, h = o[keep], y[keep], H[keep], L[keep], h[keep]
    # l -> o-: the fill happens at once, the path then still prints the high > h
    p = B.p_long(o, y, H, L, o - 1e-9 * (o - L), h, 1.0)
    assert np.all(p > 1 - 1e-6)
    # l -> L+ and h -> H-: 1 - p -> q (high printed before the low)
    p = B.p_long(o, y, H, L, L + 1e-7 * (o - L), H - 1e-7 * (H - y), 1.0)
    q = B.q_max_first(o, y, H, L, 1.0)
    np.testing.assert_allclose(1 - p, q, atol=1e-4)


def test_certain_cases():
    f = B.p_long
    assert f(0.0, 0.5, 1.0, -1.0, 0.2, 0.8, 1.0) == 1.0  # l > o: filled at open, H > h
    assert f(0.0, 0.5, 1.0, -1.0, 0.2, 1.0, 1.0) == 0.0  # l > o, h = H
    assert f(0.0, 0.5, 1.0, -1.0, -0.5, 0.4, 1.0) == 1.0  # y >= h
    assert f(0.0, 0.5, 1.0, -1.0, -0.5, 1.2, 1.0) == 0.0  # h >= H
    assert f(0.0, -0.8, 1.0, -1.0, -0.5, -0.6, 1.0) == 1.0  # h <= l
    assert np.isnan(f(0.0, 0.5, 1.0, -1.0, -1.2, 0.8, 1.0))  # l < L: no fill
    assert np.isnan(f(0.0, 0.5, 1.0, -1.0, -1.0, 0.8, 1.0))  # l = L: no fill (touch only)
    assert np.isnan(f(0.0, 0.5, 1.0, -1.0, -0.5, 0.8, 0.0))  # sigma = 0
    assert np.isnan(f(0.0, 1.5, 1.0, -1.0, -0.5, 0.8, 1.0))  # inconsistent bar
    # expected P&L helpers
    assert B.expected_pnl_long(0.0, 0.5, 1.0, -1.0, -1.2, 0.8, 1.0) == 0.0
    assert B.expected_pnl_long(0.0, 0.5, 1.0, -1.0, 0.2, 0.8, 1.0) == pytest.approx(0.8)
    p = f(0.0, 0.3, 1.0, -1.0, -0.5, 0.8, 1.0)
    assert 0 < p < 1
    # (y - l) + p (h - y)
    assert B.expected_pnl_long(0.0, 0.3, 1.0, -1.0, -0.5, 0.8, 1.0) == pytest.approx(0.8 + 0.5 * p)
    ps = B.p_short(0.0, -0.3, 1.0, -1.0, -0.8, 0.5, 1.0)
    assert 0 < ps < 1
    # (h - y) + p (y - l)
    assert B.expected_pnl_short(0.0, -0.3, 1.0, -1.0, -0.8, 0.5, 1.0) == pytest.approx(0.8 + 0.5 * ps)


def test_boundary_bars_are_finite():
    # open at the high, close at the low, etc.: the densities stay positive there
    cases = [
        (1.0, 0.0, 1.0, -1.0, 0.5, 0.2),
        (-1.0, 1.0, 1.0, -1.0, -0.5, 1.0 - 1e-9),
        (1.0, 1.0, 1.0, -1.0, 0.0, 1.0 - 1e-3),
        (0.0, -1.0, 1.0, -1.0, -0.999, 0.5),
    ]
    for c in cases:
        p = B.p_long(*c, 1.0)
        assert np.isfinite(p) and 0 <= p <= 1
    assert B.q_max_first(1.0, 0.0, 1.0, -1.0, 1.0) == pytest.approx(1.0)
    assert B.q_max_first(-1.0, 0.0, 1.0, -1.0, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert B.q_max_first(0.0, 1.0, 1.0, -1.0, 1.0) == pytest.approx(0.0, abs=1e-12)


def test_extreme_ranges_are_finite():
    for R in [1e-3, 0.02, 0.1, 0.3, 20.0, 60.0]:
        p = B.p_long(0.5 * R, 0.4 * R, R, 0.0, 0.2 * R, 0.9 * R, 1.0)
        assert np.isfinite(p) and 0 <= p <= 1, R
        qq = B.q_max_first(0.5 * R, 0.4 * R, R, 0.0, 1.0)
        assert np.isfinite(qq) and 0 <= qq <= 1, R


def test_broadcasting_and_shapes():
    p = B.p_long(0.0, 0.2, 1.0, -1.0, -0.5, 0.6, 1.0)
    assert isinstance(p, float)
    h = np.linspace(0.3, 0.9, 7).reshape(7, 1)
    s = np.array([0.5, 1.0, 2.0])
    p = B.p_long(0.0, 0.2, 1.0, -1.0, -0.5, h, s)
    assert p.shape == (7, 3)
    for j in range(3):
        np.testing.assert_allclose(p[:, j], [B.p_long(0.0, 0.2, 1.0, -1.0, -0.5, hh, s[j]) for hh in h[:, 0]])
    assert B.p_long(np.zeros((0,)), 0.2, 1.0, -1.0, -0.5, 0.6, 1.0).shape == (0,)


# ---------------------------------------------------------------------------
# (d) martingale property on unconditioned simulated bars
# ---------------------------------------------------------------------------


def _booked(d, sigma):
    bl = B.expected_pnl_long(d["o"], d["y"], d["H"], d["L"], d["l"], d["h"], sigma)
    bs = B.expected_pnl_short(d["o"], d["y"], d["H"], d["L"], d["ls"], d["hs"], sigma)
    return bl, bs


def _mean_se(x):
    return x.mean(), x.std(ddof=1) / np.sqrt(x.size)


@pytest.fixture(scope="module")
def sim_uninformative():
    return simbars.simulate(
        24_000, np.random.default_rng(11), simbars.uninformative_limits, sigma=1.0, nsteps=390, gap_sd=0.3
    )


@pytest.fixture(scope="module")
def sim_informative():
    return simbars.simulate(
        24_000, np.random.default_rng(12), simbars.informative_limits, sigma=1.0, nsteps=390, gap_sd=0.3
    )


def test_martingale_uninformative_limits(sim_uninformative):
    d = sim_uninformative
    bl, bs = _booked(d, 1.0)
    for booked, true in ((bl, d["true_long"]), (bs, d["true_short"])):
        assert np.all(np.isfinite(booked))
        m, se = _mean_se(booked - true)
        assert abs(m) < 3 * se, (m, se)  # booked mean = path-wise mean
        m, se = _mean_se(true)
        assert abs(m) < 3 * se, (m, se)  # martingale: zero
        m, se = _mean_se(booked)
        assert abs(m) < 3 * se, (m, se)  # and so is the booked P&L


def test_martingale_informative_limits(sim_informative):
    d = sim_informative
    bl, bs = _booked(d, 1.0)
    for booked, true in ((bl, d["true_long"]), (bs, d["true_short"])):
        m_true, se_true = _mean_se(true)
        assert m_true > 10 * se_true  # look-ahead limits do earn money
        m, se = _mean_se(booked - true)
        assert abs(m) < 3 * se, (m, se)  # ... and the booking gets it right


def test_wrong_sigma_is_detectably_biased(sim_informative):
    # sanity check of the test's power: a badly wrong sigma must fail it
    d = sim_informative
    bl, _ = _booked(d, 0.5)
    m, se = _mean_se(bl - d["true_long"])
    assert abs(m) > 3 * se
