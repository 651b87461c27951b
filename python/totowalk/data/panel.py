"""The checks of a multi-symbol panel run over the whole panel at once.

A symbol with nothing to report, repair or warn about is cut from the checked panel directly; every
other symbol goes through the per-symbol checks (per_symbol.py), which word what is wrong with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import per_symbol
from .columns import OPTIONAL_COLUMNS, PRICE_COLUMNS
from .dates import panel_dates
from .errors import PriceDataError


def validate_panel(raw, keys, sym_col, wanted, adjust, on_invalid, min_rows, as_text=None) -> dict:
    """What per_symbol.validate_each returns, with the checks run over the whole panel at once.

    A symbol none of whose rows has anything to report, repair or warn about (a clean symbol) is
    cut from the checked panel directly. Every other symbol goes through per_symbol.validate_one in
    turn, so errors, repairs and warnings, and which of them comes first, are the per-symbol path's.
    ``as_text``: gives the input with the cells as text, when ``raw`` holds numbers read from them.
    """
    panel = _Panel(raw, keys, wanted, adjust)
    text = None
    frames = {}
    for s in wanted:
        if panel.is_clean(s):
            frames[s] = panel.frame(s, adjust, on_invalid, min_rows)
            continue
        if text is None:
            text = raw if as_text is None else as_text()
        part = text.iloc[panel.rows_of(s)].drop(columns=[sym_col]).reset_index(drop=True)
        frames[s] = per_symbol.validate_one(part, s, adjust, on_invalid, min_rows)
    return frames


class _Panel:
    """The wanted symbols' rows grouped by symbol with one stable sort (each symbol's rows keep
    their input order), as float columns and dates, and which symbols are clean."""

    def __init__(self, raw, keys, wanted, adjust):
        codes, names = pd.factorize(keys)
        chosen = list(dict.fromkeys(wanted))
        groups = np.full(len(names), -1)
        groups[names.get_indexer(chosen)] = np.arange(len(chosen))
        self.group = dict(zip(chosen, range(len(chosen))))
        group_of_row = groups[codes]
        rows = np.flatnonzero(group_of_row >= 0)  # only the wanted symbols' rows are read
        self.rows = rows[np.argsort(group_of_row[rows], kind="stable")]  # positions in raw, grouped
        counts = np.bincount(group_of_row[rows], minlength=len(chosen))
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts

        everything = len(self.rows) == len(raw)
        self.columns = [c for c in PRICE_COLUMNS + OPTIONAL_COLUMNS if c in raw.columns]
        numbers = [
            _floats_or_nan(raw[c])[self.rows] if everything else _floats_or_nan(raw[c].iloc[self.rows])
            for c in self.columns
        ]
        self.values = np.column_stack(numbers)
        self.dates, dates_known = panel_dates(raw["Date"], self.rows, self.starts, counts)
        flagged = _rows_to_look_at(self.values, self.columns) | _dates_to_look_at(self.dates, self.starts)
        self.clean = dates_known & ~np.logical_or.reduceat(flagged, self.starts)
        if adjust == "adj_close" and "Adj Close" not in self.columns:
            self.clean[:] = False  # the per-symbol path names the missing column

    def is_clean(self, symbol) -> bool:
        return bool(self.clean[self.group[symbol]])

    def rows_of(self, symbol) -> np.ndarray:
        """The symbol's rows (positions in the input, in input order)."""
        g = self.group[symbol]
        return self.rows[self.starts[g] : self.ends[g]]

    def frame(self, symbol, adjust, on_invalid, min_rows) -> pd.DataFrame:
        """A clean symbol's frame, equal to what per_symbol.validate_one makes of its rows."""
        g = self.group[symbol]
        start, end = self.starts[g], self.ends[g]
        if end - start < min_rows:
            raise PriceDataError(f"has {end - start} rows; at least {min_rows} are needed", symbol=symbol)
        index = pd.DatetimeIndex(self.dates[start:end], name="Date")
        values, adjustments = self.values[start:end], []
        if adjust == "adj_close":
            values, adjustments = _adjusted(values, self.columns, index)
        out = pd.DataFrame(values, index=index, columns=self.columns, copy=True)
        out.attrs["symbol"] = symbol
        # a clean symbol needs no repair; a repair run still records that it looked
        out.attrs["repairs"] = (
            {}
            if on_invalid == "raise"
            else {"sorted": 0, "duplicates": 0, "volume": 0, "rows": 0, "method": on_invalid}
        )
        out.attrs["adjustments"] = adjustments
        return out


def _floats_or_nan(values: pd.Series) -> np.ndarray:
    """The column's numbers as the per-symbol path reads them, NaN where a value needs the per-symbol path
    (to name what is wrong with it, or to read it the way it does)."""
    if values.dtype == np.float64:  # numbers already, which the per-symbol path takes as they are
        numbers = values.to_numpy()
    else:
        numbers = pd.to_numeric(values.astype(str), errors="coerce").astype(float).to_numpy()
    # an integer past 2**53 may round differently parsed among floats than among integers only
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(numbers) < 2.0**53, numbers, np.nan)


def _rows_to_look_at(values: np.ndarray, columns: list) -> np.ndarray:
    """Rows with a price the per-symbol path rejects or repairs (missing, not a number, infinite,
    non-positive, High/Low outside Open/Close) or a Volume it blanks."""
    col = dict(zip(columns, values.T))
    with np.errstate(invalid="ignore"):
        flagged = ~np.isfinite(values).all(axis=1)
        for name in PRICE_COLUMNS + ("Adj Close",):
            if name in col:
                flagged |= col[name] <= 0
        if "Volume" in col:
            flagged |= col["Volume"] < 0
        flagged |= col["High"] < np.maximum(col["Open"], col["Close"])
        flagged |= col["Low"] > np.minimum(col["Open"], col["Close"])
    return flagged


def _dates_to_look_at(dates: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Rows without a date, or not later than the row above them of the same symbol."""
    flagged = np.isnat(dates)
    stamps = dates.view(np.int64)
    later = np.ones(len(dates), dtype=bool)
    later[1:] = stamps[1:] > stamps[:-1]
    later[starts] = True  # a symbol's first row follows nothing
    return flagged | ~later


def _adjusted(values: np.ndarray, columns: list, index: pd.DatetimeIndex) -> tuple[np.ndarray, list]:
    """adjust='adj_close' for one clean symbol, computed as per_symbol.validate_one computes it."""
    factor = values[:, columns.index("Adj Close")] / values[:, columns.index("Close")]
    ratio = np.full(len(factor), np.nan)
    ratio[1:] = factor[1:] / factor[:-1]
    with np.errstate(invalid="ignore"):
        changed = np.flatnonzero(np.abs(ratio - 1.0) > 1e-6)
    adjustments = [(index[i], float(ratio[i])) for i in changed]
    values = values.copy()
    for name in PRICE_COLUMNS:
        values[:, columns.index(name)] *= factor
    return values, adjustments
