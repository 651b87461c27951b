"""A Date column parsed into time-zone-naive exchange dates.

:func:`exchange_dates` parses one symbol's; :func:`exchange_dates_of_each` and :func:`panel_dates`
parse many symbols' together, vouching only for what exchange_dates gives each on its own.
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import pandas as pd

try:
    from pandas.tseries.api import guess_datetime_format
except ImportError:  # pandas < 2.2
    from pandas._libs.tslibs.parsing import guess_datetime_format

# A UTC offset after a time of day: "2020-01-02 00:00:00-05:00", "2020-01-02T00:00Z", "...+0900".
_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?P<offset>Z|[+-]\d{2}:?\d{2})$")


# Day, month and year separated by slashes, dots or dashes: "13/01/2022", "3.1.22".
_NUMBERED = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})(?:\s|$)")


def unparseable_date(values: pd.Series, row: int) -> str:
    """The error text for the date at ``row`` of a Date column that did not parse, with a hint when
    the column is written day first (pandas reads "03/01/2022" as March 1 and then fails on
    "13/01/2022")."""
    text = f"unparseable date {values.iloc[row]!r}"
    parts = values.astype(str).str.extract(_NUMBERED)
    if len(parts) and parts.notna().all(axis=None):
        first, second = parts[0].astype(int), parts[1].astype(int)
        if (first > 12).any() and (second <= 12).all():
            text += "; the dates look day first (DD/MM/YYYY), which is read month first: write them as YYYY-MM-DD"
    return text


def exchange_dates(values: pd.Series) -> pd.Series:
    """Parse a Date column into time-zone-naive dates (NaT where unparseable).

    Dates with a UTC offset (what market-data downloaders write: ``-05:00`` in winter, ``-04:00``
    in summer, so the offsets of one file differ) become the exchange's wall time: each is parsed to
    UTC and shifted back by its own offset, so ``2020-01-02 00:00:00-05:00`` (05:00 UTC) and
    ``2020-01-02 00:00:00+09:00`` (15:00 UTC the day before) are both 2020-01-02; the UTC date alone
    would move the +09:00 bar a day back. Bars all at one time of day (daily bars) are cut to the
    date; bars at several times of day (intraday) keep their wall time. A tz-aware datetime column
    (Parquet, a DataFrame) is read in its own zone likewise.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _daily_as_dates(values.dt.tz_localize(None))
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.astype(str).str.strip()
    offsets = text.str.extract(_OFFSET)["offset"]
    if offsets.isna().all():
        return pd.to_datetime(values, errors="coerce")
    utc = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    return _daily_as_dates(utc.dt.tz_localize(None) + _offset_delta(offsets))


def _daily_as_dates(wall: pd.Series) -> pd.Series:
    """Wall times cut to their date when every bar is at the same time of day (daily bars)."""
    times = (wall - wall.dt.normalize()).dropna()
    return wall.dt.normalize() if times.nunique() <= 1 else wall


def _offset_delta(offsets: pd.Series) -> pd.Series:
    """'+09:00', '-0500' or 'Z' as a Timedelta (0 where a date has no offset: its time as written)."""
    parts = offsets.fillna("Z").str.replace(":", "", regex=False).str.extract(r"(?P<sign>[+-])(?P<h>\d{2})(?P<m>\d{2})")
    sign = parts["sign"].map({"+": 1, "-": -1}).fillna(0)
    minutes = sign * (parts["h"].fillna(0).astype(int) * 60 + parts["m"].fillna(0).astype(int))
    return pd.to_timedelta(minutes, unit="m")


# -- dates of several symbols ----------------------------------------------------------------
#
# exchange_dates works on one symbol's column: its results can depend on the symbol's other
# dates (the format pandas infers from the first one, offsets in any of them, one time of day for
# all, the finest resolution among them). The panel's dates are parsed once per distinct text and
# per format, and a symbol's are vouched for only where they are exchange_dates' for it alone;
# the others are left to the per-symbol path.


def exchange_dates_of_each(columns: list) -> list:
    """exchange_dates of each column (one symbol's dates each), parsed together: a datetime64 array
    per column, or None where only exchange_dates on that column alone can say what it gives."""
    found = [None] * len(columns)
    by_dtype = {}
    for i, column in enumerate(columns):
        if len(column):  # an empty column is left to exchange_dates
            by_dtype.setdefault(column.dtype, []).append(i)
    for members in by_dtype.values():
        counts = np.array([len(columns[i]) for i in members])
        starts = np.cumsum(counts) - counts
        values = pd.concat([columns[i] for i in members], ignore_index=True)
        dates, known = panel_dates(values, np.arange(len(values)), starts, counts)
        for i, start, count, ok in zip(members, starts, counts, known):
            if ok:
                found[i] = dates[start : start + count]
    return found


def panel_dates(values: pd.Series, order, starts, counts) -> tuple[np.ndarray, np.ndarray]:
    """Every row's date (rows grouped by symbol) and, per symbol, whether they are vouched for."""
    everyone = np.ones(len(starts), dtype=bool)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        wall = values.dt.tz_localize(None).to_numpy()[order]
        return _daily_as_dates_by_symbol(wall, starts, counts, everyone), everyone
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.to_numpy()[order], everyone
    codes, texts = pd.factorize(values)  # each distinct text is parsed once
    unit = exchange_dates(pd.Series(["2020-01-02"])).dtype
    if pd.api.types.infer_dtype(texts, skipna=True) != "string":
        return np.full(len(order), np.datetime64("NaT"), dtype=unit), ~everyone
    return _text_dates(codes[order], texts, starts, counts, unit)


def _text_dates(codes, texts: pd.Index, starts, counts, unit) -> tuple[np.ndarray, np.ndarray]:
    """Dates written as text: ``codes`` (rows grouped by symbol) index the distinct ``texts``."""
    stripped = pd.Series(texts).astype(str).str.strip()
    offsets = stripped.str.extract(_OFFSET)["offset"]
    has_offset = np.append(offsets.notna().to_numpy(), False)[codes]  # code -1 (missing) has none
    with_offsets = np.logical_or.reduceat(has_offset, starts)
    symbol_of_row = np.repeat(np.arange(len(starts)), counts)
    dates = np.full(len(codes), np.datetime64("NaT"), dtype=unit)
    known = np.zeros(len(starts), dtype=bool)

    for fmt, symbols in _symbols_by_format(codes[starts], texts, ~with_offsets).items():
        rows = symbols[symbol_of_row]
        parsed = _parse_distinct(codes[rows], len(texts), functools.partial(_dates_in_format, texts, fmt))
        if parsed is not None and parsed.dtype == unit:
            dates[rows], known[symbols] = parsed, True

    rows = with_offsets[symbol_of_row]
    if rows.any():
        parsed = _parse_distinct(codes[rows], len(texts), functools.partial(_offset_wall_times, stripped, offsets))
        if parsed is not None and parsed.dtype == unit:
            dates[rows], known[with_offsets] = parsed, True
            dates = _daily_as_dates_by_symbol(dates, starts, counts, with_offsets)
    return dates, known


def _symbols_by_format(first_codes, texts: pd.Index, candidates) -> dict:
    """``{format: symbol mask}``: the date format pandas' to_datetime infers from each candidate
    symbol's first date (none where it infers none, or warns that it guessed day-first)."""
    formats = {}
    for code in np.unique(first_codes[candidates & (first_codes >= 0)]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fmt = guess_datetime_format(texts[code])
        if fmt is not None and not caught:
            formats.setdefault(fmt, []).append(code)
    return {fmt: candidates & np.isin(first_codes, found) for fmt, found in formats.items()}


def _parse_distinct(codes, num_texts: int, parse) -> np.ndarray | None:
    """``parse(distinct codes)`` given back per row (NaT where a row has no text); None where
    pandas warned (the per-symbol path will, in its own words)."""
    used = np.unique(codes[codes >= 0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = parse(used)
    if caught:
        return None
    table = np.append(parsed.to_numpy(), np.datetime64("NaT"))  # code -1 reads the NaT at the end
    lookup = np.full(num_texts + 1, len(used))
    lookup[used] = np.arange(len(used))
    return table[lookup[codes]]


def _dates_in_format(texts: pd.Index, fmt: str, used) -> pd.Series:
    """exchange_dates' dates of texts without UTC offsets, in the format inferred for their symbols."""
    return pd.to_datetime(pd.Series(texts[used]), errors="coerce", format=fmt)


def _offset_wall_times(stripped: pd.Series, offsets: pd.Series, used) -> pd.Series:
    """exchange_dates' wall times of dates with UTC offsets (before daily bars are cut to dates)."""
    utc = pd.to_datetime(stripped.iloc[used], utc=True, errors="coerce", format="mixed")
    return utc.dt.tz_localize(None) + _offset_delta(offsets.iloc[used])


def _daily_as_dates_by_symbol(wall: np.ndarray, starts, counts, symbols) -> np.ndarray:
    """_daily_as_dates for each of these symbols: its wall times cut to dates when all its bars
    are at one time of day."""
    index = pd.DatetimeIndex(wall)
    days = index.normalize()
    time_of_day = (index - days).asi8
    present = ~np.isnat(wall)
    first = np.minimum.reduceat(np.where(present, time_of_day, np.iinfo(np.int64).max), starts)
    last = np.maximum.reduceat(np.where(present, time_of_day, np.iinfo(np.int64).min), starts)
    daily = symbols & (first >= last)  # one time of day, or no date at all
    return np.where(np.repeat(daily, counts), days.to_numpy(), wall)
