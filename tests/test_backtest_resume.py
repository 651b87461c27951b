"""Incremental results and resume: a crashed run resumed equals an uninterrupted one, whichever
phase it stopped in (forecasts journaled batch by batch, result rows a part per chunk of symbols)."""

import json

import pandas as pd
import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.forecast.store import FORECASTS, MANIFEST, PARTS, RunStore, RunStoreError

DATA = {"AAA": prices(90, 11), "BBB": prices(80, 12)}
SETTINGS = dict(num_simulations=5, max_batch=7, contexts_per_chunk=1)  # a chunk per symbol


class Crash(RuntimeError):
    pass


def crashing_after(calls_ok, log):
    def fn(contexts):
        if len(log) >= calls_ok:
            raise Crash("injected")
        log.append(len(contexts))
        return mean5(contexts)

    return fn


@pytest.mark.parametrize("profile", ["legacy", "clean"])
def test_resume_after_forecast_crash_and_row_crash_equals_uninterrupted(tmp_path, monkeypatch, profile):
    full = backtest(DATA, forecaster=mean5, profile=profile, out_dir=tmp_path / "full", **SETTINGS)

    out = tmp_path / "run"
    log = []
    with pytest.raises(Crash):
        backtest(DATA, forecaster=crashing_after(3, log), profile=profile, out_dir=out, **SETTINGS)
    assert len((out / FORECASTS).read_text().splitlines()) == 3  # completed batches were kept

    # second interruption: in the strategies phase, while the second chunk's (BBB's) part is saved
    real_save = RunStore.save_part
    saved = []

    def save_then_crash(self, index, symbols, tables):
        if saved:
            raise Crash("injected while saving rows")
        saved.append(symbols)
        real_save(self, index, symbols, tables)

    monkeypatch.setattr(RunStore, "save_part", save_then_crash)
    calls = []
    with pytest.raises(Crash):
        backtest(DATA, forecaster=crashing_after(10**6, calls), profile=profile, out_dir=out, resume=True, **SETTINGS)
    total = 2 * 4 * (5 + 6)
    assert len(log) == 3 and sum(calls) == total - sum(log)  # only the forecasts not stored before were computed
    assert saved == [["AAA"]]
    monkeypatch.setattr(RunStore, "save_part", real_save)

    again = []
    resumed = backtest(
        DATA, forecaster=crashing_after(10**6, again), profile=profile, out_dir=out, resume=True, **SETTINGS
    )
    assert again == []  # every forecast was stored; nothing is recomputed
    assert sorted(p.name for p in (out / PARTS).iterdir()) == [
        f"chunk-{i:05d}-{name}.pkl" for i in (0, 1) for name in ("forecasts", "simulations")
    ]
    pd.testing.assert_frame_equal(resumed.simulations, full.simulations)
    pd.testing.assert_frame_equal(resumed.forecasts, full.forecasts)
    pd.testing.assert_frame_equal(resumed.summary, full.summary)


def test_torn_last_line_is_recomputed(tmp_path):
    out = tmp_path / "run"
    # the forecaster's name is part of the run's fingerprint: use the same wrapper both times
    full = backtest(DATA, forecaster=crashing_after(10**6, []), out_dir=out, **SETTINGS)
    path = out / FORECASTS
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # crash mid-write
    for part in (out / PARTS).glob("chunk-00001-*"):  # ... of the last chunk, before its part was saved
        part.unlink()
    calls = []
    resumed = backtest(DATA, forecaster=crashing_after(10**6, calls), out_dir=out, resume=True, **SETTINGS)
    assert calls == [len(json.loads(lines[-1])["ids"])]
    pd.testing.assert_frame_equal(resumed.simulations, full.simulations)


def test_foreign_corrupt_and_non_empty_folders_are_refused(tmp_path):
    out = tmp_path / "run"
    backtest(DATA, forecaster=mean5, out_dir=out, **SETTINGS)
    with pytest.raises(RunStoreError, match="not empty; pass --resume"):
        backtest(DATA, forecaster=mean5, out_dir=out, **SETTINGS)
    with pytest.raises(RunStoreError, match=r"different run \(fee.AAA was 0.0005, now 0.001; fee.BBB was"):
        backtest(DATA, forecaster=mean5, out_dir=out, resume=True, fee=0.001, **SETTINGS)
    changed = {"AAA": DATA["AAA"] * 1.01, "BBB": DATA["BBB"]}
    with pytest.raises(RunStoreError, match=r"different run \(price data of symbol 'AAA'\)"):
        backtest(changed, forecaster=mean5, out_dir=out, resume=True, **SETTINGS)

    (out / PARTS / "chunk-00001-simulations.pkl").write_bytes(b"not a pickle")
    with pytest.raises(RunStoreError, match=r"corrupt .*chunk-00001-simulations.pkl.*delete it"):
        backtest(DATA, forecaster=mean5, out_dir=out, resume=True, **SETTINGS)
    (out / PARTS / "chunk-00001-simulations.pkl").unlink()  # that chunk's forecasts are read from the journal
    (out / FORECASTS).write_text('{"ids": [], "point": [], "band": []}\nnot json\n')
    with pytest.raises(RunStoreError, match=r"corrupt .*forecast_batches.jsonl, line 2"):
        backtest(DATA, forecaster=mean5, out_dir=out, resume=True, **SETTINGS)
    (out / MANIFEST).write_text("{ truncated")
    with pytest.raises(RunStoreError, match="corrupt .*manifest.json"):
        backtest(DATA, forecaster=mean5, out_dir=out, resume=True, **SETTINGS)

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(RunStoreError, match="not a totowalk results folder"):
        backtest(DATA, forecaster=mean5, out_dir=stranger, resume=True, **SETTINGS)


@pytest.mark.parametrize("estimator, simulations, batch", [("sampled", 80, 100), ("exact", 30, 40)])
def test_resume_with_prefix_shared_engine_forecasts_equals_uninterrupted(
    tmp_path, monkeypatch, estimator, simulations, batch
):
    # 80 simulations: each chunk's contexts of one series-key share forwards; a run stopped after
    # two chunks and resumed makes the same chunks, groups and numbers (and, exact, the same scores).
    from totowalk.engine import ForecastEngine
    from totowalk.model import TotoConfig, build_model

    model = build_model(TotoConfig.preset("toto-tiny"), seed=0)
    engine = ForecastEngine(model, num_samples=16, seed=2, estimator=estimator)
    settings = dict(symbol="S", num_simulations=simulations, engine=engine, max_batch=batch)
    frame = prices(200, 5)
    full = backtest(frame, out_dir=tmp_path / "full", **settings)
    real, calls = ForecastEngine.forecast_walk_forward, []

    def crash_on_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Crash("injected")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ForecastEngine, "forecast_walk_forward", crash_on_third)
    with pytest.raises(Crash):
        backtest(frame, out_dir=tmp_path / "run", **settings)
    journal = (tmp_path / "run" / FORECASTS).read_text().splitlines()
    assert len(journal) == 2 and all(("pit" in json.loads(line)) == (estimator == "exact") for line in journal)
    if estimator == "exact":  # a batch stored without its scores (an older run) is forecast again
        first = json.loads(journal[0])
        del first["pit"], first["crps"]
        (tmp_path / "run" / FORECASTS).write_text(json.dumps(first) + "\n" + journal[1] + "\n")
    resumed = backtest(frame, out_dir=tmp_path / "run", resume=True, **settings)
    assert len(calls) > 3  # the resumed run computed only what was missing, through the same path
    pd.testing.assert_frame_equal(resumed.forecasts, full.forecasts)
    pd.testing.assert_frame_equal(resumed.simulations, full.simulations)
    assert resumed.calibration == full.calibration
    scored = full.forecasts["target_date"].notna()
    assert full.forecasts.loc[scored, "pit"].notna().all() == (estimator == "exact")
