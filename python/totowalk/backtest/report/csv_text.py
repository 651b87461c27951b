"""A table's CSV text made by the compiled writer: the same bytes as ``DataFrame.to_csv(index=False)``.

pandas formats every cell through a Python object (numpy's float repr, then the csv module's
quoting), about 15-25 MB/s; the run's tables spent more time there than in the backtest itself at
a hundred symbols. ``totowalk._C.csv_rows`` writes the same shortest round-trip digits, laid out as
numpy lays them out, straight into the text.

A column qualifies when it is float32/float64, an integer, a bool, a date without a time of day,
text (pandas' str or objects holding only text), or lists of numbers written as JSON text (the
simulations' daily values, :func:`text_lists`). For anything else :func:`csv_text` lets pandas
write the table. Before its first use the writer is checked against pandas on values at every
layout boundary of the installed numpy (numpy 2.3 writes float32 from 1e6 up in scientific
notation, earlier releases from 1e16); if they differ, pandas writes every table.
"""

from __future__ import annotations

import csv
import functools
import io
import json

import numpy as np
import pandas as pd

from ..._native import native
from ..forecast.store import json_default

__all__ = ["csv_text", "holds_lists", "text_lists"]

_LOWER = 1e-4  # numpy and Python write |x| >= 1e-4 positionally, smaller values in scientific notation
_FIRST_YEAR_DAY, _LAST_YEAR_DAY = -354285, 2932896  # 1000-01-01 and 9999-12-31: four-digit years


def csv_text(frame: pd.DataFrame, header: bool, lists_as_text: bool = False) -> bytes:
    """``frame.to_csv(index=False, header=header)`` as bytes, after :func:`text_lists` when
    ``lists_as_text``: by the compiled writer where it can, else by pandas (the same bytes)."""
    listed = _list_columns(frame) if lists_as_text else []
    compiled = _compiled_text(frame, header, frozenset(listed))
    if compiled is not None:
        return compiled
    return _with_json_text(frame, listed).to_csv(index=False, header=header).encode()


def text_lists(frame: pd.DataFrame) -> pd.DataFrame:
    """List-valued fields (daily profit values) as JSON text, as CSV tables store them."""
    return _with_json_text(frame, _list_columns(frame))


def _with_json_text(frame: pd.DataFrame, listed: list) -> pd.DataFrame:
    if not listed:
        return frame
    return frame.assign(**{col: _json_cells(frame[col].tolist()) for col in listed})


def _list_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns if _is_object(frame[c].dtype) and holds_lists(frame[c].to_numpy())]


def holds_lists(values: np.ndarray) -> bool:
    """Whether a column's cells hold lists or arrays (written as JSON text to CSV, as lists to Parquet)."""
    return any(isinstance(v, (list, np.ndarray)) for v in values)


def _is_object(dtype) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def _json_cells(values: list) -> list:
    """``json.dumps`` of each cell. A column of flat lists (the daily values) is encoded by one call
    and cut at the cells' brackets, a tenth of the time of a call per cell; anything else (a nested
    list, a None, text holding a bracket) is encoded cell by cell."""
    values = [v.tolist() if isinstance(v, np.ndarray) else v for v in values]  # as json_default would
    if values and all(isinstance(v, list) for v in values):
        text = json.dumps(values, default=json_default)
        if text.count("[") == len(values) + 1:  # one bracket a cell: none nested, none in text
            return [f"[{body}]" for body in text[2:-2].split("], [")]
    return [json.dumps(v, default=json_default) for v in values]


def _header(columns) -> bytes:
    """The header line pandas writes for these column labels (the csv module's quoting)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(list(columns))
    return buffer.getvalue().encode()


def _compiled_text(frame: pd.DataFrame, header: bool, lists: frozenset) -> bytes | None:
    """The compiled writer's text, or None where a column is of a kind it does not write (or it is
    not built, or disagrees with this pandas)."""
    writer = _writer()
    if writer is None or frame.shape[1] < 2 or not all(isinstance(c, str) for c in frame.columns):
        return None  # one column: the csv module quotes an empty row; labels other than text: pandas
    columns = []
    for position, name in enumerate(frame.columns):
        column = _column(frame.iloc[:, position], name in lists, _layouts())
        if column is None:
            return None
        columns.append(column)
    try:
        body = writer(columns, len(frame))
    except TypeError:  # a list cell holding something other than numbers
        return None
    return (_header(frame.columns) if header else b"") + body


def _column(series: pd.Series, as_lists: bool, layouts: dict):
    """``(kind, values, extra)`` for ``totowalk._C.csv_rows``, or None."""
    dtype = series.dtype
    if as_lists:
        return ("lists", series.to_numpy(), None) if _is_object(dtype) else None
    if isinstance(dtype, pd.StringDtype):
        return _codes(series)
    if not isinstance(dtype, np.dtype):
        return None  # categorical, nullable numbers, dates with a timezone, ...: pandas
    values = series.to_numpy()
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        name = f"float{dtype.itemsize * 8}"
        return (name, np.ascontiguousarray(values), layouts[name]) if name in layouts else None
    if dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize < 8):
        return ("int64", np.ascontiguousarray(values, dtype=np.int64), None)
    if dtype.kind == "b":
        return ("bool", np.ascontiguousarray(values).view(np.uint8), None)
    if dtype.kind == "M":
        return _dates(values)
    if dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return _codes(series)
    return None


def _codes(series: pd.Series):
    codes, labels = pd.factorize(series)  # missing values -> -1: written as "" (pandas' na_rep)
    return ("codes", np.ascontiguousarray(codes, dtype=np.int64), [_quoted(str(label)) for label in labels])


def _quoted(text: str) -> str:
    """``text`` as the csv module writes it in a row (its quoting rules differ between Pythons:
    3.11 leaves a lone carriage return unquoted)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([text, ""])  # a second cell: "" alone is quoted
    return buffer.getvalue()[:-2]  # less the "," and the line end


def _dates(values: np.ndarray):
    """Dates without a time of day, as pandas writes them ("YYYY-MM-DD"); a time of day: None."""
    days = values.astype("datetime64[D]")
    missing = np.isnat(values)
    if not np.array_equal(days.astype(values.dtype)[~missing], values[~missing]):
        return None  # pandas would write a time of day
    count = days.view(np.int64)
    present = count[~missing]
    if present.size and (present.min() < _FIRST_YEAR_DAY or present.max() > _LAST_YEAR_DAY):
        return None
    return ("date", np.ascontiguousarray(count), None)  # NaT is INT64_MIN, written as ""


@functools.cache
def _layouts() -> dict:
    """{dtype name: (lower, upper)}: where the installed numpy writes a float positionally."""
    layouts = {}
    for dtype, largest in ((np.float32, 10), (np.float64, 22)):  # powers of ten exact in the dtype
        upper = next((10.0**k for k in range(1, largest + 1) if "e" in str(dtype(10.0**k))), None)
        if upper is not None:
            layouts[np.dtype(dtype).name] = (_LOWER, upper)
    return layouts


@functools.cache
def _writer():
    """``totowalk._C.csv_rows`` when built and in agreement with pandas on the probe table, else None."""
    compiled = native()
    writer = getattr(compiled, "csv_rows", None)
    if writer is None:
        return None
    probe = _probe_table()
    columns = [_column(probe[name], name in ("lists", "arrays"), _layouts()) for name in probe.columns]
    if any(column is None for column in columns):
        return None
    try:
        ours = _header(probe.columns) + writer(columns, len(probe))
    except TypeError:  # built without floating-point std::to_chars
        return None
    return writer if ours == text_lists(probe).to_csv(index=False).encode() else None


def _probe_table() -> pd.DataFrame:
    """Values at every boundary of the float layouts (each power of ten and its neighbours, both
    signs), the specials, and every other kind the writer handles."""
    powers = 10.0 ** np.arange(-12, 39)
    edges = {}
    for dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):
            exact = powers.astype(dtype)
        around = np.concatenate([exact, np.nextafter(exact, dtype(0)), np.nextafter(exact, dtype(np.inf))])
        special = np.array([0.0, np.nan, np.inf, np.finfo(dtype).max, np.finfo(dtype).smallest_subnormal, 0.1, 1 / 3])
        values = np.concatenate([around, special.astype(dtype)])
        edges[dtype] = np.concatenate([values, -values])
    rows = len(edges[np.float64])
    edges[np.float32] = np.resize(edges[np.float32], rows)
    step = np.arange(rows)
    return pd.DataFrame(
        {
            "float64": edges[np.float64],
            "float32": edges[np.float32],
            "int64": step - rows // 2,
            "bool": step % 2 == 0,
            "date": np.where(step % 7 == 0, np.datetime64("NaT"), np.datetime64("1999-12-31") + step * 97),
            "text": pd.Series(np.resize(["a", 'say "b"', "c,d", "e\nf", "g\rh", "", None], rows), dtype="str"),
            "lists": pd.Series([[float(v), 2.5, -1] if i % 3 else [] for i, v in enumerate(edges[np.float64])]),
            "arrays": pd.Series([np.array([v, -v]) if i % 5 else None for i, v in enumerate(edges[np.float64])]),
        }
    )
