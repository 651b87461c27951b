"""The compiled CSV writer writes the bytes pandas writes, or leaves the table to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from totowalk._native import native
from totowalk.backtest.report import csv_text
from totowalk.backtest.report.files import TableFile

compiled = pytest.mark.skipif(
    getattr(native(), "csv_rows", None) is None or csv_text._writer() is None,
    reason="the compiled CSV writer is not built (or disagrees with this numpy/pandas)",
)


def _pandas(frame: pd.DataFrame, header: bool = True, lists_as_text: bool = False) -> bytes:
    return (csv_text.text_lists(frame) if lists_as_text else frame).to_csv(index=False, header=header).encode()


def _compiled(frame: pd.DataFrame, header: bool = True, lists_as_text: bool = False) -> bytes | None:
    lists = frozenset(csv_text._list_columns(frame)) if lists_as_text else frozenset()
    return csv_text._compiled_text(frame, header, lists)


def _random_floats(rng: np.random.Generator, dtype, count: int) -> np.ndarray:
    """Every float the dtype holds is equally likely (bit patterns), with the specials mixed in."""
    width = np.dtype(dtype).itemsize
    bits = rng.integers(0, 2 ** (8 * width), size=count, dtype=np.uint64).astype(f"u{width}")
    values = bits.view(dtype).copy()
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-4, 1e6, 1e16, 0.1], dtype=dtype)
    values[: len(specials)] = specials[:count]
    return values


def _mixed_frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    days = rng.integers(-200_000, 2_900_000, rows)
    dates = (np.datetime64("1970-01-01") + days).astype("datetime64[us]")
    dates[rng.random(rows) < 0.1] = np.datetime64("NaT")
    text = np.array(["AAPL", "BRK.B", "a,b", 'say "hi"', "two\nlines", "cr\r", "", "ünï", " pad "], dtype=object)
    symbols = text[rng.integers(0, len(text), rows)]
    symbols[rng.random(rows) < 0.1] = None
    return pd.DataFrame(
        {
            "symbol": pd.Series(symbols, dtype="str"),
            "note": pd.Series(text[rng.integers(0, len(text), rows)], dtype=object),
            "simulation": rng.integers(-(2**62), 2**62, rows),
            "step": rng.integers(0, 7, rows).astype(np.int32),
            "volume": rng.integers(0, 60_000, rows).astype(np.uint16),
            "in_market": rng.random(rows) < 0.5,
            "date": dates,
            "prediction": _random_floats(rng, np.float32, rows),
            "actual": _random_floats(rng, np.float64, rows),
            "return": rng.normal(0.0, 0.02, rows),
            "band": rng.normal(0.0, 0.02, rows).astype(np.float32),
        }
    )


@compiled
@pytest.mark.parametrize("header", [True, False])
def test_every_column_kind_is_written_as_pandas_writes_it(header):
    frame = _mixed_frame(np.random.default_rng(7), 20_000)
    ours = _compiled(frame, header)
    assert ours is not None  # written by the compiled writer, not handed back to pandas
    assert ours == _pandas(frame, header)


@compiled
def test_lists_are_written_as_their_json_text():
    rng = np.random.default_rng(3)
    rows = 3_000
    cells = []
    for i in range(rows):
        size = int(rng.integers(0, 6))
        shape = i % 6
        if shape == 0:
            cells.append(_random_floats(rng, np.float64, size))  # NaN and infinities: NaN, Infinity
        elif shape == 1:
            cells.append(rng.normal(size=size).astype(np.float32))  # .tolist() gives float64 values
        elif shape == 2:
            cells.append(rng.integers(-5, 5, size))
        elif shape == 3:
            cells.append([float(v) for v in rng.normal(size=size)] + [int(size)])  # ints and floats
        elif shape == 4:
            cells.append(None)  # "null"
        else:
            cells.append(tuple(rng.normal(size=size)))
    frame = pd.DataFrame({"symbol": ["S"] * rows, "daily": cells, "value": rng.normal(size=rows)})
    ours = _compiled(frame, lists_as_text=True)
    assert ours is not None
    assert ours == _pandas(frame, lists_as_text=True)


@compiled
@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(
            {"at": pd.to_datetime(["2024-01-02 09:30", "2024-01-03 00:00"]), "x": [1.0, 2.0]}
        ),  # a time of day
        pd.DataFrame({"at": pd.to_datetime(["2024-01-02", "2024-01-03"]).tz_localize("UTC"), "x": [1.0, 2.0]}),
        pd.DataFrame({"k": pd.Categorical(["a", "b"]), "x": [1.0, 2.0]}),
        pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "x": [1.0, 2.0]}),
        pd.DataFrame({"o": np.array([1, "a"], dtype=object), "x": [1.0, 2.0]}),  # numbers among text
        pd.DataFrame({"u": np.array([2**64 - 1, 0], dtype=np.uint64), "x": [1.0, 2.0]}),
        pd.DataFrame({"h": np.array([1.5, 2.5], dtype=np.float16), "x": [1.0, 2.0]}),
        pd.DataFrame({"x": [1.0, np.nan]}),  # one column: the csv module quotes an empty row
        pd.DataFrame({1: [1.0, 2.0], "x": [1.0, 2.0]}),  # a label that is not text
        pd.DataFrame({"d": np.array(["0999-12-31", "2000-01-01"], dtype="datetime64[s]"), "x": [1.0, 2.0]}),
    ],
    ids=[
        "time-of-day",
        "timezone",
        "categorical",
        "nullable",
        "mixed-objects",
        "uint64",
        "float16",
        "one-column",
        "int-label",
        "three-digit-year",
    ],
)
def test_other_kinds_are_left_to_pandas_with_the_same_bytes(frame):
    assert _compiled(frame) is None
    assert csv_text.csv_text(frame, header=True) == _pandas(frame)


@compiled
@pytest.mark.parametrize(
    "cell", [[[1.0], [2.0]], ["text"], [True], np.array([True]), np.eye(2), np.array([1], np.uint8)]
)
def test_a_list_cell_that_is_not_numbers_is_left_to_pandas(cell):
    frame = pd.DataFrame({"symbol": ["A", "B"], "daily": [[0.5, 1.5], cell]})
    assert _compiled(frame, lists_as_text=True) is None
    assert csv_text.csv_text(frame, header=True, lists_as_text=True) == _pandas(frame, lists_as_text=True)


@compiled
def test_rows_formatted_on_several_threads_are_the_rows_of_one():
    frame = _mixed_frame(np.random.default_rng(11), 70_000)
    columns = [csv_text._column(frame[name], False, csv_text._layouts()) for name in frame.columns]
    one = native().csv_rows(columns, len(frame), 1)
    assert native().csv_rows(columns, len(frame), 3) == one
    assert csv_text._header(frame.columns) + one == _pandas(frame)


@compiled
def test_bad_columns_are_refused_by_name():
    rows = np.arange(3)
    with pytest.raises(ValueError, match="code is out of range"):
        native().csv_rows([("codes", rows, ["a"]), ("int64", rows, None)], 3)
    with pytest.raises(ValueError, match="column 1 \\(int64\\)"):
        native().csv_rows([("int64", rows, None), ("int64", rows[:2], None)], 3)
    with pytest.raises(ValueError, match="unknown column kind"):
        native().csv_rows([("complex", rows, None)], 3)


def test_a_writer_that_disagrees_with_numpy_is_not_used(monkeypatch):
    """The probe table catches a layout the writer would get wrong (float32 from 1e16, as numpy
    before 2.3 wrote it, checked against a numpy that does otherwise, or the reverse)."""
    wrong = {name: (1e-4, 1e7 if upper == 1e16 else 1e16) for name, (_, upper) in csv_text._layouts().items()}
    monkeypatch.setattr(csv_text, "_layouts", lambda: wrong)
    csv_text._writer.cache_clear()
    try:
        assert csv_text._writer() is None
        frame = _mixed_frame(np.random.default_rng(5), 50)
        assert csv_text.csv_text(frame, header=True) == _pandas(frame)  # pandas wrote it
    finally:
        monkeypatch.undo()
        csv_text._writer.cache_clear()


def test_a_table_file_of_parts_is_one_pandas_table(tmp_path):
    rng = np.random.default_rng(13)
    parts = [_mixed_frame(rng, rows) for rows in (5, 0, 1_000)]
    table = TableFile(tmp_path / "t.csv", "csv")
    for part in parts:
        table.append(part)
    table.close()
    path = table.commit()
    whole = pd.concat(parts, ignore_index=True)
    assert path.read_bytes() == _pandas(whole)


def test_a_part_written_in_slices_is_the_part_written_at_once(tmp_path, monkeypatch):
    """A large part is written a slice of pandas chunks at a time (bounded text in memory); the
    slices fall on pandas' own chunk boundaries, where it decides a date column's format, so even a
    column whose chunks differ (one all at midnight, one with times of day) comes out as one call."""
    from totowalk.backtest.report import files

    monkeypatch.setattr(files, "CSV_CHUNKS_AT_ONCE", 1)
    rows = 100_000 // 3 * 3 + 5  # three pandas chunks of a 3-column frame, and a few rows more
    chunk = 100_000 // 3
    times = np.full(rows, np.datetime64("2024-01-02T00:00", "us"))
    times[chunk:] += np.timedelta64(90, "m")  # later chunks carry a time of day
    frame = pd.DataFrame({"at": times, "x": np.arange(rows, dtype=np.float64) / 7, "symbol": "A"})
    frame["symbol"] = frame["symbol"].astype("str")
    table = TableFile(tmp_path / "t.csv", "csv")
    table.append(frame)
    table.append(frame.iloc[:0])
    table.close()
    assert table.commit().read_bytes() == _pandas(frame)
