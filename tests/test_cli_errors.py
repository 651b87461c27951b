"""Every expected failure of the command line is one line `error: ...` naming what and where,
with exit status 2 and no traceback; an unexpected failure keeps its traceback (issue 21, case 2
and the small points of case 11)."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import prices

from totowalk.cli import main

FAST = ["--no-progress"]  # the default clean profile computes exact statistics: no samples to draw


def _csv(path, frame, ticker=None):
    frame = frame.rename_axis("Date").reset_index()
    if ticker is not None:
        frame["Ticker"] = ticker
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture()
def files(tmp_path):
    multi = pd.concat(
        [
            prices(60, 1).rename_axis("Date").reset_index().assign(Ticker="AAA"),
            prices(60, 2).rename_axis("Date").reset_index().assign(Ticker="BBB"),
        ]
    )
    multi.to_csv(tmp_path / "multi.csv", index=False)
    with_nan = prices(60, 3)
    with_nan.iloc[7, with_nan.columns.get_loc("Close")] = np.nan
    (tmp_path / "folder").mkdir()
    return {
        "multi": str(tmp_path / "multi.csv"),
        "nan": _csv(tmp_path / "acme.csv", with_nan),
        "missing": str(tmp_path / "missing.csv"),
        "folder": str(tmp_path / "folder"),
        "out": str(tmp_path / "existing"),
    }


# (argv with {placeholders} for the files above, text the one error line must contain)
CASES = {
    "forecast multi-symbol file without --symbol": (
        ["forecast", "--data", "{multi}"],
        "holds several symbols (AAA, BBB); pick one with --symbol",
    ),
    "forecast file with NaN": (
        ["forecast", "--data", "{nan}"],
        "symbol 'acme', column 'Close', row 7 (2021-01-13): nan value",
    ),
    "forecast missing file": (["forecast", "--data", "{missing}"], "price file not found: {missing}"),
    "forecast --rows 0": (["forecast", "--dataset", "IBM", "--rows", "0"], "argument --rows: must be >= 1, got 0"),
    "forecast unknown column": (
        ["forecast", "--dataset", "IBM", "--column", "Vol"],
        "--column 'Vol' is not in the data",
    ),
    "backtest missing file": (["backtest", "--data", "{missing}"], "price file not found: {missing}"),
    "backtest folder": (["backtest", "--data", "{folder}"], "price path {folder} is a folder"),
    "backtest --samples 0": (
        ["backtest", "--dataset", "IBM", "--samples", "0"],
        "argument --samples: must be >= 1, got 0",
    ),
    "backtest --batch 0": (["backtest", "--dataset", "IBM", "--batch", "0"], "argument --batch: must be >= 1, got 0"),
    "backtest malformed --start": (
        ["backtest", "--dataset", "IBM", "--start", "2001-13-01"],
        "argument --start: expected a date YYYY-MM-DD, got '2001-13-01'",
    ),
    "backtest empty date range": (
        ["backtest", "--dataset", "IBM", "--start", "2020-01-01"],
        "symbol 'IBM' has no rows between --start 2020-01-01 and --end (none); its data spans 2000-03-01 to 2013-03-01",
    ),
    "backtest --resume without --out": (["backtest", "--dataset", "IBM", "--resume"], "--resume needs --out DIR"),
    "backtest unknown random shape": (
        ["backtest", "--dataset", "IBM", "--model", "random:toto-huge", "--allow-random-weights"],
        "unknown model shape 'toto-huge'",
    ),
    "backtest bad --spread": (
        ["backtest", "--dataset", "IBM", "--end", "2000-09-30", "--sims", "2", "--spread", "wide"],
        "spread must be a bid/ask ratio",
    ),
    "backtest unknown --aggregate": (
        ["backtest", "--dataset", "IBM", "--aggregate", "bogus"],
        "argument --aggregate: Unknown aggregation method 'bogus'",
    ),
    "forecast unknown --aggregate": (
        ["forecast", "--dataset", "IBM", "--aggregate", "mean", "p101"],
        "argument --aggregate: Unknown aggregation method 'p101'",
    ),
    "quantize unknown model": (["quantize", "no-such-model", "{out}"], "cannot load model 'no-such-model'"),
    "quantize existing output": (["quantize", "toto-mini", "{folder}/.."], "already exists"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_expected_failures_are_one_line_with_exit_2(case, files, capsys):
    argv, expected = CASES[case]
    argv = [a.format(**files) for a in argv]
    extra = FAST if argv[0] in ("backtest",) else []
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert expected.format(**files) in err
    assert "Traceback" not in err


def test_random_weights_of_the_bundled_shape_run(capsys):
    argv = [
        "forecast",
        "--dataset",
        "IBM",
        "--rows",
        "200",
        "--samples",
        "8",
        "--model",
        "random:toto-mini",
        "--allow-random-weights",
    ]
    assert main(argv) == 0
    assert "RANDOM weights" in capsys.readouterr().err


def test_unexpected_failures_keep_their_traceback(monkeypatch):
    def broken(args):
        raise RuntimeError("a bug")

    from totowalk.commands import info

    monkeypatch.setattr(info, "_info", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["info"])


def test_a_value_error_while_computing_is_a_bug_with_its_traceback(monkeypatch):
    from totowalk.backtest import chunks as api

    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(api, "build_arrays", broken)
    with pytest.raises(ValueError, match="an internal inconsistency"):
        main(["backtest", "--dataset", "IBM", "--end", "2000-09-30", "--sims", "2", *FAST])


def test_the_installed_command_prints_one_line(files):
    run = subprocess.run(
        [sys.executable, "-m", "totowalk.cli", "backtest", "--data", files["missing"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr == f"error: price file not found: {files['missing']}\n"
