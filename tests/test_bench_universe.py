"""bench/universe.py: its synthetic panel (shape, OHLC envelope, dates, seeding, no drift) and one
small measured CLI run (toto-tiny, random weights)."""

import json

import numpy as np
import pandas as pd
from _bench import bench_script

universe = bench_script("universe")


def test_panel_has_one_row_per_symbol_and_business_day():
    panel = universe.synthetic_panel(5, 300, seed=1)
    assert list(panel.columns) == ["Date", "Ticker", "Open", "High", "Low", "Close", "Volume"]
    assert panel.shape == (5 * 300, 7)
    assert list(pd.unique(panel["Ticker"])) == ["U0000", "U0001", "U0002", "U0003", "U0004"]
    assert (panel.groupby("Ticker").size() == 300).all()
    expected = pd.bdate_range("2020-01-01", periods=300)
    for _, rows in panel.groupby("Ticker"):
        dates = pd.to_datetime(rows["Date"])
        assert dates.is_monotonic_increasing and dates.is_unique
        assert (dates.to_numpy() == expected.to_numpy()).all()
    assert (panel["Volume"] > 0).all()


def test_bars_are_the_extremes_of_one_path_per_day():
    panel = universe.synthetic_panel(6, 400, seed=2)
    prices = panel[["Open", "High", "Low", "Close"]]
    assert np.isfinite(prices.to_numpy()).all() and (prices > 0).all().all()
    assert (panel["Low"] <= panel[["Open", "Close"]].min(axis=1)).all()
    assert (panel["High"] >= panel[["Open", "Close"]].max(axis=1)).all()
    assert (panel["Low"] < panel["High"]).all()  # 78 steps a day: never a flat bar
    # Open and Close touch the day's extremes sometimes (a path can start or end at its low), not always
    assert 0 < (panel["Open"] == panel["Low"]).mean() < 0.5


def test_the_csv_keeps_the_envelope(tmp_path):
    path = tmp_path / "panel.csv"
    universe.write_panel(universe.synthetic_panel(3, 200, seed=3), path)
    back = pd.read_csv(path)
    assert len(back) == 600
    assert (back["Low"] <= back[["Open", "Close"]].min(axis=1)).all()
    assert (back["High"] >= back[["Open", "Close"]].max(axis=1)).all()


def test_same_seed_same_panel_another_seed_another():
    a = universe.synthetic_panel(4, 250, seed=7)
    pd.testing.assert_frame_equal(a, universe.synthetic_panel(4, 250, seed=7))
    b = universe.synthetic_panel(4, 250, seed=8)
    assert not np.allclose(a["Close"], b["Close"])
    # a symbol's bars depend on the seed and its index only: a smaller universe is a prefix of a larger one
    pd.testing.assert_frame_equal(universe.synthetic_panel(2, 250, seed=7), a.iloc[:500])


def test_daily_returns_are_driftless_with_a_one_to_three_percent_volatility():
    panel = universe.synthetic_panel(8, 2000, seed=4)  # long enough that a drift of 0.3 % a day fails
    t_stats = []
    for _, rows in panel.groupby("Ticker"):
        returns = np.diff(np.log(rows["Close"].to_numpy()))
        t_stats.append(returns.mean() / (returns.std(ddof=1) / np.sqrt(len(returns))))
        intraday = np.log(rows["Close"] / rows["Open"])
        assert 0.008 < intraday.std() < 0.035
        gaps = np.log(rows["Open"].to_numpy()[1:] / rows["Close"].to_numpy()[:-1])
        assert 0 < np.median(np.abs(gaps)) < 0.01  # a small overnight gap: the path goes on from the close
    assert np.mean(np.abs(t_stats)) < 4


def test_phase_timings_are_read_when_the_run_writes_them(tmp_path):
    assert universe.read_timings(tmp_path) == {}  # no summary.json
    (tmp_path / "summary.json").write_text(json.dumps({"profile": "clean"}))
    assert universe.read_timings(tmp_path) == {}  # a run from before the timings
    (tmp_path / "summary.json").write_text(json.dumps({"timings": {"prepare": 1.0, "forecast": 4.0, "tables": 3}}))
    timings = universe.read_timings(tmp_path)
    assert timings == {"prepare": 1.0, "forecast": 4.0, "tables": 3.0}
    assert universe.whole_over_forecast(timings, wall=10.0) == {"wall": 2.5, "phases": 2.0}
    assert universe.whole_over_forecast({}, wall=10.0) == {}


def test_the_outputs_process_is_read_and_named_in_the_row(tmp_path):
    assert universe.read_beside_run(tmp_path) == {}  # no summary.json
    (tmp_path / "summary.json").write_text(json.dumps({"outputs": {"tables": "csv"}}))
    assert universe.read_beside_run(tmp_path) == {}  # written by the run's own process
    beside = {"cpu_seconds": 10.5, "peak_rss_mib": 507.4}
    (tmp_path / "summary.json").write_text(json.dumps({"outputs": {"written_beside_run": beside}}))
    assert universe.read_beside_run(tmp_path) == beside
    row = {
        "symbols": 2, "bars": 10, "sims": 1, "wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mib": 300.0,
        "run_folder_bytes": 1, "run_folder_files": 1, "largest_files": {}, "report_html_bytes": 0,
        "stdout_lines": 1, "stdout_bytes": 1, "timings": {}, "whole_over_forecast": {}, "exit_code": 0,
        "panel_csv_bytes": 1, "panel_s": 0.1, "written_beside_run": beside,
    }  # fmt: skip
    assert "second process: peak RSS 507 MiB, CPU 10.5 s" in universe.markdown_row(row)
    assert "second process" not in universe.markdown_row({**row, "written_beside_run": {}})


def test_a_small_universe_is_measured_end_to_end(tmp_path):
    extra = ["--model", "random:toto-tiny", "--allow-random-weights", "--no-progress"]
    row = universe.measure_row(3, 120, 3, seed=0, workdir=tmp_path, extra=extra)
    assert row["exit_code"] == 0, row["stderr_tail"]
    assert row["wall_s"] > 0 and row["cpu_s"] > 0
    assert row["peak_rss_mib"] > 50  # python, torch and a model: far more than a trivial child
    assert row["run_folder_bytes"] > row["report_html_bytes"] > 0
    assert row["run_folder_files"] >= 3  # at least the tables, summary.json and report.html
    assert row["stdout_lines"] > 0 and row["stdout_bytes"] > 0
    assert len(row["largest_files"]) == 3
    assert list(tmp_path.iterdir()) == []  # without keep, the panel and the run folder are gone
    line = universe.markdown_row(row)
    assert line.startswith("| 3 x 120 x 3 |") and line.count(" | ") == len(universe.TABLE_COLUMNS) - 1
