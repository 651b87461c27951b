"""The whole W2 backtest at several chunk sizes: how much host work hides behind the forecast.

A run cuts its symbols into chunks of about ``contexts_per_chunk`` forecast contexts; the next
chunk's forecast runs while the host evaluates this one (``backtest/chunks.py``), so what stays
exposed is the first chunk's forecast wait, the last chunk's strategies and the run's tables. Fewer
contexts per chunk expose less host work but give the engine smaller calls. Each size runs the
same ``tw.backtest`` (the numbers do not depend on the chunking: checked here), the sizes alternating
within each repeat so all see the same machine; a row gives the whole time, the engine's own
forecast time summed over chunks, their ratio (issue 31: <= 1.3x on a card) and the host phases.

    python bench/bench_chunks.py --preset toto-open-base-1.0 --device cuda --precision fp16 \\
        --chunks 32768 16384 8192 4096 --profiles clean legacy --statistics-backend triton --scores-backend triton
    python bench/bench_chunks.py --series 4 --sims 25 --chunks 800 400 200   # a CPU slice, toto-mini

``--host-workers 0 8`` also times each size with the chunks' strategies evaluated in 8 worker
processes (``backtest(host_workers=8)``: that host work holds the GIL, so only processes spread it
over a many-core host's cores).
"""

from __future__ import annotations

import argparse
import statistics

import pandas as pd
import torch

import totowalk as tw
from totowalk.benchmarks.workloads import w2_frames
from totowalk.precision.convert import convert_precision
from totowalk.provenance import git_commit, machine_description, today

PHASES = ("prepare", "forecast", "scores", "strategies", "tables")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[32768, 16384, 8192, 4096], help="contexts per chunk")
    parser.add_argument("--profiles", nargs="+", choices=("clean", "legacy"), default=["clean", "legacy"])
    parser.add_argument("--series", type=int, default=24, help="W2 series (default all 24)")
    parser.add_argument("--sims", type=int, default=250, help="simulations per series")
    parser.add_argument("--model", default="toto-mini")
    parser.add_argument("--preset", default=None, help="random weights of this preset instead of --model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--max-batch", type=int, default=None, help="contexts per engine call (the backtest's default)")
    parser.add_argument("--statistics-backend", default="auto", help="the clean engine's exact statistics")
    parser.add_argument("--scores-backend", default="auto", help="the clean runs' exact scores")
    parser.add_argument(
        "--host-workers", type=int, nargs="+", default=[0], help="worker processes evaluating strategies (0: none)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats after one warm-up; medians reported")
    args = parser.parse_args(argv)
    if args.preset:
        model = tw.build_model(tw.TotoConfig.preset(args.preset), seed=0).to(args.device)
        name = f"random:{args.preset}"
    else:
        model, name = tw.load_model(args.model, device=args.device), args.model
    model = convert_precision(model, args.precision, args.device).eval()
    engines = {
        "clean": tw.ForecastEngine(
            model, device=args.device, estimator="exact", statistics_backend=args.statistics_backend
        ),
        "legacy": tw.ForecastEngine(model, num_samples=128, device=args.device, estimator="sampled"),
    }
    frames = w2_frames(num_series=args.series)
    print(
        f"{today()} {git_commit()} {machine_description(torch.device(args.device))}; W2 {len(frames)} series x "
        f"{args.sims} simulations, model {name}, {args.precision}, {torch.get_num_threads()} torch threads; "
        f"clean: statistics {args.statistics_backend}, scores {args.scores_backend}"
    )

    def run(profile: str, chunk: int, workers: int, sims: int):
        extra = {"scores_backend": args.scores_backend} if profile == "clean" else {}
        return tw.backtest(
            frames,
            num_simulations=sims,
            engine=engines[profile],
            profile=profile,
            max_batch=args.max_batch,
            contexts_per_chunk=chunk,
            host_workers=workers,
            **extra,
        )

    timings = {(p, c, w): [] for p in args.profiles for c in args.chunks for w in args.host_workers}
    first = {}
    for repeat in range(args.repeats + 1):  # the first round warms up (shapes, kernels, worker processes)
        for profile, chunk, workers in timings:
            result = run(profile, chunk, workers, args.sims)
            if repeat == 0:
                if profile in first:  # neither the chunking nor the workers change a number
                    pd.testing.assert_frame_equal(result.summary, first[profile])
                first.setdefault(profile, result.summary)
            else:
                timings[profile, chunk, workers].append(dict(result.timings))
    print(
        "| profile | contexts per chunk | host workers | whole s | forecast s | whole / forecast | "
        + " | ".join(PHASES[2:])
        + " |"
    )
    print("|---|---|---|---|---|---|" + "---|" * len(PHASES[2:]))
    for (profile, chunk, workers), runs in timings.items():
        median = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in ("total", *PHASES)}
        ratio = median["total"] / median["forecast"] if median["forecast"] else float("nan")
        phases = " | ".join(f"{median[k]:.3f}" for k in PHASES[2:])
        print(
            f"| {profile} | {chunk} | {workers} | {median['total']:.3f} | {median['forecast']:.3f} | {ratio:.2f}x | "
            f"{phases} |"
        )


if __name__ == "__main__":
    main()
