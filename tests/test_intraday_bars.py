"""Bars shorter than a day are not annualised as days: they are refused unless the caller says how
many make a year, and then every rate and Sharpe uses that factor (issue 30, item 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import mean5, prices

import totowalk as tw
from totowalk.cli import main
from totowalk.errors import UsageError


def hourly(n: int = 200, seed: int = 3) -> pd.DataFrame:
    frame = prices(n, seed)
    frame.index = pd.date_range("2021-01-04 09:30", periods=n, freq="h", name="Date")
    return frame


def test_hourly_bars_are_refused_without_bars_per_year():
    with pytest.raises(UsageError, match=r"bar every 0 days 01:00:00.*--bars-per-year"):
        tw.backtest({"H": hourly()}, num_simulations=5, forecaster=mean5)


def test_bars_per_year_annualises_every_series():
    result = tw.backtest({"H": hourly()}, num_simulations=30, forecaster=mean5, bars_per_year=1638)
    assert result.settings["trading_days"] == {"H": 1638.0} and result.settings["bars_per_year"] == 1638.0
    r = result.daily[(result.daily["symbol"] == "H") & (result.daily["strategy"] == "buy_hold")]["return"].to_numpy()
    sharpe = result.statistics.loc[("H", "buy_hold"), "sharpe"]
    assert sharpe == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(1638), rel=1e-12)
    from totowalk.backtest.report.text import format_report

    assert (
        'annualised with 1638 bars a year (given for bars shorter than a day; a "day" below is one bar)'
        in format_report(result)
    )


def test_daily_bars_keep_their_days_and_record_no_factor():
    result = tw.backtest({"D": prices(80, 4)}, num_simulations=5, forecaster=mean5)
    assert result.settings["trading_days"] == {"D": 252} and "bars_per_year" not in result.settings


def test_the_cli_refuses_hourly_bars_in_one_line_and_takes_the_factor(tmp_path, capsys):
    path = tmp_path / "hourly.csv"
    hourly().reset_index().to_csv(path, index=False)
    argv = [
        "backtest",
        "--data",
        str(path),
        "--sims",
        "3",
        "--no-progress",
        "--model",
        "random:toto-tiny",
        "--allow-random-weights",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--bars-per-year" in err and err.count("\n") == 1
    assert main([*argv, "--bars-per-year", "1638", "--out", str(tmp_path / "run")]) == 0
    assert "annualised with 1638 bars a year" in capsys.readouterr().out
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<th>bars a year (a &quot;day&quot; in this report is one bar)</th><td>1638.0" in page
    assert "trading days" not in page
    assert main([*argv, "--bars-per-year", "0"]) == 2


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_the_spacing_filter_never_hides_bars_pandas_finds_intraday(unit):
    from totowalk.backtest.inputs.settings import INTRADAY, _median_spacing_below

    rng = np.random.default_rng(7)
    cases = [pd.date_range("2024-01-01", periods=n, freq=f"{h}h") for n in (3, 4, 50) for h in (19, 20, 21, 24)]
    for _ in range(200):  # ragged steps around 20 hours, an even count included
        steps = INTRADAY + pd.to_timedelta(rng.integers(-3, 4, rng.integers(2, 9)), unit="s")
        cases.append(
            pd.DatetimeIndex(pd.Timestamp("2024-01-01") + np.concatenate([[pd.Timedelta(0)], np.cumsum(steps)]))
        )
    cases.append(pd.DatetimeIndex(["2024-01-01", None, "2024-01-01 02:00", "2024-01-01 04:00"]))
    says = []
    for index in cases:
        index = index.as_unit(unit)
        below = pd.Series(index).diff().median() < INTRADAY
        assert _median_spacing_below(index, INTRADAY) or not below, index
        says.append(_median_spacing_below(index, INTRADAY))
    assert not all(says) and any(says)  # it does filter


def test_the_sample_study_takes_the_bars_a_year_too(tmp_path, capsys):
    path = tmp_path / "hourly.csv"
    hourly().reset_index().to_csv(path, index=False)
    argv = ["samples", "--data", str(path), "--sims", "3", "--grid", "16", "--seeds", "1", "--no-progress"]
    argv += ["--model", "random:toto-tiny", "--allow-random-weights"]
    assert main(argv) == 2 and "--bars-per-year" in capsys.readouterr().err
    assert main([*argv, "--bars-per-year", "1638"]) == 0
    assert "sample-count study: hourly;" in capsys.readouterr().out  # the file names the one symbol
