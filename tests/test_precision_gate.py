"""Quality gate: the figures (z-shifts, sign flips, MAE, strategies, the exact CRPS change) against fp32
and the noise floor, PASS/FAIL, cache locations and versions, warnings, the CLI, the shipped toto-mini results.

Model runs use a reduced evaluation (one symbol, two simulations, 32 samples) on random toto-tiny
weights; the full default evaluation is what ``totowalk quality`` runs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from totowalk import ForecastEngine, build_model, load_model, save_checkpoint
from totowalk.backtest import backtest
from totowalk.backtest.inputs.windows import PRICE_KEYS, percent_changes
from totowalk.cli import main as cli_main
from totowalk.data import datasets
from totowalk.model import TotoConfig
from totowalk.model.checkpoint import WEIGHTS_DIR
from totowalk.precision import GateSettings, GateThresholds, convert_precision, format_report, gate
from totowalk.precision.gate_figures import RunRecord, against_noise_floor, compare_runs, crps_figures
from totowalk.quality import gate as quality_gate
from totowalk.quality.gate import run_quality_gate
from totowalk.scoring.significance import diebold_mariano, newey_west_standard_error

SMALL = GateSettings(symbols=("IBM",), num_simulations=2, num_samples=32)
SMALL_ARGS = ["--symbols", "IBM", "--simulations", "2", "--samples", "32"]
LOOSE = GateThresholds(z_shift_mean=0.5, flip_rate=0.5, mae_change_pct=50.0, max_crps_z=50.0)
CRPS_FIELDS = (
    "crps_forecasts",
    "crps_fp32",
    "crps_reduced",
    "crps_change",
    "crps_change_pct",
    "crps_change_se",
    "crps_z",
)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOTOWALK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gate, "_WARNED", set())


@pytest.fixture(scope="module")
def tiny():
    return build_model(TotoConfig.preset("toto-tiny"), seed=0)


@pytest.fixture()
def tiny_dir(tmp_path, tiny):
    return save_checkpoint(tiny, tmp_path / "tiny")


# -- the figures on synthetic runs ----------------------------------------------------------


class _Backtest:
    def __init__(self, predictions, returns):
        self.forecasts = pd.DataFrame({"prediction": predictions, "actual": [0.0, 0.0, np.nan]})
        self.simulations = pd.DataFrame({"simple_strategy_return": returns, "simple_strategy_sharpe": [1.0, 2.0]})


def test_compare_runs_figures_by_hand():
    sigma = np.array([1.0, 2.0, 1.0, 2.0])
    ref = RunRecord(
        _Backtest([0.1, -0.2, 5.0], [0.01, 0.03]),
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.array([0.5, -0.5, 0.1, 0.2]),
        sigma,
    )
    cand = RunRecord(
        _Backtest([0.1, -0.23, 9.0], [0.02, 0.04]),
        np.array([1.1, 2.0, 3.0, 3.8]),
        np.array([0.5, 0.5, -0.1, 0.2]),
        sigma,
    )
    f = compare_runs(ref, cand, sigma)
    assert f["z_mean_mean"] == pytest.approx(0.05) and f["z_mean_max"] == pytest.approx(0.1)
    assert f["z_aggregate_mean"] == pytest.approx(0.175) and f["z_aggregate_max"] == pytest.approx(0.5)
    assert (f["flips"], f["flip_rate"]) == (2, 0.5)
    # the row without a realised value is left out: MAE 0.15 -> 0.165
    assert f["mae_ref"] == pytest.approx(0.15) and f["mae_change_pct"] == pytest.approx(10.0)
    assert f["strategies"]["simple_strategy"]["return_change"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="different contexts"):
        compare_runs(ref, cand, sigma[:3])
    with pytest.raises(ValueError, match="std must be > 0"):
        compare_runs(ref, cand, np.array([1.0, 0.0, 1.0, 1.0]))


def test_against_noise_floor_uses_a_quarter_of_each_floor_figure():
    floor = {
        "z_mean_mean": 0.2,
        "z_aggregate_mean": 0.1,
        "flip_rate": 0.3,
        "mae_change_pct": -1.0,
        "strategies": {"maxdiff": {"return_change": -0.04}, "buy_hold": {"return_change": 0.0}},
    }
    dev = {
        "z_mean_mean": 0.05,
        "z_aggregate_mean": 0.01,
        "flip_rate": 0.1,
        "mae_change_pct": 0.2,
        "strategies": {"maxdiff": {"return_change": 0.01}, "buy_hold": {"return_change": 0.0}},
    }
    out = against_noise_floor(dev, floor)
    assert out["figures"] == {"z_mean_mean": True, "z_aggregate_mean": True, "flip_rate": False, "mae_change_pct": True}
    assert out["strategies"] == {"maxdiff": True, "buy_hold": True} and not out["all_below"]
    dev["strategies"]["buy_hold"]["return_change"] = 1e-12  # a floor of 0 tolerates no change
    assert against_noise_floor(dev, floor)["strategies"]["buy_hold"] is False


def _scored(crps, time_order=None):
    return RunRecord(None, np.zeros(len(crps)), np.zeros(len(crps)), np.ones(len(crps)), np.array(crps), time_order)


def test_crps_figures_by_hand():
    # call order 0..5; in time order the series read 3, 0, 4 | 1, 5 (the unknown next value, NaN, left out)
    order = np.array([3, 0, 4, 1, 5, 2])
    ref = _scored([0.10, 0.20, np.nan, 0.30, 0.40, 0.50], order)
    cand = _scored([0.11, 0.25, np.nan, 0.30, 0.42, 0.53], order)
    f = crps_figures(ref, cand)
    d = np.array([0.0, 0.01, 0.02, 0.05, 0.03])  # cand - ref in time order
    se = newey_west_standard_error(d)
    assert f["crps_forecasts"] == 5
    assert f["crps_fp32"] == pytest.approx(0.3) and f["crps_reduced"] == pytest.approx(0.322)
    assert f["crps_change"] == pytest.approx(0.022) and f["crps_change_pct"] == pytest.approx(100 * 0.022 / 0.3)
    assert f["crps_change_se"] == pytest.approx(se) and f["crps_z"] == pytest.approx(0.022 / se)
    # the HAC variance is taken in time order: another order of the same values gives another SE
    assert newey_west_standard_error(d[[0, 3, 1, 4, 2]]) != pytest.approx(se)
    same = crps_figures(ref, ref)
    assert (same["crps_change"], same["crps_change_se"], same["crps_z"]) == (0.0, 0.0, 0.0)
    worse_everywhere = crps_figures(ref, _scored(np.array(ref.crps) + 0.01, order))
    assert worse_everywhere["crps_z"] > 1e6  # a constant shift: its standard error is rounding only
    with pytest.raises(ValueError, match="different contexts"):
        crps_figures(ref, _scored(cand.crps, np.arange(6)))


# -- the figures on a model ---------------------------------------------------------------


def test_fp32_against_itself_has_no_deviation_above_a_real_noise_floor_and_passes(tiny):
    m = quality_gate.evaluate_models(tiny, tiny, SMALL)
    # 1 symbol x 4 keys x (2 simulations + 6 walk-forward steps) distinct contexts
    assert m["contexts"] == 32
    for run in ("precision", "sampled"):  # exact vs exact, and the same seed's draws: identical
        f = m[run]
        assert f["z_mean_max"] == 0.0 and f["z_aggregate_max"] == 0.0 and f["flips"] == 0 and f["mae_change_pct"] == 0.0
        assert all(row["return_change"] == 0.0 and row["sharpe_change"] == 0.0 for row in f["strategies"].values())
    assert "maxdiff" in m["precision"]["strategies"]
    # another seed: the sample mean moves by sqrt(2/S) sigma, E|.| = sqrt(4 / (pi S)) sigma (CLT)
    expected = math.sqrt(4 / (math.pi * SMALL.num_samples))
    assert 0.5 * expected < m["noise_floor"]["z_mean_mean"] < 2 * expected
    assert m["noise_floor"]["z_aggregate_mean"] > 0 and m["noise_floor"]["mae_change_pct"] != 0
    assert m["sampled_vs_floor"]["all_below"]
    # the same mixtures: exactly the same CRPS, a change of 0 and z = 0; only the exact run is scored
    p = m["precision"]
    assert p["crps_forecasts"] == 32 and p["crps_fp32"] == p["crps_reduced"] > 0
    assert (p["crps_change"], p["crps_change_se"], p["crps_z"]) == (0.0, 0.0, 0.0)
    assert "crps_z" not in m["noise_floor"] and "crps_z" not in m["sampled"]
    assert gate.judge(m, GateThresholds())["passed"]
    assert gate.judge(m, GateThresholds(0.0, 0.0, 0.0, max_crps_z=0.0))["checks"]["crps_z"]


def test_a_planted_precision_error_fails(tiny):
    perturbed = copy.deepcopy(tiny)
    with torch.no_grad():  # a "precision" that biases every component's location by 0.02 (scaled units)
        perturbed.head.loc_proj.bias.add_(0.02)
    m = quality_gate.evaluate_models(tiny, perturbed, SMALL)
    verdict = gate.judge(m, GateThresholds())
    assert not verdict["passed"]
    assert m["precision"]["z_mean_mean"] > GateThresholds.z_shift_mean
    assert verdict["checks"] == {
        "z_mean_mean": False,
        "z_aggregate_mean": False,
        "flip_rate": False,
        "mae_change_pct": False,
        "crps_z": True,  # this shift happens to lower the random model's CRPS: an improvement never fails
    }
    assert m["precision"]["crps_z"] < 0
    # the same shift, drawn with the fp32 run's random numbers, moves the aggregate by the same amount
    assert m["sampled"]["z_aggregate_mean"] == pytest.approx(m["precision"]["z_aggregate_mean"], rel=0.2)


# -- the exact CRPS row ------------------------------------------------------------------------


def _gate_contexts(settings):
    """The gate's distinct contexts with their next values, each series in time order: listed by a
    backtest with a model-free forecaster, built from the data as the plan builds them (pct_1..pct_l)."""
    prices = {s: datasets.load(s) for s in settings.symbols}
    bt = backtest(
        prices,
        symbols=list(settings.symbols),
        num_simulations=settings.num_simulations,
        forecaster=lambda contexts: np.zeros(len(contexts)),
        profile=settings.profile,
    )
    table = bt.forecasts.drop_duplicates(["symbol", "key", "context_end"])
    table = table.assign(key_order=table["key"].map(PRICE_KEYS.index))
    contexts, next_values = [], []
    for symbol, key, end in table.sort_values(["symbol", "key_order", "context_end"])[
        ["symbol", "key", "context_end"]
    ].itertuples(index=False):
        series = percent_changes(prices[symbol][key].to_numpy())[1:].astype(np.float32)
        contexts.append(series[:end])
        next_values.append(series[end] if end < len(series) else np.nan)
    return contexts, np.array(next_values, dtype=np.float64)


def _direct_crps(model, contexts, next_values):
    result = ForecastEngine(model, estimator="exact").forecast(contexts)
    return result.scores(next_values[:, None])["crps"][:, 0]


def _doubled_scale(model):
    """A 'precision' that predicts every mixture component twice as wide (same locations)."""
    broken = copy.deepcopy(model)
    head_forward = broken.head.forward

    def forward(features):
        weights, df, loc, scale = head_forward(features)
        return weights, df, loc, 2.0 * scale

    broken.head.forward = forward
    return broken


def test_the_gate_crps_equals_a_direct_recomputation_from_the_engine(tiny):
    bf16 = convert_precision(copy.deepcopy(tiny), "bf16")
    p = quality_gate.evaluate_models(tiny, bf16, SMALL)["precision"]
    contexts, next_values = _gate_contexts(SMALL)
    ref, cand = _direct_crps(tiny, contexts, next_values), _direct_crps(bf16, contexts, next_values)
    known = np.isfinite(next_values)
    difference = (cand - ref)[known]
    assert p["crps_forecasts"] == known.sum() == 32
    assert p["crps_fp32"] == pytest.approx(ref[known].mean(), rel=1e-9)
    assert p["crps_reduced"] == pytest.approx(cand[known].mean(), rel=1e-9)
    assert p["crps_change"] == pytest.approx(difference.mean(), rel=1e-9)
    assert p["crps_change_se"] == pytest.approx(newey_west_standard_error(difference), rel=1e-9)
    assert p["crps_z"] == pytest.approx(p["crps_change"] / p["crps_change_se"])
    # z is the Diebold-Mariano statistic of the two CRPS series before its HLN factor sqrt((n - 1) / n)
    dm = diebold_mariano(cand[known], ref[known])
    assert dm.statistic == pytest.approx(p["crps_z"] * math.sqrt(31 / 32), rel=1e-9)


def test_a_doubled_predictive_scale_fails_by_the_crps_alone(tiny):
    m = quality_gate.evaluate_models(tiny, _doubled_scale(tiny), SMALL)
    p = m["precision"]
    # the locations, so the mean, are untouched and the aggregate barely moves: only the CRPS sees it
    assert p["z_mean_max"] == 0.0 and p["flips"] == 0
    assert p["crps_reduced"] > p["crps_fp32"] and p["crps_z"] > GateThresholds.max_crps_z
    verdict = gate.judge(m, GateThresholds())
    assert not verdict["passed"]
    assert verdict["checks"] == {
        "z_mean_mean": True,
        "z_aggregate_mean": True,
        "flip_rate": True,
        "mae_change_pct": True,
        "crps_z": False,
    }
    assert gate.judge(m, GateThresholds(max_crps_z=2 * p["crps_z"]))["passed"]
    # a change detectable by many forecasts but below the practical size passes
    negligible = {**m, "precision": {**p, "crps_change_pct": 0.05}}
    assert gate.judge(negligible, GateThresholds())["checks"]["crps_z"]
    assert not gate.judge(negligible, GateThresholds(min_crps_change_pct=0.01))["checks"]["crps_z"]


def test_a_result_stored_before_the_crps_row_loads_and_is_judged_as_before(tiny_dir):
    result = run_quality_gate(tiny_dir, "bf16", LOOSE, SMALL)
    old = copy.deepcopy(json.loads(Path(result["path"]).read_text()))
    for name in CRPS_FIELDS:
        del old["metrics"]["precision"][name]
    del old["checks"]["crps_z"], old["thresholds"]["max_crps_z"]
    Path(result["path"]).write_text(json.dumps(old))
    stored = gate.find_result(tiny_dir / "model.safetensors", "bf16")
    assert stored is not None and stored["passed"]
    verdict = gate.judge(stored["metrics"], GateThresholds(**stored["thresholds"]))
    assert verdict["checks"] == stored["checks"] and set(verdict["checks"]) == {
        "z_mean_mean",
        "z_aggregate_mean",
        "flip_rate",
        "mae_change_pct",
    }
    assert "CRPS" not in format_report(stored) and "**PASS**" in format_report(stored)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tiny_dir, precision="bf16")


# -- the whole gate, storage and warnings ---------------------------------------------------


def test_bf16_passes_loose_thresholds_then_loads_silently(tiny_dir):
    result = run_quality_gate(tiny_dir, "bf16", LOOSE, SMALL)
    p = result["metrics"]["precision"]
    assert result["passed"] and result["gate_version"] == gate.GATE_VERSION
    assert 0.0 < p["z_mean_mean"] <= p["z_mean_max"]
    stored = tiny_dir / "quality" / "bf16.json"  # a writable folder: beside the weights
    assert result["path"] == str(stored) and json.loads(stored.read_text())["passed"] is True
    report = format_report(result)
    assert "**PASS**" in report and "maxdiff" in report and "noise floor" in report
    crps_row = next(line for line in report.splitlines() if "mean CRPS" in line)
    assert f"mean CRPS {p['crps_fp32']:.6g} -> {p['crps_reduced']:.6g} (" in crps_row
    assert f"z = {p['crps_z']:.2f})" in crps_row and "| z <= 50 or change <= 0.1 % | yes |" in crps_row
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tiny_dir, precision="bf16")


def test_deliberately_tight_thresholds_fail_and_loading_then_warns(tiny_dir):
    result = run_quality_gate(
        tiny_dir, "int8", GateThresholds(z_shift_mean=1e-12, flip_rate=0.5, mae_change_pct=50.0), SMALL
    )
    assert not result["passed"]
    assert result["checks"] == {
        "z_mean_mean": False,
        "z_aggregate_mean": False,
        "flip_rate": True,
        "mae_change_pct": True,
        "crps_z": True,
    }
    assert "**FAIL**" in format_report(result)
    with pytest.warns(gate.UngatedPrecisionWarning, match="failed the quality gate"):
        load_model(tiny_dir, precision="int8")


def test_results_for_bundled_weights_go_to_the_user_cache(tiny_dir, tmp_path, monkeypatch):
    from totowalk.model import checkpoint

    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", tiny_dir.parent)  # pretend tiny_dir is shipped
    result = run_quality_gate(tiny_dir, "fp16", LOOSE, SMALL)
    fingerprint = gate.weights_fingerprint(tiny_dir / "model.safetensors")
    assert result["path"] == str(tmp_path / "cache" / "quality" / f"{fingerprint[:16]}-fp16.json")
    assert not (tiny_dir / "quality").exists()
    assert gate.find_result(tiny_dir / "model.safetensors", "fp16")["passed"]


def test_changed_weights_or_an_older_gate_do_not_reuse_a_result(tiny_dir):
    result = run_quality_gate(tiny_dir, "bf16", LOOSE, SMALL)
    weights, path = tiny_dir / "model.safetensors", Path(result["path"])
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "gate_version": 1}))  # the relative-error gate
    assert gate.find_result(weights, "bf16") is None
    with pytest.warns(gate.UngatedPrecisionWarning, match="has no quality-gate result"):
        load_model(tiny_dir, precision="bf16")
    path.write_text(json.dumps(stored))
    assert gate.find_result(weights, "bf16")["passed"]
    save_checkpoint(convert_precision(build_model(TotoConfig.preset("toto-tiny"), seed=1), "fp32"), tiny_dir)
    assert gate.find_result(weights, "bf16") is None


def test_quality_command_exit_codes_and_json(tiny_dir, capsys):
    assert (
        cli_main(
            [
                "quality",
                "--model",
                str(tiny_dir),
                "--precision",
                "fp16",
                "--max-flip-rate",
                "50",
                "--max-mae-change",
                "50",
                *SMALL_ARGS,
            ]
        )
        == 0
    )
    assert "| z-shift of the mean: mean over contexts |" in capsys.readouterr().out
    code = cli_main(
        ["quality", "--model", str(tiny_dir), "--precision", "fp16", "--max-z-shift", "1e-12", "--json", *SMALL_ARGS]
    )
    captured = capsys.readouterr()
    assert code == 1 and "FAIL" in captured.err
    result = json.loads(captured.out)
    assert result["checks"]["z_mean_mean"] is False and result["settings"]["floor_seed"] == 1
    assert result["thresholds"]["max_crps_z"] == 3.0 and set(CRPS_FIELDS) <= set(result["metrics"]["precision"])
    assert set(result["metrics"]) == {
        "contexts",
        "signal_z_median",
        "precision",
        "noise_floor",
        "sampled",
        "sampled_vs_floor",
    }


def test_bad_gate_requests_are_named(tiny_dir):
    with pytest.raises(ValueError, match="precision must be one of"):
        run_quality_gate(tiny_dir, "fp32", settings=SMALL)
    with pytest.raises(ValueError, match="num_simulations"):
        GateSettings(num_simulations=0)
    with pytest.raises(ValueError, match="floor_seed != seed"):
        GateSettings(seed=3, floor_seed=3)


def test_a_result_shipped_beside_bundled_weights_is_read(tiny_dir, monkeypatch):
    from totowalk.model import checkpoint

    run_quality_gate(tiny_dir, "bf16", LOOSE, SMALL)  # written beside (not bundled yet)
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", tiny_dir.parent)
    paths = gate.result_paths(tiny_dir / "model.safetensors", "bf16")
    assert paths[0] == tiny_dir / "quality" / "bf16.json"
    assert gate.result_paths(tiny_dir / "model.safetensors", "bf16", for_writing=True) == paths[1:]
    assert gate.find_result(tiny_dir / "model.safetensors", "bf16")["passed"]


@pytest.mark.parametrize("precision", ["fp16", "bf16", "int8"])
def test_shipped_toto_mini_results_are_current_and_agree_with_their_figures(precision):
    result = gate.find_result(WEIGHTS_DIR / "toto-mini" / "model.safetensors", precision)
    assert result is not None, f"no current gate result shipped for toto-mini {precision}"
    assert result["settings"] == json.loads(json.dumps(dataclasses.asdict(GateSettings())))  # the default evaluation
    verdict = gate.judge(result["metrics"], GateThresholds(**result["thresholds"]))
    assert verdict["passed"] == result["passed"] and verdict["checks"] == result["checks"]
    assert result["metrics"]["noise_floor"]["z_mean_mean"] > 0
