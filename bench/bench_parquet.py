"""A universe's simulations table in Parquet, from the run's stored parts: each part unpacked into a
cell per array (what write_outputs did) against the packed parts' values and offsets turned into
Arrow lists as they are (store.PackedFrame).

The parts are synthetic, shaped as a run's simulations parts are (bench_csv.simulations_part: a
symbol, a date, 100 float columns and 20 columns of daily-value lists), saved by the run's own
store (RunStore.save_part) and written by the run's own writer (report/files.py's write_table),
the two sides alternating; the row prints the medians, the ratio and whether the files are the
same bytes:

    python bench/bench_parquet.py --parts 16 --rows 8000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_csv import simulations_part

from totowalk.backtest.forecast.store import RunStore
from totowalk.backtest.report.files import table_file, write_table
from totowalk.provenance import cpu_description, git_commit, today


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=16, help="stored parts (chunks of symbols)")
    parser.add_argument("--rows", type=int, default=8000, help="rows a part ((symbol, simulation) pairs)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "run", "bench", {"profile": "clean"}, resume=False)
        for index in range(args.parts):
            store.save_part(index, [f"chunk{index}"], {"simulations": simulations_part(args.rows, seed=index)})
        seconds: dict[str, list] = {"unpacked": [], "packed": []}
        written = {}
        for _ in range(args.repeats):
            for side in seconds:
                out = Path(folder) / side
                out.mkdir(exist_ok=True)
                parts = (
                    store.load_part(i, [f"chunk{i}"], "simulations", packed=side == "packed") for i in range(args.parts)
                )
                started = time.perf_counter()
                write_table(table_file(out, "simulations", "parquet"), parts)
                seconds[side].append(time.perf_counter() - started)
                written[side] = (out / "simulations.parquet").read_bytes()
    slow, fast = (statistics.median(seconds[side]) for side in ("unpacked", "packed"))
    print(f"{today()} {git_commit()} {cpu_description()}")
    print(
        f"simulations table, {args.parts} parts x {args.rows:,} rows ({len(written['packed']) / 1e6:.1f} MB of "
        f"Parquet), read from the stored parts and written: unpacked {slow:.3f} s, packed {fast:.3f} s, "
        f"{slow / fast:.2f}x (medians of {args.repeats}); same bytes: {written['packed'] == written['unpacked']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
