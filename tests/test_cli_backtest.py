"""`totowalk backtest` end to end on a small bundled slice with a random tiny model."""

import json

import pandas as pd
import pytest

from totowalk.backtest.profiles.legacy.rows import RESULT_FIELDS
from totowalk.cli import main
from totowalk.loading import resolve_model
from totowalk.model import DEFAULT_MODEL

SLICE = [
    "--dataset",
    "us-stocks-daily",
    "--symbol",
    "IBM",
    "--end",
    "2000-06-30",
    "--sims",
    "3",
    "--samples",
    "16",
    "--no-progress",
]
RANDOM = ["--model", "random:toto-tiny", "--allow-random-weights"]


def test_backtest_command_writes_every_output_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["backtest", *SLICE, *RANDOM, "--profile", "legacy", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "profile: legacy" in text and "RANDOM weights" in text and "in-sample" in text
    assert "spread 1.0 (default" in text and "MAE per key: Close" in text
    for name in (
        "simulations.csv",
        "forecasts.csv",
        "summary.json",
        "cumulative_returns.png",
        "forecast_vs_actual_IBM.png",
    ):
        assert (out / name).stat().st_size > 0, name
    sims = pd.read_csv(out / "simulations.csv")
    assert list(sims.columns) == ["symbol", "simulation", *RESULT_FIELDS]
    assert list(sims["simulation"]) == [0, 1, 2] and set(sims["symbol"]) == {"IBM"}
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert len(forecasts) == 3 * 4 * 7
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"] == "legacy"
    assert summary["model"]["random_weights"] is True and "RANDOM" in summary["model"]["warning"]
    assert any("RANDOM" in w for w in summary["warnings"])
    assert summary["settings"]["forecaster"]["num_samples"] == 16
    assert {"totowalk", "torch", "numpy", "pandas"} <= set(summary["versions"])
    assert set(summary["summary"]) == {"IBM", "(all)"}

    # everything is stored: a resume recomputes nothing and writes the same results
    assert main(["backtest", *SLICE, *RANDOM, "--profile", "legacy", "--out", str(out), "--resume"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "simulations.csv"), sims)
    # other settings in the same folder are a foreign run
    capsys.readouterr()
    assert (
        main(["backtest", *SLICE, *RANDOM, "--profile", "legacy", "--out", str(out), "--resume", "--fee", "0.001"]) == 2
    )
    assert "holds a different run" in capsys.readouterr().err


def test_clean_profile_runs_from_a_csv(tmp_path, capsys):
    from totowalk import datasets

    frame = datasets.load("IBM").loc[:"2000-05-31"].reset_index()
    frame["Ticker"] = "IBM"
    path = tmp_path / "ibm.csv"
    frame.to_csv(path, index=False)
    assert (
        main(
            [
                "backtest",
                "--data",
                str(path),
                "--sims",
                "2",
                "--samples",
                "8",
                "--profile",
                "clean",
                *RANDOM,
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "profile: clean" in text and "in-sample" not in text


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "random:toto-tiny"], "--allow-random-weights"),
        (["--model", "no/such/model-dir"], "cannot load model"),
        (["--symbol", "NOPE", *RANDOM], "unknown bundled symbol 'NOPE'"),
        (["--sims", "80", *RANDOM], "symbol 'IBM': has"),
    ],
)
def test_bad_invocations_exit_2_with_a_named_error(args, message, capsys):
    base = ["--dataset", "us-stocks-daily", "--end", "2000-06-30", "--samples", "8", "--no-progress"]
    if "--symbol" not in args:
        base += ["--symbol", "IBM"]
    assert main(["backtest", *base, *args]) == 2
    assert message in capsys.readouterr().err


def test_resolve_model_is_the_single_entry_point():
    default = resolve_model(None)
    assert default.spec == DEFAULT_MODEL and not default.random_weights and default.warning is None
    resolved = resolve_model("random:toto-tiny", allow_random=True)
    assert resolved.random_weights and "RANDOM" in resolved.warning


def test_host_workers_write_the_same_files(tmp_path, capsys):
    # --host-workers: each chunk's strategies in worker processes; the files a run writes are the
    # same bytes as the one-process run's (three symbols in two chunks: IBM and AAPL in one, split
    # between the two workers, MSFT alone in the next)
    base = [
        *"backtest --dataset us-stocks-daily --symbol IBM --symbol AAPL --symbol MSFT --end 2001-06-30".split(),
        *"--sims 12 --chunk-contexts 150 --tables csv --plot-symbols 0 --no-progress".split(),
        *RANDOM,
    ]
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    assert main([*base, "--host-workers", "2", "--out", str(tmp_path / "two")]) == 0
    capsys.readouterr()
    for name in ("simulations.csv", "forecasts.csv", "daily_returns.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    one, two = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    assert one["summary"] == two["summary"] and one["statistics"] == two["statistics"]


def test_symbols_are_given_separated_by_commas_repeated_or_both(tmp_path, capsys):
    base = [
        *"backtest --dataset us-stocks-daily --end 2000-06-30 --sims 2 --plot-symbols 0 --no-progress".split(),
        *RANDOM,
    ]
    ran = {}
    for name, picked in {
        "commas": ["--symbols", "IBM, AAPL", "--symbol", "MSFT"],
        "flags": ["--symbol", "IBM", "--symbol", "AAPL", "--symbol", "MSFT"],
    }.items():
        assert main([*base, *picked, "--out", str(tmp_path / name)]) == 0
        ran[name] = json.loads((tmp_path / name / "summary.json").read_text())["settings"]["symbols"]
    capsys.readouterr()
    assert ran["commas"] == ran["flags"] == ["IBM", "AAPL", "MSFT"]
