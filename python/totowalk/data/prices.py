"""Load daily OHLC bars and validate them, naming the symbol, column and row of every problem.

Nothing is dropped or repaired silently: problems raise :class:`PriceDataError`, unless the
caller asks for ``on_invalid="drop"`` or ``"ffill"``, in which case the touched rows are counted,
reported with a warning and recorded in ``frame.attrs["repairs"]``.

This is the entry, and the place to import from: reading.py reads the input, per_symbol.py checks
each symbol on its own and panel.py a whole panel at once; dates.py parses the dates, errors.py
defines the error and the warning.
"""

from __future__ import annotations

import functools
from typing import Iterable

import numpy as np
import pandas as pd

from . import panel, per_symbol
from .columns import OPTIONAL_COLUMNS, PRICE_COLUMNS, SYMBOL_COLUMNS
from .dates import exchange_dates, exchange_dates_of_each
from .errors import PriceDataError, PriceRepairWarning, fmt_date, warn_repair
from .reading import file_symbol, is_parquet, normalise_columns, read_raw, read_text

__all__ = [
    "ADJUST",
    "ON_INVALID",
    "OPTIONAL_COLUMNS",
    "PRICE_COLUMNS",
    "SYMBOL_COLUMNS",
    "PriceDataError",
    "PriceRepairWarning",
    "exchange_dates",
    "exchange_dates_of_each",
    "file_symbol",
    "is_parquet",
    "load_prices",
    "load_prices_per_symbol",
    "require_rows",
]

ON_INVALID = ("raise", "drop", "ffill")
ADJUST = (None, "adj_close")


def load_prices(
    path_or_frame,
    symbol: str | Iterable[str] | None = None,
    *,
    adjust: str | None = None,
    on_invalid: str = "raise",
    min_rows: int = 1,
):
    """Load and validate daily OHLC bars.

    Parameters
    ----------
    path_or_frame:
        A CSV path (plain or ``.gz``), a Parquet path, or a DataFrame. Columns ``Date``, ``Open``,
        ``High``, ``Low``, ``Close`` (any case), optional ``Volume`` and ``Adj Close``, optional
        ``Ticker``/``Symbol`` for multi-symbol data. A DataFrame may carry the dates as its index.
    symbol:
        One symbol (returns a DataFrame), several (returns ``{symbol: DataFrame}``) or None (a
        single-symbol input gives a DataFrame; a multi-symbol input gives a dict of all symbols).
    adjust:
        ``"adj_close"`` rescales Open/High/Low/Close by ``Adj Close / Close`` (splits and
        dividends); the dates where that factor changes are in ``frame.attrs["adjustments"]``.
    on_invalid:
        ``"raise"`` (default), ``"drop"`` rows with a bad value, or ``"ffill"`` bad values from the
        previous row. Either repair warns with the number of rows it touched.
    min_rows:
        Fewest rows a symbol must have.

    Returns a frame indexed by ``Date`` (sorted, unique) with float columns Open, High, Low, Close
    and Volume / Adj Close when present; ``frame.attrs["symbol"]`` names the symbol.

    A multi-symbol input is checked for the whole panel at once; only the symbols with something
    to report or repair go through the checks one symbol at a time, which word the errors.
    """
    return _load(path_or_frame, symbol, adjust, on_invalid, min_rows, whole_panel=True)


def load_prices_per_symbol(
    path_or_frame,
    symbol: str | Iterable[str] | None = None,
    *,
    adjust: str | None = None,
    on_invalid: str = "raise",
    min_rows: int = 1,
):
    """:func:`load_prices` checking every symbol on its own (the path before the whole-panel checks):
    the reference those checks are tested and benchmarked against. Same arguments and results."""
    return _load(path_or_frame, symbol, adjust, on_invalid, min_rows, whole_panel=False)


def _load(path_or_frame, symbol, adjust, on_invalid, min_rows, *, whole_panel: bool):
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be one of {ON_INVALID}, got {on_invalid!r}")
    if adjust not in ADJUST:
        raise ValueError(f"adjust must be one of {ADJUST}, got {adjust!r}")
    raw, source, numbers_read = read_raw(path_or_frame, prices_as_numbers=whole_panel)
    raw = normalise_columns(raw, source)
    if raw.empty:  # a header alone: say so, rather than "no symbols" or a symbol of 0 rows
        name = source if isinstance(path_or_frame, pd.DataFrame) else f"price file {source}"
        raise PriceDataError(f"{name} has a header ({', '.join(map(str, raw.columns))}) but no rows of prices")
    sym_col = next((c for c in raw.columns if c.lower() in SYMBOL_COLUMNS), None)
    # the cells as text, which the per-symbol path reads (and quotes in its errors)
    as_text = functools.partial(read_text, path_or_frame) if numbers_read else None

    if sym_col is None:
        name = symbol if isinstance(symbol, str) else _single_name(symbol, source)
        if name is None and not isinstance(path_or_frame, pd.DataFrame):
            name = file_symbol(path_or_frame)  # a one-symbol file is named by its file
        frame = per_symbol.validate_one(raw, name, adjust, on_invalid, min_rows)
        if adjust is None:
            _warn_unadjusted_splits({name: frame})
        return frame

    keys = raw[sym_col].astype(str).str.strip()  # "IBM " from a spreadsheet is IBM
    # pd.unique keeps the order of first appearance, as dict.fromkeys does, without a Python loop over rows
    available = list(dict.fromkeys(keys)) if keys.hasnans else [str(k) for k in pd.unique(keys)]
    wanted = [symbol] if isinstance(symbol, str) else (available if symbol is None else list(symbol))
    wanted = [s.strip() if isinstance(s, str) else s for s in wanted]  # as the file's names are read
    for s in wanted:
        if s not in available:
            raise PriceDataError(f"unknown symbol {s!r} in {source}; available: {', '.join(available)}", symbol=s)
    # a missing symbol or two columns of one name: cases only the per-symbol path words as it always has
    if whole_panel and not keys.hasnans and not raw.columns.duplicated().any():
        frames = panel.validate_panel(raw, keys, sym_col, wanted, adjust, on_invalid, min_rows, as_text)
    else:
        if as_text is not None:
            raw = as_text()
            keys = raw[sym_col].astype(str).str.strip()
        frames = per_symbol.validate_each(raw, keys, sym_col, wanted, adjust, on_invalid, min_rows)
    if adjust is None:
        _warn_unadjusted_splits(frames)
    if isinstance(symbol, str) or (symbol is None and len(frames) == 1):
        return next(iter(frames.values()))
    return frames


SPLIT_RATIO = 1.25  # Adj Close / Close moving this far in a day: a split, not a dividend
SPLITS_NAMED = 5  # symbols a warning names


def unadjusted_splits(frame: pd.DataFrame) -> list:
    """``[(date, ratio)]`` of the days where ``Adj Close / Close`` moves by SPLIT_RATIO or more (the
    ratio: 2 for a 2-for-1 split, 0.5 for a 1-for-2 reverse split): a split the Close column still
    holds, which ``adjust="adj_close"`` takes out. Empty without an Adj Close column."""
    if "Adj Close" not in frame.columns or len(frame) < 2:
        return []
    factor = frame["Adj Close"].to_numpy() / frame["Close"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = factor[1:] / factor[:-1]  # 2 on a 2-for-1 split: the Close halved, the adjusted price did not
    jumps = np.flatnonzero((ratio >= SPLIT_RATIO) | (ratio <= 1.0 / SPLIT_RATIO))
    return [(frame.index[i + 1], float(ratio[i])) for i in jumps]


def _warn_unadjusted_splits(frames: dict) -> None:
    """One warning naming the symbols whose Close still holds a split, with their first days."""
    found = {s: days for s, f in frames.items() if (days := unadjusted_splits(f))}
    if not found:
        return
    shown = [
        f"{s} {', '.join(f'{fmt_date(d)} ({_split_text(r)})' for d, r in days[:3])}{' ...' if len(days) > 3 else ''}"
        for s, days in list(found.items())[:SPLITS_NAMED]
    ]
    more = f"; and {len(found) - SPLITS_NAMED:,} more symbols" if len(found) > SPLITS_NAMED else ""
    warn_repair(
        "the Close column moves against Adj Close as a split does, so the prices are not adjusted for it: "
        f"{'; '.join(shown)}{more}; each such day's change is no return a strategy could earn: adjust them "
        "(--adjust adj_close on the command line, adjust='adj_close' in Python)"
    )


def _split_text(ratio: float) -> str:
    return f"{ratio:.2f}-for-1" if ratio >= 1 else f"1-for-{1 / ratio:.2f}"


def _single_name(symbol, source):
    if symbol is None:
        return None
    names = list(symbol)
    if len(names) != 1:
        raise PriceDataError(f"{source} holds one unnamed series; cannot select symbols {names}")
    return names[0]


def require_rows(frame: pd.DataFrame, needed: int, purpose: str) -> None:
    """Raise a PriceDataError naming the symbol when ``frame`` is shorter than ``needed``."""
    if len(frame) < needed:
        raise PriceDataError(
            f"has {len(frame)} rows; {purpose} needs at least {needed}",
            symbol=frame.attrs.get("symbol"),
        )
