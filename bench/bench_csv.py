"""A run's CSV tables: pandas' ``to_csv`` against the compiled writer (report/csv_text.py).

Two synthetic parts shaped as a run's tables are: a forecasts part (symbol, simulation, key, step,
context_end, two dates, float32 prediction and band, float64 actual, pit, crps) and a simulations
part (a symbol, a date and 100 float columns beside 20 columns of daily-value lists, written as
their JSON text). Both sides write each part into memory, the sides alternating; the row prints the
medians, the ratio and whether the bytes are the same:

    python bench/bench_csv.py --forecast-rows 300000 --simulation-rows 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

KEYS = ("Close", "Low", "High", "Open")


def forecasts_part(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2021-01-04") + rng.integers(0, 800, rows)
    return pd.DataFrame(
        {
            "symbol": pd.Series(np.char.add("U", (np.arange(rows) // 7_000).astype(str)), dtype="str"),
            "simulation": np.arange(rows) // 28 % 250,
            "key": pd.Series(np.array(KEYS)[np.arange(rows) // 7 % 4], dtype="str"),
            "step": np.arange(rows) % 7,
            "context_end": rng.integers(100, 800, rows),
            "context_end_date": start.astype("datetime64[us]"),
            "target_date": (start + 1).astype("datetime64[us]"),
            "prediction": rng.normal(0, 0.01, rows).astype(np.float32),
            "band": rng.gamma(2.0, 0.005, rows).astype(np.float32),
            "actual": rng.normal(0, 0.02, rows),
            "pit": rng.random(rows),
            "crps": rng.gamma(2.0, 0.005, rows),
        }
    )


def simulations_part(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {
        "symbol": pd.Series(np.char.add("U", (np.arange(rows) // 250).astype(str)), dtype="str"),
        "date": (np.datetime64("2023-01-02") + np.arange(rows) % 250).astype("datetime64[us]"),
    }
    for i in range(100):
        values = rng.normal(0, 0.05, rows)
        values[rng.random(rows) < 0.02] = np.nan
        columns[f"stat_{i}"] = values
    for i in range(20):
        columns[f"strategy_{i}_daily_returns"] = [rng.normal(0, 0.02, 6) for _ in range(rows)]
    return pd.DataFrame(columns)


def _time(write) -> tuple[float, bytes]:
    started = time.perf_counter()
    text = write()
    return time.perf_counter() - started, text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecast-rows", type=int, default=300_000)
    parser.add_argument("--simulation-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from totowalk.backtest.report.csv_text import _compiled_text, _list_columns, csv_text, text_lists

    parts = {
        "forecasts": (forecasts_part(args.forecast_rows), False),
        "simulations": (simulations_part(args.simulation_rows), True),
    }
    for name, (part, lists_as_text) in parts.items():
        if _compiled_text(part, True, frozenset(_list_columns(part)) if lists_as_text else frozenset()) is None:
            raise SystemExit(f"the compiled writer does not write the {name} part here (not built?)")
        pandas_seconds, compiled_seconds, same = [], [], True
        for _ in range(args.repeats):
            seconds, reference = _time(
                lambda: (text_lists(part) if lists_as_text else part).to_csv(index=False).encode()
            )
            pandas_seconds.append(seconds)
            seconds, ours = _time(lambda: csv_text(part, header=True, lists_as_text=lists_as_text))
            compiled_seconds.append(seconds)
            same = same and ours == reference
        slow, fast = statistics.median(pandas_seconds), statistics.median(compiled_seconds)
        print(
            f"{name} part, {len(part):,} rows, {len(reference) / 1e6:.1f} MB: pandas {slow:.3f} s "
            f"({len(reference) / 1e6 / slow:.0f} MB/s), compiled {fast:.3f} s ({len(reference) / 1e6 / fast:.0f} MB/s), "
            f"{slow / fast:.1f}x; same bytes: {same}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
