"""Benchmark mixture sampling + reduction: fused Triton fp32/fp16 vs torch reference vs torch.distributions.

Default size is the engine's hot case, B = 4096 rows x S = 4096 samples x 1 step with K = 24
components, on CUDA. Without CUDA the torch providers run at a reduced size (B = 256, S = 1024;
``--quick``: B = 64, S = 256) so the script stays a few seconds on a laptop CPU.

    python bench/bench_sampling.py [--quick] [--json] [--rows B] [--samples S]
    python bench/bench_sampling.py --sweep-warps [--rows B] [--samples S ...]   # CUDA only

Prints one line per provider: median time per batch, samples per second, and for fp16 the largest
deviation of its aggregates from fp32 in units of the per-row sample std. ``--sweep-warps`` times
the fused fp32 kernel at every warp count for each S (default 128, 1024, 4096), and above 2048 at
every chunk size, and marks the one ``_launch_settings`` picks, the measurement its register-based
choice waits for.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time

import torch

from totowalk.kernels import reduce_samples, sample_and_reduce

AGGREGATES = ("mean", "std", "median", "trimmed_mean_10", "p10", "p90", "band")


def make_params(rows: int, components: int, device: torch.device, seed: int = 0) -> dict:
    """Parameters shaped like Toto's mixture head output (softmax weights, df = 2 + softplus)."""
    g = torch.Generator().manual_seed(seed)
    params = dict(
        weights=torch.softmax(torch.randn(rows, components, generator=g) * 2, dim=1),
        df=2.0 + torch.nn.functional.softplus(torch.randn(rows, components, generator=g) * 3),
        loc=torch.randn(rows, components, generator=g) * 0.3,
        scale=torch.nn.functional.softplus(torch.randn(rows, components, generator=g)) + 1e-3,
        affine_loc=torch.randn(rows, generator=g),
        affine_scale=torch.rand(rows, generator=g) * 0.1 + 0.01,
        keys=torch.randint(-(2**62), 2**62, (rows,), generator=g, dtype=torch.int64),
    )
    return {name: value.to(device) for name, value in params.items()}


def _positional(p: dict, num_samples: int) -> tuple:
    return (p["weights"], p["df"], p["loc"], p["scale"], p["affine_loc"], p["affine_scale"], p["keys"], num_samples)


def sample_with_torch_distributions(p: dict, num_samples: int) -> dict:
    """Baseline: torch.distributions mixture sampling (as the reference forecaster does) + torch reductions."""
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=p["weights"]), torch.distributions.StudentT(p["df"], p["loc"], p["scale"])
    )
    samples = p["affine_loc"][:, None] + p["affine_scale"][:, None] * mixture.sample((num_samples,)).T
    return reduce_samples(samples, AGGREGATES)


def providers(device: torch.device) -> dict:
    def fused(backend: str, dtype: torch.dtype):
        return lambda p, s: sample_and_reduce(*_positional(p, s), AGGREGATES, backend=backend, dtype=dtype)[0]

    table = {}
    if device.type == "cuda":
        table["triton-fp32"] = fused("triton", torch.float32)
        table["triton-fp16"] = fused("triton", torch.float16)
    table["torch-fp32"] = fused("torch", torch.float32)
    table["torch-fp16"] = fused("torch", torch.float16)
    table["torch.distributions"] = sample_with_torch_distributions
    return table


def time_call(fn, device: torch.device, repeats: int) -> tuple[list[float], dict]:
    result = fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, result


def fp16_deviation(half: dict, full: dict) -> float:
    """Largest |fp16 - fp32| over aggregates and rows, in units of that row's fp32 sample std."""
    std = full["std"].double().clamp_min(1e-30)
    return max(float(((half[name].double() - full[name].double()).abs() / std).max()) for name in full)


def sweep_warps(
    rows: int, sample_counts: list[int], components: int, repeats: int, as_json: bool, device: torch.device
) -> None:
    """Time the fused fp32 kernel at each warp count (1 to 16 samples per thread) for each S, and
    for S > 2048 at each chunk size (samples a row draws per step)."""
    from totowalk.kernels.mixture_triton import _launch_settings, sample_and_reduce_triton
    from totowalk.kernels.reduction_plan import build_reduction_plan
    from totowalk.kernels.validation import check_mixture_inputs

    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "Triton interpreter"
    p = make_params(rows, components, device)
    for samples in sample_counts:
        params = check_mixture_inputs(*_positional(p, samples))
        plan = build_reduction_plan(AGGREGATES, samples)
        block, chosen_warps, chosen_chunk = _launch_settings(samples)
        configs = [(w, block) for w in (1, 2, 4, 8, 16, 32) if 1 <= block // (32 * w) <= 16]
        if block > 2048:
            configs += [(w, c) for w in (8, 16, 32) for c in (256, 512, 1024, 2048) if 1 <= c // (32 * w) <= 4]
        if (chosen_warps, chosen_chunk) not in configs:  # e.g. fewer samples than threads
            configs.insert(0, (chosen_warps, chosen_chunk))
        for warps, chunk in configs:
            times, _ = time_call(
                lambda w=warps, c=chunk: sample_and_reduce_triton(
                    params, samples, 0, torch.float32, plan, False, num_warps=w, chunk_samples=c
                ),
                device,
                repeats,
            )
            median = statistics.median(times)
            chosen = (warps, chunk) == (chosen_warps, chosen_chunk)
            mark = "  <- _launch_settings" if chosen else ""
            print(
                f"sweep S={samples:5d} warps={warps:2d} chunk={chunk:5d} ({chunk // (32 * warps):2d} samples/thread/step)"
                f" B={rows}: {median * 1e3:9.3f} ms/batch {rows * samples / median / 1e9:8.2f} G samples/s "
                f"[{card}]{mark}"
            )
            if as_json:
                print(
                    json.dumps(
                        {
                            "kernel": "mixture_sample_reduce",
                            "sweep": "num_warps,chunk",
                            "S": samples,
                            "B": rows,
                            "K": components,
                            "num_warps": warps,
                            "chunk": chunk,
                            "chosen": chosen,
                            "ms_per_batch_p50": median * 1e3,
                            "device": card,
                        }
                    )
                )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repeats")
    parser.add_argument("--json", action="store_true", help="also print one JSON row per provider")
    parser.add_argument("--rows", type=int, default=None, help="B (rows = requests x steps)")
    parser.add_argument(
        "--samples", type=int, action="append", default=None, help="S samples per row (repeatable with --sweep-warps)"
    )
    parser.add_argument(
        "--sweep-warps",
        action="store_true",
        help="CUDA only: time the fused kernel at each warp count instead of comparing providers",
    )
    parser.add_argument("--components", type=int, default=24, help="K mixture components")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.sweep_warps:
        if device.type != "cuda":
            parser.error("--sweep-warps times the compiled Triton kernel and needs a CUDA device")
        sweep_warps(
            args.rows or 4096, args.samples or [128, 1024, 4096], args.components, args.repeats or 10, args.json, device
        )
        return
    if args.samples and len(args.samples) > 1:
        parser.error("give --samples once (several only with --sweep-warps)")
    if device.type == "cuda":
        rows, samples, repeats = (512, 1024, 3) if args.quick else (4096, 4096, 10)
        card = torch.cuda.get_device_name(device)
    else:
        rows, samples, repeats = (64, 256, 2) if args.quick else (256, 1024, 3)
        card = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    rows = args.rows or rows
    samples = args.samples[0] if args.samples else samples
    repeats = args.repeats or repeats
    params = make_params(rows, args.components, device)

    results = {}
    for name, fn in providers(device).items():
        times, stats = time_call(lambda fn=fn: fn(params, samples), device, repeats)
        results[name] = stats
        median = statistics.median(times)
        row = {
            "kernel": "mixture_sample_reduce",
            "provider": name,
            "B": rows,
            "S": samples,
            "K": args.components,
            "ms_per_batch_p50": median * 1e3,
            "ms_per_batch_min": min(times) * 1e3,
            "samples_per_s": rows * samples / median,
            "device": card,
            "date": datetime.date.today().isoformat(),
            "torch": torch.__version__,
        }
        deviation = ""
        full_name = name.replace("fp16", "fp32")
        if name.endswith("fp16") and full_name in results:
            row["fp16_max_dev_in_std"] = fp16_deviation(stats, results[full_name])
            deviation = f"  fp16 max |dev| vs fp32 = {row['fp16_max_dev_in_std']:.2e} std"
        print(
            f"{name:22s} B={rows} S={samples} K={args.components}: {median * 1e3:10.2f} ms/batch "
            f"{row['samples_per_s'] / 1e6:10.1f} M samples/s  [{card}]{deviation}"
        )
        if args.json:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
