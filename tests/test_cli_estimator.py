"""`--estimator` on the CLI: the clean profile defaults to exact (seed-independent), legacy to sampled,
and every report and summary.json states which one ran."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from totowalk.cli import main

SLICE = [
    "--dataset",
    "us-stocks-daily",
    "--symbol",
    "IBM",
    "--end",
    "2000-06-30",
    "--sims",
    "2",
    "--samples",
    "16",
    "--no-progress",
]
MINI = ["--model", "toto-mini"]  # bundled weights: --seed changes only the draws


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["backtest", *SLICE, *MINI, "--out", str(out), *extra]) == 0
    summary = json.loads((out / "summary.json").read_text())
    return summary, pd.read_csv(out / "forecasts.csv")


def test_clean_is_the_default_profile_exact_and_independent_of_the_seed(tmp_path, capsys):
    first, forecasts_a = _run(tmp_path, "a", "--seed", "1")
    assert first["profile"] == "clean"
    assert "exact statistics of the predicted distribution" in capsys.readouterr().out
    second, forecasts_b = _run(tmp_path, "b", "--profile", "clean", "--seed", "2", "--samples", "32")
    assert first["settings"]["forecaster"]["estimator"] == "exact"
    assert first["model"]["estimator"] == "exact"
    pd.testing.assert_frame_equal(forecasts_a, forecasts_b)


def test_legacy_defaults_to_sampled_and_the_seed_matters(tmp_path, capsys):
    first, forecasts_a = _run(tmp_path, "a", "--profile", "legacy", "--seed", "1")
    assert "sampled estimator, 16 samples, seed 1" in capsys.readouterr().out
    _, forecasts_b = _run(tmp_path, "b", "--profile", "legacy", "--seed", "2")
    assert first["settings"]["forecaster"]["estimator"] == "sampled"
    assert not forecasts_a["prediction"].equals(forecasts_b["prediction"])
    exact, forecasts_c = _run(tmp_path, "c", "--profile", "legacy", "--estimator", "exact")
    assert exact["settings"]["forecaster"]["estimator"] == "exact"
    assert not forecasts_c["prediction"].equals(forecasts_a["prediction"])


def test_resume_refuses_another_estimator(tmp_path, capsys):
    _run(tmp_path, "run", "--estimator", "sampled")
    capsys.readouterr()
    out = tmp_path / "run"
    assert main(["backtest", *SLICE, *MINI, "--out", str(out), "--resume", "--estimator", "exact"]) == 2
    assert "estimator" in capsys.readouterr().err


def test_forecast_command_exact(capsys):
    base = ["forecast", "--dataset", "IBM", *MINI, "--aggregate", "mean", "p10", "band"]
    assert main([*base, "--estimator", "exact", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert "exact statistics" in first
    assert main([*base, "--estimator", "exact", "--seed", "9"]) == 0
    assert capsys.readouterr().out == first
    assert main([*base, "--estimator", "exact", "--prediction-length", "65"]) == 2
    assert "--estimator sampled" in capsys.readouterr().err


def test_resume_refuses_a_run_stored_with_other_random_streams(tmp_path, capsys, monkeypatch):
    # A run stored by a version whose stream keys differ (e.g. before 2026-12-04's digest order)
    # must not be continued with draws from the new streams.
    from totowalk.engine import sampling

    summary, _ = _run(tmp_path, "run")
    assert summary["settings"]["forecaster"]["random_streams"] == sampling.RANDOM_STREAMS
    capsys.readouterr()
    monkeypatch.setattr(sampling, "RANDOM_STREAMS", "an older version")
    assert main(["backtest", *SLICE, *MINI, "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "random_streams" in capsys.readouterr().err


def test_samples_given_to_the_exact_estimator_are_named_as_ignored(tmp_path, capsys):
    summary, _ = _run(tmp_path, "run", "--samples", "32")
    err = capsys.readouterr().err
    assert "--samples 32 is ignored: the exact estimator draws no samples" in err
    assert summary["model"]["num_samples"] is None
    assert "exact (no samples)" in (tmp_path / "run" / "report.html").read_text()


def test_statistics_backend_triton_is_recorded_and_agrees_with_the_host_loop(tmp_path, capsys):
    # Without a card the kernel runs in Triton's interpreter (tests/conftest.py sets it).
    pytest.importorskip("triton")
    on_card = ["--device", "cuda"] if torch.cuda.is_available() else []  # the kernel runs where the engine is
    host, forecasts_host = _run(tmp_path, "host", *on_card)
    kernel, forecasts_kernel = _run(tmp_path, "kernel", "--statistics-backend", "triton", *on_card)
    assert "statistics_backend" not in host["settings"]["forecaster"]  # the host loop: fingerprints as before
    assert kernel["settings"]["forecaster"]["statistics_backend"] == "triton"
    np.testing.assert_allclose(forecasts_kernel["prediction"], forecasts_host["prediction"], rtol=1e-6)
    capsys.readouterr()
    # a stored run is continued only by the backend that computed it (they agree to 1e-9, not bit for bit)
    assert main(["backtest", *SLICE, *MINI, "--out", str(tmp_path / "kernel"), "--resume", *on_card]) == 2
    assert "statistics_backend" in capsys.readouterr().err


def test_statistics_backend_is_refused_where_it_does_not_apply(tmp_path, capsys):
    args = ["backtest", *SLICE, *MINI, "--statistics-backend", "triton"]
    assert main([*args, "--estimator", "sampled"]) == 2
    assert "--statistics-backend applies to the exact estimator" in capsys.readouterr().err
    assert main([*args[:-4], "--model", "kronos:" + str(tmp_path), "--statistics-backend", "triton"]) == 2
    assert "Kronos forecasts from its draws" in capsys.readouterr().err
