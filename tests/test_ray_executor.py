"""Scale-out on Ray: a backtest on Ray workers equals the local run (every output), survives a
killed worker, resumes from its journal; without ray installed, one clear error."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import totowalk as tw
from totowalk.backtest.forecast.store import RunInterrupted

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def frames():
    return {s: tw.datasets.load(s).iloc[-400:] for s in ("IBM", "MSFT")}


@pytest.fixture(scope="module")
def engine():
    return tw.ForecastEngine(tw.load_model("toto-mini"), num_samples=16, seed=0)


def _run(frames, engine, **kw):
    return tw.backtest(frames, num_simulations=4, engine=engine, profile="legacy", max_batch=24, **kw)


def _same(a, b):
    for name in ("simulations", "summary", "forecasts", "daily", "statistics"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True, obj=name)


def test_ray_workers_give_the_local_results(cluster, frames, engine, tmp_path):
    local = _run(frames, engine, out_dir=tmp_path / "local")
    executor = tw.RayExecutor(num_workers=2)
    remote = _run(frames, engine, executor=executor, out_dir=tmp_path / "ray")
    _same(local, remote)
    assert len(remote.workers) == 2 and all(w["chunks"] > 0 for w in remote.workers)
    from totowalk.backtest.report.files import write_outputs

    files = [p.name for p in write_outputs(local, tmp_path / "local_out")]
    write_outputs(remote, tmp_path / "ray_out")
    for name in files:  # every output file, byte for byte (summary.json: all but its wall-clock timings)
        mine, theirs = (tmp_path / "local_out" / name).read_bytes(), (tmp_path / "ray_out" / name).read_bytes()
        if name == "summary.json":
            mine, theirs = ({k: v for k, v in json.loads(t).items() if k != "timings"} for t in (mine, theirs))
        assert mine == theirs, name


def test_ray_workers_score_as_the_local_run(cluster, frames):
    exact = tw.ForecastEngine(tw.load_model("toto-mini"), estimator="exact")
    run = dict(num_simulations=4, engine=exact, max_batch=24)
    local = tw.backtest(frames, **run)
    remote = tw.backtest(frames, executor=tw.RayExecutor(num_workers=2), **run)
    _same(local, remote)  # the forecasts' pit and crps columns included
    assert local.forecasts["pit"].notna().any() and remote.calibration == local.calibration


def test_a_killed_worker_loses_nothing(cluster, frames, engine):
    local = _run(frames, engine)
    executor = tw.RayExecutor(num_workers=2)
    killed = []

    def kill_after_first_chunk(ex, worker, done):
        if worker == 0 and done == 1 and not killed:  # its next chunk is already in flight
            ray.kill(ex.actors[0], no_restart=False)
            killed.append(worker)

    executor._after_chunk = kill_after_first_chunk
    remote = _run(frames, engine, executor=executor)
    assert killed
    _same(local, remote)
    total = sum(w["contexts"] for w in remote.workers)
    assert total == sum(w["contexts"] for w in executor.workers)  # each chunk counted once


def test_resume_keeps_the_finished_chunks(cluster, frames, engine, tmp_path):
    executor = tw.RayExecutor(num_workers=2)

    def stop(ex, worker, done):
        if sum(w["chunks"] for w in ex.workers) == 2:
            raise KeyboardInterrupt

    executor._after_chunk = stop
    with pytest.raises(RunInterrupted):
        _run(frames, engine, executor=executor, out_dir=tmp_path / "run")
    saved = (tmp_path / "run").glob("*")
    assert any(saved)
    executor._after_chunk = None
    resumed = _run(frames, engine, executor=executor, out_dir=tmp_path / "run", resume=True)
    contexts = sum(w["contexts"] for w in resumed.workers)
    _same(_run(frames, engine), resumed)
    assert 0 < contexts  # only the chunks left were forecast again
    fresh = tw.RayExecutor(num_workers=2)
    _run(frames, engine, executor=fresh)
    assert contexts < sum(w["contexts"] for w in fresh.workers)


def test_cli_ray_flag(cluster, tmp_path, capsys):
    from totowalk.cli import main

    assert (
        main(
            [
                "backtest",
                "--dataset",
                "IBM",
                "--sims",
                "2",
                "--samples",
                "8",
                "--no-progress",
                "--ray",
                "--workers",
                "2",
                "--batch",
                "8",
                "--start",
                "2012-06-01",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(summary["workers"]) == 2


def test_missing_ray_is_one_clear_error():
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import totowalk as tw\n"
        "from totowalk.errors import MissingExtraError\n"
        "try:\n"
        "    tw.RayExecutor()._connect()\n"
        "except MissingExtraError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'totowalk[ray]'" in out


def test_importing_totowalk_does_not_import_ray():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, totowalk; print('ray' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "False"


def test_a_warm_executor_reuses_its_workers_and_gives_the_same_results(cluster, frames, engine):
    local = _run(frames, engine)
    with tw.RayExecutor(num_workers=2) as executor:
        first = _run(frames, engine, executor=executor)
        actors = [a._actor_id for a in executor.actors]
        second = _run(frames, engine, executor=executor)
        assert [a._actor_id for a in executor.actors] == actors  # nothing created or shipped again
        _same(first, local)
        _same(second, local)
        other = tw.ForecastEngine(tw.load_model("toto-mini"), num_samples=16, seed=1)  # other settings
        _run(frames, other, executor=executor)
        assert [a._actor_id for a in executor.actors] != actors
    assert executor.actors == []  # the with block gave them back
    cold = tw.RayExecutor(num_workers=2, keep_warm=False)
    _same(_run(frames, engine, executor=cold), local)
    assert cold.actors == []


def test_a_universe_runs_whole_chunks_of_symbols_on_the_workers(cluster, tmp_path):
    # 100 symbols in 20 chunks: each forecast and evaluated on a worker, only its tables sent back
    from test_backtest_api import prices

    from totowalk.backtest.report.files import write_outputs
    from totowalk.model import TotoConfig, build_model

    engine = tw.ForecastEngine(build_model(TotoConfig.preset("toto-tiny"), seed=0), estimator="exact")
    frames = {f"S{i:03d}": prices(120, 100 + i) for i in range(100)}
    run = dict(num_simulations=3, engine=engine, contexts_per_chunk=180, profile="clean")
    local = tw.backtest(frames, **run)
    executor = tw.RayExecutor(num_workers=2, keep_warm=False)
    remote = tw.backtest(frames, executor=executor, out_dir=tmp_path / "ray", **run)
    assert len(remote.tables.chunks) == 20 and executor.actors == []
    assert [w["chunks"] > 0 for w in remote.workers] == [True, True]
    assert sum(w["chunks"] for w in remote.workers) == 20  # whole chunks, not forecaster batches
    assert sum(w["contexts"] for w in remote.workers) == len(
        local.forecasts.drop_duplicates(["symbol", "key", "context_end"])
    )
    _same(local, remote)
    assert remote.calibration == local.calibration
    write_outputs(local, tmp_path / "local_out", tables="csv")
    write_outputs(remote, tmp_path / "ray", tables="csv")
    for name in ("simulations.csv", "forecasts.csv", "daily_returns.csv"):
        assert (tmp_path / "local_out" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
