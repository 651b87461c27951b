"""The benchmark harness: W1-small end to end through ``totowalk bench`` (CI smoke run), the FLOP
formula against torch's FLOP counter, and the workload definitions.

Nothing here asserts anything about speed (timings belong in bench/RESULTS.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _bench import bench_script
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from totowalk.benchmarks import forward_flops, markdown_row, markdown_table
from totowalk.benchmarks.report import TABLE_COLUMNS, BenchRow
from totowalk.benchmarks.workloads import (
    classic_call_contexts,
    forecast_plan,
    num_classic_calls,
    unique_contexts,
    w1_frames,
    w2_frames,
)
from totowalk.cli import main
from totowalk.model import TotoConfig, build_model


def test_w1_small_through_the_cli_reports_every_row(capsys, tmp_path, monkeypatch):
    from totowalk.benchmarks import walkforward

    calls = []  # each backtest() call's keywords, recorded where the harness makes it
    real_backtest = walkforward.backtest
    monkeypatch.setattr(walkforward, "backtest", lambda *a, **k: calls.append(k) or real_backtest(*a, **k))
    code = main(
        [
            "bench",
            "W1-small",
            "--device",
            "cpu",
            "--official",
            "off",
            "--repeats",
            "1",
            "--reference-calls",
            "1",
            "--strategy-loop-sims",
            "1",
            "--scores-backend",
            "native",
            "--json",
            "--markdown-out",
            str(tmp_path / "rows.md"),
        ]
    )
    assert code == 0
    clean_calls = [k for k in calls if k.get("profile") == "clean"]
    assert clean_calls and all(k["scores_backend"] == "native" for k in clean_calls)
    report = json.loads(capsys.readouterr().out)
    rows = {r["workload"]: r for r in report["rows"]}
    assert list(rows) == ["W1-small forecast", "W1-small strategies", "W1-small backtest clean", "W1-small backtest"]
    table = (tmp_path / "rows.md").read_text().splitlines()
    assert len(table) == 2 + 4 and table[2].startswith("| W1-small forecast | ")
    assert report["meta"]["device"] == "cpu" and report["meta"]["gemm_ceilings"][0]["gflops"] > 0

    forecast = rows["W1-small forecast"]
    # 2 simulations x 4 keys: K + 6 distinct contexts per key; 2 x 4 x 7 classic calls
    assert forecast["unique_contexts"] == 4 * (2 + 6)
    assert forecast["extra"]["classic_calls"] == 2 * 4 * 7
    assert forecast["baseline_extrapolated"] is True
    assert forecast["engine_gflops"] > 0 and forecast["baseline_gflops"] > 0
    for row in rows.values():
        assert row["engine_s"] > 0 and row["baseline_s"] > 0
        assert row["ratio"] == pytest.approx(row["baseline_s"] / row["engine_s"])
        assert row["precision"] == "fp32" and row["device"] == "cpu" and row["date"] and row["commit"]
    # the engine and the classic loop agree on the analytic mean of the timed context
    rel = float(forecast["notes"].split("expected-value max rel. diff vs baseline ")[1].split(";")[0])
    assert rel < 1e-4
    # the whole-backtest baseline is the extrapolated forecasts plus the strategy loop
    assert rows["W1-small backtest"]["baseline_s"] == pytest.approx(
        forecast["baseline_s"] + rows["W1-small strategies"]["baseline_s"]
    )
    # the clean default's whole backtest comes first, measured against the legacy one of the same run
    clean = rows["W1-small backtest clean"]
    assert clean["baseline_s"] == rows["W1-small backtest"]["engine_s"]
    assert "clean profile" in clean["notes"] and "whole / its forecast phase" in clean["notes"]
    assert "statistics: the host's compiled loop; scores: the host's compiled loop" in clean["notes"]
    assert clean["extra"]["phases_s"]["forecast"] > 0


def test_rows_are_saved_as_they_are_made(monkeypatch, tmp_path):
    # A run stopped part-way (a time limit, Ctrl-C) keeps the rows it finished.
    from totowalk.benchmarks import walkforward

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(walkforward, "_backtest_rows", interrupted)
    code = main(
        [
            "bench",
            "W1-small",
            "--device",
            "cpu",
            "--official",
            "off",
            "--repeats",
            "1",
            "--reference-calls",
            "1",
            "--markdown-out",
            str(tmp_path / "rows.md"),
            "--json-out",
            str(tmp_path / "rows.json"),
        ]
    )
    assert code == 130
    table = (tmp_path / "rows.md").read_text().splitlines()
    assert len(table) == 3 and table[2].startswith("| W1-small forecast | ")
    assert [r["workload"] for r in json.loads((tmp_path / "rows.json").read_text())["rows"]] == ["W1-small forecast"]


def test_statistics_and_scores_backends_reach_the_clean_backtest(monkeypatch):
    # gpu_check.sh times the clean rows with both on the card; here the options' path to the engine
    # (the path to backtest() is checked in the CLI test above)
    from totowalk.benchmarks import session as session_module
    from totowalk.cli import build_parser
    from totowalk.commands.bench import options_from_args

    args = build_parser().parse_args(
        ["bench", "W1-small", "--device", "cpu", "--statistics-backend", "torch", "--scores-backend", "native"]
    )
    options = options_from_args(args)
    assert (options.statistics_backend, options.scores_backend) == ("torch", "native")
    engines = []
    real_engine = session_module.ForecastEngine
    monkeypatch.setattr(session_module, "ForecastEngine", lambda *a, **k: engines.append(k) or real_engine(*a, **k))
    session = session_module.BenchSession(options, log=lambda msg: None)
    engine = session.engine("toto-tiny", 8, estimator="exact")
    assert engine.statistics_backend == "torch" and engines[-1]["statistics_backend"] == "torch"
    assert "statistics: torch; scores: the host's compiled loop" in session.statistics_note()


def test_a_statistics_backend_that_cannot_run_is_refused_by_name(capsys, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert main(["bench", "W1-small", "--device", "cpu", "--statistics-backend", "triton", "--official", "off"]) == 2
    assert "--statistics-backend triton: statistics backend 'triton' runs on a CUDA device" in capsys.readouterr().err


def test_unknown_workload_is_refused_by_name(capsys):
    assert main(["bench", "W3", "--official", "off"]) == 2
    assert "W3" in capsys.readouterr().err


def _counted_flops(config: TotoConfig, num_patches: int, num_variates: int, horizon: int) -> int:
    model = build_model(config, seed=0)
    values = torch.randn(1, num_variates, num_patches * config.patch_size)
    mask = torch.ones_like(values, dtype=torch.bool)
    counter = FlopCounterMode(display=False)
    # The math attention backend, whose matrix products the counter sees (it has no rule for the
    # fused CPU flash kernel the model otherwise gets, and would count its attention as 0).
    with counter, sdpa_kernel(SDPBackend.MATH):
        model.forecast_params(values, mask, None, horizon=horizon)
    return counter.get_total_flops()


@pytest.mark.parametrize(
    "spacewise_every, variates, patches, horizon",
    [
        (3, 1, 5, 1),  # toto-tiny layout: the last layer is space-wise
        (3, 3, 4, 7),  # several variates: space-wise attention over V x V
        (-1, 1, 6, 2),  # time-wise layers only: the last layer keeps keys/values of every patch
    ],
)
def test_forward_flops_match_torch_flop_counter(spacewise_every, variates, patches, horizon):
    config = TotoConfig.preset("toto-tiny").replace(spacewise_every_n_layers=spacewise_every)
    assert forward_flops(config, patches, variates, horizon) == _counted_flops(config, patches, variates, horizon)


def test_w1_contexts_are_the_classic_loop_calls():
    plan = forecast_plan(w1_frames(), 10)
    calls = classic_call_contexts(plan)
    assert num_classic_calls(plan) == len(calls) == 10 * 4 * 7
    assert len({c.tobytes() for c in calls}) == len(plan) == 4 * (10 + 6)
    # simulation 0, key Close, step 0 of a 1,460-row frame: pct_1 .. pct_1451 (LEGACY_SEMANTICS §2.3)
    close = w1_frames()["IBM"]["Close"].to_numpy()
    expected = (close[1:1452] - close[:1451]) / close[:1451]
    np.testing.assert_allclose(calls[0], expected.astype(np.float32), rtol=1e-6)
    assert all(c.dtype == np.float32 for c in unique_contexts(plan))


def test_w2_universe_has_24_distinct_series_and_about_24600_contexts():
    frames = w2_frames()
    assert len(frames) == 24 and all(len(f) == 1460 for f in frames.values())
    assert len({f["Close"].to_numpy().tobytes() for f in frames.values()}) == 24
    assert "FB@0" not in frames and "AAPL@1800" in frames and "GOOG@600" in frames
    plan = forecast_plan(frames, 250)
    assert len(plan) == 24 * 4 * (250 + 6) == 24576
    assert num_classic_calls(plan) == 24 * 250 * 4 * 7


def test_w2_frames_refuses_more_series_than_the_data_gives():
    with pytest.raises(ValueError, match="yields only"):
        w2_frames(num_series=100)


def test_markdown_row_has_one_cell_per_column():
    row = BenchRow(
        workload="W1 forecast",
        machine="cpu | x",
        device="cpu",
        precision="fp32",
        date="2026-01-01",
        commit="abc",
        engine_s=0.5,
        engine_repeats=3,
        baseline="reference",
        baseline_s=100.0,
        baseline_extrapolated=True,
        unique_contexts=64,
        engine_gflops=10.0,
        gemm_gflops=100.0,
    )
    line = markdown_row(row)
    assert line.count("|") == len(TABLE_COLUMNS) + 1  # the '|' inside the machine name is replaced
    assert "200.0x" in line and "(extrap.)" in line and "128.0" in line and "10.0 (10%)" in line
    assert markdown_table([row]).splitlines()[0].count("|") == len(TABLE_COLUMNS) + 1


def test_w2_slice_on_a_small_preset_reports_the_slice():
    from totowalk.benchmarks import BenchOptions, BenchSession, run_benchmarks

    session = BenchSession(
        BenchOptions(
            device="cpu",
            official="off",
            repeats=1,
            reference_calls=1,
            strategy_loop_sims=1,
            w2_series=1,
            w2_simulations=1,
            preset="toto-tiny",
        ),
        log=lambda msg: None,
    )
    rows = run_benchmarks(["W2"], session)
    assert [r.workload for r in rows] == [
        "W2 [toto-tiny] forecast",
        "W2 [toto-tiny] strategies",
        "W2 [toto-tiny] backtest clean",
        "W2 [toto-tiny] backtest",
    ]
    forecast = rows[0]
    assert forecast.unique_contexts == 4 * (1 + 6)
    assert "slice: first 1 of 24 series x 1 of 250 simulations" in forecast.notes
    assert "whole workload (24576 contexts) at this rate" in forecast.notes


def test_pack_microbenchmark_packs_the_plan_contexts():
    from totowalk.benchmarks.micro import pack_requests
    from totowalk.engine.staging import pack_contexts

    frames = w1_frames()
    sources, buckets = pack_requests(frames, 2)
    packed = []
    for width, rows in buckets.items():
        values, mask = pack_contexts(sources, rows, width)
        assert width % 64 == 0 and values.shape == (len(rows), width)
        packed += [v[m].tobytes() for v, m in zip(values, mask)]
    # exactly the plan's unique contexts, each once, with left padding stripped by the mask
    assert sorted(packed) == sorted(c.tobytes() for c in unique_contexts(forecast_plan(frames, 2)))


def test_official_baseline_is_found_only_where_toto_ts_imports(tmp_path):
    import importlib.util
    import sys

    from totowalk.benchmarks.official import find_official

    assert find_official(str(tmp_path / "no-such-python")) is None
    if importlib.util.find_spec("toto") is None:
        assert find_official(sys.executable) is None  # this venv has no toto-ts


def test_time_interleaved_alternates_the_timed_functions():
    from totowalk.benchmarks.timing import time_interleaved

    order = []
    timings, values = time_interleaved(
        [lambda i: order.append(("a", i)) or "A", lambda i: order.append(("b", i)) or "B"], torch.device("cpu"), [3, 1]
    )
    assert order == [("a", None), ("b", None), ("a", 0), ("b", 0), ("a", 1), ("a", 2)]
    assert [t.repeats for t in timings] == [3, 1] and values == ["A", "B"]
    with pytest.raises(ValueError, match="one repeat count >= 1 per function"):
        time_interleaved([lambda i: None], torch.device("cpu"), [0])


def test_card_waits_charges_each_idle_gap_to_the_innermost_engine_phase():
    # bench/profile_forecast.py's reading of a Chrome trace (its CUDA part cannot run here).
    module = bench_script("profile_forecast")

    def event(name, cat, ts, dur):
        return {"ph": "X", "name": name, "cat": cat, "ts": ts, "dur": dur}

    trace = {
        "traceEvents": [
            event("totowalk.plan", "user_annotation", 0, 1000),
            event("totowalk.forward", "user_annotation", 1000, 500),
            event("gemm", "kernel", 1200, 600),
            event("add", "kernel", 1700, 200),  # overlapping: busy 1200-1900
            event("totowalk.collect", "user_annotation", 1500, 1000),
            event("copy", "gpu_memcpy", 2300, 100),
            event("aten::mul", "cpu_op", 0, 2500),  # not an engine phase
        ]
    }
    report = module.card_waits(trace)
    # window 0-2500 us; busy 700 + 100; idle: plan 1000 + forward 200 (0-1200), collect 400 + 100
    assert "window 2.5 ms, card busy 0.8 ms, idle 1.7 ms in 3 gaps" in report
    charged = dict(line.split()[:2] for line in report.splitlines()[1:])
    assert charged == {"totowalk.plan": "1.00", "totowalk.collect": "0.50", "totowalk.forward": "0.20"}
    assert module.card_waits({"traceEvents": []}).startswith("card waits: no kernels")


@pytest.mark.parametrize("profile", ["clean", "legacy"])
def test_host_steps_time_each_step_of_a_small_run(profile, capsys):
    bench_script("bench_host_steps").main(
        ["--profile", profile, "--series", "2", "--simulations", "20", "--repeats", "2", "--json"]
    )
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    clean_only = {"expected fills", "MaxDiff fits", "AlwaysOn fits"}
    steps = {"final days", "summary rows", "statistics"} | (clean_only if profile == "clean" else set())
    assert set(row["median_s"]) == steps  # legacy books no expected fill and fits no clean offsets
    assert all(len(t) == 2 and min(t) > 0 for t in row["times_s"].values())
    assert row["profile"] == profile and row["chunks"] >= 1


def test_kronos_backtest_scoring_side_by_side_runs_and_changes_no_row(capsys, monkeypatch):
    bench = bench_script("bench_kronos_batch")
    argv = ["bench_kronos_batch.py", "--shape", "tiny", "--lookback", "40", "--backtest", "--scoring"]
    monkeypatch.setattr("sys.argv", [*argv, "--sims", "2", "--repeats", "1"])
    bench.main()
    out = capsys.readouterr().out
    assert "unscored: whole" in out and "scored: whole" in out and "result rows identical: True" in out
