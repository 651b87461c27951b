"""Price loading and validation: every error names the symbol, the column and the row."""

import gzip
import warnings

import numpy as np
import pandas as pd
import pytest

import totowalk as tw
from totowalk import PriceDataError
from totowalk.data.errors import PriceRepairWarning


def _frame(n=5, overrides=None):
    dates = pd.date_range("2020-01-01", periods=n, freq="B")
    close = 100.0 + np.arange(n)
    frame = pd.DataFrame({"Date": dates, "Open": close - 0.5, "High": close + 1.0, "Low": close - 1.0, "Close": close})
    for (col, row), value in (overrides or {}).items():
        frame[col] = frame[col].astype(object) if isinstance(value, str) else frame[col]
        frame.loc[row, col] = value
    return frame


def _assert_names(err, symbol, column, row):
    msg = str(err.value)
    assert err.value.symbol == symbol and symbol in msg
    assert err.value.column == column and repr(column) in msg
    assert err.value.row == row and f"row {row}" in msg


def test_valid_frame_round_trips():
    frame = tw.load_prices(_frame(), symbol="TEST")
    assert list(frame.columns) == ["Open", "High", "Low", "Close"]
    assert frame.index.name == "Date" and frame.index.is_monotonic_increasing
    assert frame.attrs["symbol"] == "TEST"


def test_columns_are_case_insensitive_and_csv_gz_loads(tmp_path):
    f = _frame().rename(columns=str.lower)
    path = tmp_path / "p.csv.gz"
    with gzip.open(path, "wt") as fh:
        f.to_csv(fh, index=False)
    frame = tw.load_prices(path, symbol="X")
    assert list(frame.columns) == ["Open", "High", "Low", "Close"] and len(frame) == 5


def test_missing_column():
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(_frame().drop(columns=["Low"]), symbol="ABC")
    assert err.value.column == "Low" and "Low" in str(err.value)


@pytest.mark.parametrize("name", ["timestamp", "timestamps", "Datetime", " time "])
def test_other_names_of_the_date_column(tmp_path, name):
    expected = tw.load_prices(_frame(), symbol="X")
    path = tmp_path / "p.csv"
    _frame().rename(columns={"Date": name}).assign(symbol="X").to_csv(path, index=False)
    loaded = tw.load_prices(path, symbol="X")  # a panel file: the symbol column
    pd.testing.assert_frame_equal(loaded, expected, check_freq=False)
    frame = tw.load_prices(_frame().rename(columns={"Date": name}), symbol="X")  # a frame, one symbol
    pd.testing.assert_frame_equal(frame, expected, check_freq=False)
    bt = tw.backtest(_frame(40).rename(columns={"Date": name}), symbol="X", num_simulations=2, forecaster=_last)
    assert list(bt.simulations["date"]) == list(pd.date_range("2020-01-01", periods=40, freq="B")[-2:][::-1])


def _last(contexts):
    return np.array([c[-1] for c in contexts])


def test_a_date_column_wins_over_its_other_names_and_two_other_names_are_refused(tmp_path):
    frame = _frame().assign(time="09:30")  # a date and a time of day: Date is the date
    assert len(tw.load_prices(frame, symbol="X")) == 5
    with pytest.raises(PriceDataError, match="columns 'timestamp', 'datetime' all name Date"):
        tw.load_prices(_frame().rename(columns={"Date": "timestamp"}).assign(datetime="2020-01-01"), symbol="X")
    both = _frame(40).rename(columns={"Date": "timestamp"}).assign(datetime="2020-01-01")
    with pytest.raises(PriceDataError, match="columns 'timestamp', 'datetime' all name the dates"):
        tw.backtest(both, symbol="X", num_simulations=2, forecaster=_last)


@pytest.mark.parametrize("dates", ["renamed", "dropped"])
def test_a_missing_date_column_names_its_other_names(dates):
    # a frame's row numbers are no dates (read as dates they were nanoseconds after 1970)
    frame = _frame().rename(columns={"Date": "when"}) if dates == "renamed" else _frame().drop(columns=["Date"])
    with pytest.raises(PriceDataError, match=r"missing column\(s\) \['Date'\].*also be called timestamp") as err:
        tw.load_prices(frame, symbol="X")
    assert err.value.column == "Date"


def test_non_numeric_value(tmp_path):
    path = tmp_path / "p.csv"
    _frame(overrides={("Close", 3): "oops"}).to_csv(path, index=False)
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(path, symbol="ABC")
    _assert_names(err, "ABC", "Close", 3)
    assert "oops" in str(err.value) and "2020-01-06" in str(err.value)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_price(value):
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(_frame(overrides={("Open", 2): value}), symbol="ABC")
    _assert_names(err, "ABC", "Open", 2)


def test_non_positive_price():
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(_frame(overrides={("Low", 1): 0.0}), symbol="ABC")
    _assert_names(err, "ABC", "Low", 1)


def test_high_below_open_close():
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(_frame(overrides={("High", 4): 100.0}), symbol="ABC")
    _assert_names(err, "ABC", "High", 4)
    assert "below max(Open, Close)" in str(err.value)


def test_low_above_open_close():
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(_frame(overrides={("Low", 2): 150.0, ("High", 2): 160.0}), symbol="ABC")
    _assert_names(err, "ABC", "Low", 2)


def test_duplicate_dates():
    f = _frame()
    f.loc[3, "Date"] = f.loc[2, "Date"]
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(f, symbol="ABC")
    _assert_names(err, "ABC", "Date", 3)
    assert "duplicate" in str(err.value)


def test_unsorted_dates():
    f = _frame()
    f.loc[[1, 2], "Date"] = f.loc[[2, 1], "Date"].to_numpy()
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(f, symbol="ABC")
    _assert_names(err, "ABC", "Date", 2)


def test_too_few_rows():
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(_frame(), symbol="ABC", min_rows=10)
    assert err.value.symbol == "ABC" and "5 rows" in str(err.value) and "10" in str(err.value)


def test_explicit_repairs_count_rows():
    bad = _frame(n=8, overrides={("Close", 3): np.nan, ("Open", 5): -1.0})
    with pytest.warns(UserWarning, match="symbol 'ABC': on_invalid='drop': dropped 2 row"):
        dropped = tw.load_prices(bad, symbol="ABC", on_invalid="drop")
    assert len(dropped) == 6
    assert dropped.attrs["repairs"] == {"method": "drop", "rows": 2, "sorted": 0, "duplicates": 0, "volume": 0}
    with pytest.warns(UserWarning, match="forward-filled 2 row"):
        filled = tw.load_prices(bad, symbol="ABC", on_invalid="ffill")
    assert len(filled) == 8
    assert filled["Close"].iloc[3] == filled["Close"].iloc[2]
    assert filled["Open"].iloc[5] == filled["Open"].iloc[4]


def test_multi_symbol_selection_and_unknown_symbol(tmp_path):
    a, b = _frame().assign(Ticker="AAA"), _frame().assign(Ticker="BBB")
    path = tmp_path / "multi.csv"
    pd.concat([a, b]).to_csv(path, index=False)
    assert len(tw.load_prices(path, symbol="BBB")) == 5
    both = tw.load_prices(path)
    assert list(both) == ["AAA", "BBB"]
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(path, symbol="ZZZ")
    assert err.value.symbol == "ZZZ" and "AAA" in str(err.value)


@pytest.mark.parametrize("numbers", [True, False], ids=["prices as numbers", "a word among them"])
def test_spaces_around_a_symbol_name_are_no_other_symbol(tmp_path, numbers):
    frame = pd.concat([_frame(8).assign(Ticker="AAA"), _frame(8).assign(Ticker="BBB")], ignore_index=True)
    expected = tw.load_prices(frame)
    frame["Ticker"] = frame["Ticker"].astype(object)
    frame.loc[::3, "Ticker"] = frame.loc[::3, "Ticker"] + " "  # a spreadsheet's trailing space
    frame.loc[1, "Ticker"] = " AAA"
    if not numbers:
        frame["Volume"] = "n/a"  # blanked with a warning: the per-symbol path reads the text
    path = tmp_path / "spaces.csv"
    frame.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PriceRepairWarning)
        loaded = tw.load_prices(path)
        assert len(tw.load_prices(path, symbol="AAA")) == 8
        assert len(tw.load_prices(path, symbol=" AAA ")) == 8  # asked for as the names are read
    assert list(loaded) == ["AAA", "BBB"]
    for symbol in loaded:
        pd.testing.assert_frame_equal(loaded[symbol][["Open", "High", "Low", "Close"]], expected[symbol])


def test_bad_row_in_multi_symbol_file_names_symbol(tmp_path):
    a, b = _frame().assign(Ticker="AAA"), _frame(overrides={("High", 2): 50.0}).assign(Ticker="BBB")
    path = tmp_path / "multi.csv"
    pd.concat([a, b]).to_csv(path, index=False)
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(path)
    _assert_names(err, "BBB", "High", 2)


def test_bundled_datasets():
    assert tw.datasets.list() == ["AAPL", "IBM", "MSFT", "GOOG", "FB"] or set(tw.datasets.list()) == {
        "AAPL",
        "IBM",
        "MSFT",
        "GOOG",
        "FB",
    }
    ibm = tw.datasets.load("IBM", adjust=None)
    assert len(ibm) == 3270
    assert ibm.index[0] == pd.Timestamp("2000-03-01") and ibm.index[-1] == pd.Timestamp("2013-03-01")
    goog = tw.datasets.load("GOOG")
    assert goog.index[0] == pd.Timestamp("2004-08-19")
    with pytest.raises(PriceDataError, match="available"):
        tw.datasets.load("NOPE")


def test_split_adjustment_removes_aapl_splits():
    with pytest.warns(PriceRepairWarning, match=r"AAPL 2000-06-21 \(2.00-for-1\), 2005-02-28 \(2.00-for-1\);"):
        raw = tw.datasets.load("AAPL", adjust=None)  # unadjusted, and told so
    raw_returns = raw["Close"].pct_change()
    assert raw_returns.loc["2005-02-28"] < -0.4  # the unadjusted 2:1 split
    adjusted = tw.datasets.load("AAPL", adjust="adj_close")
    adj_returns = adjusted["Close"].pct_change()
    assert abs(adj_returns.loc["2005-02-28"]) < 0.1
    assert abs(adj_returns.loc["2000-06-21"]) < 0.1
    # The real 2000-09-29 crash (about -52 %) is a market move, not a split: it stays.
    assert adj_returns.loc["2000-09-29"] == pytest.approx(raw_returns.loc["2000-09-29"], rel=1e-6)
    changes = dict(adjusted.attrs["adjustments"])
    for split_day in ("2000-06-21", "2005-02-28"):
        assert changes[pd.Timestamp(split_day)] == pytest.approx(2.0, rel=1e-9)
    # High/Low keep bracketing Open/Close after rescaling.
    assert (adjusted["High"] >= np.maximum(adjusted["Open"], adjusted["Close"]) * (1 - 1e-12)).all()


def test_splits_left_in_the_close_are_warned_about_and_dividends_are_not():
    from totowalk.data.prices import unadjusted_splits

    frame = _frame(6)
    frame["Adj Close"] = frame["Close"] / [4, 2, 2, 2, 2, 2]  # the Close halves its scale at row 1: a 2-for-1 split
    with pytest.warns(PriceRepairWarning, match=r"X 2020-01-02 \(2.00-for-1\);.*--adjust adj_close"):
        raw = tw.load_prices(frame, symbol="X")
    assert [(str(d.date()), r) for d, r in unadjusted_splits(raw)] == [("2020-01-02", pytest.approx(2.0))]
    dividend = _frame(6).assign(**{"Adj Close": _frame(6)["Close"] * [0.98, 0.98, 0.99, 0.99, 1.0, 1.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither an adjusted frame nor a dividend's small factor warns
        assert unadjusted_splits(tw.load_prices(frame, symbol="X", adjust="adj_close")) == []
        assert unadjusted_splits(tw.load_prices(dividend, symbol="D")) == []


def test_adjust_without_adj_close_column():
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(_frame(), symbol="ABC", adjust="adj_close")
    assert err.value.column == "Adj Close"


# -- issue 30: UTC offsets, a negative price named first, another delimiter named --------------


@pytest.mark.parametrize(
    "stamps",
    [
        ["2020-01-02 00:00:00-05:00", "2020-07-01 00:00:00-04:00", "2020-11-02 00:00:00-05:00"],  # New York
        ["2020-01-02 00:00:00+09:00", "2020-07-01 00:00:00+09:00", "2020-11-02T00:00:00+0900"],  # Tokyo
        ["2020-01-02 00:00:00+13:00", "2020-07-01T00:00:00Z", "2020-11-02 00:00:00-09:30"],  # mixed, far
    ],
)
def test_utc_offsets_give_the_local_date_as_written(tmp_path, stamps):
    frame = _frame(3)
    frame["Date"] = stamps
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    loaded = tw.load_prices(path, symbol="X")
    assert loaded.index.tz is None
    assert list(loaded.index) == list(pd.to_datetime(["2020-01-02", "2020-07-01", "2020-11-02"]))


def test_tz_aware_dates_of_a_frame_give_their_local_dates():
    frame = _frame(3)
    frame["Date"] = pd.to_datetime(["2020-01-02", "2020-07-01", "2020-11-02"]).tz_localize("Asia/Tokyo")
    loaded = tw.load_prices(frame, symbol="X")
    assert list(loaded.index) == list(pd.to_datetime(["2020-01-02", "2020-07-01", "2020-11-02"]))


def test_intraday_bars_with_offsets_keep_their_wall_time(tmp_path):
    frame = _frame(4)
    frame["Date"] = [  # hourly bars across the March daylight-saving change in New York
        "2020-03-06 15:30:00-05:00",
        "2020-03-09 09:30:00-04:00",
        "2020-03-09 10:30:00-04:00",
        "2020-03-09 11:30:00-04:00",
    ]
    frame.to_csv(tmp_path / "p.csv", index=False)
    loaded = tw.load_prices(tmp_path / "p.csv", symbol="X")
    assert list(loaded.index) == list(
        pd.to_datetime(["2020-03-06 15:30", "2020-03-09 09:30", "2020-03-09 10:30", "2020-03-09 11:30"])
    )


def test_a_frame_with_a_date_column_of_offsets_runs_a_backtest():
    from test_backtest_api import mean5, prices

    frame = prices(90, 1)  # January to May: across the March change
    stamps = [d.tz_localize("America/New_York").isoformat() for d in frame.index]
    assert len({s[-6:] for s in stamps}) == 2  # both offsets of the year
    result = tw.backtest(
        frame.reset_index(names="Date").assign(Date=stamps), symbol="A", num_simulations=3, forecaster=mean5
    )
    assert list(result.simulations["date"]) == list(frame.index[-3:][::-1])


def test_unparseable_date_among_offsets_is_named():
    frame = _frame(3)
    frame["Date"] = ["2020-01-02 00:00:00-05:00", "someday", "2020-01-06 00:00:00-05:00"]
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(frame, symbol="X")
    _assert_names(err, "X", "Date", 1)
    assert "someday" in str(err.value)


@pytest.mark.parametrize("column", ["Open", "Close"])
def test_negative_price_is_named_before_the_envelope_it_breaks(column):
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(_frame(overrides={(column, 2): -5.0}), symbol="ABC")
    _assert_names(err, "ABC", column, 2)
    assert "non-positive value -5.0" in str(err.value) and "2020-01-03" in str(err.value)
    assert "above min" not in str(err.value)


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_other_delimiter_is_named_with_the_fix(tmp_path, sep, name):
    path = tmp_path / "p.csv"
    _frame().to_csv(path, index=False, sep=sep)
    with pytest.raises(PriceDataError, match=f"looks {name}-separated .*save it comma-separated"):
        tw.load_prices(path, symbol="X")


def test_empty_and_mislabelled_files(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(PriceDataError, match="is empty"):
        tw.load_prices(tmp_path / "empty.csv")
    text = _frame().to_csv(index=False).encode()
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text)
    (tmp_path / "gz.csv").write_bytes(gzip.compress(text))
    (tmp_path / "plain.csv.gz").write_bytes(text)
    expected = tw.load_prices(_frame(), symbol="X")
    for name in ("bom.csv", "gz.csv", "plain.csv.gz"):
        pd.testing.assert_frame_equal(tw.load_prices(tmp_path / name, symbol="X"), expected, check_index_type=False)


def test_semicolons_with_decimal_commas_are_named_too(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Date;Open;High;Low;Close\n2020-01-02;1,5;2,0;1,0;1,5\n2020-01-03;1,5;2,0;1,0;1,5\n")
    with pytest.raises(PriceDataError, match="looks semicolon-separated"):
        tw.load_prices(path, symbol="X")


DAY_FIRST_HINT = "dates look day first (DD/MM/YYYY)"


@pytest.mark.parametrize(
    "dates,row,hinted",
    [
        (["03/01/2022", "04/01/2022", "13/01/2022", "14/01/2022", "15/01/2022"], 2, True),  # day first
        (["03.01.2022", "04.01.2022", "13.01.2022", "14.01.2022", "17.01.2022"], 2, True),
        (["01/03/2022", "01/04/2022", "02/30/2022", "03/01/2022", "03/02/2022"], 2, False),  # month first, Feb 30
        (["2022-01-03", "2022-01-04", "not a date", "2022-01-06", "2022-01-07"], 2, False),
    ],
)
def test_an_unparseable_date_says_when_the_column_is_written_day_first(tmp_path, dates, row, hinted):
    frame = _frame(5).assign(Date=dates)
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(PriceDataError) as err:
        tw.load_prices(tmp_path / "p.csv")
    _assert_names(err, "p", "Date", row)
    assert (DAY_FIRST_HINT in str(err.value)) == hinted
    with pytest.raises(PriceDataError) as err:  # a frame given in code says the same
        tw.backtest({"X": frame}, num_simulations=1, forecaster=lambda c: np.array([x[-1] for x in c], np.float32))
    assert (DAY_FIRST_HINT in str(err.value)) == hinted and err.value.row == row
