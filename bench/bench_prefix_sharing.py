"""Walk-forward prefix sharing, side by side: forecast FLOPs and wall time with and without it.

The backtest's deduplicated forecast requests of a workload, in the backtest's own chunks
(``ForecastPlan.batches``) and form (``forecast_walk_forward``), go through one ForecastEngine with
``share_prefixes`` on and one with it off, alternating in one process (exact estimator by default,
so the comparison is the transformer work, not the sampling). FLOPs count the forwards actually
run (``benchmarks.flops.planned_flops``: every unique context without sharing, the group roots and
lone contexts with it).

    python bench/bench_prefix_sharing.py W3 --sims 250 1000     # 4 bundled symbols, toto-mini
    python bench/bench_prefix_sharing.py W2 --series 2 --sims 250 --preset toto-open-base-1.0
    python bench/bench_prefix_sharing.py W2 --backtest --precision fp16 --device cuda --max-batch 8192 \
        --preset toto-open-base-1.0                                # whole backtests, shared vs unshared
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import totowalk as tw
from totowalk.benchmarks.flops import planned_flops
from totowalk.benchmarks.workloads import forecast_plan, w2_frames
from totowalk.precision import convert_precision
from totowalk.provenance import git_commit, machine_description, today

W3_SYMBOLS = ("AAPL", "IBM", "MSFT", "GOOG")


def _frames(workload: str, series: int) -> dict:
    if workload == "W3":
        return {s: tw.datasets.load(s) for s in W3_SYMBOLS}
    frames = w2_frames()
    return dict(list(frames.items())[:series])


def _run_chunks(engine, chunks) -> float:
    """The backtest's forecast calls: each chunk in walk-forward form (series, ends), as tw.backtest
    hands them to the engine."""
    start = time.perf_counter()
    for series, ends, _ in chunks:
        engine.forecast_walk_forward(series, ends, aggregate=("trimmed_mean_10", "band"))
    return time.perf_counter() - start


def _chunks(plan, max_batch) -> list:
    return [plan.walk_forward(idx) for idx in plan.batches(max_batch)]


def _flops(model, chunks, share: bool) -> int:
    return sum(
        planned_flops(model.config, [x[:e] for x, es in zip(series, ends) for e in es], share)[0]
        for series, ends, _ in chunks
    )


def _backtests(engines, frames, args) -> None:
    """Whole tw.backtest (legacy profile, the engine's sampled estimator) shared vs unshared,
    alternating, with each side's phases (the W2 <= 0.5 s GPU target is a whole-backtest figure)."""
    for sims in args.sims:
        times, phases = {True: [], False: []}, {}
        runs = [
            (
                share,
                lambda e=engines[share]: tw.backtest(
                    frames, num_simulations=sims, engine=e, max_batch=args.max_batch, profile="legacy"
                ),
            )
            for share in (True, False)
        ]
        for share, run in runs:  # warm-up: allocator, kernels, CUDA graphs
            run()
        for _ in range(args.repeats):
            for share, run in runs:
                start = time.perf_counter()
                result = run()
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[share].append(time.perf_counter() - start)
                phases[share] = result.timings
        shared, plain = np.median(times[True]), np.median(times[False])
        print(
            f"  whole backtest, {sims} simulations, {len(frames)} series: shared {shared:.3f} s, unshared "
            f"{plain:.3f} s: {plain / shared:.2f}x faster; times {[round(t, 3) for t in times[True]]} vs "
            f"{[round(t, 3) for t in times[False]]}"
        )
        for share in (True, False):
            print(
                f"    {'shared' if share else 'unshared'} phases (last run): "
                + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in phases[share].items())
            )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=("W2", "W3"))
    parser.add_argument("--sims", type=int, nargs="+", default=[250])
    parser.add_argument("--series", type=int, default=24, help="W2 series (default all 24)")
    parser.add_argument("--model", default="toto-mini")
    parser.add_argument(
        "--preset",
        default=None,
        help="random weights of this preset instead of --model (e.g. toto-open-base-1.0, W2's model)",
    )
    parser.add_argument("--max-batch", type=int, default=1024, help="contexts per engine call (the CLI's CPU default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="model precision (fp32, fp16, bf16, int8)")
    parser.add_argument("--cuda-graphs", action="store_true", help="replay the forwards as CUDA graphs (CUDA only)")
    parser.add_argument(
        "--estimator",
        choices=("exact", "sampled"),
        default="exact",
        help="forecast-only runs: exact (default; no sampling, the comparison is the transformer work) "
        "or sampled (128 draws, what a backtest runs; on a GPU the exact statistics cost more "
        "than the forward)",
    )
    parser.add_argument(
        "--backtest",
        action="store_true",
        help="time the whole tw.backtest (sampled estimator, legacy profile), shared vs unshared",
    )
    parser.add_argument(
        "--shared-only",
        action="store_true",
        help="time only the shared side, alternating between the --sims values (the flatness check)",
    )
    args = parser.parse_args(argv)
    if args.preset:
        model = tw.build_model(tw.TotoConfig.preset(args.preset), seed=0).to(args.device).eval()
        args.model = f"random:{args.preset}"
    else:
        model = tw.load_model(args.model, device=args.device)
    model = convert_precision(model, args.precision, args.device).eval()
    estimator = "sampled" if args.backtest else args.estimator
    engines = {
        share: tw.ForecastEngine(
            model,
            num_samples=128,
            estimator=estimator,
            share_prefixes=share,
            device=args.device,
            cuda_graphs=args.cuda_graphs,
        )
        for share in (True, False)
    }
    frames = _frames(args.workload, args.series)
    print(
        f"{today()} {git_commit()} {machine_description(torch.device(args.device))}; {args.workload} "
        f"({len(frames)} series), model {args.model}, {args.precision}, {estimator} estimator, "
        f"{torch.get_num_threads()} torch threads"
        f"{', CUDA graphs' if args.cuda_graphs else ''}"
    )
    if args.backtest:
        return _backtests(engines, frames, args)
    if args.shared_only:
        return _flatness(engines[True], model, frames, args)
    for sims in args.sims:
        plan = forecast_plan(frames, sims)
        chunks = _chunks(plan, args.max_batch)
        flops = {share: _flops(model, chunks, share) for share in (True, False)}
        times = {True: [], False: []}
        for _ in range(args.repeats):  # alternating, so both sides see the same machine load
            for share in (True, False):
                times[share].append(_run_chunks(engines[share], chunks))
        shared, plain = np.median(times[True]), np.median(times[False])
        print(
            f"  {sims} simulations, {len(plan)} unique contexts: shared {shared:.2f} s "
            f"({flops[True] / 1e9:.1f} GFLOP), unshared {plain:.2f} s ({flops[False] / 1e9:.1f} GFLOP): "
            f"{plain / shared:.2f}x faster, {flops[False] / flops[True]:.2f}x fewer FLOPs; "
            f"times {[round(t, 2) for t in times[True]]} vs {[round(t, 2) for t in times[False]]}"
        )


def _flatness(engine, model, frames, args) -> None:
    """Shared forecast time per --sims value, alternating between them so all see the same load."""
    runs = {}
    for sims in args.sims:
        plan = forecast_plan(frames, sims)
        chunks = _chunks(plan, args.max_batch)
        runs[sims] = (len(plan), chunks, _flops(model, chunks, True))
    times = {sims: [] for sims in args.sims}
    for _ in range(args.repeats):
        for sims in args.sims:
            times[sims].append(_run_chunks(engine, runs[sims][1]))
    base = args.sims[0]
    for sims in args.sims:
        contexts, _, flops = runs[sims]
        print(
            f"  shared, {sims} simulations, {contexts} unique contexts: median {np.median(times[sims]):.2f} s "
            f"({flops / 1e9:.1f} GFLOP), {np.median(times[sims]) / np.median(times[base]):.2f}x the {base}-simulation "
            f"time; times {[round(t, 2) for t in times[sims]]}"
        )


if __name__ == "__main__":
    main()
