"""Whole-panel checks of load_prices and collect_frames against the per-symbol path (issue 33, item 5).

The per-symbol path (load_prices_per_symbol; each frame's dates parsed on their own) is the
reference: for every input here, the fast path must give the same frames (values, dtypes, index,
attrs), the same warnings in the same order, or the same PriceDataError (message and attributes).
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from totowalk.backtest.inputs import frames as frames_module
from totowalk.backtest.inputs.frames import collect_frames
from totowalk.data import per_symbol
from totowalk.data import prices as prices_module
from totowalk.data.prices import (
    PriceDataError,
    exchange_dates,
    exchange_dates_of_each,
    load_prices,
    load_prices_per_symbol,
)

SYMBOLS = [f"U{i:04d}" for i in range(6)]
ODD = "U0003"  # the symbol a defect is planted in
ROW = 7  # at this row of that symbol


def make_panel(num_symbols=6, num_bars=25, seed=0, adj_close=False) -> pd.DataFrame:
    """Random-walk bars with Low <= Open, Close <= High; text dates; symbols one after another."""
    rng = np.random.default_rng(seed)
    shape = (num_symbols, num_bars)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, shape), axis=1))
    open_ = close * np.exp(rng.normal(0.0, 0.01, shape))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, shape))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, shape))
    frame = pd.DataFrame(
        {
            "Date": np.tile(pd.bdate_range("2020-01-01", periods=num_bars).strftime("%Y-%m-%d"), num_symbols),
            "Ticker": np.repeat([f"U{i:04d}" for i in range(num_symbols)], num_bars),
            "Open": open_.ravel().round(4),
            "High": high.ravel().round(4),
            "Low": low.ravel().round(4),
            "Close": close.ravel().round(4),
            "Volume": rng.integers(1_000, 1_000_000, shape).ravel().astype(float),
        }
    )
    if adj_close:  # a 2:1 split a third of the way in for every other symbol, dividends elsewhere
        factor = np.ones(shape)
        factor[::2, : num_bars // 3] = 0.5
        factor *= 1.0 - 0.001 * (np.arange(num_bars) < num_bars // 2)
        frame["Adj Close"] = frame["Close"] * factor.ravel()
    return frame


def _at(frame, symbol, row):
    """The frame's index label of a symbol's row."""
    return frame.index[frame["Ticker"] == symbol][row]


def _set(frame, column, value, symbol=ODD, row=ROW):
    if isinstance(value, str) and frame[column].dtype != object:
        frame[column] = frame[column].astype(object)
    frame.loc[_at(frame, symbol, row), column] = value
    return frame


def _swap_dates(frame):
    a, b = _at(frame, ODD, ROW - 1), _at(frame, ODD, ROW)
    frame.loc[[a, b], "Date"] = frame.loc[[b, a], "Date"].to_numpy()
    return frame


def _repeat_date(frame):
    frame.loc[_at(frame, ODD, ROW), "Date"] = frame.loc[_at(frame, ODD, ROW - 1), "Date"]
    return frame


def _high_below(frame):
    i = _at(frame, ODD, ROW)
    frame.loc[i, "High"] = round(min(frame.loc[i, "Open"], frame.loc[i, "Close"]) * 0.999, 4)
    frame.loc[i, "Low"] = round(frame.loc[i, "High"] * 0.99, 4)
    return frame


def _low_above(frame):
    i = _at(frame, ODD, ROW)
    frame.loc[i, "Low"] = round(max(frame.loc[i, "Open"], frame.loc[i, "Close"]) * 1.001, 4)
    frame.loc[i, "High"] = round(frame.loc[i, "Low"] * 1.01, 4)
    return frame


def _shorten(frame):
    odd = frame.index[frame["Ticker"] == ODD]
    return frame.drop(index=odd[5:])


DEFECTS = {
    "nan price": lambda f: _set(f, "Close", np.nan),
    "empty price": lambda f: _set(f, "Open", ""),
    "word in prices": lambda f: _set(f, "High", "oops"),
    "inf price": lambda f: _set(f, "Low", "inf"),
    "zero price": lambda f: _set(f, "Close", 0.0),
    "negative price": lambda f: _set(f, "Open", -5.0),
    "high below open/close": _high_below,
    "low above open/close": _low_above,
    "duplicate date": _repeat_date,
    "unsorted dates": _swap_dates,
    "unparseable date": lambda f: _set(f, "Date", "someday"),
    "missing date": lambda f: _set(f, "Date", ""),
    "nan volume": lambda f: _set(f, "Volume", np.nan),
    "negative volume": lambda f: _set(f, "Volume", -3.0),
    "bad first row": lambda f: _set(f, "Close", np.nan, row=0),
    "huge volume": lambda f: _set(f, "Volume", "12345678901234567"),
    "padded number": lambda f: _set(f, "Open", f" {f.loc[_at(f, ODD, ROW), 'Open']} "),
    "too few rows": _shorten,
}


def _outcome(load, source, **options):
    """(result or the exception, warnings as (category, message, file, line)), warnings recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = load(source.copy() if isinstance(source, pd.DataFrame) else source, **options)
        except Exception as err:  # PriceDataError, or whatever else the per-symbol path raises
            result = err
    return result, [(w.category, str(w.message), w.filename, w.lineno) for w in caught]


def _assert_same_frame(got, expected):
    pd.testing.assert_frame_equal(got, expected, check_index_type=True, check_column_type=True)
    assert got.index.dtype == expected.index.dtype and got.attrs == expected.attrs


def _assert_same_result(got, expected):
    if isinstance(expected, Exception):
        assert type(got) is type(expected) and str(got) == str(expected), f"expected {expected!r}, got {got!r}"
        if isinstance(expected, PriceDataError):
            where = (got.symbol, got.column, got.row, got.date)
            assert where == (expected.symbol, expected.column, expected.row, expected.date)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected)
        for s in expected:
            _assert_same_frame(got[s], expected[s])
    else:
        _assert_same_frame(got, expected)


def assert_like_per_symbol(source, **options):
    """load_prices gives what load_prices_per_symbol gives; returns that."""
    got, got_warnings = _outcome(load_prices, source, **options)
    expected, expected_warnings = _outcome(load_prices_per_symbol, source, **options)
    _assert_same_result(got, expected)
    assert got_warnings == expected_warnings
    return got


@pytest.fixture()
def per_symbol_calls(monkeypatch):
    """The symbols per_symbol.validate_one (the per-symbol checks) is called for, in order."""
    called = []
    validate_one = per_symbol.validate_one

    def counting(raw, symbol, *args):
        called.append(symbol)
        return validate_one(raw, symbol, *args)

    monkeypatch.setattr(per_symbol, "validate_one", counting)
    return called


def _as_csv(frame, tmp_path, name="panel.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


# -- a defect planted in one symbol among many -----------------------------------------------


@pytest.mark.parametrize("on_invalid", ["raise", "drop", "ffill"])
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_a_defect_in_one_symbol_of_a_csv_reads_as_per_symbol(tmp_path, defect, on_invalid, per_symbol_calls):
    path = _as_csv(DEFECTS[defect](make_panel()), tmp_path)
    min_rows = 10 if defect == "too few rows" else 1
    _outcome(load_prices, path, on_invalid=on_invalid, min_rows=min_rows)
    assert set(per_symbol_calls) <= {ODD}  # the clean symbols never went through the per-symbol checks
    assert_like_per_symbol(path, on_invalid=on_invalid, min_rows=min_rows)


@pytest.mark.parametrize("on_invalid", ["raise", "drop"])
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_a_defect_in_one_symbol_of_a_frame_reads_as_per_symbol(defect, on_invalid):
    assert_like_per_symbol(DEFECTS[defect](make_panel()), on_invalid=on_invalid)


@pytest.mark.parametrize("on_invalid", ["raise", "drop", "ffill"])
def test_defects_in_several_symbols_come_out_in_the_same_order(tmp_path, on_invalid):
    frame = make_panel()
    _set(frame, "Volume", -1.0, symbol="U0001", row=3)  # a warning before the first error
    _set(frame, "Close", np.nan, symbol="U0002", row=4)
    _swap_dates(frame)
    _set(frame, "Low", 0.0, symbol="U0005", row=0)
    assert_like_per_symbol(_as_csv(frame, tmp_path), on_invalid=on_invalid)
    assert_like_per_symbol(frame, on_invalid=on_invalid)


def test_a_bad_symbol_not_asked_for_is_not_looked_at(tmp_path, per_symbol_calls):
    path = _as_csv(_set(make_panel(), "Close", "oops"), tmp_path)
    got = assert_like_per_symbol(path, symbol=["U0005", "U0001"])
    assert list(got) == ["U0005", "U0001"] and per_symbol_calls == ["U0005", "U0001"]  # the reference's calls


def test_adj_close_defect_and_adjustment(tmp_path):
    frame = make_panel(adj_close=True)
    assert_like_per_symbol(_as_csv(frame, tmp_path), adjust="adj_close")
    _set(frame, "Adj Close", 0.0)
    for on_invalid in ("raise", "drop", "ffill"):
        assert_like_per_symbol(frame, adjust="adj_close", on_invalid=on_invalid)
    assert_like_per_symbol(make_panel(), adjust="adj_close")  # no Adj Close column: named


# -- clean panels: the same frames, none through the per-symbol checks -----------------------


def _ny(dates: pd.Series, time="00:00:00") -> list:
    """Dates as a downloader writes them for New York: -05:00 in winter, -04:00 in summer."""
    stamps = pd.to_datetime(dates + " " + time).dt.tz_localize("America/New_York")
    return [s.isoformat(sep=" ") for s in stamps]


def _dst_panel():
    frame = make_panel(num_bars=120)  # January to June: across the March change
    frame["Date"] = _ny(frame["Date"])
    return frame


def _closing_time_panel():
    """Daily bars stamped with the close, 16:00 New York time: cut to their dates."""
    frame = make_panel(num_bars=120)
    frame["Date"] = _ny(frame["Date"], "16:00:00")
    return frame


def _mixed_zones_panel():
    frame = _dst_panel()
    tokyo = frame["Ticker"] == "U0002"
    frame.loc[tokyo, "Date"] = [d[:10] + "T00:00:00+0900" for d in frame.loc[tokyo, "Date"]]
    return frame


def _one_intraday_symbol(frame, with_offsets):
    """U0004's bars become hourly bars (two a day), the other symbols stay daily."""
    odd = frame["Ticker"] == "U0004"
    days = pd.to_datetime(frame.loc[odd, "Date"].str[:10]).to_numpy()
    hours = np.tile(["09:30:00", "10:30:00"], len(days) // 2 + 1)[: len(days)]
    stamps = pd.Series(pd.to_datetime(days[np.arange(len(days)) // 2])).dt.strftime("%Y-%m-%d")
    if with_offsets:
        frame.loc[odd, "Date"] = [_ny(pd.Series([d]), h)[0] for d, h in zip(stamps, hours)]
    else:
        frame.loc[odd, "Date"] = [f"{d} {h}" for d, h in zip(stamps, hours)]
    return frame


def _other_format_panel():
    frame = make_panel()
    odd = frame["Ticker"] == ODD
    frame.loc[odd, "Date"] = pd.to_datetime(frame.loc[odd, "Date"]).dt.strftime("%m/%d/%Y")
    return frame


def _nanosecond_panel():
    frame = make_panel()
    odd = frame["Ticker"] == ODD
    frame.loc[odd, "Date"] = frame.loc[odd, "Date"] + " 16:00:00.000000001"
    return frame


CLEAN_TEXT_PANELS = {
    "ISO dates": make_panel,
    "UTC offsets across daylight saving": _dst_panel,
    "UTC offsets, daily bars at 16:00": _closing_time_panel,
    "New York and Tokyo offsets": _mixed_zones_panel,
    "one intraday symbol with offsets": lambda: _one_intraday_symbol(_dst_panel(), True),
    "one intraday symbol": lambda: _one_intraday_symbol(make_panel(num_bars=40), False),
    "one symbol in another date format": _other_format_panel,
    "adj close": lambda: make_panel(adj_close=True),
    "symbol column 'symbol'": lambda: make_panel().rename(columns={"Ticker": "symbol"}),
    "symbol column 'TICKER', lower-case prices": lambda: (
        make_panel().rename(columns=str.lower).rename(columns={"ticker": "TICKER"})
    ),
}


@pytest.mark.parametrize("form", ["csv", "frame"])
@pytest.mark.parametrize("name", list(CLEAN_TEXT_PANELS))
def test_a_clean_panel_is_cut_from_the_checked_panel(tmp_path, name, form, per_symbol_calls):
    frame = CLEAN_TEXT_PANELS[name]()
    source = _as_csv(frame, tmp_path) if form == "csv" else frame
    adjust = "adj_close" if name == "adj close" else None
    fast, _ = _outcome(load_prices, source, adjust=adjust)
    assert per_symbol_calls == []  # no symbol went through the per-symbol checks
    expected, _ = _outcome(load_prices_per_symbol, source, adjust=adjust)
    _assert_same_result(fast, expected)
    assert len(fast) == 6


@pytest.mark.parametrize("on_invalid", ["drop", "ffill"])
def test_clean_symbols_record_an_empty_repair_like_per_symbol(tmp_path, on_invalid):
    got = assert_like_per_symbol(_as_csv(make_panel(), tmp_path), on_invalid=on_invalid)
    assert got["U0000"].attrs["repairs"] == {"sorted": 0, "duplicates": 0, "volume": 0, "rows": 0, "method": on_invalid}


def test_adjusted_clean_panel_records_the_same_adjustments(tmp_path, per_symbol_calls):
    got = assert_like_per_symbol(_as_csv(make_panel(adj_close=True), tmp_path), adjust="adj_close")
    assert len(per_symbol_calls) == len(SYMBOLS)  # the reference's calls only
    assert [a for _, a in got["U0000"].attrs["adjustments"]] == pytest.approx([2.0, 1 / 0.999])


@pytest.mark.parametrize(
    "dates",
    [
        lambda d: pd.to_datetime(d),  # datetime64
        lambda d: pd.to_datetime(d).astype("datetime64[s]"),  # another resolution
        lambda d: pd.to_datetime(d).dt.tz_localize("America/New_York"),  # tz-aware
        lambda d: (pd.to_datetime(d) + pd.Timedelta(hours=7)).dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"),
    ],
    ids=["datetime64", "datetime64[s]", "tz-aware", "tz-aware, late in the day"],
)
def test_typed_date_columns(dates, per_symbol_calls):
    frame = make_panel()
    frame["Date"] = dates(frame["Date"])
    got = assert_like_per_symbol(frame)
    assert len(per_symbol_calls) == len(SYMBOLS)  # the reference's calls only
    assert got["U0000"].index.dtype == exchange_dates(frame["Date"]).dtype
    assert (got["U0000"].index == got["U0000"].index.normalize()).all()


def test_intraday_tz_aware_symbol_keeps_its_times_among_daily_ones():
    frame = _one_intraday_symbol(_dst_panel(), True)
    frame["Date"] = pd.to_datetime(frame["Date"], utc=True).dt.tz_convert("America/New_York")
    got = assert_like_per_symbol(frame)
    assert got["U0004"].index[0].hour == 9 and got["U0000"].index[0].hour == 0


def test_dates_as_the_index_of_a_frame():
    frame = make_panel()
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("Date")), name="Date")
    assert_like_per_symbol(frame)


def test_parquet_panel(tmp_path, per_symbol_calls):
    pytest.importorskip("pyarrow")
    frame = _dst_panel()
    frame["Date"] = pd.to_datetime(frame["Date"], utc=True).dt.tz_convert("America/New_York")
    frame.to_parquet(tmp_path / "panel.parquet")
    assert_like_per_symbol(tmp_path / "panel.parquet")
    assert len(per_symbol_calls) == len(SYMBOLS)  # the reference's calls only


@pytest.mark.parametrize(
    "make",
    [
        _nanosecond_panel,  # one symbol's dates need nanoseconds, the others' not
        lambda: _set(make_panel(), "Date", "13/01/2020", row=0),  # pandas warns it guessed day-first
        lambda: _set(make_panel(), "Date", "Jan 2nd, 2020", row=0),  # pandas infers no format
        lambda: _set(make_panel(), "Ticker", None),  # a row without a symbol
        lambda: make_panel().assign(close=1.0),  # two Close columns (an AttributeError, as it always was)
    ],
    ids=["nanoseconds", "day-first", "no format", "missing symbol", "two close columns"],
)
def test_what_only_the_per_symbol_path_can_say(tmp_path, make):
    frame = make()
    assert_like_per_symbol(frame)
    assert_like_per_symbol(_as_csv(frame, tmp_path))
    assert_like_per_symbol(frame, on_invalid="drop")


def test_unknown_symbol_and_selection(tmp_path):
    path = _as_csv(make_panel(), tmp_path)
    assert_like_per_symbol(path, symbol="U0009")
    single = assert_like_per_symbol(path, symbol="U0002")
    assert isinstance(single, pd.DataFrame) and single.attrs["symbol"] == "U0002"
    assert_like_per_symbol(path, symbol=["U0002", "U0002"])
    assert_like_per_symbol(make_panel(num_symbols=1))  # one symbol in a symbol column: a frame


def test_repair_warnings_point_at_the_caller(tmp_path):
    frame = _set(make_panel(), "Volume", -1.0)
    for source in (frame, frame[frame["Ticker"] == ODD].drop(columns="Ticker")):
        with pytest.warns(prices_module.PriceRepairWarning) as caught:
            load_prices(source, on_invalid="drop")
        assert {w.filename for w in caught} == {__file__}


# -- the numbers the fast path reads without the text ---------------------------------------


def _tricky_numbers(count=20_000, seed=3):
    """Decimal strings with 1 to 25 significant digits, exponents, signs, padding and extremes."""
    rng = np.random.default_rng(seed)
    out = []
    for k in rng.integers(1, 26, count):
        digits = str(rng.integers(1, 10)) + "".join(map(str, rng.integers(0, 10, k - 1)))
        point = rng.integers(0, k + 1)
        text = digits[:point] + "." + digits[point:] if point < k else digits
        roll = rng.random()
        if roll < 0.2:
            text += f"e{rng.integers(-330, 310)}"
        elif roll < 0.3:
            text = f"-{text}"
        elif roll < 0.35:
            text = f" {text} "
        out.append(text)
    out = [text for text in out if math.isfinite(float(text))]  # the reader refuses a number past 1.8e308
    return out + ["4.9e-324", "2.2250738585072011e-308", "1.7976931348623157e308", "9007199254740993", "0.1", "inf"]


def test_the_csv_reader_parses_numbers_as_to_numeric_parses_their_text():
    text = "x\n" + "\n".join(_tricky_numbers()) + "\n"
    native = pd.read_csv(io.StringIO(text), dtype={"x": np.float64})["x"].to_numpy()
    cells = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)["x"].str.strip()
    parsed = pd.to_numeric(cells, errors="coerce").astype(float).to_numpy()
    np.testing.assert_array_equal(native, parsed)


@pytest.mark.parametrize("load", [load_prices, load_prices_per_symbol])
def test_float64_prices_are_kept_to_the_last_bit(load):
    frame = make_panel()
    frame[["Open", "High", "Low", "Close"]] *= 1 + 1e-3 / 3  # 17 significant digits
    loaded = load(frame)
    for s, part in frame.groupby("Ticker"):
        np.testing.assert_array_equal(loaded[s]["Close"].to_numpy(), part["Close"].to_numpy())


# -- dates of several frames ------------------------------------------------------------------


def test_exchange_dates_of_each_equals_exchange_dates_of_each_alone():
    plain = make_panel(num_bars=40)["Date"].iloc[:40]
    columns = [
        plain,
        pd.Series(_ny(plain)),
        pd.Series(_ny(plain, "16:00:00")),  # daily bars at the close: cut to dates
        pd.Series(_ny(plain, "09:30:00")[:20] + _ny(plain, "15:30:00")[20:]),  # intraday: two times of day
        pd.Series([d[:10] + "T00:00:00+0900" for d in _ny(plain)]),
        pd.to_datetime(plain).dt.strftime("%m/%d/%Y"),
        plain + " 10:00:00.000000001",
        pd.concat([plain.iloc[:5], pd.Series(["someday"])], ignore_index=True),
        pd.Series(["13/01/2020", "14/01/2020"]),
        pd.Series([], dtype=str),
        pd.to_datetime(plain),
        pd.to_datetime(plain).dt.tz_localize("Europe/Berlin"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the day-first column: pandas warns when it is parsed alone
        found = exchange_dates_of_each(columns)
        for column, dates in zip(columns, found):
            if dates is not None:
                alone = exchange_dates(column).to_numpy()
                assert dates.dtype == alone.dtype
                np.testing.assert_array_equal(dates, alone)
    known = [dates is not None for dates in found]
    assert known[:6] == [True] * 6 and known[7] and known[-2:] == [True, True]
    assert not known[8] and not known[9]  # day-first (pandas warns) and empty: each on its own
    # known[6], nanoseconds among microseconds: pandas 3 parses them finer than the rest (left to
    # exchange_dates alone); pandas 2 parses every date to nanoseconds


# -- collect_frames ---------------------------------------------------------------------------


@pytest.fixture()
def per_symbol_collect(monkeypatch):
    """collect_frames as it ran before: load_prices symbol by symbol, each frame's dates alone."""

    def collect(prices, symbol=None, symbols=None):
        with monkeypatch.context() as patch:
            patch.setattr(frames_module, "load_prices", load_prices_per_symbol)
            patch.setattr(frames_module, "exchange_dates_of_each", lambda columns: [None] * len(columns))
            return collect_frames(prices, symbol, symbols)

    return collect


def _collect_outcome(collect, prices, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = collect(prices, options.get("symbol"), options.get("symbols"))
        except Exception as err:  # PriceDataError, or whatever else the per-symbol path raises
            result = err
    return result, [(w.category, str(w.message)) for w in caught]


def assert_collects_like_per_symbol(per_symbol_collect, prices, **options):
    got, got_warnings = _collect_outcome(collect_frames, prices, **options)
    expected, expected_warnings = _collect_outcome(per_symbol_collect, prices, **options)
    _assert_same_result(got, expected)
    assert got_warnings == expected_warnings
    return got


def _by_symbol(frame):
    return {s: part.drop(columns="Ticker").reset_index(drop=True) for s, part in frame.groupby("Ticker", sort=False)}


COLLECT_INPUTS = {
    "multi-symbol frame": make_panel,
    "multi-symbol frame, offsets": _dst_panel,
    "dict, text dates": lambda: _by_symbol(make_panel()),
    "dict, offsets and one intraday symbol": lambda: _by_symbol(_one_intraday_symbol(_dst_panel(), True)),
    "dict, one symbol in another format": lambda: _by_symbol(_other_format_panel()),
    "dict, nanoseconds": lambda: _by_symbol(_nanosecond_panel()),
    "dict, date index": lambda: {
        s: f.set_index(pd.DatetimeIndex(pd.to_datetime(f.pop("Date")), name="Date"))
        for s, f in _by_symbol(make_panel()).items()
    },
    "dict, unparseable date": lambda: _by_symbol(_set(make_panel(), "Date", "someday")),
    "dict, bad price before a bad date": lambda: _by_symbol(
        _set(_set(make_panel(), "Date", "someday"), "Close", -1.0, symbol="U0001")
    ),
    "dict, a frame with no dates": lambda: {
        **_by_symbol(make_panel()),
        "U0009": make_panel()[["Open", "High", "Low", "Close"]],
    },
    "multi-symbol frame, a word in prices": lambda: _set(make_panel(), "High", "oops"),
}


@pytest.mark.parametrize("name", list(COLLECT_INPUTS))
def test_collect_frames_like_per_symbol(per_symbol_collect, name):
    assert_collects_like_per_symbol(per_symbol_collect, COLLECT_INPUTS[name]())


def test_collect_frames_selection_like_per_symbol(per_symbol_collect):
    assert_collects_like_per_symbol(per_symbol_collect, make_panel(), symbols=["U0004", "U0001"])
    assert_collects_like_per_symbol(per_symbol_collect, _by_symbol(_dst_panel()), symbol="U0002")
