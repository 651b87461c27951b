"""Where a forecast call spends its time: torch.profiler over the engine on a workload's contexts.

Runs the engine on the unique contexts of W1 (or a W2 slice) after a warm-up, under
``torch.profiler``, and prints the operators (and on CUDA the kernels) that take the most time,
among them the engine's phases (``totowalk.normalize``, ``.plan``, ``.stage``, ``.forward``,
``.sample``, ``.collect``; the engine marks them with ``record_function``). ``--form
walk-forward`` calls the engine as the backtest does (``forecast_walk_forward`` per chunk of
``--max-batch`` requests); ``list`` passes every unique context in one ``forecast`` call.

On CUDA it also says where the card waits: the union of kernel and copy intervals is the card's
busy time; every gap between them inside the forecast is charged to the engine phases running on
the host at that moment ("when the card idles, the host is in ..."). ``--trace FILE.json.gz``
keeps the Chrome trace. It measures nothing against a baseline: it says what to optimise next.

    python bench/profile_forecast.py [--workload W1] [--device cuda] [--form walk-forward] [--cuda-graphs]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from totowalk.backtest.forecast.forecasters import as_forecaster
from totowalk.backtest.forecast.plan import chunk_request, run_request
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
    parser.add_argument(
        "--form",
        choices=["list", "walk-forward"],
        default="list",
        help="one forecast() of every unique context, or the backtest's walk-forward chunks",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=32768,
        help="requests per chunk (walk-forward form; the backtest's default on CUDA)",
    )
    parser.add_argument("--trace", default=None, help="write the Chrome trace here (.json.gz)")
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

    forecaster = as_forecaster(engine=engine, aggregate="trimmed_mean_10")
    chunks = plan.batches(args.max_batch)

    def call():
        if args.form == "list":
            engine.forecast(contexts, aggregate=aggregate)
        else:
            for idx in chunks:
                run_request(forecaster, chunk_request(plan, forecaster, idx)[0])
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
    print(
        f"{args.workload}: {len(contexts)} unique contexts, preset {args.preset or spec.preset}, {args.precision}, device "
        f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, cuda_graphs "
        f"{args.cuda_graphs}: forecast {wall * 1e3:.1f} ms (unprofiled)"
    )
    print(prof.key_averages().table(sort_by=sort_by, row_limit=args.rows, max_name_column_width=60))
    if device.type != "cuda":
        return
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=args.rows, max_name_column_width=60))
    path = args.trace or os.path.join(tempfile.mkdtemp(), "trace.json")
    raw = path[:-3] if path.endswith(".gz") else path
    prof.export_chrome_trace(raw)
    with open(raw) as f:
        trace = json.load(f)
    if path.endswith(".gz"):
        with open(raw, "rb") as f, gzip.open(path, "wb") as g:
            g.write(f.read())
        os.remove(raw)
    print(card_waits(trace))


def _merged(intervals):
    out = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def card_waits(trace: dict) -> str:
    """The card's busy and idle time inside the profiled window, idle time charged to the
    engine's host phases (``totowalk.*`` ranges; the innermost one wins) running at that moment."""
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X" and "dur" in e]
    device = _merged(
        (e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
    )
    phases = [
        (e["ts"], e["ts"] + e["dur"], e["name"])
        for e in events
        if e.get("cat") == "user_annotation" and e["name"].startswith("totowalk.")
    ]
    if not device or not phases:
        return "card waits: no kernels or no engine ranges in the trace"
    begin, end = min(p[0] for p in phases), max(max(p[1] for p in phases), device[-1][1])
    busy = sum(min(b, end) - max(a, begin) for a, b in device if b > begin and a < end)
    gaps, cursor = [], begin
    for a, b in device:
        if a > cursor:
            gaps.append((cursor, min(a, end)))
        cursor = max(cursor, b)
    if cursor < end:
        gaps.append((cursor, end))
    charged = collections.Counter()
    for a, b in gaps:  # sweep the gap: at each instant, the innermost (latest-starting) open phase
        cuts = sorted({a, b} | {t for p in phases for t in p[:2] if a < t < b})
        for lo, hi in zip(cuts, cuts[1:]):
            mid = (lo + hi) / 2
            open_ = [p for p in phases if p[0] <= mid < p[1]]
            charged[max(open_)[2] if open_ else "(between engine phases)"] += hi - lo
    idle = sum(b - a for a, b in gaps)
    lines = [
        f"card waits: window {(end - begin) / 1e3:.1f} ms, card busy {busy / 1e3:.1f} ms, idle {idle / 1e3:.1f} ms "
        f"in {len(gaps)} gaps; idle time by the host phase running then:"
    ]
    lines += [f"  {name:<32} {us / 1e3:8.2f} ms" for name, us in charged.most_common()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
