"""Load daily OHLC bars and validate them, naming the symbol, column and row of every problem.

Nothing is dropped or repaired silently: problems raise :class:`PriceDataError`, unless the
caller asks for ``on_invalid="drop"`` or ``"ffill"``, in which case the touched rows are counted,
reported with a warning and recorded in ``frame.attrs["repairs"]``.
"""

from __future__ import annotations

import os
import re
import warnings
import zlib
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import require_extra

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
    """
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be one of {ON_INVALID}, got {on_invalid!r}")
    if adjust not in ADJUST:
        raise ValueError(f"adjust must be one of {ADJUST}, got {adjust!r}")
    raw, source = _read(path_or_frame)
    raw = _normalise_columns(raw, source)
    sym_col = next((c for c in raw.columns if c.lower() in SYMBOL_COLUMNS), None)

    if sym_col is None:
        name = symbol if isinstance(symbol, str) else _single_name(symbol, source)
        if name is None and not isinstance(path_or_frame, pd.DataFrame):
            name = file_symbol(path_or_frame)  # a one-symbol file is named by its file
        return _validate_one(raw, name, adjust, on_invalid, min_rows)

    available = list(dict.fromkeys(raw[sym_col].astype(str)))
    wanted = [symbol] if isinstance(symbol, str) else (available if symbol is None else list(symbol))
    for s in wanted:
        if s not in available:
            raise PriceDataError(f"unknown symbol {s!r} in {source}; available: {', '.join(available)}", symbol=s)
    frames = {}
    for s in wanted:
        part = raw[raw[sym_col].astype(str) == s].drop(columns=[sym_col]).reset_index(drop=True)
        frames[s] = _validate_one(part, s, adjust, on_invalid, min_rows)
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


def _read(path_or_frame) -> tuple[pd.DataFrame, str]:
    if isinstance(path_or_frame, pd.DataFrame):
        return _dates_from_index(path_or_frame).copy(), "the given DataFrame"
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
        return _dates_from_index(frame), path
    frame = _read_csv_text(path)
    first = str(frame.columns[0]) if len(frame.columns) else ""
    if not any(str(c).strip().lower() == "date" for c in frame.columns) and (
        first.startswith("Unnamed: ") or first.lower() == "index"
    ):
        frame = frame.rename(columns={frame.columns[0]: "Date"})  # an unnamed date index, written by to_csv()
    return frame, path


GZIP_MAGIC = b"\x1f\x8b"
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _read_csv_text(path: str) -> pd.DataFrame:
    """The CSV as text cells, or a PriceDataError naming the file and the fix.

    Compression is chosen by the file's first bytes, not its name: a gzip download saved as
    ``.csv`` reads as well as a ``.csv.gz`` that was never compressed. ``utf-8-sig`` drops the
    byte-order mark spreadsheet programs put before the header. Cells are read as text so a stray
    word in a price column is reported, not turned into NaN.
    """
    with open(path, "rb") as fh:
        head = fh.read(2)
    if not head:
        raise PriceDataError(f"price file {path} is empty (0 bytes); give a CSV with a header Date,Open,High,Low,Close")
    compression = "gzip" if head == GZIP_MAGIC else None
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", compression=compression)
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


def _normalise_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    canonical = {c.lower(): c for c in ("Date",) + PRICE_COLUMNS + OPTIONAL_COLUMNS}
    canonical["adj_close"] = canonical["adjclose"] = "Adj Close"
    renamed = {}
    for col in frame.columns:
        key = str(col).strip().lower()
        if key in canonical:
            renamed[col] = canonical[key]
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
            stacklevel=4,
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
            f"{_label(symbol)}on_invalid={repairs['method']!r}: " + "; ".join(done), PriceRepairWarning, stacklevel=4
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
