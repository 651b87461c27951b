"""Data through the command line (issue 21): Parquet in and out with a date index (case 3),
--on-invalid repairs that say what they did (case 4), a bad Volume does not reject the prices
(case 5), Ctrl-C tells how to continue and resume's bars start at the saved count (case 7), one
forecast plot per symbol with units (case 8), single-symbol files named by their file (case 9)."""

import importlib
import json
import re

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

import totowalk as tw
import totowalk.errors
from totowalk.cli import main
from totowalk.data.prices import PriceRepairWarning
from totowalk.engine import ForecastEngine

RANDOM = ["--model", "random:toto-tiny", "--allow-random-weights"]
SMALL = ["--sims", "3", "--no-progress", *RANDOM]  # clean by default: exact statistics, no samples


def ibm(end="2000-06-30"):
    return tw.datasets.load("IBM").loc[:end]


# -- Parquet ---------------------------------------------------------------------------------


def test_parquet_with_date_index_loads_like_the_csv_and_runs(tmp_path, capsys):
    frame = ibm()  # dates are the index: pandas writes them as the Parquet index
    frame.attrs = {}  # (pandas cannot store the split dates kept there)
    frame.to_parquet(tmp_path / "IBM.parquet")
    frame.to_csv(tmp_path / "IBM.csv")
    from_parquet = tw.load_prices(tmp_path / "IBM.parquet")
    pd.testing.assert_frame_equal(from_parquet, tw.load_prices(tmp_path / "IBM.csv"), check_freq=False)
    assert from_parquet.attrs["symbol"] == "IBM"

    out = tmp_path / "run"
    assert main(["backtest", "--data", str(tmp_path / "IBM.parquet"), *SMALL, "--out", str(out)]) == 0
    assert set(pd.read_csv(out / "simulations.csv")["symbol"]) == {"IBM"}

    table = tmp_path / "next.parquet"
    assert (
        main(["forecast", "--data", str(tmp_path / "IBM.parquet"), "--samples", "8", *RANDOM, "--output", str(table)])
        == 0
    )
    written = pd.read_parquet(table)
    assert list(written.index) == [1] and "trimmed_mean_10" in written.columns


def test_unnamed_date_index_in_a_csv_is_the_date_column(tmp_path):
    frame = ibm()
    frame.index.name = None  # to_csv writes an empty header over the dates
    frame.to_csv(tmp_path / "IBM.csv")
    loaded = tw.load_prices(tmp_path / "IBM.csv")
    pd.testing.assert_index_equal(loaded.index, ibm().index, check_exact=True)


def test_backtest_tables_in_parquet_hold_what_the_csv_tables_hold(tmp_path):
    argv = ["backtest", "--dataset", "IBM", "--end", "2000-06-30", *SMALL]
    assert main([*argv, "--out", str(tmp_path / "csv")]) == 0
    assert main([*argv, "--out", str(tmp_path / "pq"), "--tables", "parquet"]) == 0
    assert not (tmp_path / "pq" / "forecasts.csv").exists()
    from_csv = pd.read_csv(
        tmp_path / "csv" / "forecasts.csv", parse_dates=["target_date"], float_precision="round_trip"
    )
    from_parquet = pd.read_parquet(tmp_path / "pq" / "forecasts.parquet")
    for column in ("symbol", "simulation", "key", "step", "context_end", "actual"):
        np.testing.assert_array_equal(from_parquet[column].to_numpy(), from_csv[column].to_numpy())
    # float32 forecasts: Parquet keeps them as they are, CSV as their shortest float32 text
    assert from_parquet["prediction"].dtype == np.float32
    np.testing.assert_array_equal(from_parquet["prediction"].to_numpy(), from_csv["prediction"].to_numpy(np.float32))
    np.testing.assert_array_equal(
        from_parquet["target_date"].to_numpy("datetime64[s]"), from_csv["target_date"].to_numpy("datetime64[s]")
    )
    sims = pd.read_parquet(tmp_path / "pq" / "simulations.parquet")
    assert list(sims.columns) == list(pd.read_csv(tmp_path / "csv" / "simulations.csv").columns)


def test_missing_pyarrow_names_the_extra(tmp_path, monkeypatch, capsys):
    frame = ibm()
    frame.attrs = {}
    frame.to_parquet(tmp_path / "IBM.parquet")
    real_import = importlib.import_module

    def without_pyarrow(name, *args):  # as if not installed (pandas itself keeps working)
        if name == "pyarrow":
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args)

    monkeypatch.setattr(totowalk.errors, "import_module", without_pyarrow)
    assert main(["forecast", "--data", str(tmp_path / "IBM.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: reading the Parquet file") and "pip install 'totowalk[parquet]'" in err
    assert (
        main(
            [
                "forecast",
                "--dataset",
                "IBM",
                "--rows",
                "100",
                "--samples",
                "8",
                *RANDOM,
                "--output",
                str(tmp_path / "out.parquet"),
            ]
        )
        == 2
    )
    assert "error: writing the Parquet file" in capsys.readouterr().err


# -- repairs ---------------------------------------------------------------------------------


@pytest.fixture()
def messy_csv(tmp_path):
    """IBM with two rows swapped, one date repeated and one NaN close."""
    frame = ibm().reset_index()
    rows = list(range(len(frame)))
    rows[10], rows[11] = rows[11], rows[10]
    frame = frame.iloc[rows + [20]].reset_index(drop=True)  # the last row repeats row 20's date
    frame.loc[30, "Close"] = np.nan
    path = tmp_path / "acme.csv"
    frame.to_csv(path, index=False)
    return path


def test_errors_recommend_the_option_the_cli_has(messy_csv, capsys):
    assert main(["backtest", "--data", str(messy_csv), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "symbol 'acme', column 'Date', row 11" in err and "--on-invalid" in err


@pytest.mark.parametrize("how,verb", [("drop", "dropped"), ("ffill", "forward-filled")])
def test_on_invalid_repairs_order_duplicates_and_values_and_counts_them(messy_csv, tmp_path, capsys, how, verb):
    out = tmp_path / "run"
    assert main(["backtest", "--data", str(messy_csv), "--on-invalid", how, *SMALL, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert (
        f"WARNING: symbol 'acme': on_invalid='{how}': sorted 1 row(s) into date order; dropped 1 row(s) "
        f"repeating an earlier date; {verb} 1 row(s) with invalid prices"
    ) in err
    assert "UserWarning" not in err
    assert len(pd.read_csv(out / "simulations.csv")) == 3


@pytest.mark.parametrize("how", ["drop", "ffill"])
def test_repaired_frame_is_sorted_unique_and_valid(messy_csv, how):
    with pytest.warns(PriceRepairWarning):
        frame = tw.load_prices(messy_csv, on_invalid=how)
    raw = pd.read_csv(messy_csv)
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    expected = raw["Date"].nunique() - (1 if how == "drop" else 0)
    assert len(frame) == expected and np.isfinite(frame["Close"]).all()


def test_ffill_failure_does_not_recommend_ffill():
    frame = ibm().reset_index()
    frame.loc[0, "Open"] = -1.0
    with pytest.raises(tw.PriceDataError) as err:
        tw.load_prices(frame, symbol="IBM", on_invalid="ffill")
    assert "cannot forward-fill row 0" in str(err.value) and "'ffill'" not in str(err.value)
    assert "--on-invalid drop" in str(err.value)


def test_bad_volume_is_blanked_with_a_warning_not_rejected():
    frame = ibm().reset_index()
    frame.loc[5, "Volume"] = np.nan
    frame.loc[9, "Volume"] = -3.0
    with pytest.warns(PriceRepairWarning, match=r"column 'Volume': 2 missing, infinite or negative value\(s\)"):
        loaded = tw.load_prices(frame, symbol="IBM")
    assert loaded["Volume"].isna().sum() == 2 and len(loaded) == len(frame)
    result = tw.backtest(
        loaded, symbol="IBM", num_simulations=2, forecaster=lambda c: np.zeros(len(c)), profile="legacy"
    )
    assert np.isfinite(result.simulations["dollar_vol_20d"].astype(float)).all()


# -- naming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("extra,name", [([], "IBM"), (["--symbol", "Big Blue"], "Big Blue")])
def test_single_symbol_file_is_named_by_its_file_or_symbol(tmp_path, extra, name):
    ibm().to_csv(tmp_path / "IBM.csv.gz")
    out = tmp_path / "run"
    assert main(["backtest", "--data", str(tmp_path / "IBM.csv.gz"), *extra, *SMALL, "--out", str(out)]) == 0
    assert set(pd.read_csv(out / "simulations.csv")["symbol"]) == {name}
    assert set(json.loads((out / "summary.json").read_text())["summary"]) == {name, "(all)"}


# -- interruption ----------------------------------------------------------------------------


def test_interrupted_run_says_how_to_continue_and_resume_counts_from_saved(tmp_path, monkeypatch, capsys):
    real = ForecastEngine.forecast_walk_forward  # the form the backtest hands the engine
    calls = []

    def interrupted_on_second_call(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ForecastEngine, "forecast_walk_forward", interrupted_on_second_call)
    base = ["backtest", "--dataset", "IBM", "--end", "2000-06-30", "--batch", "8", *SMALL]
    contexts = 4 * (3 + 6)  # 4 keys x (K simulations + 6 more steps) distinct contexts
    out = tmp_path / "run"
    assert main([*base, "--out", str(out)]) == 130
    assert capsys.readouterr().err == (
        f"interrupted; re-run with --resume to continue (8 of {contexts} contexts saved)\n"
    )

    calls.append(1)  # past the second call: no further interruption
    resume = [*(a for a in base if a != "--no-progress"), "--progress"]  # bars drawn though stderr is no terminal
    assert main([*resume, "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    first = re.search(r"forecasts:[^\r\n]*?(\d+)/(\d+)", err)
    assert first and first.groups() == ("8", str(contexts)), err[:400]


def test_interrupted_run_without_out_says_nothing_was_saved(monkeypatch, capsys):
    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ForecastEngine, "forecast_walk_forward", interrupt)
    assert main(["backtest", "--dataset", "IBM", "--end", "2000-06-30", *SMALL]) == 130
    assert "nothing was saved (give --out DIR" in capsys.readouterr().err


# -- plots -----------------------------------------------------------------------------------


def test_plots_per_symbol_say_what_and_in_which_unit(tmp_path, monkeypatch):
    seen = {}
    real_save = matplotlib.figure.Figure.savefig

    def record(fig, path, *args, **kwargs):
        title = fig._suptitle.get_text() if fig._suptitle is not None else fig.axes[0].get_title()
        seen[str(path).rsplit("/", 1)[-1]] = (title, [ax.get_ylabel() for ax in fig.axes])
        return real_save(fig, path, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    plots = importlib.import_module("totowalk.backtest.report.plots")
    monkeypatch.setattr(plots, "PLOT_PROCESSES_MAX", 1)  # drawn in this process, where it records them
    out = tmp_path / "run"
    argv = [
        "backtest",
        "--dataset",
        "us-stocks-daily",
        "--symbol",
        "IBM",
        "--symbol",
        "MSFT",
        "--end",
        "2000-06-30",
        *SMALL,
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert {"forecast_vs_actual_IBM.png", "forecast_vs_actual_MSFT.png", "cumulative_returns.png"} <= set(seen)
    title, labels = seen["cumulative_returns.png"]
    assert "mean over 2 symbols (IBM, MSFT)" in title and labels == ["cumulative return (%)"]
    title, labels = seen["forecast_vs_actual_MSFT.png"]
    assert "MSFT" in title and all(label.endswith("(%)") for label in labels) and len(labels) == 4
    for name in seen:
        assert (out / name).stat().st_size > 0


def test_a_frame_with_a_date_column_runs_on_its_dates():
    frame = ibm()
    with_column = frame.reset_index()  # Date as a column, a RangeIndex
    by_column = tw.backtest(
        with_column, symbol="IBM", num_simulations=2, forecaster=lambda c: np.zeros(len(c)), profile="legacy"
    )
    by_index = tw.backtest(
        frame, symbol="IBM", num_simulations=2, forecaster=lambda c: np.zeros(len(c)), profile="legacy"
    )
    pd.testing.assert_frame_equal(by_column.forecasts, by_index.forecasts)
    assert by_column.forecasts["target_date"].dropna().iloc[0] > pd.Timestamp("2000-01-01")


def test_an_interruption_while_writing_outputs_is_named_and_finished_by_resume(tmp_path, monkeypatch, capsys):
    from totowalk.backtest.report import files

    real = files.plot_results

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    argv = ["backtest", "--dataset", "IBM", "--end", "2000-06-30", *SMALL, "--out", str(out)]
    monkeypatch.setattr(files, "plot_results", interrupted)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err == f"interrupted; what was computed is saved in {out}: re-run the same command with --resume to finish\n"
    assert (out / "summary.json").is_file() and (out / "OUTPUTS_INCOMPLETE").is_file()
    assert not list(out.glob("*.partial"))  # every table written is whole
    assert main(["report", str(out)]) == 2  # the folder is not taken for a finished run
    assert "interrupted while its outputs were written" in capsys.readouterr().err
    monkeypatch.setattr(files, "plot_results", real)
    assert main([*argv, "--resume"]) == 0
    assert not (out / "OUTPUTS_INCOMPLETE").exists() and (out / "report.html").is_file()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0


def test_report_of_a_damaged_folder_says_what_it_lacks(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["backtest", "--dataset", "IBM", "--end", "2000-06-30", *SMALL, "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    (out / "forecasts.csv").unlink()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"WARNING: {out} has no forecasts.csv or forecasts.parquet: the report goes without the forecast charts" in (
        captured.out + captured.err
    )
    assert len((out / "report.html").read_text()) < len(page)  # drawn without them
    (out / "summary.json").write_text("{ not json")
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'summary.json'} is damaged (JSONDecodeError") and err.count("\n") == 1
