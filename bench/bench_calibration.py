"""The calibration block of a large run: ``calibration_summary`` of N distinct scored forecasts.

A run's end phase summarises every distinct forecast's exact PIT and CRPS per key and pooled:
interval coverage with exact binomial p-values and a Kolmogorov-Smirnov test of the PITs
(backtest/stats/calibration.py). At universe scale that is millions of forecasts. This times it on a
synthetic scored frame (4 keys, PITs from a slightly miscalibrated Beta, as a run keeps them) and
prints the median seconds and the block's digest, so two trees can be compared for time and for
identical output:

    python bench/bench_calibration.py --forecasts 400000 --repeats 5
    python bench/run_tree.py /tmp/old bench/bench_calibration.py --forecasts 400000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import numpy as np
import pandas as pd

KEYS = ("Close", "Low", "High", "Open")


def scored_frame(per_key: int, seed: int = 0) -> pd.DataFrame:
    """Distinct scored forecasts as a run keeps them: key, pit, crps, context_end."""
    rng = np.random.default_rng(seed)
    count = per_key * len(KEYS)
    return pd.DataFrame(
        {
            "key": pd.array(np.repeat(np.array(KEYS), per_key), dtype="string"),
            "pit": rng.beta(1.05, 1.0, count),
            "crps": rng.gamma(2.0, 0.005, count),
            "context_end": np.tile(np.arange(per_key) % 800, len(KEYS)),
        }
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecasts", type=int, default=400_000, help="distinct forecasts per key (4 keys)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    from totowalk.backtest.stats.calibration import calibration_summary

    scored = scored_frame(args.forecasts)
    forecaster = {"kind": "engine", "estimator": "exact"}
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        block = calibration_summary(scored, forecaster, distinct=True)
        times.append(time.perf_counter() - started)
    digest = hashlib.sha256(json.dumps(block, sort_keys=True).encode()).hexdigest()[:16]
    print(
        f"calibration_summary of {len(scored):,} forecasts: median {np.median(times):.3f} s "
        f"(min {min(times):.3f}, {args.repeats} repeats); block digest {digest}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
