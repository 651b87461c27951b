"""Workload W1 side by side: ForecastEngine vs the classic one-call-per-context loop.

The classic run: one daily series of 1,460 rows, 10 simulations, 4 keys x 7 walk-forward
one-step forecasts of the percent-change series, 128 samples, random-weight model, CPU.
The reference loop is slow (seconds per call on the base model), so a stated number of its calls
is timed and the total is extrapolated to the 280 calls it makes and to the 64 it would make with
a cache of unique contexts.

Usage::

    python bench/bench_w1.py                              # base preset, the full W1
    python bench/bench_w1.py --preset toto-tiny --quick   # CI smoke, seconds
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from totowalk import datasets
from totowalk.engine import ForecastEngine, reference_forecast
from totowalk.model import TotoConfig, build_model
from w1_workload import w1_contexts


def machine_name() -> str:
    """CPU model and core count from /proc/cpuinfo (plus the GPU when the model runs there)."""
    model, cores = platform.processor() or "unknown CPU", os.cpu_count()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            model = names[0]
    except OSError:
        pass
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return f"{model}, {available} cores"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True, timeout=10,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="toto-open-base-1.0", help="model preset (random weights)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 2 simulations, 1 timed reference call")
    parser.add_argument("--symbol", default="IBM", help="bundled symbol")
    parser.add_argument("--rows", type=int, default=1460, help="rows of the daily series (T)")
    parser.add_argument("--simulations", type=int, default=10)
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--reference-calls", type=int, default=3, help="reference calls actually timed")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 helps tiny models on a loaded machine")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.simulations, args.reference_calls = min(args.simulations, 2), 1

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    frame = datasets.load(args.symbol).iloc[: args.rows]
    contexts = w1_contexts(frame, args.simulations)
    model = build_model(TotoConfig.preset(args.preset), seed=0).to(device)
    engine = ForecastEngine(model, num_samples=args.num_samples, seed=0)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    engine.forecast([contexts[0][:100]], aggregate=("mean",))  # warm-up (allocator, kernels)
    sync()
    start = time.perf_counter()
    result = engine.forecast(contexts, aggregate=("trimmed_mean_10", "band", "expected"))
    sync()
    engine_s = time.perf_counter() - start

    # time the classic loop on the first unique contexts; it repeats each context num_samples times
    unique_first = {}
    for i, ctx in enumerate(contexts):
        unique_first.setdefault(ctx.tobytes(), i)
    timed = list(unique_first.values())[: args.reference_calls]
    start = time.perf_counter()
    reference = [reference_forecast(model, [contexts[i]], num_samples=args.num_samples, seed=0,
                                    aggregate=("trimmed_mean_10", "expected")) for i in timed]
    sync()
    per_call = (time.perf_counter() - start) / len(timed)
    rel = max(abs(ref.stats["expected"][0, 0] - result.stats["expected"][i, 0])
              / max(abs(ref.stats["expected"][0, 0]), 1e-12) for ref, i in zip(reference, timed))

    calls, unique = len(contexts), result.num_unique
    ref_unique_s, ref_all_s = per_call * unique, per_call * calls
    print(f"W1: {args.symbol} {len(frame)} rows, {args.simulations} simulations x 4 keys x 7 steps = {calls} calls, "
          f"{unique} unique contexts, {args.num_samples} samples, preset {args.preset}, device {device}, "
          f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}")
    print(f"engine: {engine_s:.3f} s for all {calls} requests ({result.info['model_batches']} model batches)")
    print(f"reference: {per_call:.3f} s per call, timed over {len(timed)} calls and EXTRAPOLATED: "
          f"{ref_unique_s:.1f} s for {unique} unique calls, {ref_all_s:.1f} s for {calls} calls")
    print(f"speedup: {ref_unique_s / engine_s:.0f}x vs the cached ({unique}-call) loop, "
          f"{ref_all_s / engine_s:.0f}x vs the {calls}-call loop")
    print(f"exactness: max relative difference of the expected value on the timed contexts {rel:.2e}")
    date = datetime.date.today().isoformat()
    print("\n| date | machine | commit | preset | device | calls / unique | engine s | reference s/call "
          "(timed calls) | reference unique-calls s (extrap.) | reference all-calls s (extrap.) | x vs unique | x vs all |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {date} | {machine_name()} | {git_commit()} | {args.preset} | {device.type} | {calls} / {unique} | "
          f"{engine_s:.2f} | {per_call:.2f} ({len(timed)}) | {ref_unique_s:.0f} | {ref_all_s:.0f} | "
          f"{ref_unique_s / engine_s:.0f} | {ref_all_s / engine_s:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
