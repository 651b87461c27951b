"""A universe's simulations table in Parquet, from the run's stored parts: each part unpacked into a
cell per array (what write_outputs did) against the packed parts' values and offsets turned into
Arrow lists as they are (store.PackedFrame).

The parts are synthetic, shaped as a run's simulations parts are (bench_csv.simulations_part: a
symbol, a date, 100 float columns and 20 columns of daily-value lists), saved by the run's own
store (RunStore.save_part) and written by the run's own writer (report/files.py's write_table),
the two sides alternating; the row prints the medians, the ratio and whether the files are the
same bytes:

    python bench/bench_parquet.py --parts 16 --rows 8000 --repeats 3

``--compare dictionaries`` times, on the packed parts, dictionaries on every column (pyarrow's
default, what write_outputs did) against dictionaries on the repeating columns only (files.py's
``_repeating``: all but floats and lists), and prints both files' sizes and whether they hold the
same table:

    python bench/bench_parquet.py --compare dictionaries --parts 16 --rows 8000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_csv import simulations_part

from totowalk.backtest.forecast.store import RunStore
from totowalk.backtest.report import files
from totowalk.backtest.report.files import table_file, write_table
from totowalk.provenance import cpu_description, git_commit, today


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=16, help="stored parts (chunks of symbols)")
    parser.add_argument("--rows", type=int, default=8000, help="rows a part ((symbol, simulation) pairs)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", choices=("packing", "dictionaries"), default="packing")
    args = parser.parse_args(argv)
    sides = ("unpacked", "packed") if args.compare == "packing" else ("every column", "repeating columns")
    repeating = files._repeating
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "run", "bench", {"profile": "clean"}, resume=False)
        for index in range(args.parts):
            store.save_part(index, [f"chunk{index}"], {"simulations": simulations_part(args.rows, seed=index)})
        seconds: dict[str, list] = {side: [] for side in sides}
        written = {}
        for _ in range(args.repeats):
            for k, side in enumerate(sides):
                out = Path(folder) / f"side{k}"
                out.mkdir(exist_ok=True)
                packed = side != "unpacked"
                parts = (store.load_part(i, [f"chunk{i}"], "simulations", packed=packed) for i in range(args.parts))
                files._repeating = (lambda schema: True) if side == "every column" else repeating
                try:
                    started = time.perf_counter()
                    write_table(table_file(out, "simulations", "parquet"), parts)
                    seconds[side].append(time.perf_counter() - started)
                finally:
                    files._repeating = repeating
                written[side] = (out / "simulations.parquet").read_bytes()
        if args.compare == "dictionaries":
            import pyarrow.parquet as pq

            tables = [pq.read_table(Path(folder) / f"side{k}" / "simulations.parquet") for k in range(2)]
            same = f"same table: {tables[0].equals(tables[1])}"
        else:
            same = f"same bytes: {written[sides[0]] == written[sides[1]]}"
    slow, fast = (statistics.median(seconds[side]) for side in sides)
    sizes = ", ".join(f"{side} {len(written[side]) / 1e6:.1f} MB" for side in sides)
    print(f"{today()} {git_commit()} {cpu_description()}")
    print(
        f"simulations table, {args.parts} parts x {args.rows:,} rows ({sizes} of Parquet), read from the stored "
        f"parts and written: {sides[0]} {slow:.3f} s, {sides[1]} {fast:.3f} s, {slow / fast:.2f}x "
        f"(medians of {args.repeats}); {same}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
