"""Strategies evaluated in worker processes (backtest(host_workers=N)) equal the run made in one
process bit for bit: rows, forecasts, summary, daily series, statistics, calibration and forecast
error, with one chunk or several, in memory or stored in the run's folder."""

import importlib
from concurrent.futures import Future

import numpy as np
import pytest
from test_backtest_api import mean5
from test_backtest_chunks import DATA, _same

from totowalk import devices
from totowalk.backtest import backtest
from totowalk.backtest.host_workers import _packed, _unpacked, resolve_host_workers, symbol_groups
from totowalk.engine import ForecastEngine
from totowalk.errors import UsageError
from totowalk.model import TotoConfig, build_model


@pytest.fixture(scope="module")
def engines():
    model = build_model(TotoConfig.preset("toto-tiny"), seed=0)
    return {e: ForecastEngine(model, num_samples=16, seed=3, estimator=e) for e in ("exact", "sampled")}


@pytest.mark.parametrize("profile, estimator", [("clean", "exact"), ("legacy", "sampled")])
def test_workers_equal_one_process(tmp_path, engines, profile, estimator):
    settings = dict(num_simulations=6, engine=engines[estimator], profile=profile)
    one = backtest(DATA, contexts_per_chunk=10**9, **settings)
    assert one.calibration["available"] == (estimator == "exact")
    workers = backtest(DATA, contexts_per_chunk=10**9, host_workers=2, **settings)
    _same(workers, one)
    chunked = backtest(DATA, contexts_per_chunk=100, host_workers=3, out_dir=tmp_path / "run", **settings)
    assert len(chunked.tables.chunks) == 3
    _same(chunked, one)
    assert (one.host_workers, workers.host_workers, chunked.host_workers) == (0, 2, 3)
    # resumed with every chunk stored: nothing to evaluate, so no worker is started
    again = backtest(DATA, contexts_per_chunk=100, host_workers=3, out_dir=tmp_path / "run", resume=True, **settings)
    assert again.host_workers == 0
    _same(again, one)


def test_workers_equal_one_process_with_a_function_forecaster():
    settings = dict(num_simulations=5, forecaster=mean5, profile="clean", fill_model="adverse")
    _same(backtest(DATA, host_workers=2, **settings), backtest(DATA, **settings))


def test_symbol_groups_are_consecutive_and_share_the_rows():
    class Series:
        def __init__(self, sims):
            self.layout = type("Layout", (), {"num_simulations": sims})()

    sims = [10, 10, 10, 10, 40, 10, 10]
    groups = symbol_groups([Series(k) for k in sims], 3)
    assert groups[0][0] == 0 and groups[-1][1] == len(sims)
    assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))  # consecutive, nothing skipped
    loads = [sum(sims[a:b]) for a, b in groups]
    assert len(groups) == 3 and max(loads) <= 50  # the 40-row symbol with at most one other
    assert symbol_groups([Series(5)], 4) == [(0, 1)]
    assert symbol_groups([], 2) == []


def test_packed_rows_come_back_as_they_left():
    import pandas as pd

    block = np.arange(12.0).reshape(4, 3)
    frame = pd.DataFrame(
        {
            "symbol": ["A", "A", "B", "B"],
            "returns": list(block),  # equal-shaped arrays: one block on the way
            "ragged": [np.zeros(1), np.zeros(2), np.zeros(1), np.zeros(1)],  # left as cells
            "value": [0.5, 1.5, 2.5, 3.5],
        }
    )
    rest, blocks, columns = _packed(frame)
    assert list(blocks) == ["returns"] and "ragged" in rest
    back = _unpacked(rest, blocks, columns)
    assert list(back.columns) == list(frame.columns)
    for name in frame.columns:
        for got, want in zip(back[name], frame[name]):
            np.testing.assert_array_equal(got, want)
    assert back["returns"].dtype == object and back["value"].dtype == np.float64


def test_a_bad_worker_count_is_refused_before_any_work():
    for count in (-1, 1.5, True):
        with pytest.raises(UsageError, match="host_workers must be an integer >= 0"):
            backtest(DATA, num_simulations=3, forecaster=mean5, host_workers=count)
    with pytest.raises(UsageError, match="or 'auto', got 'sometimes'"):
        backtest(DATA, num_simulations=3, forecaster=mean5, host_workers="sometimes")


@pytest.mark.parametrize(
    "chunks, cores, workers",
    [(1, 16, 0), (2, 2, 0), (2, 3, 0), (2, 4, 2), (32, 16, 8), (32, 64, 8), (5, 10, 5)],
)
def test_auto_takes_half_the_cores_for_a_run_of_several_chunks(chunks, cores, workers):
    assert resolve_host_workers("auto", chunks, cores) == workers
    assert resolve_host_workers(3, chunks, cores) == 3  # a number is kept as given


def test_auto_on_this_host_runs_as_its_rule_says(monkeypatch):
    monkeypatch.setattr(devices, "host_cores", lambda: 2)
    settings = dict(num_simulations=5, forecaster=mean5, profile="clean", contexts_per_chunk=100)
    assert backtest(DATA, host_workers="auto", **settings).host_workers == 0  # 2 cores: none
    monkeypatch.setattr(devices, "host_cores", lambda: 4)
    auto = backtest(DATA, host_workers="auto", **settings)
    assert auto.host_workers == 2 and len(auto.tables.chunks) == 3
    _same(auto, backtest(DATA, **settings))


def test_chunks_made_before_the_workers_are_up_are_evaluated_here_with_the_same_rows(monkeypatch):
    settings = dict(num_simulations=5, forecaster=mean5, profile="clean", contexts_per_chunk=100)
    one = backtest(DATA, **settings)
    run_module = importlib.import_module("totowalk.backtest.run")
    up = Future()  # the workers' start-up, finished by hand after the first chunk
    monkeypatch.setattr(run_module, "start_workers", lambda workers: [up])
    here, there = [], []
    real_here, real_there = run_module.chunk_tables, run_module.evaluate_in_workers

    def evaluated_here(*args, **kwargs):
        here.append(1)
        up.set_result(0)
        return real_here(*args, **kwargs)

    def evaluated_there(*args, **kwargs):
        there.append(1)
        return real_there(*args, **kwargs)

    monkeypatch.setattr(run_module, "chunk_tables", evaluated_here)
    monkeypatch.setattr(run_module, "evaluate_in_workers", evaluated_there)
    mixed = backtest(DATA, host_workers=2, **settings)
    assert len(mixed.tables.chunks) == 3 and (len(here), len(there)) == (1, 2)
    _same(mixed, one)
