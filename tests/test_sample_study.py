"""`totowalk samples` / sample_study(): the sample-count study against the exact estimator."""

import json

import numpy as np
import pandas as pd
import pytest

import totowalk as tw
from totowalk.backtest.report.text import mae_by_key, strategy_table
from totowalk.cli import build_parser, main
from totowalk.quality.samples import DEFAULT_GRID, sample_study

RANDOM = ["--model", "random:toto-tiny", "--allow-random-weights"]
SLICE = ["--dataset", "IBM", "--end", "2000-09-30", "--sims", "3", "--no-progress"]


@pytest.fixture(scope="module")
def model():
    return tw.build_model(tw.TotoConfig.preset("toto-tiny"), seed=0)


@pytest.fixture(scope="module")
def prices():
    return {s: tw.datasets.load(s).loc[:"2000-12-31"] for s in ("IBM", "MSFT")}


@pytest.fixture(scope="module")
def study(model, prices):
    return sample_study(
        prices, tw.ForecastEngine(model), grid=(16, 64), seeds=(0, 3), num_simulations=4, profile="legacy"
    )


def test_command_writes_table_csv_json_and_png(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["samples", *SLICE, *RANDOM, "--grid", "16,64", "--seeds", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sample-count study: IBM" in text and "flip_rate" in text and "sd, S=64" in text
    table = pd.read_csv(out / "samples.csv")
    assert list(table["num_samples"]) == [16, 64] and list(table["seeds"]) == [2, 2]
    assert table["flip_rate"].between(0.0, 1.0).all()
    assert (table["abs_error_std"] > 0).all() and np.isfinite(table["mae"]).all()
    body = json.loads((out / "samples.json").read_text())
    assert body["settings"]["seeds"] == [0, 1] and body["settings"]["grid"] == [16, 64]
    assert len(body["per_seed"]) == 4 and body["model"]["random_weights"] is True
    assert set(body["exact"]["returns"]) == {c[: -len("_return_sd")] for c in table if c.endswith("_return_sd")}
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_flags_parsed_and_checked(capsys):
    args = build_parser().parse_args(["samples", "--dataset", "IBM"])
    assert args.grid == list(DEFAULT_GRID) == [32, 64, 128, 256, 512, 1024, 2048, 4096]
    assert (args.seeds, args.seed, args.aggregate, args.profile, args.sims) == (5, 0, "trimmed_mean_10", "clean", 10)
    args = build_parser().parse_args(
        [
            "samples",
            "--data",
            "x.csv",
            "--symbol",
            "A",
            "--symbol",
            "B",
            "--grid",
            "32,128",
            "--seeds",
            "3",
            "--seed",
            "7",
            "--profile",
            "clean",
            "--aggregate",
            "median",
            "--precision",
            "fp16",
            "--sims",
            "5",
            "--out",
            "d",
        ]
    )
    assert (args.data, args.symbol, args.grid, args.seeds, args.seed) == ("x.csv", ["A", "B"], [32, 128], 3, 7)
    assert (args.profile, args.aggregate, args.precision, args.sims, args.out) == ("clean", "median", "fp16", 5, "d")
    for bad, option in (
        (["--grid", "1,8"], "--grid"),
        (["--grid", "a"], "--grid"),
        (["--seeds", "0"], "--seeds"),
        (["--aggregate", "nonsense"], "--aggregate"),
    ):
        assert main(["samples", "--dataset", "IBM", *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and option in err and err.count("\n") == 1


def test_each_run_is_the_sampled_engines_backtest(model, prices, study):
    """The cached mixtures are drawn with the engine's stream keys: each (S, seed) row is exactly the
    backtest a ForecastEngine with that S and seed gives, and the reference is the exact backtest."""
    exact = tw.backtest(prices, engine=tw.ForecastEngine(model, estimator="exact"), num_simulations=4, profile="legacy")
    assert study.exact["mae"] == pytest.approx(float(mae_by_key(exact).mean()), rel=1e-12)
    unique = ["symbol", "key", "context_end"]
    reference = exact.forecasts.drop_duplicates(unique).set_index(unique)["prediction"]
    assert study.exact["contexts"] == len(reference)
    for num_samples, seed in ((16, 3), (64, 0)):
        bt = tw.backtest(
            prices,
            engine=tw.ForecastEngine(model, num_samples=num_samples, seed=seed),
            num_simulations=4,
            profile="legacy",
        )
        row = study.per_seed.set_index(["num_samples", "seed"]).loc[(num_samples, seed)]
        assert row["mae"] == pytest.approx(float(mae_by_key(bt).mean()), rel=1e-12)
        for name, value in strategy_table(bt)["mean_return"].items():
            assert row[f"{name}_return"] == pytest.approx(value, rel=1e-12, abs=1e-15)
        sampled = bt.forecasts.drop_duplicates(unique).set_index(unique)["prediction"].reindex(reference.index)
        assert row["flip_rate"] == pytest.approx(float(np.mean(np.sign(sampled) != np.sign(reference))))


def test_table_summarises_the_seeds(study):
    table = study.table.set_index("num_samples")
    assert list(table.index) == [16, 64] and (table["seeds"] == 2).all()
    for num_samples, part in study.per_seed.groupby("num_samples"):
        assert table.loc[num_samples, "flip_rate"] == pytest.approx(part["flip_rate"].mean())
        assert table.loc[num_samples, "maxdiff_return_sd"] == pytest.approx(part["maxdiff_return"].std(ddof=1))
    assert table["flip_rate"].between(0.0, 1.0).all()
    assert (table["buy_hold_return_sd"] == 0).all()  # buy & hold reads no forecast


def test_error_shrinks_as_one_over_sqrt_s_over_many_contexts(model, prices):
    """~250 contexts x 2 seeds: 64x the samples must cut the mean |error| by far more than 3x
    (1/sqrt(S) predicts 8x), and fewer signal signs flip."""
    result = sample_study(prices, tw.ForecastEngine(model), grid=(4, 256), seeds=2, num_simulations=25)
    assert result.exact["contexts"] > 200
    table = result.table.set_index("num_samples")
    assert table.loc[256, "abs_error_std"] < table.loc[4, "abs_error_std"] / 3
    assert 0.0 <= table.loc[256, "flip_rate"] < table.loc[4, "flip_rate"] <= 1.0


def test_grid_and_seeds_are_checked(model, prices):
    engine = tw.ForecastEngine(model)
    with pytest.raises(ValueError, match="sample counts must be >= 2"):
        sample_study(prices, engine, grid=(1, 8), seeds=1)
    with pytest.raises(ValueError, match="at least one seed"):
        sample_study(prices, engine, grid=(8,), seeds=())


def test_a_symbol_too_short_is_left_out_of_the_study_on_request(tmp_path, capsys):
    data = tmp_path / "panel.csv"
    frames = {"IBM": tw.datasets.load("IBM").loc[:"2000-09-30"], "NEW": tw.datasets.load("MSFT").iloc[:8]}
    pd.concat([f.assign(Ticker=s) for s, f in frames.items()]).rename_axis("Date").to_csv(data)
    args = ["samples", "--data", str(data), "--sims", "3", "--no-progress", *RANDOM, "--grid", "16", "--seeds", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "--insufficient-history skip" in capsys.readouterr().err  # the option this command has
    assert main([*args, "--out", str(tmp_path / "b"), "--insufficient-history", "skip"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("WARNING: left out 1 symbol with too little history") and "NEW (8 rows)" in out
    settings = json.loads((tmp_path / "b" / "samples.json").read_text())["settings"]
    assert settings["symbols"] == ["IBM"] and settings["skipped"] == {"NEW": 8}
