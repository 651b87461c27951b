"""Strategy evaluation at universe scale: ``tw.backtest`` over W2's series with precomputed forecasts.

The model is out of the picture (a last-value forecaster answers every context), so the time is
the backtest layer's own: planning, the legacy strategy grids over all (series, simulation) pairs
(MaxDiff 500 offsets, MaxDiffAlwaysOn 81 x 81), metrics, result and forecast tables. Compare
commits by running this script from each checkout on the same machine, back to back.

    python bench/bench_strategies.py [--profile legacy|clean] [--series 24] [--simulations 50] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time

import numpy as np
import torch

import totowalk as tw
from totowalk.benchmarks.workloads import w2_frames


def last_value_forecaster(contexts):
    return np.array([c[-1] for c in contexts], dtype=np.float32)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=24, help="W2 series (<= 24)")
    parser.add_argument("--simulations", type=int, default=50, help="simulations per series")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up; the median is reported")
    parser.add_argument("--profile", choices=["legacy", "clean"], default="legacy")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = w2_frames(num_series=args.series)
    tw.backtest(frames, num_simulations=2, forecaster=last_value_forecaster, profile=args.profile)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        tw.backtest(frames, num_simulations=args.simulations, forecaster=last_value_forecaster, profile=args.profile)
        times.append(time.perf_counter() - start)
    pairs = args.series * args.simulations
    median = statistics.median(times)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"tw.backtest {args.profile}, {args.series} series x {args.simulations} simulations ({pairs} pairs), "
          f"point forecasts: {median:.3f} s median of {args.repeats} ({median / pairs * 1e3:.2f} ms per simulation); "
          f"torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}, commit {commit}")
    if args.json:
        print(json.dumps({"bench": "strategies", "profile": args.profile, "series": args.series, "simulations": args.simulations,
                          "median_s": median, "times_s": times, "threads": torch.get_num_threads(),
                          "commit": commit}))


if __name__ == "__main__":
    main()
