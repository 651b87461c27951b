"""What the commands print and write reads without guessing (issue 30, item 13): target dates and
price levels beside forecast changes, a warning for a context shorter than a patch, the strategy
rows in one order in every table, and terminal tables at most 100 columns wide."""

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.profiles.profile import STRATEGY_PREFIXES
from totowalk.backtest.report.text import TERMINAL_WIDTH, format_report, strategy_table
from totowalk.cli import main
from totowalk.commands.forecast import target_dates
from totowalk.data import datasets

RANDOM = ["--model", "random:toto-tiny", "--allow-random-weights", "--samples", "8"]


def _table_lines(text: str) -> list:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("strategy"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("daily series"))
    return lines[start - 1 : end]  # the column header sits above the index name


def test_forecast_prints_dates_percent_and_the_implied_price(capsys):
    assert main(["forecast", "--dataset", "IBM", "--rows", "300", "--prediction-length", "3", *RANDOM]) == 0
    out = capsys.readouterr().out
    last = datasets.load("IBM", adjust="adj_close")
    assert f"ending {last.index[-1].date()}" in out
    assert "in percent (files hold fractions" in out
    header = out.splitlines()[1]
    assert "date" in header and "mean %" in header and "Close_at_mean" in header
    rows = out.splitlines()[3:6]
    expected = target_dates(last.index, 3).strftime("%Y-%m-%d")
    assert [r.split()[1] for r in rows] == list(expected)
    assert all(len(line) <= TERMINAL_WIDTH for line in out.splitlines()[1:])


def test_forecast_file_holds_fractions_dates_and_the_level_they_imply(tmp_path):
    path = tmp_path / "next.csv"
    args = ["forecast", "--dataset", "IBM", "--rows", "300", "--prediction-length", "4", *RANDOM]
    assert main([*args, "--aggregate", "p10", "mean", "band", "--output", str(path)]) == 0
    table = pd.read_csv(path, index_col="step")
    assert list(table.columns) == ["date", "p10", "mean", "band", "Close_at_mean"]  # the first location statistic
    last = float(datasets.load("IBM", adjust="adj_close")["Close"].iloc[-1])
    np.testing.assert_allclose(table["Close_at_mean"], last * np.cumprod(1 + table["mean"]), rtol=1e-12)
    assert (table["mean"].abs() < 0.5).all()  # fractions, not percent
    # raw levels have no implied level column; quantiles alone imply none either
    assert main([*args, "--aggregate", "p10", "p90", "--output", str(path)]) == 0
    assert list(pd.read_csv(path).columns) == ["step", "date", "p10", "p90"]
    # repeated, the option adds (each name once, in the order given); without it, the defaults
    assert main([*args, "--aggregate", "p90", "--aggregate", "mean", "p90", "--output", str(path)]) == 0
    assert list(pd.read_csv(path).columns) == ["step", "date", "p90", "mean", "Close_at_mean"]
    assert main([*args, "--output", str(path)]) == 0
    assert list(pd.read_csv(path).columns)[2:-1] == ["mean", "trimmed_mean_10", "p10", "p90", "band"]


def test_target_dates_follow_the_data_calendar():
    weekdays = pd.bdate_range("2024-01-01", periods=30)  # ends on a Friday
    assert list(target_dates(weekdays, 2)) == [pd.Timestamp("2024-02-12"), pd.Timestamp("2024-02-13")]
    every_day = pd.date_range("2024-01-01", periods=30, freq="D")  # crypto trades on weekends
    assert target_dates(every_day, 1)[0] == pd.Timestamp("2024-01-31")
    hourly = pd.date_range("2024-01-02 09:30", periods=6, freq="h")
    assert target_dates(hourly, 1)[0] == pd.Timestamp("2024-01-02 15:30")
    assert target_dates(pd.RangeIndex(30), 1) is None


def test_a_context_shorter_than_a_patch_is_warned_about(capsys):
    assert main(["forecast", "--dataset", "IBM", "--rows", "20", *RANDOM]) == 0
    err = capsys.readouterr().err
    assert "the context holds 19 values, fewer than one patch of the model" in err
    assert "noise and every figure computed from them is meaningless" in err  # the random-weights warning
    assert main(["forecast", "--dataset", "IBM", "--rows", "300", *RANDOM]) == 0
    assert "fewer than one patch" not in capsys.readouterr().err


@pytest.fixture(scope="module")
def results():
    data = {"AAA": prices(90, 5), "BBB": prices(90, 6)}
    return {p: backtest(data, num_simulations=6, forecaster=mean5, profile=p) for p in ("clean", "legacy")}


def test_strategy_rows_in_one_order_in_every_table(results):
    order = [p.replace("_strategy", "") for p in STRATEGY_PREFIXES]
    for result in results.values():
        assert list(strategy_table(result).index) == order
        printed = [line.split()[0] for line in _table_lines(format_report(result))[2:]]
        assert printed == order
        statistics = result.statistics.loc["(all)"].index
        assert list(statistics) == list(STRATEGY_PREFIXES)


def test_the_printed_strategy_table_fits_100_columns(results):
    for result in results.values():
        lines = _table_lines(format_report(result))
        assert len(lines) == 2 + len(STRATEGY_PREFIXES)
        assert max(len(line) for line in lines) <= TERMINAL_WIDTH, "\n".join(lines)


def test_the_widest_strategy_cells_still_fit_100_columns():
    from totowalk.backtest.report.text import _printed_table

    rows = {
        p.replace("_strategy", ""): {
            "return": -0.9999,
            "return_adverse": -0.9999,
            "return_optimistic": -0.9999,
            "turnover": 12.34,
            "daily_sharpe": -123.45,
            "sharpe_low": -160.02,
            "sharpe_high": -110.54,
            "max_drawdown": -0.9999,
            "deflated_sharpe": 0.001,
        }
        for p in STRATEGY_PREFIXES
    }
    table = _printed_table(pd.DataFrame.from_dict(rows, orient="index"), "clean")
    lines = table.to_string(line_width=TERMINAL_WIDTH).splitlines()
    assert len(lines) == 1 + len(STRATEGY_PREFIXES)  # one block: pandas did not wrap it
    assert max(len(line) for line in lines) <= TERMINAL_WIDTH, "\n".join(lines)


def test_progress_bars_only_on_a_terminal_unless_asked(capsys, monkeypatch, tmp_path):
    import io

    run = ["backtest", "--dataset", "IBM", "--end", "2000-06-30", "--sims", "3", "--plot-symbols", "0", *RANDOM]
    assert main([*run, "--out", str(tmp_path / "piped")]) == 0  # capsys: stderr is no terminal
    assert "forecasts:" not in capsys.readouterr().err
    assert main([*run, "--out", str(tmp_path / "asked"), "--progress"]) == 0
    assert "forecasts:" in capsys.readouterr().err

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main([*run, "--out", str(tmp_path / "terminal")]) == 0
    assert "forecasts:" in terminal.getvalue()
    terminal.truncate(0)
    assert main([*run, "--out", str(tmp_path / "quiet"), "--no-progress"]) == 0
    assert "forecasts:" not in terminal.getvalue()
