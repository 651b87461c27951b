"""The run's PNGs: forecast plots drawn by forked processes are the bytes drawn here."""

from __future__ import annotations

import os
import sys
import time

import pytest

from totowalk.backtest import backtest
from totowalk.backtest.report import plots

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked drawing is Linux's")


@pytest.fixture(scope="module")
def result():
    from test_backtest_api import mean5, prices

    data = {f"S{i}": prices(90, i) for i in range(4)}
    return backtest(data, num_simulations=5, forecaster=mean5)


def _drawn(result, folder, processes) -> dict:
    folder.mkdir()
    paths = plots.plot_results(result, folder, processes=processes)
    return {path.name: path.read_bytes() for path in paths}


@linux
def test_forked_processes_draw_the_bytes_drawn_here(result, tmp_path):
    here = _drawn(result, tmp_path / "here", 1)
    forked = _drawn(result, tmp_path / "forked", 3)
    assert list(forked) == list(here)  # the same files, in the same order
    assert len(here) == 5 and forked == here


@linux
def test_a_failure_in_a_drawing_process_is_raised_here(result, tmp_path, monkeypatch):
    parent = os.getpid()
    draw = plots.plot_forecast_rows

    def failing(rows, symbol, profile, path):
        if os.getpid() != parent and symbol == "S2":
            raise ValueError("cannot draw S2")
        draw(rows, symbol, profile, path)

    monkeypatch.setattr(plots, "plot_forecast_rows", failing)
    with pytest.raises(ValueError, match="cannot draw S2"):
        plots.plot_results(result, tmp_path, processes=2)


@linux
def test_stuck_drawing_processes_are_given_up_and_their_plots_drawn_here(result, tmp_path, monkeypatch):
    parent = os.getpid()
    draw = plots.plot_forecast_rows

    def stuck(rows, symbol, profile, path):
        if os.getpid() != parent:
            time.sleep(60)
        draw(rows, symbol, profile, path)

    monkeypatch.setattr(plots, "plot_forecast_rows", stuck)
    monkeypatch.setattr(plots, "PLOT_TIMEOUT_S", 0.5)
    with pytest.warns(RuntimeWarning, match="answered nothing for 0.5 s; the 4 left are drawn in this process"):
        paths = plots.plot_results(result, tmp_path, processes=2)
    assert sorted(p.name for p in paths) == sorted(p.name for p in tmp_path.iterdir())
    assert all(p.stat().st_size > 0 for p in paths)


def test_one_process_or_one_plot_forks_nothing(result, tmp_path, monkeypatch):
    monkeypatch.setattr(plots._ForkedDrawing, "__init__", lambda *a: pytest.fail("forked"))
    plots.plot_results(result, tmp_path, processes=1)
    plots.plot_results(result, tmp_path, most=1, processes=4)


@linux
def test_drawing_processes_leave_ctrl_c_to_the_run(result, tmp_path, monkeypatch):
    """Ctrl-C reaches every process of the terminal's group: the drawing ones ignore it (no
    traceback of theirs), the run's process takes it and stops them."""
    import signal

    parent = os.getpid()
    draw = plots.plot_forecast_rows

    def checked(rows, symbol, profile, path):
        if os.getpid() != parent and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            raise AssertionError("a drawing process would take Ctrl-C")
        draw(rows, symbol, profile, path)

    monkeypatch.setattr(plots, "plot_forecast_rows", checked)
    assert len(plots.plot_results(result, tmp_path, processes=2)) == 5


def test_symbols_that_would_share_a_file_name_get_their_own(tmp_path):
    from test_backtest_api import mean5, prices

    names = ["BTC/USD", "BTC_USD", "BTC:USD", "IBM"]
    run = backtest({name: prices(60, i) for i, name in enumerate(names)}, num_simulations=3, forecaster=mean5)
    paths = plots.plot_results(run, tmp_path, processes=1)
    drawn = sorted(p.name for p in paths if p.name.startswith("forecast_vs_actual_"))
    assert sorted(p.name for p in tmp_path.glob("forecast_vs_actual_*.png")) == drawn and len(drawn) == 4
    assert "forecast_vs_actual_BTC_USD.png" in drawn and "forecast_vs_actual_IBM.png" in drawn  # safe names kept
    assert plots.forecast_plot_name("BTC/USD") == plots.forecast_plot_name("BTC/USD")  # one name a symbol
