"""Scale-out on Ray against the local executor, side by side in one run.

A W2 slice (``--series`` of W2's series x ``--sims`` simulations, legacy profile, 128 samples;
random weights of ``--preset``, W2's base model by default) run by ``tw.backtest`` locally (torch
on all cores) and with ``RayExecutor`` at 1 and at 2 workers (the cores split between them),
alternating, after one warm-up of each. Ray's start-up (``ray.init``) is timed once, apart; the
per-run times include creating the worker actors and sending them the model, which every run
does. Results are checked equal to the local run's.

    python bench/bench_ray.py --series 2 --sims 10 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pandas as pd
import torch

import totowalk as tw
from totowalk.benchmarks.workloads import w2_frames
from totowalk.provenance import git_commit, machine_description, today


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2)
    parser.add_argument("--sims", type=int, default=10)
    parser.add_argument("--preset", default="toto-open-base-1.0")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=64, help="contexts per chunk (the unit handed to a worker)")
    args = parser.parse_args(argv)
    import ray

    cores = os.cpu_count() or 1
    frames = w2_frames(num_series=args.series)
    model = tw.build_model(tw.TotoConfig.preset(args.preset), seed=0)
    engine = tw.ForecastEngine(model, num_samples=128, seed=0)
    start = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - start
    variants = {
        "local": "local",
        "ray x1": tw.RayExecutor(num_workers=1, cpus_per_worker=cores),
        "ray x2": tw.RayExecutor(num_workers=2, cpus_per_worker=max(1, cores // 2)),
    }
    times, results = {k: [] for k in variants}, {}
    for repeat in range(args.repeats + 1):
        for name, executor in variants.items():
            t = time.perf_counter()
            results[name] = tw.backtest(
                frames,
                num_simulations=args.sims,
                engine=engine,
                profile="legacy",
                max_batch=args.max_batch,
                executor=executor,
            )
            if repeat:
                times[name].append(time.perf_counter() - t)
    for name in variants:
        pd.testing.assert_frame_equal(results[name].simulations, results["local"].simulations, check_exact=True)
    local = statistics.median(times["local"])
    print(
        f"{today()} {git_commit()} {machine_description(torch.device('cpu'))}; W2 slice {args.series} series x "
        f"{args.sims} simulations, random:{args.preset}, chunks of {args.max_batch}; ray.init {startup:.2f} s"
    )
    for name in variants:
        t = statistics.median(times[name])
        print(
            f"  {name}: {t:.2f} s median of {args.repeats} ({[round(x, 2) for x in times[name]]}), "
            f"{t / local:.2f}x the local time; with ray.init: {t + (startup if name != 'local' else 0):.2f} s"
        )
    print("  results equal to the local run's: yes")
    ray.shutdown()


if __name__ == "__main__":
    main()
