"""Scale-out on Ray against the local executor, side by side in one run.

A W2 slice (``--series`` of W2's series x ``--sims`` simulations, legacy profile, 128 samples;
random weights of ``--preset``, W2's base model by default) run by ``tw.backtest`` locally (torch
on all cores), with a cold ``RayExecutor`` at 1 and at 2 workers (``keep_warm=False``: each run
creates its worker actors and sends them the model), and with a warm one (2 workers, its second of
two consecutive runs: workers and model already in place), alternating, after one warm-up of each.
Ray's start-up (``ray.init``) is timed once, apart. Results are checked equal to the local run's.
With ``--weights file`` the random weights are written to a checkpoint and loaded from it, as a
user's model is: cold workers then load that file themselves (its sha256 checked) instead of
receiving the weights, and a cold run with ``ship_weights=True`` beside them shows the difference.

    python bench/bench_ray.py --series 2 --sims 10 --repeats 2
    python bench/bench_ray.py --series 2 --sims 10 --repeats 2 --weights file
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
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
    parser.add_argument(
        "--weights",
        choices=("memory", "file"),
        default="memory",
        help="random weights built in memory, or read from a file",
    )
    args = parser.parse_args(argv)
    import ray

    cores = os.cpu_count() or 1
    frames = w2_frames(num_series=args.series)
    model = tw.build_model(tw.TotoConfig.preset(args.preset), seed=0)
    if args.weights == "file":  # as a user's checkpoint: the workers can load it themselves
        from totowalk.model.checkpoint import save_checkpoint

        folder = save_checkpoint(model, tempfile.mkdtemp(prefix="bench_ray_"))
        model = tw.load_model(folder)
    engine = tw.ForecastEngine(model, num_samples=128, seed=0)
    start = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - start
    half = max(1, cores // 2)
    variants = {
        "local": "local",
        "ray x1 cold": tw.RayExecutor(num_workers=1, cpus_per_worker=cores, keep_warm=False),
        "ray x2 cold": tw.RayExecutor(num_workers=2, cpus_per_worker=half, keep_warm=False),
        "ray x2 warm": tw.RayExecutor(num_workers=2, cpus_per_worker=half),
    }
    if args.weights == "file":
        variants["ray x2 cold, weights shipped"] = tw.RayExecutor(
            num_workers=2, cpus_per_worker=half, keep_warm=False, ship_weights=True
        )
    times, results = {k: [] for k in variants}, {}

    def run(executor):
        return tw.backtest(
            frames,
            num_simulations=args.sims,
            engine=engine,
            profile="legacy",
            max_batch=args.max_batch,
            executor=executor,
        )

    for repeat in range(args.repeats + 1):
        for name, executor in variants.items():
            if name.endswith("warm"):
                run(executor)  # the first call starts the workers; the second finds them warm
            t = time.perf_counter()
            results[name] = run(executor)
            if repeat:
                times[name].append(time.perf_counter() - t)
            if name.endswith("warm"):
                executor.close()  # give its cores back before the next variant
    for name in variants:  # bitwise where a worker has the local run's torch threads
        if name == "ray x1 cold":
            pd.testing.assert_frame_equal(results[name].simulations, results["local"].simulations, check_exact=True)
        else:  # one thread sums large matmuls in another order: the forecasts agree to rounding (the
            # grid-searched strategies downstream may then pick another grid point)
            pd.testing.assert_series_equal(
                results[name].forecasts["prediction"], results["local"].forecasts["prediction"], rtol=1e-5, atol=1e-6
            )
    local = statistics.median(times["local"])
    print(
        f"{today()} {git_commit()} {machine_description(torch.device('cpu'))}; W2 slice {args.series} series x "
        f"{args.sims} simulations, random:{args.preset} ({args.weights}), chunks of {args.max_batch}; "
        f"ray.init {startup:.2f} s"
    )
    for name in variants:
        t = statistics.median(times[name])
        print(
            f"  {name}: {t:.2f} s median of {args.repeats} ({[round(x, 2) for x in times[name]]}), "
            f"{t / local:.2f}x the local time; with ray.init: {t + (startup if name != 'local' else 0):.2f} s"
        )
    print(
        "  equal to the local run: bitwise with 1 worker of all cores; with 1 core per worker the forecasts to "
        "1e-5 relative / 1e-6 absolute"
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
