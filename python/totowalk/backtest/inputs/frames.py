"""The user's prices as validated frames, one per symbol, in run order.

Accepted forms: one frame (one symbol), a frame of several symbols with a ``Ticker``/``Symbol``
column, or ``{symbol: frame}``. A ``Date`` column becomes the index, so result dates are the
data's dates. Every error names the symbol, the column and the row (and its date when known).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ...data import PriceDataError, load_prices
from ...data.columns import PRICE_COLUMNS, date_columns
from ...data.dates import exchange_dates, exchange_dates_of_each, unparseable_date
from ...data.per_symbol import check_date_order

__all__ = ["collect_frames", "float64_columns", "validate_price_frame"]


def collect_frames(prices, symbol, symbols) -> dict:
    """Validated ``{symbol: frame}`` in run order from any accepted ``prices`` form."""
    if symbol is not None and symbols is not None:
        raise ValueError("give symbol= (one) or symbols= (several), not both")
    wanted = [symbol] if symbol is not None else (list(symbols) if symbols is not None else None)
    if isinstance(prices, Mapping):
        available = list(prices)
        names = wanted if wanted is not None else available
        for s in names:
            if s not in prices:
                raise PriceDataError(f"unknown symbol {s!r}; available: {', '.join(map(str, available))}", symbol=s)
        frames = {s: prices[s] for s in names}
    elif isinstance(prices, pd.DataFrame):
        lower = {str(c).strip().lower() for c in prices.columns}
        if lower & {"ticker", "symbol"}:
            loaded = load_prices(prices, symbol=wanted if wanted is not None else None)
            frames = loaded if isinstance(loaded, dict) else {loaded.attrs["symbol"]: loaded}
        else:
            if wanted is not None and len(wanted) != 1:
                raise ValueError(f"a single-symbol frame cannot supply symbols {wanted}")
            name = wanted[0] if wanted else prices.attrs.get("symbol") or "series"
            frames = {name: prices}
    else:
        raise TypeError(f"prices must be a DataFrame or a dict of DataFrames, got {type(prices).__name__}")
    if not frames:
        raise ValueError("no symbols to backtest")
    parsed = _dates_parsed_together(frames)
    return {s: validate_price_frame(_dates_as_index(f, s, parsed.get(s)), s) for s, f in frames.items()}


def _date_column(frame):
    """The Date column (any case, or one of its other names) of a frame not indexed by dates, or None."""
    if not isinstance(frame, pd.DataFrame) or isinstance(frame.index, pd.DatetimeIndex):
        return None
    found = date_columns(frame.columns)
    if len(found) > 1:
        names = ", ".join(repr(str(c)) for c in found)
        raise PriceDataError(f"columns {names} all name the dates; keep one of them", column="Date")
    return found[0] if found else None


def _dates_parsed_together(frames: dict) -> dict:
    """``{symbol: dates}`` of the frames with a Date column, parsed in one go rather than frame by
    frame (hundreds of symbols); a symbol missing here has its dates parsed on their own."""
    columns = {s: _date_column(f) for s, f in frames.items()}
    columns = {s: frames[s][c] for s, c in columns.items() if c is not None}
    if len(columns) < 2:
        return {}
    found = exchange_dates_of_each(list(columns.values()))
    return {s: dates for s, dates in zip(columns, found) if dates is not None}


def _dates_as_index(frame, symbol, dates=None):
    """A frame with a Date column (any case) and no date index is indexed by that column, as
    load_prices does, so target dates and result dates are its dates, not row numbers. ``dates``:
    that column already parsed (by exchange_dates_of_each)."""
    column = _date_column(frame)
    if column is None:
        return frame
    if dates is None:
        dates = exchange_dates(frame[column])  # UTC offsets that change with daylight saving included
    missing = np.asarray(pd.isna(dates))
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise PriceDataError(unparseable_date(frame[column], row), symbol=symbol, column=str(column), row=row)
    out = frame.drop(columns=[column])
    out.index = pd.DatetimeIndex(dates, name="Date")
    return out


def validate_price_frame(frame, symbol) -> pd.DataFrame:
    """Check one symbol's OHLC frame; return it with float64 price columns.

    Column names match in any case and with surrounding spaces. The index is kept as given (the
    legacy result field ``date`` is its label).

    Raises
    ------
    PriceDataError
        Naming symbol, column and row for a missing or ambiguous column (two columns that both
        name it, e.g. ``Close`` and ``close``), a non-numeric, non-finite or non-positive price, and
        in a frame indexed by dates a date that repeats or goes back in time.
    """
    if not isinstance(frame, pd.DataFrame):
        raise PriceDataError(f"expected a pandas DataFrame, got {type(frame).__name__}", symbol=symbol)
    if isinstance(frame.index, pd.DatetimeIndex):  # a vendor's newest-first file, a repeated day
        check_date_order(frame.index, symbol, repair=_FRAME_REPAIR)
    positions = _column_positions(frame, symbol)
    values = np.stack(_float64_columns(frame, positions))  # (columns, T): the prices, then Volume
    prices, volume = values[: len(PRICE_COLUMNS)], values[len(PRICE_COLUMNS) :]
    # Volume may be missing (NaN: load_prices blanks bad volumes); it feeds no forecast
    bad = np.concatenate([~np.isfinite(prices) | (prices <= 0), ~(np.isnan(volume) | (volume >= 0))])
    if bad.any():
        name, row = _first_bad(bad, list(positions))
        raise PriceDataError(
            f"invalid price {frame.iloc[row, positions[name]]!r} (prices must be finite "
            "and positive); fix the data or load it with load_prices(..., on_invalid='drop')",
            symbol=symbol,
            column=name,
            row=row,
            date=_row_date(frame, row),
        )
    # one float64 block, a column each row of it: cheaper than a frame assembled column by column
    out = pd.DataFrame(values.T, index=frame.index, columns=_COLUMN_LABELS[len(positions)], copy=False)
    out.attrs["symbol"] = symbol
    return out


_FRAME_REPAIR = "the frame through tw.load_prices(frame, on_invalid='drop') first"
_COLUMN_LABELS = {n: pd.Index((*PRICE_COLUMNS, "Volume")[:n]) for n in (4, 5)}  # shared: an Index is immutable


def _first_bad(bad: np.ndarray, names: list) -> tuple:
    """The first column (in ``names``' order) with a bad row, and its first bad row."""
    column = int(np.flatnonzero(bad.any(axis=1))[0])
    return names[column], int(np.flatnonzero(bad[column])[0])


def _column_positions(frame: pd.DataFrame, symbol) -> dict:
    """``{name: position}`` of the price columns (and Volume when there is one) in ``frame``."""
    found: dict = {}
    for position, column in enumerate(frame.columns):
        found.setdefault(str(column).strip().lower(), []).append(position)
    positions = {}
    for name in (*PRICE_COLUMNS, "Volume"):
        at = found.get(name.lower(), [])
        if len(at) > 1:
            names = ", ".join(repr(str(frame.columns[i])) for i in at)
            raise PriceDataError(f"columns {names} all name {name}; keep one of them", symbol=symbol, column=name)
        if at:
            positions[name] = at[0]
        elif name != "Volume":
            raise PriceDataError(
                f"missing column {name!r}; found {[str(c) for c in frame.columns]}", symbol=symbol, column=name
            )
    return positions


def float64_columns(frame: pd.DataFrame, columns) -> list:
    """The (T,) float64 values of ``columns`` (labels) of a frame with unique column labels."""
    positions = {c: frame.columns.get_loc(c) for c in columns}  # get_loc: a cached hash lookup
    repeated = [c for c, at in positions.items() if not isinstance(at, (int, np.integer))]
    if repeated:
        raise KeyError(f"columns {repeated} appear more than once")
    return _float64_columns(frame, positions)


def _float64_columns(frame: pd.DataFrame, positions: dict) -> list:
    """The (T,) float64 columns at ``positions``, in their order: read from the frame as one float64
    array when every column holds numpy floats or integers (reading a column as a Series costs
    pandas tens of microseconds; an integer becomes the same float either way)."""
    if all(isinstance(dtype, np.dtype) and dtype.kind in "fiu" for dtype in frame.dtypes.tolist()):
        table = frame.to_numpy(dtype=np.float64, copy=False)
        return [table[:, at] for at in positions.values()]
    # pandas deep-copies ``attrs`` (load_prices' repairs and adjustments) into every column it
    # hands out; a frame constructed over the same data carries none of them
    plain = pd.DataFrame(frame, copy=False)
    return [_as_float64(plain.iloc[:, at]) for at in positions.values()]


def _as_float64(column: pd.Series) -> np.ndarray:
    """The column as float64; what is not a number becomes NaN (reported by the caller)."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
        return column.to_numpy(dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def _row_date(frame: pd.DataFrame, row: int):
    """The row's date when the frame is indexed by dates (else None: the row number says it)."""
    return frame.index[row] if isinstance(frame.index, pd.DatetimeIndex) else None
