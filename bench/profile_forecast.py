"""Where a forecast call spends its time: torch.profiler over the engine on a workload's contexts.

Runs ``ForecastEngine.forecast`` on the unique contexts of W1 (or a W2 slice) after a warm-up, under
``torch.profiler``, and prints the operators (and on CUDA the kernels) that take the most time,
among them the engine's phases (``totowalk.normalize``, ``.plan``, ``.stage``, ``.forward``,
``.sample``, ``.collect``; the engine marks them with ``record_function``). It measures nothing
against a baseline: it says what to optimise next.

    python bench/profile_forecast.py [--workload W1] [--device cuda] [--cuda-graphs] [--rows 15]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from totowalk.benchmarks.workloads import WORKLOADS, forecast_plan, unique_contexts, w1_frames, w2_frames
from totowalk.engine import ForecastEngine
from totowalk.model import TotoConfig, build_model
from totowalk.precision import convert_precision


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["W1", "W2"], default="W1")
    parser.add_argument("--w2-series", type=int, default=2, help="W2 slice: series (default 2)")
    parser.add_argument("--w2-simulations", type=int, default=10, help="W2 slice: simulations (default 10)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default=None, help="model preset (default: the workload's)")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16, fp16 or int8 (default fp32)")
    parser.add_argument("--cuda-graphs", action="store_true")
    parser.add_argument("--rows", type=int, default=15, help="operators to list")
    args = parser.parse_args(argv)

    spec = WORKLOADS[args.workload]
    if args.workload == "W1":
        plan = forecast_plan(w1_frames(), spec.num_simulations)
    else:
        plan = forecast_plan(w2_frames(num_series=args.w2_series), args.w2_simulations)
    contexts = unique_contexts(plan)
    device = torch.device(args.device)
    model = build_model(TotoConfig.preset(args.preset or spec.preset), seed=0).to(device).eval()
    model = convert_precision(model, args.precision, device=device)
    engine = ForecastEngine(model, num_samples=spec.num_samples, seed=0, cuda_graphs=args.cuda_graphs)
    aggregate = ("trimmed_mean_10", "band")

    def call():
        engine.forecast(contexts, aggregate=aggregate)
        if device.type == "cuda":
            torch.cuda.synchronize()

    call()  # warm-up: allocator, Triton compilation, graph capture
    start = time.perf_counter()
    call()
    wall = time.perf_counter() - start

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        call()
    sort_by = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(f"{args.workload}: {len(contexts)} unique contexts, preset {args.preset or spec.preset}, {args.precision}, device "
          f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, cuda_graphs "
          f"{args.cuda_graphs}: forecast {wall * 1e3:.1f} ms (unprofiled)")
    print(prof.key_averages().table(sort_by=sort_by, row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
