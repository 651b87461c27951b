"""A run folder's result files: the tables (simulations, forecasts, daily_returns; CSV or Parquet),
summary.json, the plots and report.html."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import require_extra
from ...memory import release_free_memory
from ...provenance import versions
from ..forecast.folder_lock import run_folder_lock
from ..forecast.store import PackedFrame, json_default
from ..inputs.windows import STEPS
from ..stats.daily import DAILY_COLUMNS
from ..stats.table import statistics_settings
from .csv_text import csv_text, holds_lists
from .html import (  # plotly itself is imported only when a report is drawn
    INCOMPLETE,
    MAX_FORECAST_CHARTS,
    write_html_report,
)
from .plots import plot_results
from .text import calibration_of, daily_of, daily_statistics, mae_by_key, strategy_table

__all__ = ["DAILY_RETURNS", "statistics_json", "write_outputs"]

DAILY_STEM = "daily_returns"
DAILY_RETURNS = f"{DAILY_STEM}.csv"  # daily_returns.parquet where the tables are Parquet


TABLE_FORMATS = ("auto", "csv", "parquet")
LARGE_TABLE_ROWS = 1_000_000  # forecast rows from which "auto" writes Parquet (a tenth of the disk, faster)


def table_format(result, asked: str = "auto") -> tuple[str, str]:
    """The format ``write_outputs`` uses for the run's tables and why, in words: ``asked`` unless
    "auto", which is CSV for a run of a few symbols and Parquet from :data:`LARGE_TABLE_ROWS`
    forecast rows on (CSV, saying so, where pyarrow is missing)."""
    return settings_table_format(result.settings, asked)


def settings_table_format(settings: dict, asked: str = "auto") -> tuple[str, str]:
    """:func:`table_format` of a run with these settings (known before its first chunk)."""
    if asked not in TABLE_FORMATS:
        raise ValueError(f"tables must be one of {TABLE_FORMATS}, got {asked!r}")
    if asked != "auto":
        return asked, f"{asked} as asked"
    rows = forecast_rows(settings)
    if rows < LARGE_TABLE_ROWS:
        return "csv", f"csv ({rows:,} forecast rows; Parquet from {LARGE_TABLE_ROWS:,}, or --tables parquet)"
    if importlib.util.find_spec("pyarrow") is None:
        return (
            "csv",
            f"csv ({rows:,} forecast rows: Parquet would take a tenth of the disk; pip install 'totowalk[parquet]')",
        )
    return "parquet", f"parquet ({rows:,} forecast rows; --tables csv forces CSV)"


def forecast_rows(settings: dict) -> int:
    """Rows of a run's forecasts table: (symbol, simulation) rows x keys x steps."""
    return len(settings["symbols"]) * int(settings["num_simulations"]) * len(settings.get("keys", ())) * STEPS


def write_outputs(
    result,
    out_dir,
    extra: dict | None = None,
    tables: str = "auto",
    plot_symbols: int | None = MAX_FORECAST_CHARTS,
    progress: bool = False,
    background=None,
) -> list[Path]:
    """Write the simulations, forecasts and daily_returns tables, summary.json, the PNG plots and
    report.html into ``out_dir``.

    ``tables``: "csv" (simulations.csv, forecasts.csv, daily_returns.csv), "parquet" (the same names with .parquet;
    needs the totowalk[parquet] extra) or "auto" (:func:`table_format`). The tables are written a
    chunk of symbols at a time from the result's parts, so a universe is never one frame in memory.
    ``plot_symbols``: forecast_vs_actual PNGs for the first that many symbols (None: every one; the
    report draws any symbol's). ``extra`` is merged into summary.json (e.g. the model resolution and
    its warning). Once everything is written, a run stored in ``out_dir`` drops its resume journal
    and parts (:meth:`RunStore.compact`): the final tables hold what they held. summary.json's
    ``timings`` holds the backtest's phases and these (``write_tables``, ``plots``, ``report``), and so
    does ``result.timings`` once they are written.
    ``background``: the :class:`.background.BackgroundOutputs` the run told of its parts: the
    tables and forecast plots it wrote are moved into place instead of written here (and
    summary.json's ``outputs`` says what that process took). Returns the written paths.
    """
    with run_folder_lock(out_dir):  # the command holds it already; a script's call holds it here
        return _write_outputs(result, out_dir, extra, tables, plot_symbols, progress, background)


def _write_outputs(result, out_dir, extra, tables, plot_symbols, progress, background) -> list[Path]:
    clock = time.perf_counter()
    timings = dict(getattr(result, "timings", {}) or {})
    tables, _ = table_format(result, tables)
    if tables == "parquet":
        require_extra("pyarrow", "parquet", "writing Parquet tables")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / INCOMPLETE  # while the outputs are written: a folder that keeps it was interrupted
    marker.write_text(
        "totowalk is writing this run's outputs; a folder that keeps this file was interrupted while writing "
        "them: re-run the same command with --resume to finish\n"
    )
    paths = [out / f"simulations.{tables}", out / f"forecasts.{tables}", out / "summary.json"]
    paths.append(out / f"{DAILY_STEM}.{tables}")
    other = "parquet" if tables == "csv" else "csv"
    for stem in ("simulations", "forecasts", DAILY_STEM):  # an earlier output in the other format would be read first
        (out / f"{stem}.{other}").unlink(missing_ok=True)
    parts = _table_parts(result)
    written = None
    if background is not None:
        with _bar(progress, total=len(parts["simulations"]), desc="tables", unit="part") as bar:
            written = background.finish(result, out, tables, plot_symbols, bar)
    if written is not None:
        written.commit_tables()
    else:
        bar = _bar(progress, total=2 * len(parts["simulations"]), desc="tables", unit="part")
        try:
            write_table(table_file(out, "simulations", tables), parts["simulations"], bar)
            write_table(table_file(out, "forecasts", tables), parts["forecasts"], bar)
        finally:
            bar.close()
    daily = daily_of(result)
    write_table(table_file(out, DAILY_STEM, tables), [daily[list(DAILY_COLUMNS)]])
    now = time.perf_counter()
    timings["write_tables"], clock = now - clock, now
    stats = daily_statistics(result)
    body = {
        "profile": result.profile,
        "settings": result.settings,
        "warnings": list(result.warnings),
        "versions": versions(),
        "strategy_table": strategy_table(result).to_dict(orient="index"),
        "mae_by_key": mae_by_key(result).to_dict(),
        "calibration": calibration_of(result),
        "summary": {str(k): v for k, v in result.summary.to_dict(orient="index").items()},
        "statistics": statistics_json(stats),
        "statistics_settings": statistics_settings(list(pd.unique(daily["strategy"])) if len(daily) else []),
        "outputs": {"tables": tables, "forecast_plots": _plotted(result, plot_symbols), **_beside(written)},
        **(extra or {}),
    }
    encoded = _encoded(body)  # once: at universe scale the summary is megabytes of text
    del body  # its objects (the size of the report's own parse of it) are not kept through the plots and report
    _write_text(paths[2], with_timings(encoded, timings))
    # the forecast plots: drawn here, or by the process beside the run (then only moved into place)
    paths += plot_results(result, out, most=plot_symbols if written is None else 0, progress=progress)
    if written is not None:
        paths += written.commit_plots()
    now = time.perf_counter()
    timings["plots"], clock = now - clock, now
    paths.append(write_html_report(out, complete=False))
    timings["report"] = time.perf_counter() - clock
    _write_text(paths[2], with_timings(encoded, timings))  # with the plots' and the report's seconds
    result.timings = timings  # the caller's account too, without reading summary.json back (100 MB at 5,000 symbols)
    store = getattr(getattr(result, "tables", None), "store", None)
    if store is not None and Path(store.folder).resolve() == out.resolve():
        store.compact()
    marker.unlink()  # last: every output is in place
    return paths


def _table_parts(result) -> dict:
    """The result's tables as lists of parts (read lazily from a stored run), or one frame each."""
    stored = getattr(result, "tables", None)
    if stored is None:  # a result made by hand: its two frames
        return {"simulations": [result.simulations], "forecasts": [result.forecasts]}
    return {name: _LazyParts(stored, name) for name in ("simulations", "forecasts")}


class _LazyParts:
    """The parts of one table, read one at a time when iterated; ``len`` without reading any."""

    def __init__(self, stored, name: str):
        self.stored, self.name = stored, name

    def __len__(self) -> int:
        return len(self.stored.chunks)

    def __iter__(self):
        return self.stored.parts(self.name, packed=True)  # TableFile.append takes them packed


def write_table(table: TableFile, parts, bar=None) -> None:
    """One table from its parts, written part by part (a header once; Parquet row groups of one
    schema), then moved into place."""
    try:
        for part in parts:
            table.append(part)
            del part
            release_free_memory()  # a part's text and Arrow buffers, before the next part is read
            if bar is not None:
                bar.update(1)
    finally:
        table.close()
    table.commit()


CSV_CHUNKS_AT_ONCE = 40  # a CSV part is written in slices of 40 pandas chunks: 4 M cells, ~50-150 MB of text


def partial_of(path: Path) -> Path:
    """Where the file ``path`` is written before it is moved into place."""
    return path.with_name(path.name + ".partial")


def table_file(folder: Path, stem: str, fmt: str) -> TableFile:
    """Table ``stem`` (simulations, forecasts, daily_returns) of a run folder, in ``fmt``: the
    simulations' daily values go to CSV as JSON text."""
    return TableFile(Path(folder) / f"{stem}.{fmt}", fmt, lists_as_text=stem == "simulations")


class TableFile:
    """One table written a part at a time into ``path`` + ".partial" (:meth:`append`), then moved
    into place (:meth:`commit`): a reader never sees half a table. ``lists_as_text``: CSV writes
    columns of lists or arrays (the simulations' daily values) as JSON text, one cell each."""

    def __init__(self, path: Path, fmt: str, lists_as_text: bool = False):
        self.path, self.fmt, self.lists_as_text = Path(path), fmt, lists_as_text
        self.partial = partial_of(self.path)
        self._parts, self._writer = 0, None

    def append(self, part) -> None:
        """Append ``part``, a DataFrame or a stored part's :class:`.store.PackedFrame`."""
        if self.fmt == "csv":
            part = part.frame() if isinstance(part, PackedFrame) else part
            first = self._parts == 0
            # the text of a slice at a time; slices of whole pandas chunks (100,000 cells' rows,
            # where pandas decides a date column's format), so a slice is written as in one call
            rows = max(1, 100_000 // max(1, part.shape[1])) * CSV_CHUNKS_AT_ONCE
            with open(self.partial, "wb" if first else "ab") as handle:
                for start in range(0, max(len(part), 1), rows):  # once for an empty part: its header
                    piece = part.iloc[start : start + rows]
                    handle.write(csv_text(piece, header=first and start == 0, lists_as_text=self.lists_as_text))
        else:
            self._writer = _parquet_part(self.partial, part, self._writer)
        self._parts += 1

    def close(self) -> None:
        """Finish the partial file (a Parquet file's footer)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def commit(self) -> Path:
        os.replace(self.partial, self.path)
        return self.path


def _parquet_part(path: Path, part, writer):
    """Append ``part`` to the Parquet file open in ``writer`` (opened on the first part, a DataFrame,
    whose schema every later part is cast to). Columns of lists or arrays (the daily values) are
    Parquet lists; other object columns (text, or dates mixed with None) are stored as text. A later
    part may come as a :class:`.store.PackedFrame`: its packed columns become Arrow lists straight
    from their values and offsets (the arrays and lists pyarrow would read from a cell each)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if writer is None and isinstance(part, PackedFrame):  # the file's schema is the first frame's
        part = part.frame()
    frame, packed = (part.rest, part.packed) if isinstance(part, PackedFrame) else (part, {})
    objects = [c for c in frame.columns if frame[c].dtype == object]
    text = frame.astype({c: str for c in objects if not holds_lists(frame[c].to_numpy())})
    table = pa.Table.from_pandas(text, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema, use_dictionary=_repeating(table.schema))
    if packed:
        columns = {name: table.column(name) for name in table.column_names}
        for name, (_, values, offsets) in packed.items():
            columns[str(name)] = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values))
        table = pa.Table.from_arrays([columns[field.name] for field in writer.schema], names=writer.schema.names)
    writer.write_table(table.cast(writer.schema))
    return writer


def _repeating(schema) -> list:
    """The columns a Parquet table stores with dictionaries: all but floats and lists. Text, dates and
    counts repeat a few values over many rows; a float or list column's values nearly all differ,
    and there pyarrow would build a dictionary per column chunk before falling back to plain values:
    the simulations table took 1.6-1.9x as long to write, in files within 1 % of the size."""
    import pyarrow as pa

    def varied(kind) -> bool:
        return pa.types.is_floating(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)

    return [field.name for field in schema if not varied(field.type)]


def _beside(written) -> dict:
    """summary.json's account of the process that wrote the tables beside the run, if one did."""
    if written is None:
        return {}
    return {"written_beside_run": {"cpu_seconds": written.seconds, "peak_rss_mib": written.peak_rss_mib}}


def _plotted(result, most: int | None) -> int:
    count = len(result.settings["symbols"])
    return count if most is None else min(count, most)


def _bar(enabled: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(disable=not enabled, leave=False, **kwargs)


def statistics_json(stats: pd.DataFrame) -> dict:
    """{symbol: {strategy: {statistic: value}}} of a :func:`..stats.table.performance_table`."""
    out: dict = {}
    columns = list(stats.columns)
    # one conversion of the whole table: the floats ``float(value)`` of each cell gives
    for (symbol, strategy), row in zip(stats.index, stats.to_numpy(dtype=np.float64).tolist()):
        out.setdefault(str(symbol), {})[strategy] = dict(zip(columns, row))
    return out


def _encoded(body: dict) -> str:
    return json.dumps(body, indent=2, default=json_default, allow_nan=True)


def with_timings(encoded: str, timings: dict) -> str:
    """The text of ``{**body, "timings": timings}`` from ``encoded``, body's own text (``_encoded``):
    the timings' object appended as the last key, indented as json.dumps indents it."""
    if encoded == "{}" or '\n  "timings": ' in encoded:  # nothing to append to, or a key to replace
        return _encoded({**json.loads(encoded), "timings": timings})
    inner = _encoded(timings).replace("\n", "\n  ")
    return f'{encoded[:-2]},\n  "timings": {inner}\n}}'


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
