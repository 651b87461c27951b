"""Microbenchmarks: mixture sampling + reduction, exact statistics, batch packing, and int8 matmul.

Shapes follow the walk-forward workloads: one step, 128 samples, K = 24 components, as many
rows as W1 (64) or W2 (24,576) has unique contexts; packing runs the W1 and W2 request sets.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from ..aggregation import aggregate_numpy
from ..engine.reference import replace_extreme_values
from ..engine.sampling import parse_engine_aggregates
from ..engine.staging import native_status, numpy_pack_reference, pack_contexts
from ..kernels import exact_statistics, request_keys, sample_and_reduce
from .session import BenchSession
from .timing import same_call, time_interleaved
from .workloads import WORKLOADS, forecast_plan, w1_frames, w2_frames

AGGREGATES = ("trimmed_mean_10", "band")
COMPONENTS = 24
SAMPLES = 128


def mixture_params(rows: int, device: torch.device, seed: int = 0) -> dict:
    """Synthetic parameters shaped like the head's output: (N, K) each plus the scaler's (N,).

    Weights are a softmax, degrees of freedom 2 + softplus (the head's ranges), scales > 0.
    """
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(4, rows, COMPONENTS, generator=g)
    hashes = np.random.default_rng(seed).integers(0, 2**63, rows, dtype=np.uint64)
    params = {
        "weights": torch.softmax(2 * raw[0], dim=-1),
        "df": 2 + torch.nn.functional.softplus(3 * raw[1]),
        "loc": 0.3 * raw[2],
        "scale": torch.nn.functional.softplus(raw[3]) + 1e-3,
        "affine_loc": 0.01 * torch.randn(rows, generator=g),
        "affine_scale": 0.01 + 0.1 * torch.rand(rows, generator=g),
        "keys": request_keys(hashes, 1)[:, 0],
    }
    return {k: v.to(device) for k, v in params.items()}


def reference_sample_and_reduce(p: dict, num_samples: int) -> dict:
    """The classic path: torch.distributions draws, extreme-value guard, float64 numpy reductions."""
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=p["weights"]),
        torch.distributions.StudentT(p["df"], p["loc"], p["scale"], validate_args=False),
        validate_args=False,
    )
    samples = replace_extreme_values(
        p["affine_loc"][:, None] + p["affine_scale"][:, None] * mixture.sample((num_samples,)).T
    )
    flat = samples.double().cpu().numpy()
    return {s.name: aggregate_numpy(flat, s) for s in parse_engine_aggregates(AGGREGATES)}


def bench_sampling(session: BenchSession) -> list:
    # W1's unique contexts, then W2-sized batches (a W2 slice on CPU, where it takes seconds)
    rows_list = [64, 4096, 24576] if session.device.type == "cuda" else [64, 1024]
    out = []
    for rows in rows_list:
        p = mixture_params(rows, session.device)
        positional = (
            p["weights"],
            p["df"],
            p["loc"],
            p["scale"],
            p["affine_loc"],
            p["affine_scale"],
            p["keys"],
            SAMPLES,
        )
        (engine, baseline), _ = time_interleaved(
            [same_call(sample_and_reduce, *positional, AGGREGATES), same_call(reference_sample_and_reduce, p, SAMPLES)],
            session.device,
            [max(session.options.repeats, 5)] * 2,
        )
        backend = "triton" if session.device.type == "cuda" else "torch"
        session.log(
            f"micro sampling {rows} x {SAMPLES}: sample_and_reduce ({backend}) {engine.median_s * 1e3:.2f} ms, "
            f"torch.distributions + numpy {baseline.median_s * 1e3:.2f} ms"
        )
        out.append(
            session.row(
                f"micro sampling+reduce {rows}x{SAMPLES}",
                engine.median_s,
                "torch.distributions + float64 numpy reductions",
                baseline.median_s,
                gemm_gflops=0.0,
                unique_contexts=rows,
                notes=f"sample_and_reduce backend auto ({backend}), K={COMPONENTS}, aggregates {'+'.join(AGGREGATES)}; "
                f"rows/s in the contexts/s column",
            )
        )
    return out


def bench_exact(session: BenchSession) -> list:
    """Exact statistics (no draws) against the 128-sample sampling + reduction they replace."""
    rows_list = [64, 4096, 24576] if session.device.type == "cuda" else [64, 1024, 24576]
    specs = parse_engine_aggregates(AGGREGATES)
    out = []
    for rows in rows_list:
        p = mixture_params(rows, session.device)
        mixture = (p["weights"], p["df"], p["loc"], p["scale"], p["affine_loc"], p["affine_scale"])
        calls = [
            same_call(exact_statistics, *mixture, specs),
            same_call(sample_and_reduce, *mixture, p["keys"], SAMPLES, AGGREGATES),
        ]
        on_card = session.device.type == "cuda"
        if on_card:  # the torch iteration on the card, side by side with the default (host C++)
            calls.append(same_call(exact_statistics, *mixture, specs, backend="torch"))
        timings, _ = time_interleaved(calls, session.device, [session.options.repeats] * len(calls))
        exact, sampled = timings[0], timings[1]
        backend = "C++ extension, float64" + (", parameters copied from the card and back" if on_card else "")
        if on_card:
            backend += f"; torch float64 on the card: {timings[2].median_s * 1e3:.1f} ms"
        session.log(
            f"micro exact {rows} x 1: exact_statistics ({backend}) {exact.median_s * 1e3:.2f} ms, "
            f"sample_and_reduce {SAMPLES} samples {sampled.median_s * 1e3:.2f} ms"
        )
        out.append(
            session.row(
                f"micro exact stats {rows}x1",
                exact.median_s,
                f"sample_and_reduce, {SAMPLES} samples",
                sampled.median_s,
                gemm_gflops=0.0,
                unique_contexts=rows,
                notes=f"exact_statistics ({backend}; quantiles to |F - q| <= 1e-10), K={COMPONENTS}, aggregates "
                f"{'+'.join(AGGREGATES)}; rows/s in the contexts/s column",
            )
        )
    return out


def pack_requests(frames: dict, num_simulations: int, patch: int = 64) -> tuple[list, dict]:
    """Sources (one float64 percent-change series per (series, key)) and (series, start, end,
    padded_length) requests of every unique context, bucketed by padded length as the engine does."""
    plan = forecast_plan(frames, num_simulations)
    sources = [s.pct[key] for s in plan.series for key in plan.keys]
    buckets: dict = {}
    for i in range(len(plan)):
        source = int(plan.req_series[i]) * len(plan.keys) + int(plan.req_key[i])
        length = int(plan.req_length[i])
        padded = -(-length // patch) * patch
        buckets.setdefault(padded, []).append((source, 1, length + 1, padded))
    return sources, {p: np.asarray(r, dtype=np.int64) for p, r in sorted(buckets.items())}


def _pack_all(pack, sources: list, buckets: dict) -> list:
    return [pack(sources, rows, width) for width, rows in buckets.items()]


def bench_pack(session: BenchSession) -> list:
    status = native_status()
    out = []
    cases = (("W1", w1_frames(), WORKLOADS["W1"].num_simulations), ("W2", w2_frames(), WORKLOADS["W2"].num_simulations))
    for name, frames, k in cases:
        sources, buckets = pack_requests(frames, k)
        count = sum(len(r) for r in buckets.values())
        nbytes = sum(len(r) * p * 5 for p, r in buckets.items())  # float32 values + bool mask written
        (engine, baseline), _ = time_interleaved(
            [
                same_call(_pack_all, pack_contexts, sources, buckets),
                same_call(_pack_all, numpy_pack_reference, sources, buckets),
            ],
            torch.device("cpu"),
            [max(session.options.repeats, 5)] * 2,
        )
        session.log(
            f"micro pack {name} ({count} contexts): pack_contexts {engine.median_s * 1e3:.2f} ms, "
            f"numpy loop {baseline.median_s * 1e3:.2f} ms"
        )
        out.append(
            session.row(
                f"micro pack {name} ({count} contexts)",
                engine.median_s,
                "numpy slicing loop (numpy_pack_reference)",
                baseline.median_s,
                gemm_gflops=0.0,
                unique_contexts=count,
                notes=f"host packing (CPU even on a GPU run); {nbytes / engine.median_s / 1e9:.2f} GB/s written; "
                f"packer: {status.get('pack')}, {status.get('pack_threads')} threads",
            )
        )
    return out


def bench_int8(session: BenchSession) -> list:
    """int8 vs fp32 matmul, when ``totowalk.precision`` exists (another engineer's work in progress)."""
    if importlib.util.find_spec("totowalk.precision") is None:
        session.log("micro int8: totowalk.precision is not present; skipped")
        return []
    from . import int8_micro

    return int8_micro.bench_int8(session)


def bench_micro(session: BenchSession) -> list:
    return bench_sampling(session) + bench_exact(session) + bench_pack(session) + bench_int8(session)
