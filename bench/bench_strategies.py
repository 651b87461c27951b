"""Strategy evaluation at universe scale: ``tw.backtest`` over W2's series with precomputed forecasts.

The model is out of the picture (a last-value forecaster answers every context), so the time is
the backtest layer's own: planning, the legacy strategy grids over all (series, simulation) pairs
(MaxDiff 500 offsets, MaxDiffAlwaysOn 81 x 81), metrics, result and forecast tables. Compare
commits by running this script from each checkout on the same machine, back to back;
``--array-grids`` also times the MaxDiff grid searches without the extension (the array path the
compiled searches replace, bit-identical), alternating with the default, in the same process.

    python bench/bench_strategies.py [--profile legacy|clean] [--series 24] [--simulations 50] [--repeats 3]
                                     [--threads N] [--array-grids] [--unfrozen]

Each line also gives the mean and longest run and the garbage collector's seconds in the timed runs
(its full passes walk every object the process tracks); ``--unfrozen`` times ``tw.backtest`` without
its frozen heap (totowalk.memory.frozen_heap), as before it had one: run it in its own process, beside
a run without the flag, since one process's earlier runs move when the collector's passes fall.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time

import numpy as np
import pandas as pd
import torch

import totowalk as tw
from totowalk.backtest.profiles import native_grids
from totowalk.benchmarks.workloads import w1_frames, w2_frames
from totowalk.provenance import git_commit


def last_value_forecaster(contexts):
    return np.array([c[-1] for c in contexts], dtype=np.float32)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workload",
        choices=("W2", "W1"),
        default="W2",
        help="W2's series (default), or W1's one series (its fixed per-run costs; --series is then 1)",
    )
    parser.add_argument("--series", type=int, default=24, help="W2 series (<= 24)")
    parser.add_argument("--simulations", type=int, default=50, help="simulations per series")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up; the median is reported")
    parser.add_argument("--profile", choices=["legacy", "clean"], default="legacy")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--array-grids",
        action="store_true",
        help="also time the MaxDiff grid searches without the extension, alternating",
    )
    parser.add_argument(
        "--host-workers",
        type=int,
        default=0,
        metavar="N",
        help="also time each run with its strategies and tables evaluated in N worker processes "
        "(backtest(host_workers=N)), alternating with the one-process run; the tables are checked equal",
    )
    parser.add_argument("--contexts-per-chunk", type=int, default=None, help="backtest(contexts_per_chunk=)")
    parser.add_argument(
        "--unfrozen",
        action="store_true",
        help="time tw.backtest without its frozen heap (the collector's passes walk every object)",
    )
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    parser.add_argument(
        "--cprofile",
        type=int,
        default=0,
        metavar="ROWS",
        help="after the timed runs, one more run under cProfile: print its ROWS functions of "
        "largest cumulative time (where a host's strategy and table phases go)",
    )
    parser.add_argument(
        "--split",
        type=int,
        default=0,
        metavar="N",
        help="instead: the series cut into N groups, each its own tw.backtest, run one after the other and "
        "in N threads, alternating (how far the host work scales in threads of one process)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.workload == "W1":
        frames, args.series = w1_frames(), 1
    else:
        frames = w2_frames(num_series=args.series)
    if args.split:
        return _split(frames, args)
    native_search = native_grids.native_search
    variants = {"default": (native_search, 0)}
    if args.array_grids:
        variants["array grids"] = (lambda name: None, 0)
    if args.host_workers:
        variants[f"{args.host_workers} host workers"] = (native_search, args.host_workers)
    run = tw.backtest.__wrapped__ if args.unfrozen else tw.backtest
    times = {name: [] for name in variants}
    collector = {name: [] for name in variants}  # the garbage collector's seconds in each timed run
    phases = {name: [] for name in variants}  # BacktestResult.timings of each timed run
    passes = _CollectorClock()
    tables = {}  # each variant's last simulations table: every variant must give the same
    for repeat in range(args.repeats + 1):  # the first round warms up (and starts any workers)
        for name, (search, workers) in variants.items():
            native_grids.native_search = search
            options = {"host_workers": workers} if workers else {}
            if args.contexts_per_chunk:
                options["contexts_per_chunk"] = args.contexts_per_chunk
            passes.seconds = 0.0
            start = time.perf_counter()
            result = run(
                frames,
                num_simulations=2 if repeat == 0 else args.simulations,
                forecaster=last_value_forecaster,
                profile=args.profile,
                **options,
            )
            if repeat:
                times[name].append(time.perf_counter() - start)
                collector[name].append(passes.seconds)
                phases[name].append(getattr(result, "timings", {}))  # older trees: no phases
                if repeat == args.repeats:
                    tables[name] = result.simulations
    native_grids.native_search = native_search
    first = tables.pop("default")
    for name, table in tables.items():
        pd.testing.assert_frame_equal(table, first, check_exact=True, obj=name)
    if args.cprofile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(
            tw.backtest,
            frames,
            num_simulations=args.simulations,
            forecaster=last_value_forecaster,
            profile=args.profile,
        )
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.cprofile)
    pairs = args.series * args.simulations
    commit = git_commit()  # the measured tree's (run_tree.py: the other checkout's), not the working folder's
    native = "compiled grids" if native_search("maxdiff_search") else "no extension: array grids"
    gc.callbacks.remove(passes.callback)
    for name, runs in times.items():
        median = statistics.median(runs)
        label = native if name == "default" else name
        if name.endswith("host workers"):
            label = f"{native}, {name}"
        if args.unfrozen:
            label += ", heap not frozen"
        phase_medians = {p: statistics.median(t[p] for t in phases[name]) for p in phases[name][0]}
        print(
            f"tw.backtest {args.profile} ({label}), {args.workload} {args.series} series x {args.simulations} simulations "
            f"({pairs} pairs), point forecasts: {median * 1e3:.1f} ms median of {args.repeats} "
            f"({median / pairs * 1e3:.2f} ms per simulation); torch threads {torch.get_num_threads()}, "
            f"{platform.processor() or platform.machine()}, commit {commit}"
        )
        print(
            f"  mean {statistics.mean(runs) * 1e3:.1f} ms, longest {max(runs) * 1e3:.1f} ms; garbage collector "
            f"{sum(collector[name]) * 1e3:.0f} ms in the {len(runs)} runs, longest {max(collector[name]) * 1e3:.1f} ms"
        )
        if phase_medians:
            print(
                "  phases (median ms): "
                + ", ".join(f"{p} {t * 1e3:.1f}" for p, t in phase_medians.items())
                + "; the strategy phase is 'strategies' (walk-forward arrays + every strategy row)"
            )
        if args.json:
            print(
                json.dumps(
                    {
                        "bench": "strategies",
                        "variant": label,
                        "profile": args.profile,
                        "series": args.series,
                        "simulations": args.simulations,
                        "median_s": median,
                        "times_s": runs,
                        "collector_s": collector[name],
                        "phases_median_s": phase_medians,
                        "threads": torch.get_num_threads(),
                        "commit": commit,
                    }
                )
            )


class _CollectorClock:
    """The garbage collector's seconds since :attr:`seconds` was last set (``gc.callbacks``)."""

    def __init__(self):
        self.seconds, self._start = 0.0, None
        gc.callbacks.append(self.callback)

    def callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.seconds += time.perf_counter() - self._start


def _split(frames: dict, args) -> None:
    """The series in ``args.split`` groups, each group one tw.backtest: one after the other against
    one thread per group, alternating, medians of ``args.repeats`` after a warm-up of each."""
    from concurrent.futures import ThreadPoolExecutor

    names = list(frames)
    groups = [{n: frames[n] for n in names[i :: args.split]} for i in range(args.split)]

    def one(group):
        return tw.backtest(
            group, num_simulations=args.simulations, forecaster=last_value_forecaster, profile=args.profile
        )

    times = {"one after the other": [], f"{args.split} threads": []}
    with ThreadPoolExecutor(args.split) as pool:
        for repeat in range(args.repeats + 1):  # the first round warms up
            for name in times:
                start = time.perf_counter()
                if name.endswith("threads"):
                    list(pool.map(one, groups))
                else:
                    [one(g) for g in groups]
                if repeat:
                    times[name].append(time.perf_counter() - start)
    serial, threaded = (statistics.median(t) for t in times.values())
    print(
        f"tw.backtest {args.profile}, {args.series} series x {args.simulations} simulations in {args.split} groups, "
        f"point forecasts, torch threads {torch.get_num_threads()}: one after the other {serial:.3f} s, "
        f"{args.split} threads {threaded:.3f} s ({serial / threaded:.2f}x; medians of {args.repeats}); "
        f"times {[round(t, 3) for t in times['one after the other']]} vs {[round(t, 3) for t in times[f'{args.split} threads']]}"
    )


if __name__ == "__main__":
    main()
