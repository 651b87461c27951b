"""The engine's host work before any model call, in the two request forms, side by side.

A backtest's W2 requests, in its chunks (``ForecastPlan.batches``), prepared as the engine prepares
them: converted and checked, content-hashed (the random-stream keys), deduplicated, grouped for
prefix sharing and cut into batches. The list form gets a float32 copy of every context (what the
backtest passed before it used the walk-forward form); the walk-forward form gets each series once
and its contexts as views with their family (``ForecastEngine.forecast_walk_forward``). No model
runs: on a GPU this host work is what the card waits on (bench/RESULTS.md).

    python bench/bench_forecast_host.py [--series 24] [--sims 250] [--repeats 3] [--hash]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import totowalk as tw
from totowalk.benchmarks.workloads import forecast_plan, w2_frames
from totowalk.engine.inputs import ContextBatch, normalize_contexts
from totowalk.engine.plan import plan_forecast
from totowalk.engine.prefix_sharing import ScalerSettings
from totowalk.provenance import git_commit, machine_description, today

BUDGET = 16384  # the engine's default patch tokens per model call


def list_form(plan, chunks, settings) -> None:
    for idx in chunks:
        contexts = [
            plan.series[plan.req_series[i]]
            .pct[plan.keys[plan.req_key[i]]][1 : plan.req_length[i] + 1]
            .astype(np.float32)
            for i in idx
        ]
        plan_forecast(normalize_contexts(contexts), settings.patch_size, BUDGET, share_prefixes=settings)


def walk_forward_form(plan, chunks, settings) -> None:
    for idx in chunks:
        series, ends, _ = plan.walk_forward(idx)
        contexts, families = [], []
        for family, (values, lengths) in enumerate(zip(series, ends)):
            whole = normalize_contexts([values]).series[0]
            contexts += [whole[:, :e] for e in lengths.tolist()]
            families += [family] * len(lengths)
        batch = ContextBatch(contexts, False, 1, lengths=np.concatenate(ends))
        plan_forecast(batch, settings.patch_size, BUDGET, share_prefixes=settings, families=np.asarray(families))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=24)
    parser.add_argument("--sims", type=int, default=250)
    parser.add_argument("--max-batch", type=int, default=32768, help="contexts per engine call (CUDA default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--hash",
        action="store_true",
        help="time only the content hashes of the contexts: the extension on 1 thread and on its "
        "default threads, against hashlib on 1 thread, alternating",
    )
    args = parser.parse_args(argv)
    frames = dict(list(w2_frames().items())[: args.series])
    plan = forecast_plan(frames, args.sims)
    chunks = plan.batches(args.max_batch)
    settings = ScalerSettings.from_config(tw.TotoConfig.preset("toto-open-base-1.0"))
    if args.hash:
        return _hashes(plan, args)
    times = {"list": [], "walk-forward": []}
    for _ in range(args.repeats):  # alternating: both forms see the same machine load
        for name, run in (("list", list_form), ("walk-forward", walk_forward_form)):
            start = time.perf_counter()
            run(plan, chunks, settings)
            times[name].append(time.perf_counter() - start)
    print(
        f"{today()} {git_commit()} {machine_description(torch.device('cpu'))}; {len(frames)} series x {args.sims} simulations, "
        f"{len(plan)} requests in {len(chunks)} chunks"
    )
    for name, values in times.items():
        print(f"  {name}: median {np.median(values):.3f} s, times {[round(v, 3) for v in values]}")


def _hashes(plan, args) -> None:
    from totowalk import _C
    from totowalk.engine.inputs import content_digest

    contexts = [plan.context(i)[None, :] for i in range(len(plan))]
    runs = {
        "extension, 1 thread": lambda: _C.content_digests(contexts, threads=1),
        "extension, default threads": lambda: _C.content_digests(contexts),
        "hashlib, 1 thread": lambda: [content_digest(c) for c in contexts],
    }
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(
        f"{today()} {git_commit()} {machine_description(torch.device('cpu'))}; content hashes of {len(contexts)} "
        f"contexts ({sum(c.nbytes for c in contexts) / 1e6:.0f} MB)"
    )
    for name, values in times.items():
        print(f"  {name}: median {np.median(values):.3f} s, times {[round(v, 3) for v in values]}")


if __name__ == "__main__":
    main()
