"""Every backtest says whether its signal was calibrated: exact PIT and CRPS per forecast, a block per key."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.inputs.windows import percent_changes
from totowalk.backtest.report.files import write_outputs
from totowalk.backtest.report.text import TERMINAL_WIDTH, calibration_lines, format_report
from totowalk.engine import ForecastEngine
from totowalk.loading import resolve_model
from totowalk.scoring.proper import COVERAGE_LEVELS, covered
from totowalk.scoring.significance import coverage_test, ks_uniform

DATA = {"AAA": prices(160, 21), "BBB": prices(150, 22)}


@pytest.fixture(scope="module")
def exact_engine():
    return ForecastEngine(resolve_model("toto-mini").model, estimator="exact")


@pytest.fixture(scope="module")
def exact_run(exact_engine):
    return backtest(DATA, num_simulations=12, engine=exact_engine, profile="clean")


def test_pit_and_crps_equal_the_engines_scores_of_the_same_contexts(exact_run, exact_engine):
    f = exact_run.forecasts
    hidden = f[f["actual"].isna() & f["target_date"].notna()]  # step 6: past its window, inside the data
    rows = pd.concat([f[f["actual"].notna()].iloc[[0, 57, 400]], hidden.iloc[[0]]])
    for _, row in rows.iterrows():
        pct = percent_changes(DATA[row["symbol"]][row["key"]].to_numpy())
        end = int(row["context_end"])
        context = pct[1 : end + 1].astype(np.float32)  # pct_1 … pct_ℓ, as the plan hands them over
        found = exact_engine.forecast([context], prediction_length=1).scores([[pct[end + 1]]])
        assert row["pit"] == pytest.approx(found["pit"][0, 0], rel=1e-6, abs=1e-9)
        assert row["crps"] == pytest.approx(found["crps"][0, 0], rel=1e-6)
        if np.isfinite(row["actual"]):
            assert row["actual"] == pct[end + 1]


def test_scores_are_nan_exactly_where_the_outcome_lies_past_the_data(exact_run):
    f = exact_run.forecasts
    past = f["target_date"].isna()
    assert past.sum() == 2 * 4  # simulation 0's last step of each symbol and key
    assert f.loc[past, ["pit", "crps"]].isna().all().all()
    assert f.loc[~past, ["pit", "crps"]].notna().all().all()
    assert ((f["pit"] > 0) & (f["pit"] < 1)).sum() == (~past).sum() and (f.loc[~past, "crps"] > 0).all()
    # one forecast, the same scores in every simulation's row that holds it
    assert (f[~past].groupby(["symbol", "key", "context_end"])[["pit", "crps"]].nunique() == 1).all().all()


def test_the_block_is_recomputed_from_forecasts_csv(exact_run, tmp_path):
    write_outputs(exact_run, tmp_path)
    saved = pd.read_csv(tmp_path / "forecasts.csv", float_precision="round_trip")
    calibration = json.loads((tmp_path / "summary.json").read_text())["calibration"]
    assert calibration == json.loads(json.dumps(exact_run.calibration))
    distinct = saved[saved["pit"].notna()].drop_duplicates(["symbol", "key", "context_end"])
    assert len(distinct) == 4 * 2 * (12 + 5)  # per symbol and key: K + 6 contexts, one past the data
    for name, rows in [*distinct.groupby("key", sort=False), ("(all)", distinct)]:
        block = calibration["overall"] if name == "(all)" else calibration["keys"][name]
        pit = rows["pit"].to_numpy()
        assert block["forecasts"] == len(rows) and block["days"] == rows["target_date"].nunique()
        assert block["mean_crps"] == pytest.approx(rows["crps"].mean(), rel=1e-12)
        for level in COVERAGE_LEVELS:
            hits = covered(pit, level)
            assert block[f"coverage_{round(100 * level)}"] == pytest.approx(hits.mean(), rel=1e-12)
            assert block[f"coverage_{round(100 * level)}_p"] == pytest.approx(coverage_test(hits, level), rel=1e-9)
        ks = ks_uniform(pit)
        assert (block["pit_ks"], block["pit_ks_p"]) == pytest.approx((ks.statistic, ks.p_value), rel=1e-9)
    page = (tmp_path / "report.html").read_text()
    assert "Calibration of the forecasts" in page and 'data-stat="pit_ks"' in page and "PIT KS: " in page


def test_the_block_kept_chunk_by_chunk_equals_the_one_from_the_whole_forecasts_table(exact_run):
    # a run keeps only the distinct scored rows' key, date, PIT and CRPS of each chunk; the block made
    # from them is the one made from the whole table, bit for bit
    from totowalk.backtest.stats.calibration import calibration_summary

    whole = calibration_summary(exact_run.forecasts, exact_run.settings["forecaster"])
    assert whole == exact_run.calibration


def test_the_terminal_block_follows_the_mae_line_and_fits_100_columns(exact_run):
    text = format_report(exact_run).splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("MAE per key"))
    block = calibration_lines(exact_run.calibration)
    assert text[start + 1 : start + 1 + len(block)] == block
    assert block[0].startswith("calibration (exact") and "each counted once" in " ".join(block)
    assert [line.split()[0] for line in block[4:9]] == ["Close", "Low", "High", "Open", "all"]
    huge = json.loads(json.dumps(exact_run.calibration))
    for b in [*huge["keys"].values(), huge["overall"]]:  # wide numbers: the widest cells a run prints
        b.update(forecasts=12_345_678, days=1_234_567, mean_crps=1234.5, coverage_50=1.0, coverage_50_p=1e-9)
    for lines in (block, calibration_lines(huge)):
        assert max(len(line) for line in lines) <= TERMINAL_WIDTH


def trend(calm: int, up: int, seed: int = 0) -> pd.DataFrame:
    """A random walk that turns into a steady 2 % rise a day: a change no centred forecast expects."""
    rng = np.random.default_rng(seed)
    r = np.r_[rng.normal(0, 0.01, calm), 0.02 + rng.normal(0, 0.001, up)]
    close = 50 * np.exp(np.cumsum(r))
    open_ = close * np.exp(rng.normal(0, 0.0005, len(r)))
    return pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close) * 1.001,
            "Low": np.minimum(open_, close) * 0.999,
            "Close": close,
        },
        index=pd.date_range("2021-01-04", periods=len(r), freq="B"),
    )


def test_a_forecast_that_misses_a_regime_change_is_called_miscalibrated(exact_engine):
    result = backtest(trend(150, 30), symbol="W", num_simulations=20, engine=exact_engine)
    for block in [*result.calibration["keys"].values(), result.calibration["overall"]]:
        assert block["coverage_80"] < 0.5 and block["pit_ks_p"] < 0.01 and block["miscalibrated"]
    assert calibration_lines(result.calibration)[-1].startswith(
        "PIT KS: Close, Low, High, Open and all keys miscalibrated at the 1 % level"
    )


@pytest.mark.parametrize(
    "how, reason",
    [
        ("sampled", "the sampled estimator gives no predictive distribution"),
        ("function", "the forecaster gives no predictive distribution"),
    ],
)
def test_without_a_mixture_the_block_says_so_and_the_columns_are_nan(how, reason, tmp_path):
    if how == "sampled":
        engine = ForecastEngine(resolve_model("toto-mini").model, num_samples=16)
        result = backtest(DATA["AAA"], symbol="AAA", num_simulations=3, engine=engine, profile="legacy")
    else:
        result = backtest(DATA["AAA"], symbol="AAA", num_simulations=3, forecaster=mean5)
    assert result.forecasts[["pit", "crps"]].isna().all().all()
    assert result.calibration == {"available": False, "reason": reason}
    assert f"calibration: not available: {reason}" in format_report(result).splitlines()
    write_outputs(result, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["calibration"]["available"] is False
    assert f"Not available: {reason}." in (tmp_path / "report.html").read_text()


def test_calibration_can_be_switched_off():
    engine = ForecastEngine(resolve_model("toto-mini").model, estimator="exact")
    on = backtest(prices(60, 4), symbol="A", num_simulations=3, engine=engine)
    off = backtest(prices(60, 4), symbol="A", num_simulations=3, engine=engine, calibration=False)
    assert on.calibration["available"] and not off.calibration["available"]
    assert "not computed" in off.calibration["reason"] and off.forecasts["pit"].isna().all()
    pd.testing.assert_frame_equal(on.simulations, off.simulations)  # scoring never changes a number
    assert "scores" not in off.timings


def test_scores_computed_beside_the_next_batch_equal_the_batch_by_batch_ones(exact_engine):
    from totowalk.backtest.forecast.forecasters import EngineForecaster
    from totowalk.backtest.forecast.plan import (
        ForecastPlan,
        SymbolSeries,
        chunk_request,
        compute_forecasts,
        run_request,
    )
    from totowalk.backtest.inputs.frames import collect_frames
    from totowalk.backtest.inputs.windows import PRICE_KEYS, window_layout

    frames = collect_frames(DATA, None, None)
    series = [SymbolSeries.build(s, f, window_layout(len(f), 12, "clean", symbol=s)) for s, f in frames.items()]
    plan = ForecastPlan(series, PRICE_KEYS)
    fc = EngineForecaster(exact_engine)
    seen = []

    def on_batch(idx, part):  # called in order, each batch with its scores in place
        seen.append(idx.copy())
        assert part.pending is None and np.isfinite(part.crps).sum() == np.isfinite(part.pit).sum() > 0

    found = compute_forecasts(plan, fc, max_batch=40, on_batch=on_batch)
    assert len(seen) > 3 and found.forecast_seconds > 0
    for idx in seen:  # each batch again, scored where it is forecast
        request, order = chunk_request(plan, fc, idx)
        alone = run_request(fc, request)
        np.testing.assert_array_equal(order, idx)
        for field in ("point", "band", "pit", "crps"):
            np.testing.assert_array_equal(getattr(found, field)[idx], getattr(alone, field), err_msg=field)


def test_the_scores_backend_reaches_the_scoring_and_a_bad_one_is_refused(exact_engine, monkeypatch):
    # backtest(scores_backend="triton") hands the engine's device and that backend to every scoring
    # call (recorded here, then computed by the host loop so the run stays quick); the kernel itself
    # is held to the host loop in test_scores_triton.py
    from totowalk.errors import UsageError
    from totowalk.scoring import proper

    calls, real = [], proper.mixture_scores

    def recording(*args, backend="auto", **kwargs):
        calls.append((backend, args[0].device.type if isinstance(args[0], torch.Tensor) else "numpy"))
        return real(*(torch.as_tensor(a).cpu() for a in args), backend="native", **kwargs)

    monkeypatch.setattr(proper, "mixture_scores", recording)
    data = prices(60, 4)
    routed = backtest(data, symbol="A", num_simulations=3, engine=exact_engine, scores_backend="triton")
    assert calls and set(calls) == {("triton", exact_engine.device.type)}
    calls.clear()
    default = backtest(data, symbol="A", num_simulations=3, engine=exact_engine)
    assert calls and {backend for backend, _ in calls} == {"auto"}
    pd.testing.assert_frame_equal(routed.forecasts, default.forecasts)
    with pytest.raises(UsageError, match="scores_backend must be one of auto, native, triton"):
        backtest(data, symbol="A", num_simulations=3, engine=exact_engine, scores_backend="gpu")
    if exact_engine.device.type != "cuda":  # refused before anything is forecast, not after
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        with pytest.raises(UsageError, match="scores_backend='triton' runs on a CUDA device"):
            backtest(data, symbol="A", num_simulations=3, engine=exact_engine, scores_backend="triton")


def test_an_engine_result_is_scored_by_the_kernel_as_by_the_host_loop(exact_engine):
    pytest.importorskip("triton")
    pct = percent_changes(DATA["AAA"]["Close"].to_numpy())
    contexts = [pct[1:90].astype(np.float32), pct[1:120].astype(np.float32)]
    result = exact_engine.forecast(contexts, prediction_length=1)
    actual = [[pct[90]], [pct[120]]]
    host = result.scores(actual)
    kernel = result.scores(actual, backend="triton", device=exact_engine.device)  # the interpreter on a CPU
    for name in ("crps", "pit", "log_score"):
        np.testing.assert_allclose(kernel[name], host[name], rtol=1e-9, atol=1e-12)
