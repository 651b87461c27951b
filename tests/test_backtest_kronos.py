"""Kronos in the backtest: the legacy kronos_expected_move_pct column (KRONOS_SEMANTICS §1, §5),
the input frame (§3), the step returns, the report line, the fingerprint and the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import mean5, prices

import totowalk as tw
from totowalk.backtest.report.text import format_report
from totowalk.data import PriceDataError
from totowalk.errors import CheckpointError
from totowalk.kronos import KronosEngine, load_kronos, random_kronos
from totowalk.kronos.frames import kronos_input_from_frame, kronos_step_returns

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def kronos_folder(tmp_path_factory) -> Path:
    return random_kronos(tmp_path_factory.mktemp("kronos") / "k", seed=1)


@pytest.fixture(scope="module")
def engine(kronos_folder):
    model, tok = load_kronos(kronos_folder)
    return KronosEngine(model, tok, sample_count=8, max_context=40)


def test_input_frame_follows_the_classic_construction():
    frame = prices(60, 3).drop(columns=["Volume"], errors="ignore")
    frame.loc[frame.index[30], "High"] = np.inf  # an infinity is a gap, filled forward (window row 20)
    dup = pd.concat([frame.iloc[:5], frame.iloc[4:5] * 2, frame.iloc[5:]])  # a repeated date: the last row wins
    item = kronos_input_from_frame(dup, lookback=50, pred_len=7, symbol="A")
    assert item.x.shape == (50, 6) and item.x.dtype == np.float32
    np.testing.assert_array_equal(item.x[:, 4], 0.0)  # no volume: 0, and amount = volume x close = 0
    np.testing.assert_allclose(item.x[:, 3], frame["Close"].to_numpy()[-50:].astype(np.float32))
    assert item.x[20, 1] == item.x[19, 1] and np.isfinite(item.x).all()
    last = frame.index[-1]
    assert item.x_stamp[-1].tolist() == [0, 0, last.weekday(), last.day, last.month]
    spacing = pd.Series(frame.index[-50:]).diff().median()
    first_future = last + spacing
    assert item.y_stamp[0].tolist() == [0, 0, first_future.weekday(), first_future.day, first_future.month]


def test_input_frame_errors_name_symbol_and_column():
    frame = prices(30, 4)
    with pytest.raises(PriceDataError, match="symbol 'A', column 'Close'"):
        kronos_input_from_frame(frame.drop(columns=["Close"]), symbol="A")
    with pytest.raises(PriceDataError, match="at least 2 rows"):
        kronos_input_from_frame(frame.iloc[:1], symbol="A")
    bad = frame.copy()
    bad["Open"] = np.nan
    with pytest.raises(PriceDataError, match="column 'Open'"):
        kronos_input_from_frame(bad, symbol="A")


def test_step_returns():
    r = kronos_step_returns(np.array([101.0, 0.0, 5.0]), 100.0)
    np.testing.assert_allclose(r, [0.01, -1.0, 0.0])  # r_3's previous value is 0: 0


def test_the_legacy_column_is_kronos_r7_of_each_simulations_frame(engine):
    data = {"A": prices(80, 5)}
    result = tw.backtest(data, num_simulations=3, forecaster=mean5, profile="legacy", kronos=engine)
    column = result.simulations["kronos_expected_move_pct"].to_numpy()
    assert np.all(column != 0.0)
    frame = data["A"]
    # simulation 0's frame is every row but the data's last (LEGACY_SEMANTICS §1.2); Kronos sees all of
    # it, its newest row included (the Toto path drops that one)
    item = kronos_input_from_frame(frame.iloc[:-1], lookback=40, pred_len=7, symbol="A")
    mean = engine.forecast([item], pred_len=7).mean[0][:, 3]
    assert column[0] == pytest.approx(kronos_step_returns(mean, item.x[-1, 3])[-1], rel=1e-12)
    assert "kronos: in-memory model" in format_report(result)
    assert "kronos" in result.timings
    plain = tw.backtest(data, num_simulations=3, forecaster=mean5, profile="legacy")
    assert (plain.simulations["kronos_expected_move_pct"] == 0.0).all()
    assert "kronos: not run" in format_report(plain)
    pd.testing.assert_series_equal(
        plain.simulations["simple_strategy_return"], result.simulations["simple_strategy_return"]
    )


def test_a_kronos_folder_is_loaded_and_fingerprinted(kronos_folder, tmp_path):
    data = {"A": prices(70, 6)}
    run = tw.backtest(
        data, num_simulations=2, forecaster=mean5, profile="legacy", kronos=str(kronos_folder), out_dir=tmp_path / "run"
    )
    info = run.settings["kronos"]
    assert info["spec"] == str(kronos_folder) and info["sample_count"] == 192 and len(info["weights_sha256"]) == 64
    again = tw.backtest(
        data,
        num_simulations=2,
        forecaster=mean5,
        profile="legacy",
        kronos=str(kronos_folder),
        out_dir=tmp_path / "run",
        resume=True,
    )
    pd.testing.assert_frame_equal(run.simulations, again.simulations)
    other = random_kronos(tmp_path / "other", seed=2)
    with pytest.raises(Exception, match="kronos"):  # another Kronos: the stored run refuses to resume
        tw.backtest(
            data,
            num_simulations=2,
            forecaster=mean5,
            profile="legacy",
            kronos=str(other),
            out_dir=tmp_path / "run",
            resume=True,
        )


def test_kronos_errors(engine, tmp_path):
    data = {"A": prices(70, 6)}
    with pytest.raises(ValueError, match="legacy profile"):
        tw.backtest(data, num_simulations=2, forecaster=mean5, profile="clean", kronos=engine)
    with pytest.raises(ValueError, match="neither a folder"):
        tw.backtest(data, num_simulations=2, forecaster=mean5, profile="legacy", kronos=str(tmp_path / "missing"))


def test_cli_kronos_flag(kronos_folder, tmp_path, capsys):
    from totowalk.cli import main

    code = main(
        [
            "backtest",
            "--dataset",
            "IBM",
            "--sims",
            "2",
            "--samples",
            "8",
            "--no-progress",
            "--profile",
            "legacy",
            "--kronos",
            str(kronos_folder),
            "--start",
            "2012-06-01",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and f"kronos: {kronos_folder}" in out
    table = pd.read_csv(tmp_path / "run" / "simulations.csv")
    assert (table["kronos_expected_move_pct"] != 0).all()
    assert main(["backtest", "--dataset", "IBM", "--sims", "2", "--kronos-tokenizer", str(kronos_folder)]) == 2
    assert "--kronos-tokenizer needs --kronos" in capsys.readouterr().err


def test_kronos_as_the_legacy_forecaster_reproduces_the_classic_misalignment(engine):
    data = {"A": prices(80, 7)}
    result = tw.backtest(data, num_simulations=2, kronos=engine, profile="legacy")
    assert any("misalignment" in w for w in result.warnings) and result.settings["forecaster"]["kind"] == "kronos"
    item = kronos_input_from_frame(data["A"].iloc[:-1], lookback=40, pred_len=7, symbol="A")  # simulation 0's frame
    mean = engine.forecast([item], pred_len=7).mean[0]
    got = result.forecasts[(result.forecasts["simulation"] == 0) & (result.forecasts["key"] == "High")]
    want = kronos_step_returns(mean[:, 1], item.x[-1, 1]).astype(np.float32)
    np.testing.assert_array_equal(got.sort_values("step")["prediction"].to_numpy(np.float32), want)
    close = result.simulations["kronos_expected_move_pct"].to_numpy()
    np.testing.assert_allclose(close[0], np.float32(kronos_step_returns(mean[:, 3], item.x[-1, 3])[-1]), rtol=1e-6)


def test_kronos_as_the_clean_forecaster_walks_forward_without_look_ahead(engine):
    data = {"A": prices(80, 8)}
    result = tw.backtest(data, num_simulations=2, kronos=engine, profile="clean")
    assert not any("misalignment" in w for w in result.warnings)
    f = result.forecasts
    row = f[(f["simulation"] == 1) & (f["key"] == "Close")].sort_values("step").iloc[3]
    end = int(row["context_end"])
    item = kronos_input_from_frame(data["A"].iloc[: end + 1], lookback=40, pred_len=1, symbol="A")
    mean = engine.forecast([item], pred_len=1).mean[0]
    assert row["prediction"] == np.float32(kronos_step_returns(mean[:, 3], item.x[-1, 3])[0])
    # changing rows after a context's end changes none of the forecasts made from it
    later = data["A"].copy()
    later.iloc[end + 1 :, :4] *= 1.5
    moved = tw.backtest({"A": later}, num_simulations=2, kronos=engine, profile="clean").forecasts
    same = (f["context_end"] <= end).to_numpy()
    np.testing.assert_array_equal(moved["prediction"].to_numpy()[same], f["prediction"].to_numpy()[same])


def test_kronos_clean_forecasts_are_scored_as_their_sampled_paths(engine):
    from totowalk.scoring.proper import sample_crps, sample_pit

    data = {"A": prices(80, 9), "B": prices(70, 10)}
    result = tw.backtest(data, num_simulations=3, kronos=engine, profile="clean")
    f = result.forecasts
    # every forecast whose outcome the data holds is scored, the newest one (no outcome yet) is not
    known = f["target_date"].notna().to_numpy()
    assert np.isfinite(f["crps"].to_numpy()[known]).all() and np.isnan(f["crps"].to_numpy()[~known]).all()
    row = f[(f["symbol"] == "B") & (f["simulation"] == 2) & (f["key"] == "Low")].sort_values("step").iloc[2]
    end = int(row["context_end"])
    item = kronos_input_from_frame(data["B"].iloc[: end + 1], lookback=40, pred_len=1, symbol="B")
    paths = engine.forecast([item], pred_len=1, return_paths=True).paths[0][:, 0, 2].astype(np.float64)  # alone: same
    last = float(np.float32(item.x[-1, 2]))
    draws = ((paths - last) / last)[None, :]
    low = data["B"]["Low"].to_numpy()
    outcome = (low[end + 1] - low[end]) / low[end]  # the change the run's actuals hold (§2.1)
    assert row["actual"] == outcome and np.mean(draws) == pytest.approx(row["prediction"], rel=1e-5)
    assert row["crps"] == sample_crps(draws, [outcome])[0] and row["pit"] == sample_pit(draws, [outcome])[0]
    calibration = result.calibration
    assert calibration["available"] and calibration["estimator"] == "sampled paths"
    assert calibration["paths"] == 8 and calibration["overall"]["forecasts"] == 2 * 4 * (3 + 6 - 1)
    assert "calibration (PIT and CRPS of the empirical distribution of 8 sampled paths at seed 0)" in format_report(
        result
    )
    unscored = tw.backtest(data, num_simulations=3, kronos=engine, profile="clean", calibration=False)
    assert unscored.forecasts["crps"].isna().all() and not unscored.calibration["available"]
    pd.testing.assert_series_equal(unscored.forecasts["prediction"], f["prediction"])  # scoring changes nothing
    legacy = tw.backtest(data, num_simulations=3, kronos=engine, profile="legacy").calibration
    assert not legacy["available"] and "scored in the clean profile" in legacy["reason"]


def test_a_kronos_backtest_and_its_evaluation_score_the_same_forecasts_alike(engine):
    from totowalk.skill.evaluate import kronos_scores

    frame = tw.load_prices(prices(80, 11), symbol="A")
    f = tw.backtest({"A": frame}, num_simulations=4, kronos=engine, profile="clean").forecasts
    close = f[(f["key"] == "Close") & f["crps"].notna()].drop_duplicates("context_end").sort_values("context_end")
    ends = close["context_end"].to_numpy()
    prices_ = frame["Close"].to_numpy()
    returns = (prices_[1:] - prices_[:-1]) / prices_[:-1]  # returns[t]: the change into row t + 1
    found = kronos_scores(engine)(returns, ends, 1, frame=frame, key="Close")  # context rows 0..t
    np.testing.assert_array_equal(found["crps"], close["crps"].to_numpy())
    np.testing.assert_array_equal(found["pit"], close["pit"].to_numpy())


def test_cli_model_kronos(kronos_folder, tmp_path, capsys):
    from totowalk.cli import main

    code = main(
        [
            "backtest",
            "--dataset",
            "IBM",
            "--sims",
            "2",
            "--no-progress",
            "--profile",
            "clean",
            "--model",
            f"kronos:{kronos_folder}",
            "--start",
            "2013-01-01",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "forecaster: Kronos, every key" in out
    assert (
        main(
            [
                "backtest",
                "--dataset",
                "IBM",
                "--sims",
                "2",
                "--model",
                f"kronos:{kronos_folder}",
                "--kronos",
                str(kronos_folder),
            ]
        )
        == 2
    )
    assert "drop --kronos" in capsys.readouterr().err


def test_cli_model_kronos_runs_at_the_precision_asked_and_refuses_int8(kronos_folder, tmp_path, capsys):
    import json

    from totowalk.cli import main

    base = ["backtest", "--dataset", "IBM", "--sims", "2", "--no-progress", "--model", f"kronos:{kronos_folder}"]
    base += ["--start", "2013-01-01", "--device", "cpu"]
    folders = {}
    for precision in ("fp32", "bf16"):
        folders[precision] = tmp_path / precision
        assert main([*base, "--precision", precision, "--out", str(folders[precision])]) == 0
    summaries = {k: json.loads((f / "summary.json").read_text()) for k, f in folders.items()}
    assert summaries["bf16"]["model"]["precision"] == "bf16"
    assert summaries["bf16"]["settings"]["forecaster"]["precision"] == "bf16"
    assert capsys.readouterr().out.count("seed 0, bf16") == 1  # the bf16 run's report names it
    assert "precision" not in summaries["fp32"]["settings"]["forecaster"]  # an fp32 run's fingerprint as before
    rows = {k: pd.read_csv(f / "forecasts.csv") for k, f in folders.items()}
    assert not np.array_equal(rows["bf16"]["prediction"], rows["fp32"]["prediction"])  # it was used
    assert main([*base, "--precision", "int8"]) == 2
    assert "Kronos runs at fp32, bf16, fp16; got precision 'int8'" in capsys.readouterr().err


def test_a_toto_folder_given_as_kronos_is_named_as_such(tmp_path, capsys, monkeypatch):
    from totowalk.cli import main
    from totowalk.model.checkpoint import WEIGHTS_DIR

    argv = ["backtest", "--dataset", "IBM", "--sims", "2", "--profile", "legacy", "--no-progress"]
    assert main([*argv, "--kronos", str(WEIGHTS_DIR / "toto-mini")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "is not a Kronos checkpoint" in err and err.count("\n") == 1
    # a model folder without its tokenizer, and no tokenizer in the Hugging Face cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    model_only = random_kronos(tmp_path / "k", seed=3) / "model"
    with pytest.raises(CheckpointError, match="--kronos-tokenizer DIR"):
        load_kronos(model_only)
