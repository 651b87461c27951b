"""Timing of bridge.p_long / q_max_first per million elements on this CPU.

Run:  .venv/bin/python bench/bench_fills.py
"""

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the simulated bars

from oracles import intrabar as simbars  # noqa: E402
from totowalk.backtest.profiles.clean import bridge as B  # noqa: E402


def timeit(fn, reps=3):
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    rng = np.random.default_rng(0)
    d = simbars.simulate(200_000, rng, simbars.uninformative_limits, sigma=1.0, gap_sd=0.3)
    o, y, H, L, l, h = (d[k] for k in ("o", "y", "H", "L", "l", "h"))
    unc = (l > L) & (l < o) & (h > y) & (h < H) & (h > l)
    # 1e6 uncertain elements (typical model bars; tiled)
    idx = np.nonzero(unc)[0]
    take = np.resize(idx, 1_000_000)
    args_u = [a[take] for a in (o, y, H, L, l, h)]
    take_all = np.resize(np.arange(o.size), 1_000_000)
    args_a = [a[take_all] for a in (o, y, H, L, l, h)]
    print(
        "cpu: %s, %s cores visible; numpy %s"
        % (platform.processor() or platform.machine(), os.cpu_count(), np.__version__)
    )
    t = timeit(lambda: B.p_long(*args_u, 1.0))
    print("p_long, 1e6 uncertain elements (all need the series): %.2f s" % t)
    t = timeit(lambda: B.p_long(*args_a, 1.0))
    print("p_long, 1e6 random limit orders (%.0f%% uncertain, rest certain/unfilled): %.2f s" % (100 * unc.mean(), t))
    t = timeit(lambda: B.q_max_first(*args_a[:4], 1.0))
    print("q_max_first, 1e6 bars: %.2f s" % t)
    # fallback route (small ranges / narrow corridors)
    n = 20_000
    t = timeit(lambda: B.p_long(*[a[:n] for a in args_u], 1.0, method="quad"), reps=1)
    print("p_long via the quadrature fallback: %.1f s per million (%.0f us/element)" % (t / n * 1e6, t / n * 1e6))
    Rs = H - L
    print("share of uncertain model bars routed to the fallback: %.4f%%" % (100 * np.mean(Rs[unc] < B._R_SMALL)))


if __name__ == "__main__":
    main()
