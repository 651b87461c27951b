"""Pack throughput (CPU) and pinned staging copy/compute overlap (GPU).

CPU: 4,096 walk-forward contexts of up to 1,500 points from a few float64 series, bucketed by
patch count like the engine, packed by the native routine (all threads, one thread) and by the
per-request numpy slicing loop (numpy_pack_reference). Reports contexts/s and GB/s (bytes read
plus bytes written).

GPU (when CUDA is available): K buckets go through StagingPipeline while a synthetic compute
step (matrix products on the packed batch) runs on the current stream. CUDA events time one
bucket's copy and one bucket's compute; the serial wall time (submit, wait, compute, wait) is
compared with the overlapped one (submit k+1 before computing k), showing how much of the copy
and packing time the overlap hides.

Usage: python bench/bench_pack.py [--requests 4096] [--max-length 1500] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time

import numpy as np

import totowalk
from totowalk.engine import staging
from totowalk.engine.staging import StagingPipeline, numpy_pack_reference, pack_contexts

PATCH = 64


def make_workload(num_requests: int, max_length: int, num_series: int, seed: int = 0):
    """Sources (float64 series) and prefix requests bucketed by padded length (patch count)."""
    rng = np.random.default_rng(seed)
    sources = [rng.standard_normal(max_length + 500) for _ in range(num_series)]
    series = rng.integers(0, num_series, num_requests)
    ends = rng.integers(max_length // 2, max_length + 1, num_requests)
    padded = -(-ends // PATCH) * PATCH
    buckets = {}
    for s, e, p in zip(series, ends, padded):
        buckets.setdefault(int(p), []).append((int(s), int(e), int(p)))
    return sources, {p: np.array(rows, dtype=np.int64) for p, rows in sorted(buckets.items())}


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (page faults, thread start-up)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_cpu(sources, buckets, repeats: int) -> list[dict]:
    num_contexts = sum(len(rows) for rows in buckets.values())
    written = sum(len(rows) * p * 5 for p, rows in buckets.items())  # float32 + bool
    read = sum(int((rows[:, 1]).sum()) * 8 for rows in buckets.values())  # float64 values
    providers = {
        "numpy-loop": lambda: [numpy_pack_reference(sources, r, p) for p, r in buckets.items()],
    }
    if staging.compiled_module() is not None:
        providers["native"] = lambda: [pack_contexts(sources, r, p) for p, r in buckets.items()]
        # Reused output buffers (as the pinned ring does): no page faults on fresh memory.
        outs = {p: (np.empty((len(r), p), np.float32), np.empty((len(r), p), bool)) for p, r in buckets.items()}
        providers["native-reused-out"] = lambda: [pack_contexts(sources, r, p, *outs[p]) for p, r in buckets.items()]
        providers["native-1-thread"] = lambda: [pack_contexts(sources, r, p, threads=1) for p, r in buckets.items()]
    rows = []
    for name, fn in providers.items():
        seconds = _median_seconds(fn, repeats)
        rows.append(
            {
                "bench": "pack",
                "provider": name,
                "device": "cpu",
                "contexts": num_contexts,
                "ms": seconds * 1e3,
                "contexts_per_s": num_contexts / seconds,
                "GB_per_s": (written + read) / seconds / 1e9,
            }
        )
    return rows


def _torch_copy_ms(rows: int, width: int) -> float:
    """CUDA-event time of one bucket's host-to-device copy from torch pinned memory."""
    import torch

    host = torch.zeros(rows, width * 5 // 4, dtype=torch.float32, pin_memory=True)
    device = torch.empty_like(host, device="cuda")
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    device.copy_(host, non_blocking=True)
    start.record()
    device.copy_(host, non_blocking=True)
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop)


def bench_gpu(sources, rows_per_bucket: int, width: int, num_buckets: int, matmuls: int):
    """Copy/compute overlap through the staging pipeline on the current CUDA device."""
    import torch

    rng = np.random.default_rng(1)
    batches = []
    for _ in range(num_buckets):
        series = rng.integers(0, len(sources), rows_per_bucket)
        ends = rng.integers(width - PATCH + 1, width + 1, rows_per_bucket)
        batches.append(np.stack([series, ends, np.full(rows_per_bucket, width)], axis=1))
    slab = rows_per_bucket * width * 5 + 4096
    pipeline = StagingPipeline(slab_bytes=slab, num_slabs=3, device="cuda", enable_timing=True)
    weight = torch.randn(width, width, device="cuda") / width**0.5

    def compute(values, mask):
        x = values * mask
        for _ in range(matmuls):
            x = torch.tanh(x @ weight)
        return x.mean(dim=1)

    # Correctness of the staged data before timing anything.
    staged = pipeline.submit(sources, batches[0], width)
    want_values, want_mask = numpy_pack_reference(sources, batches[0], width)
    exact = staged.values.cpu().numpy().tobytes() == want_values.tobytes() and np.array_equal(
        staged.mask.cpu().numpy(), want_mask
    )

    # One bucket's copy (events around the native cudaMemcpyAsync calls) and compute.
    if pipeline.native_path() == "cuda-pinned":
        copy_ms = statistics.median(
            (pipeline.submit(sources, b, width), pipeline.last_copy_ms())[1] for b in batches[:5]
        )
    else:  # torch-pinned fallback: time the same bytes through torch's pinned copy
        copy_ms = _torch_copy_ms(rows_per_bucket, width)
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    compute(staged.values, staged.mask)
    start.record()
    for _ in range(5):
        compute(staged.values, staged.mask)
    stop.record()
    stop.synchronize()
    compute_ms = start.elapsed_time(stop) / 5
    pack_ms = 1e3 * _median_seconds(lambda: pack_contexts(sources, batches[0], width), 5)

    def serial():
        results = []
        for b in batches:
            staged = pipeline.submit(sources, b, width)
            staged.ready.synchronize()  # no overlap: wait for the copy before computing
            results.append(pipeline.fetch_results(compute(staged.values, staged.mask)).wait())
            torch.cuda.synchronize()
        return results

    def overlapped():
        pending, results = [], []
        staged = pipeline.submit(sources, batches[0], width)
        for k in range(num_buckets):
            current = staged
            if k + 1 < num_buckets:  # pack + copy bucket k+1 while bucket k computes
                staged = pipeline.submit(sources, batches[k + 1], width)
            pending.append(pipeline.fetch_results(compute(current.values, current.mask)))
            if len(pending) == 2:
                results.append(pending.pop(0).wait())
        results.extend(p.wait() for p in pending)
        torch.cuda.synchronize()
        return results

    same = all(np.allclose(a, b, rtol=1e-6, atol=1e-6) for a, b in zip(serial(), overlapped()))
    serial_ms = 1e3 * _median_seconds(serial, 3)
    overlapped_ms = 1e3 * _median_seconds(overlapped, 3)
    hideable = num_buckets * (copy_ms + pack_ms)
    return [
        {
            "bench": "staging-overlap",
            "provider": pipeline.native_path(),
            "device": torch.cuda.get_device_name(),
            "buckets": num_buckets,
            "rows_per_bucket": rows_per_bucket,
            "width": width,
            "bytes_per_bucket": slab - 4096,
            "exact_vs_numpy": exact,
            "serial_equals_overlapped": same,
            "copy_ms_per_bucket": copy_ms,
            "copy_GB_per_s": (slab - 4096) / copy_ms / 1e6,
            "pack_ms_per_bucket": pack_ms,
            "compute_ms_per_bucket": compute_ms,
            "serial_wall_ms": serial_ms,
            "overlapped_wall_ms": overlapped_ms,
            "hidden_ms": serial_ms - overlapped_ms,
            "hidden_fraction_of_copy_plus_pack": (serial_ms - overlapped_ms) / hideable,
        }
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4096)
    parser.add_argument("--max-length", type=int, default=1500)
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gpu-buckets", type=int, default=12)
    parser.add_argument("--gpu-rows", type=int, default=1024)
    parser.add_argument("--gpu-matmuls", type=int, default=24)
    parser.add_argument("--no-gpu", action="store_true")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args(argv)

    sources, buckets = make_workload(args.requests, args.max_length, args.series)
    rows = bench_cpu(sources, buckets, args.repeats)
    import torch

    if torch.cuda.is_available() and not args.no_gpu:
        width = -(-args.max_length // PATCH) * PATCH
        rows += bench_gpu(sources, args.gpu_rows, width, args.gpu_buckets, args.gpu_matmuls)
    stamp = {
        "date": datetime.date.today().isoformat(),
        "version": totowalk.__version__,
        "host": platform.node(),
        "native": staging.native_status(),
    }
    for row in rows:
        row.update(stamp)
        fields = {
            k: (f"{v:.4g}" if isinstance(v, float) else v)
            for k, v in row.items()
            if k not in ("date", "version", "host", "native")
        }
        print(json.dumps(fields))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
