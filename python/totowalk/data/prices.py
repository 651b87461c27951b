"""Load daily OHLC bars and validate them, naming the symbol, column and row of every problem.

Nothing is dropped or repaired silently: problems raise :class:`PriceDataError`, unless the
caller asks for ``on_invalid="drop"`` or ``"ffill"``, in which case the touched rows are counted,
reported with a warning and recorded in ``frame.attrs["repairs"]``.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import warnings
import zlib
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import require_extra

try:
    from pandas.tseries.api import guess_datetime_format
except ImportError:  # pandas < 2.2
    from pandas._libs.tslibs.parsing import guess_datetime_format

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
OPTIONAL_COLUMNS = ("Volume", "Adj Close")
SYMBOL_COLUMNS = ("ticker", "symbol")
ON_INVALID = ("raise", "drop", "ffill")
ADJUST = (None, "adj_close")


_REPAIR_HINT = "on_invalid='drop' or 'ffill' (--on-invalid on the command line)"


class PriceRepairWarning(UserWarning):
    """Prices were repaired as asked (or an optional column was blanked); the message counts it."""


class PriceDataError(ValueError):
    """Bad price data. ``symbol``, ``column``, ``row`` (0-based position in the input for that
    symbol) and ``date`` say where; the message says what and how to fix it."""

    def __init__(self, message, *, symbol=None, column=None, row=None, date=None):
        self.symbol, self.column, self.row, self.date = symbol, column, row, date
        where = []
        if symbol is not None:
            where.append(f"symbol {symbol!r}")
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}" + (f" ({_fmt_date(date)})" if date is not None else ""))
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def _fmt_date(date) -> str:
    if isinstance(date, pd.Timestamp):
        return date.strftime("%Y-%m-%d") if date == date.normalize() else str(date)
    return str(date)


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
    raw, source, numbers_read = _read(path_or_frame, prices_as_numbers=whole_panel)
    raw = _normalise_columns(raw, source)
    sym_col = next((c for c in raw.columns if c.lower() in SYMBOL_COLUMNS), None)
    # the cells as text, which the per-symbol path reads (and quotes in its errors)
    as_text = functools.partial(_read_text, path_or_frame) if numbers_read else None

    if sym_col is None:
        name = symbol if isinstance(symbol, str) else _single_name(symbol, source)
        if name is None and not isinstance(path_or_frame, pd.DataFrame):
            name = file_symbol(path_or_frame)  # a one-symbol file is named by its file
        return _validate_one(raw, name, adjust, on_invalid, min_rows)

    keys = raw[sym_col].astype(str)
    # pd.unique keeps the order of first appearance, as dict.fromkeys does, without a Python loop over rows
    available = list(dict.fromkeys(keys)) if keys.hasnans else [str(k) for k in pd.unique(keys)]
    wanted = [symbol] if isinstance(symbol, str) else (available if symbol is None else list(symbol))
    for s in wanted:
        if s not in available:
            raise PriceDataError(f"unknown symbol {s!r} in {source}; available: {', '.join(available)}", symbol=s)
    # a missing symbol or two columns of one name: cases only the per-symbol path words as it always has
    if whole_panel and not keys.hasnans and not raw.columns.duplicated().any():
        frames = _validate_panel(raw, keys, sym_col, wanted, adjust, on_invalid, min_rows, as_text)
    else:
        if as_text is not None:
            raw = as_text()
            keys = raw[sym_col].astype(str)
        frames = _validate_each(raw, keys, sym_col, wanted, adjust, on_invalid, min_rows)
    if isinstance(symbol, str) or (symbol is None and len(frames) == 1):
        return next(iter(frames.values()))
    return frames


def file_symbol(path) -> str:
    """The natural name of a single-symbol file: its name without .csv/.gz/.parquet (``IBM.csv.gz`` -> IBM)."""
    name = os.path.basename(os.fspath(path))
    for suffix in (".gz", ".csv", ".parquet", ".pq", ".txt"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def _single_name(symbol, source):
    if symbol is None:
        return None
    names = list(symbol)
    if len(names) != 1:
        raise PriceDataError(f"{source} holds one unnamed series; cannot select symbols {names}")
    return names[0]


def _read(path_or_frame, prices_as_numbers: bool = False) -> tuple[pd.DataFrame, str, bool]:
    """The input as a frame, its name for messages, and whether a CSV's prices were read as numbers
    (``prices_as_numbers``: a multi-symbol CSV whose price and volume cells are all plain numbers)."""
    if isinstance(path_or_frame, pd.DataFrame):
        return _dates_from_index(path_or_frame).copy(), "the given DataFrame", False
    path = os.fspath(path_or_frame)
    if os.path.isdir(path):
        raise IsADirectoryError(f"price path {path} is a folder; give a CSV (.csv, .csv.gz) or Parquet file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"price file not found: {path}")
    if is_parquet(path):
        require_extra("pyarrow", "parquet", f"reading the Parquet file {path}")
        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except (ValueError, OSError) as err:  # pyarrow's ArrowInvalid / ArrowIOError: not a Parquet file
            raise PriceDataError(
                f"price file {path} is not a readable Parquet file: {' '.join(str(err).split())}"
            ) from None
        return _dates_from_index(frame), path, False
    frame = _read_csv_prices_as_numbers(path) if prices_as_numbers else None
    numbers_read = frame is not None
    if frame is None:
        frame = _read_csv_text(path)
    first = str(frame.columns[0]) if len(frame.columns) else ""
    if not any(str(c).strip().lower() == "date" for c in frame.columns) and (
        first.startswith("Unnamed: ") or first.lower() == "index"
    ):
        frame = frame.rename(columns={frame.columns[0]: "Date"})  # an unnamed date index, written by to_csv()
    return frame, path, numbers_read


def _read_text(path_or_frame) -> pd.DataFrame:
    """The input with every CSV cell as text, columns named as load_prices names them."""
    raw, source, _ = _read(path_or_frame)
    return _normalise_columns(raw, source)


GZIP_MAGIC = b"\x1f\x8b"
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _read_csv_prices_as_numbers(path: str) -> pd.DataFrame | None:
    """A multi-symbol CSV with its price and volume columns parsed by the CSV reader (reading
    400,000 rows of them as text and converting that takes seconds), the other columns as text.

    The reader parses a number as pd.to_numeric parses its text (one converter in pandas 2 and 3;
    tests/test_prices_panel.py checks it), so these are the numbers the per-symbol path reads.
    None when there is no symbol column, or a cell other than a number or an empty one: the
    caller reads the text, which says what that cell is.
    """
    header = _read_csv_text(path, nrows=0)
    if not any(str(c).lower() in SYMBOL_COLUMNS for c in header.columns):
        return None
    numeric = [c for c in header.columns if _CANONICAL.get(str(c).strip().lower()) in PRICE_COLUMNS + OPTIONAL_COLUMNS]
    dtype = {c: (np.float64 if c in numeric else str) for c in header.columns}
    try:
        return _read_csv_text(path, dtype=dtype, na_values={c: [""] for c in numeric})
    except ValueError:  # a word among the numbers (or a PriceDataError, which the text read raises again)
        return None


def _read_csv_text(path: str, **options) -> pd.DataFrame:
    """The CSV as text cells, or a PriceDataError naming the file and the fix.

    Compression is chosen by the file's first bytes, not its name: a gzip download saved as
    ``.csv`` reads as well as a ``.csv.gz`` that was never compressed. ``utf-8-sig`` drops the
    byte-order mark spreadsheet programs put before the header. Cells are read as text so a stray
    word in a price column is reported, not turned into NaN. ``options`` go to pd.read_csv (another
    ``dtype``, ``nrows``).
    """
    with open(path, "rb") as fh:
        head = fh.read(2)
    if not head:
        raise PriceDataError(f"price file {path} is empty (0 bytes); give a CSV with a header Date,Open,High,Low,Close")
    compression = "gzip" if head == GZIP_MAGIC else None
    try:
        read = {"dtype": str, "keep_default_na": False, **options}
        frame = pd.read_csv(path, encoding="utf-8-sig", compression=compression, **read)
    except pd.errors.EmptyDataError:
        raise PriceDataError(
            f"price file {path} holds no text; give a CSV with a header Date,Open,High,Low,Close"
        ) from None
    except (UnicodeDecodeError, EOFError, OSError, zlib.error) as err:  # binary, truncated gzip, a zip or bzip2 file
        what = "a truncated or damaged gzip file" if compression else "not UTF-8 text"
        raise PriceDataError(
            f"price file {path} is {what} ({type(err).__name__}); give a plain or gzip-compressed UTF-8 CSV"
        ) from None
    except pd.errors.ParserError as err:  # e.g. a ';' header over rows with decimal commas ("1,5")
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig", compression=compression)
        _refuse_other_delimiter(header, path)
        raise PriceDataError(f"price file {path} is not a well-formed CSV: {' '.join(str(err).split())}") from None
    _refuse_other_delimiter(frame, path)
    return frame


def _refuse_other_delimiter(frame: pd.DataFrame, path: str) -> None:
    """A header that read as one column but holds ';' (European spreadsheets), tabs or pipes was
    written with another delimiter; say so instead of listing the columns as missing. Not read
    anyway: such files often also use decimal commas, which would give wrong prices."""
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    for sep, name in _DELIMITERS.items():
        if sep in header:
            raise PriceDataError(
                f"price file {path} looks {name}-separated (the header has {sep!r}: {header!r}); "
                "save it comma-separated"
            )


def is_parquet(path) -> bool:
    return os.fspath(path).lower().endswith((".parquet", ".pq"))


def _dates_from_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates kept as the index (pandas' default when writing Parquet) become the Date column."""
    if any(str(c).strip().lower() == "date" for c in frame.columns):
        return frame
    frame = frame.reset_index()
    first = frame.columns[0]
    if str(first).lower() in ("index", "date") or pd.api.types.is_datetime64_any_dtype(frame[first]):
        frame = frame.rename(columns={first: "Date"})
    return frame


# a column's name, stripped and lower-cased -> the name load_prices gives it
_CANONICAL = {c.lower(): c for c in ("Date",) + PRICE_COLUMNS + OPTIONAL_COLUMNS}
_CANONICAL["adj_close"] = _CANONICAL["adjclose"] = "Adj Close"


def _normalise_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    renamed = {}
    for col in frame.columns:
        key = str(col).strip().lower()
        if key in _CANONICAL:
            renamed[col] = _CANONICAL[key]
    frame = frame.rename(columns=renamed)
    missing = [c for c in ("Date",) + PRICE_COLUMNS if c not in frame.columns]
    if missing:
        raise PriceDataError(
            f"missing column(s) {missing} in {source}; found {list(map(str, frame.columns))}",
            column=missing[0],
        )
    return frame


# A UTC offset after a time of day: "2020-01-02 00:00:00-05:00", "2020-01-02T00:00Z", "...+0900".
_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?P<offset>Z|[+-]\d{2}:?\d{2})$")


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


def _to_numeric(frame, column, symbol, dates):
    values = frame[column]
    if values.dtype == np.float64:  # numbers already: taken as they are (pandas 2 re-reads their text 1 ulp off)
        return values.copy()
    as_text = values.astype(str).str.strip()
    numeric = pd.to_numeric(as_text.replace({"": "nan"}), errors="coerce")
    text_nan = as_text.str.lower().isin(["nan", "", "na", "n/a", "null", "none", "inf", "-inf"])
    bad = numeric.isna() & ~text_nan & values.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PriceDataError(
            f"non-numeric value {values.iloc[i]!r}",
            symbol=symbol,
            column=column,
            row=i,
            date=dates.iloc[i],
        )
    return numeric.astype(float)


def _validate_one(raw, symbol, adjust, on_invalid, min_rows) -> pd.DataFrame:
    frame = raw.reset_index(drop=True)
    dates = exchange_dates(frame["Date"])
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise PriceDataError(f"unparseable date {frame['Date'].iloc[i]!r}", symbol=symbol, column="Date", row=i)
    cols = [c for c in PRICE_COLUMNS + OPTIONAL_COLUMNS if c in frame.columns]
    out = pd.DataFrame({c: _to_numeric(frame, c, symbol, dates) for c in cols})
    out.index = pd.DatetimeIndex(dates, name="Date")

    repairs = {}
    if on_invalid == "raise":
        _check_date_order(out, symbol)
    else:  # a repair puts the rows in date order and keeps the first of each date
        out, repairs = _order_dates(out)

    out, repairs["volume"] = _blank_bad_volume(out, symbol)
    bad = _bad_cells(out)
    repairs["rows"] = 0
    if bad.any(axis=None):
        if on_invalid == "raise":
            _raise_first(out, bad, symbol)
        rows = bad.any(axis=1).to_numpy()
        if on_invalid == "drop":
            out = out.loc[~rows]
        else:  # ffill: a bad first row has nothing to fill from
            if rows[0]:
                _raise_first(
                    out.iloc[:1],
                    bad.iloc[:1],
                    symbol,
                    hint=" (cannot forward-fill row 0)",
                    fix="fix the data or pass on_invalid='drop' (--on-invalid drop)",
                )
            out = out.mask(bad).ffill()
            still = _bad_cells(out)
            if still.any(axis=None):
                _raise_first(
                    out,
                    still,
                    symbol,
                    hint=" (still invalid after forward-fill)",
                    fix="fix the data or pass on_invalid='drop' (--on-invalid drop)",
                )
        repairs["rows"] = int(rows.sum())
    if on_invalid != "raise":
        repairs["method"] = on_invalid
        _warn_repairs(symbol, repairs)
    elif not repairs["volume"]:
        repairs = {}

    if len(out) < min_rows:
        raise PriceDataError(f"has {len(out)} rows; at least {min_rows} are needed", symbol=symbol)

    adjustments = []
    if adjust == "adj_close":
        if "Adj Close" not in out.columns:
            raise PriceDataError("adjust='adj_close' needs an 'Adj Close' column", symbol=symbol, column="Adj Close")
        factor = out["Adj Close"] / out["Close"]
        ratio = factor / factor.shift(1)
        changed = np.flatnonzero((ratio - 1.0).abs().to_numpy() > 1e-6)
        adjustments = [(out.index[i], float(ratio.iloc[i])) for i in changed]
        for c in PRICE_COLUMNS:
            out[c] = out[c] * factor

    out.attrs["symbol"] = symbol
    out.attrs["repairs"] = repairs
    out.attrs["adjustments"] = adjustments
    return out


def _bad_cells(out: pd.DataFrame) -> pd.DataFrame:
    """True where a price cell is NaN/inf/non-positive or breaks the OHLC envelope."""
    prices = out[list(PRICE_COLUMNS)]
    arr = prices.to_numpy()
    bad = pd.DataFrame(~np.isfinite(arr) | (arr <= 0), index=out.index, columns=prices.columns)
    with np.errstate(invalid="ignore"):
        hi = out["High"] < np.maximum(out["Open"], out["Close"])
        lo = out["Low"] > np.minimum(out["Open"], out["Close"])
    bad["High"] |= hi.to_numpy()
    bad["Low"] |= lo.to_numpy()
    if "Adj Close" in out.columns:
        v = out["Adj Close"].to_numpy()
        bad["Adj Close"] = ~np.isfinite(v) | (v <= 0)
    return bad


def _check_date_order(out: pd.DataFrame, symbol) -> None:
    """Raise at the first row (in input order) that repeats a date or goes back in time."""
    dup = np.flatnonzero(out.index.duplicated())
    back = np.flatnonzero(np.diff(out.index.asi8) < 0) + 1
    if dup.size and (not back.size or dup[0] <= back[0]):
        i = int(dup[0])
        raise PriceDataError(
            f"duplicate date; fix the data or pass {_REPAIR_HINT}",
            symbol=symbol,
            column="Date",
            row=i,
            date=out.index[i],
        )
    if back.size:
        i = int(back[0])
        raise PriceDataError(
            f"dates are not in increasing order (follows {_fmt_date(out.index[i - 1])}); "
            f"sort the input by date or pass {_REPAIR_HINT}",
            symbol=symbol,
            column="Date",
            row=i,
            date=out.index[i],
        )


def _order_dates(out: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Keep the first row of each date (input order), then sort by date; counts the rows
    dropped as repeats and the rows that were out of order (dated before a row above them)."""
    dup = out.index.duplicated(keep="first")
    out = out.loc[~dup]
    stamps = out.index.asi8
    late = stamps[1:] < np.maximum.accumulate(stamps)[:-1]
    out = out.iloc[np.argsort(stamps, kind="stable")]
    return out, {"sorted": int(late.sum()), "duplicates": int(dup.sum())}


def _blank_bad_volume(out: pd.DataFrame, symbol) -> tuple[pd.DataFrame, int]:
    """Volume is optional and feeds no forecast: a NaN, infinite or negative one becomes NaN
    (the dollar-volume field skips it) with a warning, instead of rejecting the prices."""
    if "Volume" not in out.columns:
        return out, 0
    v = out["Volume"].to_numpy()
    bad = ~np.isfinite(v) | (v < 0)
    count = int(bad.sum())
    if count:
        out = out.copy()
        out.loc[bad, "Volume"] = np.nan
        first = int(np.flatnonzero(bad)[0])
        warnings.warn(
            f"{_label(symbol)}column 'Volume': {count} missing, infinite or negative value(s) (first at row "
            f"{first} ({_fmt_date(out.index[first])})) left empty; Volume only feeds the dollar-volume "
            "field, which skips them",
            PriceRepairWarning,
            stacklevel=_caller_level(),
        )
    return out, count


def _label(symbol) -> str:
    return f"symbol {symbol!r}: " if symbol is not None else ""


def _warn_repairs(symbol, repairs: dict) -> None:
    done = []
    if repairs.get("sorted"):
        done.append(f"sorted {repairs['sorted']} row(s) into date order")
    if repairs.get("duplicates"):
        done.append(f"dropped {repairs['duplicates']} row(s) repeating an earlier date")
    if repairs.get("rows"):
        verb = "dropped" if repairs["method"] == "drop" else "forward-filled"
        done.append(f"{verb} {repairs['rows']} row(s) with invalid prices")
    if done:
        warnings.warn(
            f"{_label(symbol)}on_invalid={repairs['method']!r}: " + "; ".join(done),
            PriceRepairWarning,
            stacklevel=_caller_level(),
        )


def _raise_first(out, bad, symbol, hint="", fix=None):
    rows, cols = np.nonzero(bad.to_numpy())
    # In the first bad row, a missing or non-positive price comes first: it is the cause, and an
    # envelope complaint about it ("Low 97.86 is above min(Open, Close) = -5.0") would hide it.
    values = out[list(bad.columns)].to_numpy()[rows, cols]
    envelope_only = np.isfinite(values) & (values > 0)
    order = np.lexsort((cols, envelope_only, rows))
    r, c = int(rows[order[0]]), bad.columns[cols[order[0]]]
    value = out[c].iloc[r]
    if not np.isfinite(value):
        what = f"{value} value"
    elif c == "High" and value > 0 and value < max(out["Open"].iloc[r], out["Close"].iloc[r]):
        what = f"High {value} is below max(Open, Close) = {max(out['Open'].iloc[r], out['Close'].iloc[r])}"
    elif c == "Low" and value > 0 and value > min(out["Open"].iloc[r], out["Close"].iloc[r]):
        what = f"Low {value} is above min(Open, Close) = {min(out['Open'].iloc[r], out['Close'].iloc[r])}"
    else:
        what = f"non-positive value {value}"
    raise PriceDataError(
        f"{what}{hint}; {fix or 'fix the data or pass ' + _REPAIR_HINT}",
        symbol=symbol,
        column=c,
        row=r,
        date=out.index[r],
    )


def require_rows(frame: pd.DataFrame, needed: int, purpose: str) -> None:
    """Raise a PriceDataError naming the symbol when ``frame`` is shorter than ``needed``."""
    if len(frame) < needed:
        raise PriceDataError(
            f"has {len(frame)} rows; {purpose} needs at least {needed}",
            symbol=frame.attrs.get("symbol"),
        )


def _caller_level() -> int:
    """The stacklevel that points a warning at the first caller outside this module (the code that
    called load_prices), however deep in it the warning is raised."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level


# -- several symbols -------------------------------------------------------------------------


def _validate_each(raw, keys, sym_col, wanted, adjust, on_invalid, min_rows) -> dict:
    """``{symbol: frame}``, every symbol cut out of the panel and validated on its own."""
    frames = {}
    for s in wanted:
        part = raw[keys == s].drop(columns=[sym_col]).reset_index(drop=True)
        frames[s] = _validate_one(part, s, adjust, on_invalid, min_rows)
    return frames


def _validate_panel(raw, keys, sym_col, wanted, adjust, on_invalid, min_rows, as_text=None) -> dict:
    """What _validate_each returns, with the checks run over the whole panel at once.

    A symbol none of whose rows has anything to report, repair or warn about (a clean symbol) is
    cut from the checked panel directly. Every other symbol goes through _validate_one in turn, so
    errors, repairs and warnings, and which of them comes first, are the per-symbol path's.
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
        frames[s] = _validate_one(part, s, adjust, on_invalid, min_rows)
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
        self.dates, dates_known = _panel_dates(raw["Date"], self.rows, self.starts, counts)
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
        """A clean symbol's frame, equal to what _validate_one makes of its rows."""
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
    """The column's numbers as _to_numeric reads them, NaN where a value needs the per-symbol path
    (to name what is wrong with it, or to read it the way it does)."""
    if values.dtype == np.float64:  # numbers already, which _to_numeric takes as they are
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
    """adjust='adj_close' for one clean symbol, computed as _validate_one computes it."""
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
        dates, known = _panel_dates(values, np.arange(len(values)), starts, counts)
        for i, start, count, ok in zip(members, starts, counts, known):
            if ok:
                found[i] = dates[start : start + count]
    return found


def _panel_dates(values: pd.Series, order, starts, counts) -> tuple[np.ndarray, np.ndarray]:
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
