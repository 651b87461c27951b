"""The daily walk-forward series of both profiles, its statistics and the files that carry them."""

import json

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.profiles.legacy import LEGACY_DAILY_WARNING
from totowalk.backtest.profiles.profile import STRATEGY_PREFIXES
from totowalk.backtest.report.files import DAILY_RETURNS, write_outputs
from totowalk.backtest.report.text import format_report, strategy_table
from totowalk.backtest.stats.daily import PORTFOLIO, daily_table
from totowalk.backtest.stats.table import MIN_INTERVAL_DAYS, STAT_COLUMNS


@pytest.fixture(scope="module")
def data():
    # B starts later and ends earlier: some of A's dates are not B's
    return {"A": prices(90, 41), "B": prices(85, 42).iloc[3:]}


@pytest.fixture(scope="module", params=["clean", "legacy"])
def result(request, data):
    return backtest(data, num_simulations=20, forecaster=mean5, profile=request.param)


def test_one_value_per_symbol_strategy_and_day_in_date_order(result):
    daily = result.daily
    assert list(daily.columns) == [
        "date",
        "symbol",
        "strategy",
        "return",
        "turnover",
        "in_market",
        "return_adverse",
        "return_optimistic",
    ]
    assert not daily.duplicated(["symbol", "strategy", "date"]).any()
    for (symbol, strategy), part in daily.groupby(["symbol", "strategy"], sort=False):
        assert part["date"].is_monotonic_increasing
        if symbol != PORTFOLIO:
            rows = result.simulations[result.simulations["symbol"] == symbol]
            assert sorted(part["date"]) == sorted(rows["date"])  # each simulation's final day, once
    assert list(pd.unique(daily["symbol"])) == ["A", "B", PORTFOLIO]


def test_the_fill_bracket_holds_every_day(result):
    daily = result.daily
    if result.profile == "legacy":  # the classic loop's own kernel: no bracket to report
        assert daily["return_adverse"].isna().all() and daily["return_optimistic"].isna().all()
        return
    assert (daily["return_adverse"] <= daily["return"] + 1e-15).all()
    assert (daily["return"] <= daily["return_optimistic"] + 1e-15).all()
    signals = daily["strategy"].isin(["simple_strategy", "buy_hold", "highlow"])
    assert (daily.loc[signals, "return_adverse"] == daily.loc[signals, "return"]).all()  # nothing left open


def test_final_day_returns_and_portfolio_means(result, data):
    daily = result.daily.set_index(["symbol", "strategy", "date"])["return"].sort_index()
    sims = result.simulations
    column = "buy_hold_finalday"
    for _, row in sims.iterrows():
        assert daily[(row["symbol"], "buy_hold", row["date"])] == row[column]
    if result.profile == "clean":  # the clean final day is the close return into the window's last row
        r = data["A"]["Close"].pct_change()
        a = daily.loc[("A", "buy_hold")]
        np.testing.assert_allclose(a.to_numpy(), r.loc[a.index].to_numpy(), rtol=1e-12)
    a_days = set(daily.loc[("A", "simple_strategy")].index)
    b_days = set(daily.loc[("B", "simple_strategy")].index)
    assert a_days ^ b_days  # dates held by one symbol only
    shared = a_days & b_days
    per_symbol = daily.drop(PORTFOLIO, level=0)
    common = per_symbol[per_symbol.index.get_level_values("date").isin(shared)]
    per_date = common.groupby(level=["strategy", "date"]).mean()
    portfolio = daily.loc[PORTFOLIO]
    # the common calendar: a portfolio day exists exactly where both symbols have it
    pd.testing.assert_series_equal(portfolio.sort_index(), per_date.sort_index(), check_names=False)
    assert set(portfolio.loc["simple_strategy"].index) == shared


def test_symbols_on_different_days_are_named_and_the_portfolio_keeps_the_shared_ones(result):
    warning = [w for w in result.warnings if "cover different days" in w]
    assert len(warning) == 1
    days = result.statistics["days"]
    shared = int(days.loc[(PORTFOLIO, "simple_strategy")])
    assert shared < min(days.loc[("A", "simple_strategy")], days.loc[("B", "simple_strategy")])
    assert f"A {int(days.loc[('A', 'simple_strategy')])} days" in warning[0]
    assert f"rests on the {shared} days all symbols share" in warning[0]
    assert "WARNING: the symbols' daily series cover different days" in format_report(result)


def test_symbols_that_never_overlap_form_no_portfolio():
    from totowalk.backtest.stats.daily import calendar_warning

    later = prices(60, 7)
    later.index = later.index + pd.Timedelta(days=400)  # B's days begin after A's have ended
    out = backtest({"A": prices(60, 3), "B": later}, num_simulations=10, forecaster=mean5)
    assert not (out.daily["symbol"] == PORTFOLIO).any()
    assert "they share no day, so there is no equal-weight portfolio" in calendar_warning(out.daily)
    assert "no equal-weight portfolio" in format_report(out)
    # one symbol alone has nothing to differ from, whatever its days
    assert calendar_warning(out.daily[out.daily["symbol"] == "B"]) is None


def test_symbols_on_the_same_days_carry_no_calendar_warning(data):
    out = backtest({"A": data["A"], "B": prices(90, 5)}, num_simulations=10, forecaster=mean5)
    assert not [w for w in out.warnings if "cover different days" in w]
    days = out.statistics["days"]
    assert days.loc[(PORTFOLIO, "simple_strategy")] == days.loc[("A", "simple_strategy")] == 10


def test_legacy_series_carries_its_warning(result):
    assert (LEGACY_DAILY_WARNING in result.warnings) == (result.profile == "legacy")
    if result.profile == "legacy":
        assert result.daily["turnover"].isna().all()  # legacy rows record no position changes
        assert result.statistics["turnover"].isna().all()
        assert "§11.3" in LEGACY_DAILY_WARNING


def test_statistics_are_those_of_the_series(result):
    stats = result.statistics
    assert list(stats.columns) == list(STAT_COLUMNS)
    assert set(stats.index) == set(result.daily.groupby(["symbol", "strategy"]).groups)
    part = result.daily[(result.daily["symbol"] == "A") & (result.daily["strategy"] == "simple_strategy")]
    r = part["return"].to_numpy()
    row = stats.loc[("A", "simple_strategy")]
    assert row["days"] == len(r)
    assert row["total_return"] == pytest.approx(np.prod(1 + r) - 1, rel=1e-12)
    assert row["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-12)
    assert row["days"] < MIN_INTERVAL_DAYS and np.isnan(row["sharpe_low"]) and np.isnan(row["sharpe_high"])
    assert 0 <= row["deflated_sharpe"] <= row["probabilistic_sharpe"] <= 1
    assert row["trials"] == 7 + 1000 + 6561
    if result.profile == "clean":  # the summary's headline is the same series
        assert result.summary.loc[PORTFOLIO, "simple_strategy_sharpe"] == pytest.approx(
            stats.loc[(PORTFOLIO, "simple_strategy"), "sharpe"], rel=1e-12
        )
        positions = np.array([p[-1] for p in result.simulations["simple_strategy_positions"]])
        a = result.simulations["symbol"] == "A"
        assert row["exposure"] == pytest.approx(np.mean(positions[a.to_numpy()] != 0))


def test_files_and_terminal_table_carry_the_statistics(result, tmp_path):
    write_outputs(result, tmp_path)
    saved = pd.read_csv(tmp_path / DAILY_RETURNS, float_precision="round_trip")  # exact on pandas 2 too
    assert list(saved.columns) == [
        "date",
        "symbol",
        "strategy",
        "return",
        "turnover",
        "in_market",
        "return_adverse",
        "return_optimistic",
    ]
    np.testing.assert_array_equal(saved["return"].to_numpy(), result.daily["return"].to_numpy())
    body = json.loads((tmp_path / "summary.json").read_text())
    for (symbol, strategy), row in result.statistics.iterrows():
        for stat, value in row.items():
            got = body["statistics"][symbol][strategy][stat]
            assert got == value or (np.isnan(got) and np.isnan(value))
    assert body["statistics_settings"]["trials"] == 7568 and body["statistics_settings"]["seed"] == 0
    table = strategy_table(result)
    assert {"sharpe_low", "sharpe_high", "max_drawdown", "deflated_sharpe"} <= set(table.columns)
    text = format_report(result)
    assert "Sharpe [95% CI]" in text and "deflated Sharpe over 7,568 trials" in text


def test_a_row_without_a_symbol_is_refused():
    rows = pd.DataFrame(
        {"symbol": ["A", None], "simulation": [0, 1], "date": [5, 6], "buy_hold_finalday": [0.01, 0.02]}
    )
    with pytest.raises(ValueError, match="result row 1 names no symbol"):
        daily_table(rows, STRATEGY_PREFIXES)


def test_a_day_counted_twice_is_refused():
    rows = pd.DataFrame({"symbol": ["A", "A"], "simulation": [0, 1], "date": [5, 5], "buy_hold_finalday": [0.01, 0.02]})
    with pytest.raises(ValueError, match="two simulations ending on 5"):
        daily_table(rows, STRATEGY_PREFIXES)


def test_summary_headline_from_the_run_table_equals_each_group_on_its_own(result):
    if result.profile != "clean":
        pytest.skip("the daily-series headline is the clean profile's")
    from totowalk.backtest.profiles.clean.headline import summary_headline
    from totowalk.backtest.profiles.summary import _nan_means, numeric_columns

    sims = result.simulations
    for label, rows in [*sims.groupby("symbol", sort=False), (PORTFOLIO, sims)]:
        alone = summary_headline(rows)  # the series rebuilt from this group's rows only
        shared = summary_headline(rows, result.daily, label)
        # the window means handed over as the summary makes them (its NaN-skipping means)
        columns, values = numeric_columns(rows)
        means = dict(zip(columns, _nan_means(values).tolist()))
        handed = summary_headline(rows, result.daily, label, means)
        assert alone.keys() == shared.keys() == handed.keys() and alone
        assert any(key.startswith("window_mean_") for key in alone)
        for key, value in alone.items():
            for other in (shared, handed):
                assert other[key] == value or (np.isnan(value) and np.isnan(other[key])), (label, key)
        assert result.summary.loc[label, "simple_strategy_sharpe"] == alone["simple_strategy_sharpe"]


def test_wide_equals_a_pivot_of_the_table(result):
    from totowalk.backtest.stats.daily import wide

    for symbol in ["A", "B", PORTFOLIO]:
        mine = result.daily[result.daily["symbol"] == symbol]
        for field in ["return", "turnover", "in_market", "return_adverse", "return_optimistic"]:
            want = mine.pivot(index="date", columns="strategy", values=field).sort_index()
            want = want[list(pd.unique(mine["strategy"]))]
            pd.testing.assert_frame_equal(wide(result.daily, symbol, field), want)
            shuffled = result.daily.sample(frac=1.0, random_state=0)  # not daily_table's layout
            got = wide(shuffled, symbol, field)  # columns in the shuffled table's order
            pd.testing.assert_frame_equal(got, want[list(got.columns)])


def test_every_symbols_series_split_at_once_equals_its_own_wide_frames(result):
    from totowalk.backtest.stats.daily import SERIES_FIELDS, wide, wide_series

    shuffled = result.daily.sample(frac=1.0, random_state=1)  # each symbol's rows apart: gathered, pivoted
    for table in (result.daily, shuffled):
        split = wide_series(table)
        assert list(split) == list(pd.unique(table["symbol"]))
        for symbol, series in split.items():
            for field in SERIES_FIELDS:
                want = wide(table, symbol, field)
                pd.testing.assert_frame_equal(series.frame(field), want)
                assert series.values[field].shape == (want.shape[1], want.shape[0])
    unnamed = result.daily.astype({"symbol": object})
    unnamed.loc[unnamed.index[3], "symbol"] = None
    with pytest.raises(ValueError, match="each name a symbol and a strategy"):
        wide_series(unnamed)


def test_a_long_enough_series_has_an_interval_around_its_sharpe_and_a_short_one_says_so(data):
    long = backtest(
        {"A": prices(120, 8)}, num_simulations=MIN_INTERVAL_DAYS + 10, forecaster=mean5, profile="clean"
    ).statistics
    row = long.loc[("A", "simple_strategy")]
    assert row["sharpe_low"] < row["sharpe"] < row["sharpe_high"]
    short = backtest(data, num_simulations=20, forecaster=mean5, profile="clean")
    text = format_report(short)
    assert "too short to judge: under 60 days" in text and "[no interval]" in text


def test_only_series_long_enough_are_bootstrapped_and_the_others_do_not_move_their_interval():
    # a table of long and short series: the short ones get no interval (they are not bootstrapped
    # at all), the long ones the same bits as in a table of their own
    from totowalk.backtest.stats import bootstrap
    from totowalk.backtest.stats.daily import daily_table
    from totowalk.backtest.stats.table import performance_table

    long = backtest({"L": prices(120, 8)}, num_simulations=MIN_INTERVAL_DAYS + 10, forecaster=mean5, profile="clean")
    short = backtest({"S": prices(80, 9)}, num_simulations=20, forecaster=mean5, profile="clean")
    both = daily_table(pd.concat([long.simulations, short.simulations], ignore_index=True), STRATEGY_PREFIXES)
    both = both[both["symbol"] != PORTFOLIO]  # the two symbols share no day: no portfolio to judge
    alone = performance_table(long.daily[long.daily["symbol"] == "L"], {"L": 252.0})
    seen = []
    original = bootstrap._tile_interval

    def spy(counts, x, days, tail):
        seen.append(x.shape[1])
        return original(counts, x, days, tail)

    bootstrap._tile_interval = spy
    try:
        mixed = performance_table(both, {"L": 252.0, "S": 252.0})
    finally:
        bootstrap._tile_interval = original
    assert seen and min(seen) >= MIN_INTERVAL_DAYS  # no short series was resampled
    assert mixed.loc["S", "sharpe_low"].isna().all() and mixed.loc["S", "sharpe_high"].isna().all()
    pd.testing.assert_frame_equal(mixed.loc[["L"]], alone, check_exact=True)
    assert alone["sharpe_low"].notna().any()


def test_the_chunks_daily_tables_stack_to_the_table_of_all_symbols_in_one(result):
    # a run's chunks of symbols (their final-day tables, handed over as a list) and the table of all
    # symbols at once give the same daily table, portfolio included, bit for bit; the list is taken
    from totowalk.backtest.stats.daily import final_day_table, portfolio_table, with_portfolio

    sims = result.simulations
    whole = with_portfolio(final_day_table(sims, STRATEGY_PREFIXES))
    chunks = [final_day_table(sims[sims["symbol"] == s], STRATEGY_PREFIXES) for s in ("A", "B")]
    empty = final_day_table(sims.iloc[:0], STRATEGY_PREFIXES)
    handed = [chunks[0], empty, chunks[1]]
    portfolio = portfolio_table(handed)  # read from the chunks, which stay
    assert len(handed) == 3
    mine = whole[whole["symbol"] == PORTFOLIO].reset_index(drop=True)
    pd.testing.assert_frame_equal(portfolio, mine, check_exact=True)
    pd.testing.assert_frame_equal(with_portfolio(handed, portfolio), whole, check_exact=True)
    assert handed == []
    pd.testing.assert_frame_equal(whole, result.daily, check_exact=True)
    # a table of unusual column types takes the general path to the same values
    odd = final_day_table(sims, STRATEGY_PREFIXES).astype({"in_market": np.float32})
    general = with_portfolio(odd)
    np.testing.assert_allclose(general["in_market"].to_numpy(), whole["in_market"].to_numpy(), rtol=1e-7)
    assert with_portfolio([empty]).empty


def test_chunks_kept_with_categories_give_the_daily_table_in_its_own_dtypes(result):
    # a run keeps each chunk's symbol and strategy as categories (categories differ per chunk); the
    # daily table made from them is the plain one, dtypes included (text stays text)
    from totowalk.backtest.kept import _compact_days
    from totowalk.backtest.stats.daily import final_day_table, portfolio_table, with_portfolio

    sims = result.simulations
    plain = [final_day_table(sims[sims["symbol"] == s], STRATEGY_PREFIXES) for s in ("B", "A")]
    compact = [_compact_days(p) for p in plain]
    assert all(isinstance(p[c].dtype, pd.CategoricalDtype) for p in compact for c in ("symbol", "strategy"))
    assert list(compact[0]["symbol"].cat.categories) == ["B"] != list(compact[1]["symbol"].cat.categories)
    assert compact[0]["symbol"].memory_usage(deep=True) < plain[0]["symbol"].memory_usage(deep=True) / 3
    pd.testing.assert_frame_equal(portfolio_table(compact), portfolio_table(plain), check_exact=True)
    expected = with_portfolio(list(plain))
    got = with_portfolio(compact)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["symbol"].dtype == result.daily["symbol"].dtype


def test_statistics_do_not_depend_on_how_many_series_share_a_pass(result, monkeypatch):
    from totowalk.backtest.stats import table
    from totowalk.backtest.stats.table import days_per_year_of, performance_table

    days = days_per_year_of(result.settings)
    whole = performance_table(result.daily, days)
    monkeypatch.setattr(table, "_SERIES_BLOCK", 3)
    pd.testing.assert_frame_equal(performance_table(result.daily, days), whole, check_exact=True)
