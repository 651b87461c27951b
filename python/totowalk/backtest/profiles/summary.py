"""Summaries over simulations: per-symbol and overall column means, walk-forward stats, best strategy."""

from __future__ import annotations

import tempfile
import weakref

import numpy as np
import pandas as pd

from ..stats.daily import WideSeries, wide_series
from .legacy.metrics import BEST_STRATEGY_COLUMNS, WALK_FORWARD_SHARPES, best_strategy

OVERALL = "(all)"  # index label of the row that summarises every symbol's simulations


def summarize(simulations: pd.DataFrame, best=None, headline=None, daily=None) -> pd.DataFrame:
    """One row per symbol plus an overall row (label ``"(all)"``, present even for one symbol).

    Columns: ``num_simulations``, the mean over simulations of every numeric result column
    (NaN-skipping means, as pandas' ``DataFrame.mean`` in §9), the walk-forward stats and
    ``best_strategy``. ``headline(rows, series, label, means) -> dict`` (the clean profile's
    daily-series figures; ``series``: the group's :class:`.daily.WideSeries`; ``means``: the group's
    column means, already made) overrides entries of the same name; ``best`` then sees the
    overridden values. ``daily`` is the run's daily table (:func:`.daily.daily_table` of
    ``simulations``), split into every group's series at once.

    A run of many symbols computes the same rows in pieces: :func:`symbol_rows` per chunk of
    symbols, :func:`overall_row` once from :class:`OverallRows`, and :func:`summary_frame`.
    """
    rows = symbol_rows(simulations, best, headline, daily)
    columns, values = numeric_columns(simulations)
    frame = simulations if headline is not None else None
    return summary_frame(rows, overall_row(columns, values, frame, best, headline, daily), headline)


def summary_frame(rows: dict, overall: dict, headline=None) -> pd.DataFrame:
    """The summary of per-symbol ``rows`` ({symbol: row}) and the ``overall`` row."""
    rows = dict(rows)
    if len(rows) == 1 and headline is None:  # one symbol: the overall row is its row (same rows, same means)
        rows[OVERALL] = dict(next(iter(rows.values())))
    else:
        rows[OVERALL] = overall
    names = list(dict.fromkeys(name for row in rows.values() for name in row))  # from_dict's column order
    columns = {name: _column([row.get(name, np.nan) for row in rows.values()]) for name in names}
    return pd.DataFrame(columns, index=pd.Index(list(rows), name="symbol"))


_PLAIN = {float, int, bool, np.float64, np.int64, np.bool_}  # one of these alone: numpy gives pandas' dtype


def _column(values: list):
    """A summary column's values: as one numpy array when they are all floats, all ints or all
    bools (pandas would infer the same dtype, value by value); else the list, for pandas' inference
    (text, a mix with NaN: numpy would make those strings or floats)."""
    kinds = {type(v) for v in values}
    return np.asarray(values) if len(kinds) == 1 and kinds <= _PLAIN else values


def symbol_rows(simulations: pd.DataFrame, best=None, headline=None, daily=None, numeric=None) -> dict:
    """``{symbol: summary row}`` of each symbol of ``simulations`` (``daily``: its daily table, the
    symbols' own rows of it at least; ``numeric``: its :func:`numeric_columns`, when already made)."""
    codes, labels = pd.factorize(simulations["symbol"], sort=False)  # groupby(sort=False)'s order
    columns, values = numeric if numeric is not None else numeric_columns(simulations)
    # each group's own series of the daily table, split once for all (the headline's only input from it)
    series = wide_series(daily) if daily is not None and headline is not None else None
    rows = {}
    for k, label in enumerate(labels):
        members = np.flatnonzero(codes == k)
        if members.size and members[-1] - members[0] == members.size - 1:  # a symbol's rows together: a view
            members = slice(members[0], members[-1] + 1)
        frame = simulations.iloc[members] if headline is not None else None
        part = series.get(label, WideSeries.empty()) if series is not None else None
        rows[label] = _group_row(label, columns, values[:, members], frame, best, headline, part)
    return rows


def overall_row(columns: list, values: np.ndarray, frame, best=None, headline=None, daily=None) -> dict:
    """The ``"(all)"`` row from every row's numeric ``values`` ((columns, rows), as
    :func:`numeric_columns` gives them, or an :class:`OverallRows` that reads them a few columns at
    a time) and, for ``headline``, a ``frame`` of those rows with their ``date`` (the columns the
    headline reads, at least) and the run's daily table with its portfolio."""
    part = None
    if daily is not None and headline is not None:
        part = wide_series(daily[daily["symbol"] == OVERALL]).get(OVERALL, WideSeries.empty())
    return _group_row(OVERALL, columns, values, frame, best, headline, part)


def _group_row(label, columns: list, values: np.ndarray, frame, best, headline, series) -> dict:
    """One group's summary row from its own rows' numeric ``values`` ((columns, rows))."""
    count = values.shape[1]
    means = dict(zip(columns, _nan_means(values).tolist())) if count else {}
    row = {"num_simulations": int(count), **means}
    row.update(_walk_forward_stats(means, count, values, columns))
    if headline is not None:
        row.update(headline(frame, series, label, means))
    if best is not None:
        row["best_strategy"] = best(row)
    elif all(c in means for c in BEST_STRATEGY_COLUMNS.values()):
        row["best_strategy"] = best_strategy(means)
    return row


class OverallRows:
    """Every row's numeric result columns, gathered a chunk of symbols at a time (what
    :func:`overall_row` reads), with their dates.

    The chunks' (columns, rows) float64 blocks wait in an unnamed temporary file (in ``folder``,
    e.g. the run's own, or the system's temporary folder), not in memory: at universe scale they
    are the largest thing a run keeps (0.2 MB a symbol at 250 simulations). They are read back a
    few columns at a time, every row of each (``rows[k]``, ``rows[a:b]``: what :func:`overall_row`
    asks of its ``values``), so the summary never holds them all (1 GB at 5,000 symbols); a
    column's rows come back contiguous, in the order added, so its means are the same bits. The
    file leaves nothing behind, even when the process is killed."""

    def __init__(self, folder=None):
        self.filled = 0
        self.columns: list | None = None
        self.dates: list = []
        self._folder, self._file, self._blocks, self._read = folder, None, [], False

    def add(self, columns: list, values: np.ndarray, dates=None) -> None:
        """Append rows: their :func:`numeric_columns` ``columns`` and (columns, rows) ``values``, and
        their ``dates`` (or None where the rows have none)."""
        if self._read:
            raise RuntimeError("rows added after their values were read")
        if self.columns is None:
            self.columns = columns
            self._file = tempfile.TemporaryFile(prefix=".overall-rows-", dir=self._folder)
            weakref.finalize(self, self._file.close)  # closed when let go unread too (a failed run)
        elif columns != self.columns:
            raise ValueError(f"result columns differ between chunks of symbols: {columns} vs {self.columns}")
        block = np.ascontiguousarray(values, dtype=np.float64)
        self._file.write(memoryview(block).cast("B"))
        self._blocks.append(block.shape[1])
        self.filled += block.shape[1]
        if dates is not None:
            self.dates.append(dates)

    @property
    def shape(self) -> tuple:
        """(columns, rows), as the (columns, rows) array these rows would make."""
        return (len(self.columns or ()), self.filled)

    def __getitem__(self, index) -> np.ndarray:
        """Every row of column ``index`` ((rows,) float64), or of the columns of slice ``index``
        ((columns, rows)), read from the file."""
        if isinstance(index, slice):
            start, stop, step = index.indices(self.shape[0])
            if step != 1:
                raise IndexError("the kept rows are read a contiguous run of columns at a time")
            return self._read_columns(start, stop)
        position = range(self.shape[0])[index]  # an IndexError names a column out of range
        return self._read_columns(position, position + 1)[0]

    def _read_columns(self, start: int, stop: int) -> np.ndarray:
        self._read = True
        out = np.empty((max(0, stop - start), self.filled), np.float64)
        offset, at = 0, 0  # rows filled; the block's place in the file
        for rows in self._blocks:  # a block is its columns one after another, each its rows
            for column in range(start, stop):
                target = memoryview(out[column - start, offset : offset + rows]).cast("B")  # contiguous
                self._file.seek(at + column * rows * 8)
                if self._file.readinto(target) != target.nbytes:
                    raise OSError("the summary's temporary rows file was cut short")
            offset += rows
            at += len(self.columns) * rows * 8
        return out

    def frame(self, columns=None) -> pd.DataFrame:
        """The rows' ``columns`` (every numeric column when None) and their ``date``, as a frame:
        what the headline reads of them beside their means."""
        kept = [(k, c) for k, c in enumerate(self.columns or ()) if columns is None or c in columns or c == "date"]
        out = pd.DataFrame({c: self[k] for k, c in kept}) if kept else pd.DataFrame(index=range(self.filled))
        if self.dates:
            if "date" in out:  # bars without dates are numbered: a numeric column, here as float64
                out = out.drop(columns="date")
            out.insert(0, "date", np.concatenate(self.dates))
        return out


def summary_columns(simulations: pd.DataFrame) -> pd.DataFrame:
    """The columns of result rows :func:`summarize` reads (symbol, simulation, date and every numeric
    or bool column, in order): the same summary from a third of the rows' memory (no list-valued
    fields)."""
    numeric = simulations.select_dtypes(include=[np.number, "bool"]).columns
    keep = [c for c in simulations.columns if c in ("symbol", "simulation", "date") or c in numeric]
    return simulations[keep]


def numeric_columns(frame: pd.DataFrame) -> tuple[list, np.ndarray]:
    """The numeric and bool result columns (not symbol/simulation) and their values as one
    (columns, rows) float64 array, each column contiguous."""
    numeric = frame.drop(columns=["symbol", "simulation"], errors="ignore").select_dtypes(include=[np.number, "bool"])
    if any(dtype.kind == "f" and dtype.itemsize != 8 for dtype in numeric.dtypes):
        raise TypeError("summaries expect float64 result columns")  # pandas would sum float32 in float32
    return list(numeric.columns), np.ascontiguousarray(numeric.to_numpy(dtype=np.float64).T)


_BLOCK_VALUES = 1 << 21  # values (16 MiB) a step of _nan_means copies at most


def _nan_means(values: np.ndarray) -> np.ndarray:
    """Per row of (columns, rows), the mean of its non-NaN values (NaN where there are none):
    pandas' nanmean, i.e. a pairwise sum along each contiguous row divided by the count."""
    if isinstance(values, np.ndarray):  # else :class:`OverallRows`, whose slices are read from its file
        values = np.ascontiguousarray(values)
    step = max(1, _BLOCK_VALUES // max(1, values.shape[1]))  # rows at a time: a universe's copy stays small
    sums, counts = np.empty(values.shape[0]), np.empty(values.shape[0], np.int64)
    for start in range(0, values.shape[0], step):
        block = values[start : start + step]
        missing = np.isnan(block)
        counts[start : start + step] = block.shape[1] - missing.sum(axis=1)
        # each row's own pairwise sum, as along the whole array
        sums[start : start + step] = np.where(missing, 0.0, block).sum(axis=1) if missing.any() else block.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _walk_forward_stats(means: dict, count: int, values: np.ndarray, columns: list) -> dict:
    """``metrics.walk_forward_stats`` of a group from its column means (the same figures)."""
    if count == 0:
        return {}
    nan = float("nan")
    out = {"walk_forward_oos_sharpe": means.get("simple_strategy_sharpe", nan)}
    if "simple_strategy_return" in means:
        row = values[columns.index("simple_strategy_return")]
        out["walk_forward_turnover"] = float(_nan_means(np.abs(row)[None, :])[0])
    else:
        out["walk_forward_turnover"] = nan
    for column, name in WALK_FORWARD_SHARPES:
        if column in means:
            out[name] = means[column]
    return out
