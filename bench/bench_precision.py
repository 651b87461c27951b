"""Forecasting time per precision on workload W1, plus the CPU GEMM timings behind the int8 choice.

W1 (``totowalk.benchmarks.workloads``): IBM, 1,460 rows, 10 simulations x 4 keys x 7 one-step forecasts
(280 requests, 64 distinct contexts of ~23 patches), 128 samples, seed 0, random-weight model of
the chosen preset. Each precision converts the same fp32 weights; the row reports the median
engine time over ``--repeats`` runs, the weight bytes, and the expected value's max / mean
relative error vs the fp32 run (``|E_P - E_32| / max(|E_32|, mean|E_32|)``, the first quality
gate's measure; the gate now uses z-shifts against the noise floor).

``--gemm`` times one Linear of each base-preset shape (rows = 64 contexts x 23 patches) with
every CPU path: fp32, bf16 and fp16 ``F.linear``, int8 dequantize + fp32 GEMM (weight-only),
``torch._int_mm`` with per-row int8 activations, and ``_weight_int8pack_mm``.

Usage::

    python bench/bench_precision.py                         # base preset, fp32 bf16 fp16 int8 (+ int8-int_mm on CPU)
    python bench/bench_precision.py --gemm --precisions fp32,bf16,int8
    python bench/bench_precision.py --preset toto-tiny --simulations 2 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from totowalk import datasets
from totowalk.benchmarks.workloads import classic_call_contexts, forecast_plan
from totowalk.engine import ForecastEngine
from totowalk.model import TotoConfig, build_model
from totowalk.precision import (
    convert_precision,
    dequantize_weight,
    quantize_weight,
    set_int8_kernel,
)
from totowalk.precision.cpu_int8 import int_mm_linear
from totowalk.provenance import git_commit, machine_description

AGGREGATES = ("trimmed_mean_10", "band", "expected")


def build(preset: str, label: str, device: torch.device):
    """Random-weight model (seed 0) in the precision ``label`` ("int8-int_mm": int8, int_mm kernel)."""
    precision, _, kernel = label.partition("-")
    model = convert_precision(build_model(TotoConfig.preset(preset), seed=0), precision, device=device)
    if kernel:
        set_int8_kernel(model, kernel)
    return model.to(device)


def weight_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def time_engines(engines: dict, contexts, repeats: int, device) -> tuple[dict, dict]:
    """Median seconds and last result per engine; repeats are interleaved across the engines so a
    change of load on the shared machine hits every precision alike."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for engine in engines.values():
        engine.forecast([contexts[0][:100]], aggregate=("mean",))  # warm-up
    times = {label: [] for label in engines}
    results = {}
    for _ in range(repeats):
        for label, engine in engines.items():
            sync()
            start = time.perf_counter()
            results[label] = engine.forecast(contexts, aggregate=AGGREGATES)
            sync()
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) for label, t in times.items()}, results


def relative_errors(expected: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    floor = max(float(np.abs(reference).mean()), 1e-300)
    rel = np.abs(expected - reference) / np.maximum(np.abs(reference), floor)
    return float(rel.max()), float(rel.mean())


def _linear_paths(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> dict:
    """One zero-argument callable per CPU path for ``F.linear(x, w, b)``; x (M, K), w (N, K)."""
    q, s = quantize_weight(w)
    xb, wb, bb, sb = x.bfloat16(), w.bfloat16(), b.bfloat16(), s.bfloat16()
    return {
        "fp32": lambda: F.linear(x, w, b),
        "bf16": lambda: F.linear(xb, wb, bb),
        "fp16": lambda: F.linear(x.half(), w.half(), b.half()),
        "int8 dequant+fp32": lambda: F.linear(x, dequantize_weight(q, s), b),
        "int8 _int_mm (A8W8)": lambda: int_mm_linear(x, q, s, b),
        "int8 _weight_int8pack_mm (bf16 x)": lambda: torch.ops.aten._weight_int8pack_mm(xb, q, sb),
    }


def gemm_rows(repeats: int) -> list[str]:
    """Markdown rows: ms per Linear of each base shape, per CPU path (median of ``repeats``)."""
    cfg = TotoConfig.preset("toto-open-base-1.0")
    d, hidden, m = cfg.embed_dim, cfg.mlp_hidden_dim, 64 * 23
    shapes = {"wQKV": (d, 3 * d), "wO": (d, d), "w12": (d, 2 * hidden), "w3": (hidden, d)}
    g = torch.Generator().manual_seed(0)
    rows = []
    for name, (k, n) in shapes.items():
        x, w, b = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g) * 0.02, torch.randn(n, generator=g)
        paths = _linear_paths(x, w, b)
        cells = []
        for fn in paths.values():
            fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            cells.append(f"{1e3 * statistics.median(times):.1f}")
        rows.append(f"| {name} ({m}x{k} @ {k}x{n}) | " + " | ".join(cells) + " |")
    header = "| Linear (rows x K @ K x N) | " + " | ".join(paths) + " |"
    return [header, "|" + "---|" * (len(paths) + 1), *rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="toto-open-base-1.0")
    parser.add_argument(
        "--precisions",
        default=None,
        help="comma-separated: fp32 bf16 fp16 int8 int8-int_mm int8-triton (default: fp32,bf16,"
        "fp16,int8, plus int8-int_mm on CPU: torch._int_mm on CUDA refuses the engine's "
        "<= 16-row calls)",
    )
    parser.add_argument("--symbol", default="IBM")
    parser.add_argument("--rows", type=int, default=1460)
    parser.add_argument("--simulations", type=int, default=10)
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--gemm", action="store_true", help="also time the base-shape Linear layers per CPU path")
    args = parser.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    frame = datasets.load(args.symbol).iloc[: args.rows]
    contexts = classic_call_contexts(forecast_plan({args.symbol: frame}, args.simulations))  # the 280 classic calls
    precisions = args.precisions or (
        "fp32,bf16,fp16,int8,int8-int_mm" if device.type == "cpu" else "fp32,bf16,fp16,int8"
    )
    labels = [p.strip() for p in precisions.split(",") if p.strip()]
    if "fp32" not in labels:
        labels.insert(0, "fp32")  # the reference of the error columns
    load_start = os.getloadavg()[0]
    date, machine, commit = datetime.date.today().isoformat(), machine_description(device), git_commit()

    print(
        f"W1 per precision: {args.symbol} {len(frame)} rows, {args.simulations} simulations, {len(contexts)} requests, "
        f"{args.num_samples} samples, preset {args.preset}, device {device}, {torch.get_num_threads()} torch threads"
    )
    lines = [
        (
            "| date | machine | commit | preset | device | precision | engine s (median of "
            f"{args.repeats}, interleaved) | x vs fp32 | weight MB | E rel err max | E rel err mean | notes |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    models = {label: build(args.preset, label, device) for label in labels}
    engines = {label: ForecastEngine(m, num_samples=args.num_samples, seed=0) for label, m in models.items()}
    seconds, results = time_engines(engines, contexts, args.repeats, device)
    reference = np.asarray(results["fp32"].stats["expected"])[:, 0]
    note = f"load avg {load_start:.1f} -> {os.getloadavg()[0]:.1f} (shared CPU)" if device.type == "cpu" else ""
    for label in labels:
        err_max, err_mean = relative_errors(np.asarray(results[label].stats["expected"])[:, 0], reference)
        lines.append(
            f"| {date} | {machine} | {commit} | {args.preset} | {device.type} | {label} | {seconds[label]:.2f} | "
            f"{seconds['fp32'] / seconds[label]:.2f} | {weight_bytes(models[label]) / 2**20:.1f} | "
            f"{err_max:.2e} | {err_mean:.2e} | {note} |"
        )
    print("\n" + "\n".join(lines))
    if args.gemm:
        print(f"\nms per Linear, CPU ({machine}, {torch.get_num_threads()} threads, {date}, commit {commit}):")
        print("\n".join(gemm_rows(args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
