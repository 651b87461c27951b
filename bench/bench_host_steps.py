"""The host's steps of a backtest, each timed alone: where W2's host work goes, step by step.

One ``tw.backtest`` of W2's series with point forecasts (a last-value forecaster: no model) runs
first; its chunks' tables, its daily table and its expected-fill bookings are kept. Then each step
is timed by itself on those inputs, the steps taken in turn (round robin), so that a change of load
spreads over all of them:

* ``MaxDiff fits`` and ``AlwaysOn fits`` (clean): each chunk's walk-forward offsets of MaxDiff and
  MaxDiffAlwaysOn (``profiles.clean.strategies``: the compiled fits when the extension is built);
* ``final days``: each chunk's final-day table (``stats.daily.final_day_table``);
* ``summary rows``: each chunk's per-symbol summary rows, the clean headline included
  (``profiles.summary.symbol_rows``, as ``kept.summary_pieces`` calls it);
* ``statistics``: the run's statistics table (``stats.table.performance_table``), after the last
  chunk, where nothing overlaps it;
* ``expected fills`` (clean): the run's round trips booked with expected fills
  (``profiles.clean.fills.round_trip_profit``: the intrabar bridge).

A step's time is far steadier than the whole run's (whose median moves by up to 25 % between
processes on a loaded machine), so two checkouts compare best step by step. Alternate processes,
another checkout through bench/run_tree.py (its commit is the one printed):

    python bench/run_tree.py /tmp/old bench/bench_host_steps.py --profile clean
    python bench/bench_host_steps.py --profile clean [--simulations 250] [--repeats 20] [--json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import time

import numpy as np

import totowalk as tw
from totowalk.benchmarks.workloads import w2_frames
from totowalk.provenance import git_commit


def last_value_forecaster(contexts):
    return np.array([c[-1] for c in contexts], dtype=np.float32)


def _module(name: str):
    return importlib.import_module(f"totowalk.backtest.{name}")  # tw.backtest is the function


def _kept_inputs(profile: str, simulations: int, series: int) -> tuple:
    """One backtest, with what the steps read: its rules, each chunk's tables, the result, the
    (args, kwargs) of every expected-fill booking and each chunk's clean strategy inputs."""
    kept, strategies = _module("kept"), _module("profiles.clean.strategies")
    parts, bookings, fit_inputs = [], [], []
    add, book, fit = kept.KeptForSummaries.add, strategies.round_trip_profit, strategies._maxdiff_offsets

    def keep(self, part):
        parts.append((self.rules, part))
        return add(self, part)

    def record(*args, **kwargs):
        model = kwargs.get("fill_model", args[8] if len(args) > 8 else "adverse")
        if model == "expected":
            bookings.append((args, kwargs))
        return book(*args, **kwargs)

    def fit_and_keep(inp):
        fit_inputs.append(inp)
        return fit(inp)

    kept.KeptForSummaries.add, strategies.round_trip_profit, strategies._maxdiff_offsets = keep, record, fit_and_keep
    try:
        result = tw.backtest(
            w2_frames(num_series=series),
            num_simulations=simulations,
            forecaster=last_value_forecaster,
            profile=profile,
        )
    finally:
        kept.KeptForSummaries.add, strategies.round_trip_profit, strategies._maxdiff_offsets = add, book, fit
    return parts, result, bookings, fit_inputs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["legacy", "clean"], default="clean")
    parser.add_argument("--series", type=int, default=24, help="W2 series (<= 24)")
    parser.add_argument("--simulations", type=int, default=250, help="simulations per series")
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds; each step's median is reported")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    args = parser.parse_args(argv)
    daily, summary, table = _module("stats.daily"), _module("profiles.summary"), _module("stats.table")
    fills, strategies = _module("profiles.clean.fills"), _module("profiles.clean.strategies")
    parts, result, bookings, fit_inputs = _kept_inputs(args.profile, args.simulations, args.series)
    days = [daily.final_day_table(part["simulations"], rules.strategy_prefixes) for rules, part in parts]
    numeric = [summary.numeric_columns(part["simulations"]) for _, part in parts]
    per_year = table.days_per_year_of(result.settings)

    def final_days():
        for rules, part in parts:
            daily.final_day_table(part["simulations"], rules.strategy_prefixes)

    def summary_rows():
        for (rules, part), chunk_days, chunk_numeric in zip(parts, days, numeric):
            rows = summary.summary_columns(part["simulations"])
            summary.symbol_rows(rows, rules.best_strategy, rules.summary_headline, chunk_days, chunk_numeric)

    def statistics_table():
        table.performance_table(result.daily, per_year)

    def expected_fills():
        for book_args, book_kwargs in bookings:
            fills.round_trip_profit(*book_args, **book_kwargs)

    def maxdiff_fits():
        for inp in fit_inputs:
            strategies._maxdiff_offsets(inp)

    def always_on_fits():
        for inp in fit_inputs:
            strategies._always_on_offsets(inp)

    # The fits come first: right after the statistics' matrix products, OpenBLAS' threads still
    # spin and take a core from the fits' threads (the fits measured up to 2x slower there).
    steps = {"MaxDiff fits": maxdiff_fits, "AlwaysOn fits": always_on_fits} if fit_inputs else {}
    steps.update({"statistics": statistics_table, "final days": final_days, "summary rows": summary_rows})
    if bookings:
        steps["expected fills"] = expected_fills
    times = {name: [] for name in steps}
    for repeat in range(args.repeats + 1):  # the first round warms up
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if repeat:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    commit = git_commit()  # the measured tree's (run_tree.py: the other checkout's)
    print(
        f"host steps, {args.profile}, W2 {args.series} series x {args.simulations} simulations "
        f"({len(parts)} chunks, point forecasts), median ms of {args.repeats}: "
        + ", ".join(f"{name} {m * 1e3:.1f}" for name, m in medians.items())
        + f"; {platform.processor() or platform.machine()}, commit {commit}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "bench": "host_steps",
                    "profile": args.profile,
                    "series": args.series,
                    "simulations": args.simulations,
                    "chunks": len(parts),
                    "median_s": medians,
                    "times_s": times,
                    "commit": commit,
                }
            )
        )


if __name__ == "__main__":
    main()
