"""Forecast time of the bundled default model (toto-mini) on the contexts of the README's main job.

The first ``--contexts`` requests of the legacy plan for AAPL and IBM x ``--simulations`` (the main
job's symbols and simulations, halved), ``--samples`` draws, aggregates trimmed_mean_10 and band;
median of ``--repeats`` calls after a warm-up. Compare commits by running it from each checkout
back to back (one venv, each source tree on PYTHONPATH).

    python bench/bench_default_model.py [--contexts 1024] [--simulations 100] [--samples 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import totowalk as tw
from totowalk.benchmarks.workloads import forecast_plan, unique_contexts
from totowalk.provenance import git_commit


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=1024)
    parser.add_argument("--simulations", type=int, default=100)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    frames = {symbol: tw.datasets.load(symbol) for symbol in ("AAPL", "IBM")}
    contexts = unique_contexts(forecast_plan(frames, args.simulations))[: args.contexts]
    engine = tw.ForecastEngine(tw.load_model("toto-mini"), num_samples=args.samples, seed=0)
    aggregate = ("trimmed_mean_10", "band")
    engine.forecast(contexts, aggregate=aggregate)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        engine.forecast(contexts, aggregate=aggregate)
        times.append(time.perf_counter() - start)
    commit = git_commit()  # the measured tree's (run_tree.py: the other checkout's), not the working folder's
    print(
        f"{commit} toto-mini {len(contexts)} contexts x {args.samples} samples: "
        f"median {statistics.median(times):.3f} s of {args.repeats}"
    )


if __name__ == "__main__":
    main()
