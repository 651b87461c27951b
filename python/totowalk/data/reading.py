"""A price file or frame as a raw frame, its columns under the names load_prices gives them.

CSV cells are read as text (or, for a multi-symbol CSV whose price cells are all plain numbers, as
those numbers); nothing is checked here but that the input can be read and has the columns needed.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import pandas as pd

from ..errors import require_extra
from .columns import DATE_ALIASES, OPTIONAL_COLUMNS, PRICE_COLUMNS, SYMBOL_COLUMNS, date_columns
from .errors import PriceDataError


def file_symbol(path) -> str:
    """The natural name of a single-symbol file: its name without .csv/.gz/.parquet (``IBM.csv.gz`` -> IBM)."""
    name = os.path.basename(os.fspath(path))
    for suffix in (".gz", ".csv", ".parquet", ".pq", ".txt"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def read_raw(path_or_frame, prices_as_numbers: bool = False) -> tuple[pd.DataFrame, str, bool]:
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
    if not date_columns(frame.columns) and (first.startswith("Unnamed: ") or first.lower() == "index"):
        frame = frame.rename(columns={frame.columns[0]: "Date"})  # an unnamed date index, written by to_csv()
    return frame, path, numbers_read


def read_text(path_or_frame) -> pd.DataFrame:
    """The input with every CSV cell as text, columns named as load_prices names them."""
    raw, source, _ = read_raw(path_or_frame)
    return normalise_columns(raw, source)


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
    if date_columns(frame.columns):
        return frame
    # an unnamed index of row numbers (a RangeIndex) holds no dates: as dates it would read as
    # nanoseconds after 1970, so it is left out and the missing Date column is named instead
    unnamed_numbers = frame.index.name is None and pd.api.types.is_numeric_dtype(frame.index.dtype)
    frame = frame.reset_index(drop=unnamed_numbers)
    first = frame.columns[0]
    if not unnamed_numbers and (
        str(first).lower() in ("index", "date") or pd.api.types.is_datetime64_any_dtype(frame[first])
    ):
        frame = frame.rename(columns={first: "Date"})
    return frame


# a column's name, stripped and lower-cased -> the name load_prices gives it
_CANONICAL = {c.lower(): c for c in ("Date",) + PRICE_COLUMNS + OPTIONAL_COLUMNS}
_CANONICAL["adj_close"] = _CANONICAL["adjclose"] = "Adj Close"


def normalise_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    sources: dict = {}  # canonical name -> the columns that name it
    for col in frame.columns:
        key = str(col).strip().lower()
        if key in _CANONICAL and key != "date":
            sources.setdefault(_CANONICAL[key], []).append(col)
    dates = date_columns(frame.columns)
    if dates:
        sources["Date"] = dates
    for name, cols in sources.items():
        if len(cols) > 1:  # "Close" and "close": which one is meant cannot be guessed
            listed = ", ".join(repr(str(c)) for c in cols)
            raise PriceDataError(f"columns {listed} all name {name} in {source}; keep one of them", column=name)
    frame = frame.rename(columns={cols[0]: name for name, cols in sources.items()})
    missing = [c for c in ("Date",) + PRICE_COLUMNS if c not in frame.columns]
    if missing:
        hint = f" (the dates may also be called {', '.join(DATE_ALIASES)})" if "Date" in missing else ""
        raise PriceDataError(
            f"missing column(s) {missing} in {source}; found {list(map(str, frame.columns))}{hint}",
            column=missing[0],
        )
    return frame
