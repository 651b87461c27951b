"""Loading and validating a many-symbol price panel: whole-panel checks against the per-symbol path.

A generated panel (default 500 symbols x 800 business days from 2020-01-01 = 400,000 rows, one CSV
with Date, Ticker, Open, High, Low, Close, Volume) goes through

- ``load_prices(csv)`` (what ``totowalk backtest --data panel.csv`` calls) against
  ``load_prices_per_symbol(csv)``, the path that validates one symbol at a time; once clean, once
  with one bad row (whose symbol the fast path hands to the per-symbol checks, reading the text);
- ``collect_frames`` (the input stage of ``totowalk.backtest.backtest``) on the same panel given
  in code: one multi-symbol frame as ``pd.read_csv`` gives it, a ``{symbol: frame}`` dict with a
  Date column of text, and a dict of date-indexed frames; against the same call with the
  per-symbol paths patched in (load_prices_per_symbol, and each frame's dates parsed on their own).

Both sides run in this process on the same data, alternating; each side's frames are checked equal.
Usage: python bench/bench_load.py [--symbols 500] [--bars 800] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from universe import synthetic_panel, write_panel  # bench/ is this script's folder

import totowalk
from totowalk.backtest.inputs import frames as frames_module
from totowalk.backtest.inputs.frames import collect_frames
from totowalk.data.prices import load_prices, load_prices_per_symbol


@contextlib.contextmanager
def per_symbol_paths():
    """collect_frames as it ran before the whole-panel checks: load_prices symbol by symbol, and
    every frame's Date column parsed on its own."""
    saved = frames_module.load_prices, frames_module.exchange_dates_of_each
    frames_module.load_prices = load_prices_per_symbol
    frames_module.exchange_dates_of_each = lambda columns: [None] * len(columns)
    try:
        yield
    finally:
        frames_module.load_prices, frames_module.exchange_dates_of_each = saved


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _same_frames(a: dict, b: dict) -> bool:
    """Same symbols in the same order, each frame equal (values, dtypes, index) with equal attrs."""
    if list(a) != list(b):
        return False
    try:
        for s in a:
            pd.testing.assert_frame_equal(a[s], b[s], check_index_type=True)
    except AssertionError:
        return False
    return all(a[s].attrs == b[s].attrs for s in a)


def compare(name: str, rows: int, fast, reference, repeats: int, reference_repeats: int) -> dict:
    """Median seconds of each side, alternating (reference first), after one untimed warm-up call."""
    fast()
    fast_s, ref_s = [], []
    for i in range(max(repeats, reference_repeats)):
        if i < reference_repeats:
            seconds, expected = _timed(reference)
            ref_s.append(seconds)
        if i < repeats:
            seconds, got = _timed(fast)
            fast_s.append(seconds)
    per_symbol, panel = statistics.median(ref_s), statistics.median(fast_s)
    return {
        "case": name,
        "rows": rows,
        "per_symbol_s": per_symbol,
        "panel_s": panel,
        "speedup": per_symbol / panel,
        "same_frames": _same_frames(got, expected),
        "per_symbol_runs": ref_s,
        "panel_runs": fast_s,
    }


def run(num_symbols: int, num_bars: int, repeats: int, reference_repeats: int) -> list[dict]:
    panel = synthetic_panel(num_symbols, num_bars)  # bench/universe.py's panel: the universe runs load it
    rows = len(panel)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "panel.csv")
        write_panel(panel, path)
        results.append(
            compare(
                "load_prices(panel.csv)",
                rows,
                lambda: load_prices(path),
                lambda: load_prices_per_symbol(path),
                repeats,
                reference_repeats,
            )
        )
        damaged = panel.copy()
        damaged.loc[len(damaged) // 2, "Close"] = np.nan  # one bad row: its symbol goes the per-symbol way
        damaged_path = os.path.join(folder, "damaged.csv")
        damaged.to_csv(damaged_path, index=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the repair's warning
            results.append(
                compare(
                    "load_prices(panel.csv with one NaN Close, on_invalid='drop')",
                    rows,
                    lambda: load_prices(damaged_path, on_invalid="drop"),
                    lambda: load_prices_per_symbol(damaged_path, on_invalid="drop"),
                    repeats,
                    reference_repeats,
                )
            )
        as_read = pd.read_csv(path)  # text dates, float prices: a frame given in code
    by_symbol = {s: part.drop(columns="Ticker").reset_index(drop=True) for s, part in as_read.groupby("Ticker")}
    indexed = {s: f.set_index(pd.DatetimeIndex(pd.to_datetime(f["Date"]), name="Date")) for s, f in by_symbol.items()}
    inputs = {
        "collect_frames(multi-symbol frame)": as_read,
        "collect_frames({symbol: frame with Date column})": by_symbol,
        "collect_frames({symbol: date-indexed frame})": {s: f.drop(columns="Date") for s, f in indexed.items()},
    }
    for name, prices in inputs.items():

        def reference(prices=prices):
            with per_symbol_paths():
                return collect_frames(prices, None, None)

        results.append(
            compare(name, rows, lambda prices=prices: collect_frames(prices, None, None), reference, repeats, 1)
        )
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the whole-panel side")
    parser.add_argument("--reference-repeats", type=int, default=1, help="timed runs of the per-symbol side")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results = run(args.symbols, args.bars, args.repeats, args.reference_repeats)
    print(
        f"totowalk {totowalk.__version__}, pandas {pd.__version__}, numpy {np.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, 1-minute load {load:.2f} at start; "
        f"{args.symbols} symbols x {args.bars} bars; per-symbol side: median of {args.reference_repeats}, "
        f"whole-panel side: median of {args.repeats} (after a warm-up)"
    )
    print()
    print("| case | rows | per-symbol s | whole-panel s | speed-up | same frames |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['case']} | {r['rows']:,} | {r['per_symbol_s']:.2f} | {r['panel_s']:.2f} | "
            f"{r['speedup']:.1f}x | {'yes' if r['same_frames'] else 'NO'} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0 if all(r["same_frames"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
