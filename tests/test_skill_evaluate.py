"""`totowalk evaluate` (issue 29): the model and the baselines scored on the same held-out days, a
miscalibrated forecaster flagged, the summary's tests recomputed from its own per-day table."""

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from totowalk.cli import main
from totowalk.data import datasets
from totowalk.engine.forecast_engine import ForecastEngine
from totowalk.loading import resolve_model
from totowalk.scoring.proper import mixture_pit
from totowalk.scoring.significance import binomial_test, diebold_mariano, ks_uniform
from totowalk.skill.evaluate import engine_scores, evaluate, held_out_targets

pytest.importorskip("arch")
try:  # statsforecast pins pandas < 3: the suite may run without it
    import statsforecast  # noqa: F401

    AVAILABLE = ("random_walk", "garch_t", "ets")
except ImportError:
    AVAILABLE = ("random_walk", "garch_t")


@pytest.fixture(scope="module")
def engine():
    return ForecastEngine(resolve_model("toto-mini").model, estimator="exact")


@pytest.fixture(scope="module")
def ibm():
    return datasets.load("IBM", adjust="adj_close")


@pytest.fixture(scope="module")
def result(engine, ibm):
    return evaluate({"IBM": ibm}, engine_scores(engine), model_label="toto-mini", days=400, baselines=AVAILABLE)


def test_every_model_is_scored_on_the_same_days(result, ibm):
    scores = result.scores
    assert list(result.summary["model"]) == ["toto-mini", *AVAILABLE]
    days = {m: tuple(g["date"]) for m, g in scores.groupby("model")}
    assert len(set(days.values())) == 1 and len(next(iter(days.values()))) == 400
    returns = ibm["Close"].pct_change()
    toto = scores[scores["model"] == "toto-mini"]
    np.testing.assert_allclose(toto["actual"], returns.loc[toto["date"]].to_numpy(), rtol=1e-12)
    assert (scores["crps"] > 0).all() and scores["pit"].between(0, 1).all()


def test_the_summary_is_recomputed_from_the_per_day_table(result):
    scores, summary = result.scores, result.summary.set_index("model")
    toto = scores[scores["model"] == "toto-mini"]
    walk = scores[scores["model"] == "random_walk"]
    row = summary.loc["toto-mini"]
    assert row["crps"] == pytest.approx(toto["crps"].mean(), rel=1e-12)
    assert row["crps_skill"] == pytest.approx(1 - toto["crps"].mean() / walk["crps"].mean(), rel=1e-12)
    test = diebold_mariano(toto["crps"].to_numpy(), walk["crps"].to_numpy())
    assert row["dm_random_walk"] == test.statistic and row["dm_random_walk_p"] == test.p_value
    assert row["pit_ks_p"] == ks_uniform(toto["pit"].to_numpy()).p_value
    inside = toto["pit"].between(0.1, 0.9)
    assert row["coverage_80"] == pytest.approx(inside.mean(), rel=1e-12)
    right = int((np.sign(toto["point"]) == np.sign(toto["actual"]))[toto["actual"] != 0].sum())
    assert row["hit_rate_p"] == pytest.approx(binomial_test(right, int((toto["actual"] != 0).sum())), rel=1e-12)
    # the random walk calls no direction, and the baselines are not tested against themselves
    assert np.isnan(summary.loc["random_walk", "hit_rate"]) and np.isnan(summary.loc["garch_t", "dm_random_walk"])


def test_a_model_forecasts_each_day_from_the_days_before_it(engine, ibm):
    returns = ibm["Close"].pct_change().to_numpy()[1:]
    targets = held_out_targets(len(returns), 30, 250)
    scores = engine_scores(engine)
    first = scores(returns, targets)
    changed = returns.copy()
    changed[targets[15] :] *= 3.0  # the future of day 15 (and day 15 itself, which only its score sees)
    second = scores(changed, targets)
    np.testing.assert_array_equal(first["point"][:16], second["point"][:16])
    np.testing.assert_array_equal(first["crps"][:15], second["crps"][:15])
    assert not np.array_equal(first["crps"][15:], second["crps"][15:])


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_a_miscalibrated_forecaster_is_flagged_and_the_model_is_stated_as_measured(engine, ibm, factor):
    returns = ibm["Close"].pct_change().to_numpy()[1:]
    targets = held_out_targets(len(returns), None, 250)
    assert targets.size >= 2000
    result = engine.forecast_walk_forward([returns], [targets], prediction_length=1, estimator="exact")
    p = result.params
    args = [a[:, 0, 0].astype(np.float64) for a in (p.weights, p.df, p.loc, p.scale)]
    affine = [a[:, 0].astype(np.float64) for a in (p.scaler_loc, p.scaler_scale)]
    actual = returns[targets]
    honest = mixture_pit(*args, *affine, actual).numpy()
    args[3] = args[3] * factor  # every component's scale
    wrong = mixture_pit(*args, *affine, actual).numpy()
    coverage = {name: np.mean((pit >= 0.1) & (pit <= 0.9)) for name, pit in (("honest", honest), ("wrong", wrong))}
    assert ks_uniform(wrong).p_value < 1e-3
    assert abs(coverage["wrong"] - 0.8) > 0.10
    # the unmodified model: whatever it shows, stated as measured (the same computation as the summary)
    honest_row = evaluate(
        {"IBM": ibm},
        engine_scores(engine),
        model_label="toto-mini",
        days=targets.size,
        baselines=("random_walk",),
    ).summary.iloc[0]
    assert honest_row["coverage_80"] == pytest.approx(coverage["honest"], abs=1e-12)


def test_the_command_writes_three_outputs_and_resumes_from_its_parts(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ev"
    args = ["evaluate", "--dataset", "IBM", "--days", "60", "--baselines", "random_walk", "garch_t", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "toto-mini on IBM Close, horizon 1, 60 days: CRPS" in printed and "GARCH-t" in printed
    assert all(len(line) <= 100 for line in printed.splitlines() if not line.startswith("wrote"))
    table = pd.read_csv(out / "evaluation.csv")
    assert list(table["model"]) == ["toto-mini", "random_walk", "garch_t"]
    body = json.loads((out / "evaluation.json").read_text())
    assert body["settings"]["days"] == 60 and len(body["evaluation"]) == 3
    assert "plotly" in (out / "evaluation.html").read_text()[:10_000_000]
    # a second run refuses to mix with the parts there, and --resume reuses them without refitting
    assert main([*args, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err

    def refit(*_, **__):
        raise AssertionError("a stored part was computed again")

    monkeypatch.setattr("totowalk.skill.evaluate.forecast_baseline", refit)
    assert main([*args, "--out", str(out), "--resume"]) == 0
    again = pd.read_csv(out / "evaluation.csv")
    pd.testing.assert_frame_equal(again, table)


def test_command_errors_are_one_line(capsys):
    assert main(["evaluate", "--dataset", "IBM", "--baselines", "garch_t"]) == 2
    assert "must include random_walk" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "IBM", "--model", "kronos:somewhere"]) == 2
    assert "Kronos model 'somewhere' is neither a folder" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "IBM", "--min-history", "100000"]) == 2
    assert "fewer than --min-history" in capsys.readouterr().err


def test_a_symbol_too_short_stops_before_any_scoring_or_is_left_out_on_request(engine, ibm, tmp_path, capsys):
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return engine_scores(engine)(*args, **kwargs)

    frames = {"IBM": ibm.iloc[-300:], "NEW": ibm.iloc[-40:]}
    with pytest.raises(ValueError, match=r"symbol 'NEW' has 39 returns.*--insufficient-history skip"):
        evaluate(frames, counted, model_label="m", days=20, baselines=("random_walk",))
    assert not calls  # every symbol is checked before the first is scored
    skipped = evaluate(
        frames, counted, model_label="m", days=20, baselines=("random_walk",), insufficient_history="skip"
    )
    alone = evaluate({"IBM": frames["IBM"]}, counted, model_label="m", days=20, baselines=("random_walk",))
    pd.testing.assert_frame_equal(skipped.scores, alone.scores)
    assert skipped.settings == {"skipped": {"NEW": 39}} and alone.settings == {}
    with pytest.raises(ValueError, match=r"every symbol is too short; symbol 'A' has 29 returns"):
        evaluate({"A": ibm.iloc[-30:], "B": ibm.iloc[-20:]}, counted, model_label="m", insufficient_history="skip")
    data = tmp_path / "short.csv"
    pd.concat([f.assign(Ticker=s) for s, f in frames.items()]).rename_axis("Date").to_csv(data)
    args = ["evaluate", "--data", str(data), "--days", "20", "--baselines", "random_walk", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "symbol 'NEW' has 39 returns" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b"), "--insufficient-history", "skip"]) == 0
    assert "WARNING: left out 1 symbol(s) with too little history: NEW (39 returns)" in capsys.readouterr().out
    settings = json.loads((tmp_path / "b" / "evaluation.json").read_text())["settings"]
    assert settings["symbols"] == ["IBM"] and settings["skipped"] == {"NEW": 39}


def test_symbols_whose_file_names_would_collide_keep_their_own_parts(engine, ibm, tmp_path):
    frames = {"BTC/USD": ibm.iloc[-300:], "BTC_USD": ibm.iloc[-600:-300]}  # their journal files differ
    both = evaluate(
        frames, engine_scores(engine), model_label="m", days=20, baselines=("random_walk",), journal=tmp_path
    )
    for symbol, frame in frames.items():
        alone = evaluate({symbol: frame}, engine_scores(engine), model_label="m", days=20, baselines=("random_walk",))
        mine = both.scores[both.scores["symbol"] == symbol].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone.scores)
    assert len(list(tmp_path.glob("*.csv"))) == 4


def test_longer_horizons_forecast_from_further_back(engine, ibm):
    returns = ibm["Close"].pct_change().to_numpy()[1:]
    targets = held_out_targets(len(returns), 20, 300)
    scores = engine_scores(engine)
    three = scores(returns, targets, 3)
    changed = returns.copy()
    changed[targets[10] - 2 :] *= 3.0  # the context of target 10 at horizon 3 ends two days before it
    again = scores(changed, targets, 3)
    np.testing.assert_array_equal(three["point"][:11], again["point"][:11])
    assert not np.array_equal(three["point"][11:], again["point"][11:])
    # the third step of a forecast from the context ending two days earlier, as a plain forecast gives it
    plain = engine.forecast([returns[: t - 2] for t in targets[:3]], prediction_length=3, aggregate=("mean",))
    np.testing.assert_allclose(three["point"][:3], plain["mean"][:, 2], rtol=1e-5)


def test_baselines_at_a_horizon_use_the_context_before_it(ibm):
    from totowalk.skill.baselines import forecast_baseline

    returns = ibm["Close"].pct_change().to_numpy()[1:]
    targets = np.arange(400, 440)
    walk = forecast_baseline("random_walk", returns, targets, horizon=4)
    np.testing.assert_array_equal(walk.samples, forecast_baseline("random_walk", returns, targets - 3).samples)
    one = forecast_baseline("garch_t", returns, targets - 3)
    four = forecast_baseline("garch_t", returns, targets, horizon=4)
    assert (four.df == one.df).all() and (four.loc == one.loc).all()
    # the variance relaxes towards its long-run level omega / (1 - alpha - beta): the spread shrinks or grows towards it
    assert not np.allclose(four.scale, one.scale)


def test_the_command_scores_every_horizon_on_the_same_days(tmp_path, capsys):
    out = tmp_path / "ev"
    argv = ["evaluate", "--dataset", "IBM", "--days", "40", "--horizons", "1", "4", "--baselines", "random_walk"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    scores = pd.read_csv(out / "scores.csv")
    days = {h: tuple(g["date"]) for h, g in scores.groupby("horizon")}
    assert sorted(days) == [1, 4] and days[1] == days[4]
    assert "horizon 4, 40 days" in capsys.readouterr().out
    assert main(["evaluate", "--dataset", "IBM", "--horizons", "65", "--out", str(tmp_path / "x")]) == 2
    assert "at most 64" in capsys.readouterr().err


def test_kronos_is_scored_on_its_sampled_paths(tmp_path, ibm, capsys):
    from totowalk.kronos import KronosEngine, load_kronos, random_kronos
    from totowalk.kronos.frames import kronos_input_from_frame
    from totowalk.scoring.proper import sample_crps
    from totowalk.skill.evaluate import kronos_scores

    folder = random_kronos(tmp_path / "k", seed=1)
    model, tokenizer = load_kronos(folder)
    engine = KronosEngine(model, tokenizer, sample_count=16, max_context=40)
    frame = ibm.iloc[-120:]
    close = frame["Close"].to_numpy()
    returns = close[1:] / close[:-1] - 1.0
    targets = np.arange(100, 104)
    found = kronos_scores(engine)(returns, targets, 2, frame=frame, key="Close")
    # target t at horizon 2: the paths after rows 0..t-1, the change from their first to their second row
    item = kronos_input_from_frame(frame.iloc[: targets[0]], lookback=40, pred_len=2)
    paths = engine.forecast([item], pred_len=2, return_paths=True).paths[0][:, :, 3].astype(np.float64)
    draws = (paths[:, 1] - paths[:, 0]) / paths[:, 0]  # in float64, from the float32 paths
    assert found["crps"][0] == pytest.approx(sample_crps(draws[None], returns[targets[:1]])[0], rel=1e-12)
    assert found["point"][0] == pytest.approx(draws.mean(), rel=1e-12) and np.isnan(found["log_score"]).all()
    # the command takes kronos:DIR
    argv = ["evaluate", "--dataset", "IBM", "--start", "2012-06-01", "--days", "5", "--min-history", "60"]
    assert (
        main(
            [
                *argv,
                "--baselines",
                "random_walk",
                "--model",
                f"kronos:{folder}",
                "--out",
                str(tmp_path / "e"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert f"kronos:{folder}" in pd.read_csv(tmp_path / "e" / "evaluation.csv")["model"].iloc[0]


def test_by_default_every_installed_baseline_is_fitted_and_a_missing_one_named(tmp_path, capsys, monkeypatch):
    from totowalk.skill import baselines

    real, hidden = importlib.util.find_spec, {"arch", "statsforecast"}  # as on an install without the extra
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    assert baselines.installed_baselines() == ("random_walk",)
    out = tmp_path / "ev"
    assert main(["evaluate", "--dataset", "IBM", "--days", "30", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "note: skipping garch_t (needs arch), ets (needs statsforecast): pip install 'totowalk[baselines]'" in printed
    )
    assert list(pd.read_csv(out / "evaluation.csv")["model"]) == ["toto-mini", "random_walk"]


def test_the_tables_are_written_as_pandas_writes_them(result):
    """scores.csv and evaluation.csv go through the compiled CSV writer where it is built: pandas' bytes."""
    from totowalk.backtest.report.csv_text import _compiled_text, csv_text

    for table in (result.scores, result.summary):
        assert csv_text(table, header=True) == table.to_csv(index=False).encode()
    if _compiled_text(result.scores, True, frozenset()) is None:
        pytest.skip("the compiled CSV writer is not built here")


def test_the_list_options_add_up_when_repeated(tmp_path, capsys):
    out = tmp_path / "ev"
    args = ["evaluate", "--dataset", "IBM", "--days", "20", "--no-progress", "--out", str(out)]
    repeated = ["--keys", "Close", "--keys", "High", "Close", "--baselines", "random_walk", "--baselines", "garch_t"]
    assert main([*args, *repeated, "--horizons", "1", "--horizons", "2"]) == 0
    table = pd.read_csv(out / "evaluation.csv")
    assert list(dict.fromkeys(table["key"])) == ["Close", "High"] and set(table["horizon"]) == {1, 2}
    assert list(dict.fromkeys(table["model"])) == ["toto-mini", "random_walk", "garch_t"]
    assert "shorter than a day" not in capsys.readouterr().out  # daily bars: days are days


def test_intraday_bars_are_named_as_the_unit_of_the_days_counted(tmp_path, capsys):
    hours = pd.date_range("2024-01-01", periods=320, freq="h")
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, len(hours))))
    frame = pd.DataFrame({"Date": hours, "Open": close, "High": close * 1.01, "Low": close * 0.99, "Close": close})
    frame.to_csv(tmp_path / "H.csv", index=False)
    args = ["evaluate", "--data", str(tmp_path / "H.csv"), "--days", "20", "--baselines", "random_walk"]
    assert main([*args, "--no-progress", "--out", str(tmp_path / "ev")]) == 0
    assert capsys.readouterr().out.startswith('note: H has bars shorter than a day: a "day" below is one bar\n')
