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
from ...data.dates import exchange_dates, exchange_dates_of_each

__all__ = ["collect_frames", "validate_price_frame"]


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
    """The Date column (any case) of a frame not indexed by dates, or None."""
    if not isinstance(frame, pd.DataFrame) or isinstance(frame.index, pd.DatetimeIndex):
        return None
    return next((c for c in frame.columns if str(c).strip().lower() == "date"), None)


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
        raise PriceDataError(
            f"unparseable date {frame[column].iloc[row]!r}", symbol=symbol, column=str(column), row=row
        )
    out = frame.drop(columns=[column])
    out.index = pd.DatetimeIndex(dates, name="Date")
    return out


def validate_price_frame(frame, symbol) -> pd.DataFrame:
    """Check one symbol's OHLC frame; return it with float64 price columns.

    The index is kept as given (the legacy result field ``date`` is its label).

    Raises
    ------
    PriceDataError
        Naming symbol, column and row for a missing column, a non-numeric, non-finite or
        non-positive price.
    """
    if not isinstance(frame, pd.DataFrame):
        raise PriceDataError(f"expected a pandas DataFrame, got {type(frame).__name__}", symbol=symbol)
    # pandas deep-copies ``attrs`` (load_prices' repairs and adjustments) into every column it
    # hands out, and into a copy(); a frame constructed over the same data carries none of them
    frame = pd.DataFrame(frame, copy=False)
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    columns = {}
    for name in ("Open", "High", "Low", "Close"):
        source = by_lower.get(name.lower())
        if source is None:
            raise PriceDataError(
                f"missing column {name!r}; found {[str(c) for c in frame.columns]}",
                symbol=symbol,
                column=name,
            )
        columns[name] = _as_float64(frame[source])
    volume = by_lower.get("volume")
    if volume is not None:
        columns["Volume"] = _as_float64(frame[volume])
    for name, values in columns.items():
        # Volume may be missing (NaN: load_prices blanks bad volumes); it feeds no forecast
        bad = (~np.isfinite(values) | (values <= 0)) if name != "Volume" else ~(np.isnan(values) | (values >= 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise PriceDataError(
                f"invalid price {frame[by_lower[name.lower()]].iloc[row]!r} (prices must be finite "
                "and positive); fix the data or load it with load_prices(..., on_invalid='drop')",
                symbol=symbol,
                column=name,
                row=row,
                date=_row_date(frame, row),
            )
    out = pd.DataFrame(columns, index=frame.index)
    out.attrs["symbol"] = symbol
    return out


def _as_float64(column: pd.Series) -> np.ndarray:
    """The column as float64; what is not a number becomes NaN (reported by the caller)."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
        return column.to_numpy(dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def _row_date(frame: pd.DataFrame, row: int):
    """The row's date when the frame is indexed by dates (else None: the row number says it)."""
    return frame.index[row] if isinstance(frame.index, pd.DatetimeIndex) else None
