"""Quality gate: metrics on identical models, PASS/FAIL against thresholds, cache locations, warnings, CLI.

Runs a reduced evaluation (one symbol, two simulations, 32 samples) on a random toto-tiny
checkpoint; the full default evaluation is what ``totowalk quality`` runs.
"""

from __future__ import annotations

import json
import warnings

import pytest
from totowalk import build_model, load_model, save_checkpoint
from totowalk.cli import main as cli_main
from totowalk.model import TotoConfig
from totowalk.precision import (
    GateSettings,
    GateThresholds,
    convert_precision,
    format_report,
    gate,
    run_quality_gate,
)

SMALL = GateSettings(symbols=("IBM",), num_simulations=2, num_samples=32)
SMALL_ARGS = ["--symbols", "IBM", "--simulations", "2", "--samples", "32"]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOTOWALK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gate, "_WARNED", set())


@pytest.fixture()
def tiny_dir(tmp_path):
    return save_checkpoint(build_model(TotoConfig.preset("toto-tiny"), seed=0), tmp_path / "tiny")


def test_identical_models_give_zero_error_and_pass_zero_thresholds():
    model = build_model(TotoConfig.preset("toto-tiny"), seed=0)
    metrics = gate.evaluate_models(model, model, SMALL)
    # 1 symbol x 4 keys x (2 simulations + 6 walk-forward steps) distinct contexts
    assert metrics["contexts"] == 32
    assert metrics["expected_rel_err_max"] == 0.0 and metrics["mae_change_pct"] == 0.0
    assert all(row["return_change"] == 0.0 and row["sharpe_change"] == 0.0 for row in metrics["strategies"].values())
    assert "maxdiff" in metrics["strategies"]
    assert gate.judge(metrics, GateThresholds(0.0, 0.0, 0.0))["passed"]


def test_bf16_passes_loose_thresholds_then_loads_silently(tiny_dir):
    result = run_quality_gate(tiny_dir, "bf16", GateThresholds(expected_rel_err_mean=0.5, mae_change_pct=50.0), SMALL)
    m = result["metrics"]
    assert result["passed"] and 0.0 < m["expected_rel_err_mean"] <= m["expected_rel_err_max"]
    stored = tiny_dir / "quality" / "bf16.json"  # a writable folder: beside the weights
    assert result["path"] == str(stored) and json.loads(stored.read_text())["passed"] is True
    assert "**PASS**" in format_report(result) and "maxdiff" in format_report(result)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tiny_dir, precision="bf16")


def test_deliberately_tight_thresholds_fail_and_loading_then_warns(tiny_dir):
    result = run_quality_gate(tiny_dir, "int8", GateThresholds(expected_rel_err_mean=1e-12, mae_change_pct=50.0), SMALL)
    assert not result["passed"]
    assert result["checks"] == {"expected_rel_err_mean": False, "mae_change_pct": True}
    assert "**FAIL**" in format_report(result)
    with pytest.warns(gate.UngatedPrecisionWarning, match="failed the quality gate"):
        load_model(tiny_dir, precision="int8")


def test_results_for_bundled_weights_go_to_the_user_cache(tiny_dir, tmp_path, monkeypatch):
    from totowalk.model import checkpoint

    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", tiny_dir.parent)  # pretend tiny_dir is shipped
    result = run_quality_gate(tiny_dir, "fp16", GateThresholds(0.5, 50.0), SMALL)
    fingerprint = gate.weights_fingerprint(tiny_dir / "model.safetensors")
    assert result["path"] == str(tmp_path / "cache" / "quality" / f"{fingerprint[:16]}-fp16.json")
    assert not (tiny_dir / "quality").exists()
    assert gate.find_result(tiny_dir / "model.safetensors", "fp16")["passed"]


def test_changed_weights_do_not_reuse_an_old_result(tiny_dir):
    run_quality_gate(tiny_dir, "bf16", GateThresholds(0.5, 50.0), SMALL)
    save_checkpoint(convert_precision(build_model(TotoConfig.preset("toto-tiny"), seed=1), "fp32"), tiny_dir)
    assert gate.find_result(tiny_dir / "model.safetensors", "bf16") is None


def test_quality_command_exit_codes_and_json(tiny_dir, capsys):
    assert cli_main(["quality", "--model", str(tiny_dir), "--precision", "fp16", *SMALL_ARGS]) == 0
    assert "| expected value: mean relative error |" in capsys.readouterr().out
    code = cli_main(["quality", "--model", str(tiny_dir), "--precision", "fp16", "--max-mean-rel-err", "1e-12",
                     "--json", *SMALL_ARGS])
    captured = capsys.readouterr()
    assert code == 1 and "FAIL" in captured.err
    assert json.loads(captured.out)["checks"]["expected_rel_err_mean"] is False


def test_bad_gate_requests_are_named(tiny_dir):
    with pytest.raises(ValueError, match="precision must be one of"):
        run_quality_gate(tiny_dir, "fp32", settings=SMALL)
    with pytest.raises(ValueError, match="num_simulations"):
        GateSettings(num_simulations=0)


def test_a_result_shipped_beside_bundled_weights_is_read(tiny_dir, monkeypatch):
    from totowalk.model import checkpoint

    run_quality_gate(tiny_dir, "bf16", GateThresholds(0.5, 50.0), SMALL)  # written beside (not bundled yet)
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", tiny_dir.parent)
    paths = gate.result_paths(tiny_dir / "model.safetensors", "bf16")
    assert paths[0] == tiny_dir / "quality" / "bf16.json"
    assert gate.result_paths(tiny_dir / "model.safetensors", "bf16", for_writing=True) == paths[1:]
    assert gate.find_result(tiny_dir / "model.safetensors", "bf16")["passed"]
