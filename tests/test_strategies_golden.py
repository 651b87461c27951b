"""Every legacy strategy / metric function against shared/golden/legacy_strategies.json (161 cases)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _golden import load_golden

from oracles import limit as strategies_limit
from oracles import maxdiff as maxdiff_oracle
from oracles import metrics as metrics_oracle
from oracles import signals as strategies_signals
from totowalk.backtest.profiles.legacy import calibration as strategies_inputs
from totowalk.backtest.profiles.legacy import maxdiff, metrics

CASES = load_golden("legacy_strategies.json")["cases"]


def _array(values, input_type: str | None):
    """Inputs recorded as float32 (torch / numpy float32) are rebuilt as float32, else kept as is."""
    dtype = np.float32 if input_type and "float32" in input_type else None
    return np.asarray(values, dtype=dtype)


def _evaluation_dict(ev: metrics.Evaluation) -> dict:
    returns = ev.returns
    out = {
        "total_return": ev.total_return,
        "avg_daily_return": ev.avg_daily_return,
        "annualized_return": ev.annualized_return,
        "sharpe_ratio": ev.sharpe_ratio,
        "returns": np.asarray(returns, dtype=np.float64).tolist(),
    }
    is_series = isinstance(returns, pd.Series) and len(returns) > 0
    out["returns_index"] = list(returns.index) if is_series else None
    return out


def _run_evaluate_strategy(inp, types, glob):
    returns = pd.Series(inp["actual_returns"], index=inp["actual_returns_index"], dtype=np.float64)
    ev = strategies_signals.evaluate_signal_strategy(
        _array(inp["strategy_signals"], types.get("strategy_signals")),
        returns,
        inp["trading_fee"],
        inp["trading_days_per_year"],
        glob["SPREAD"],
    )
    return _evaluation_dict(ev)


def _run_summed(inp, types, glob):
    return _evaluation_dict(metrics_oracle.evaluate_summed(inp["daily_returns"], inp["trading_days_per_year"]))


def _run_profile(inp, types, glob):
    avg, annual = metrics.return_profile(inp["daily_returns"], inp["trading_days_per_year"])
    return {"avg_daily_return": avg, "annualized_return": annual}


def _run_simple(inp, types, glob):
    return {
        "signals": strategies_signals.simple_signals(_array(inp["predictions"], "float32"), inp["is_crypto"]).tolist()
    }


def _run_all_signals(inp, types, glob):
    return {
        "signals": strategies_signals.all_signals(
            inp["close_pred"], inp["high_pred"], inp["low_pred"], inp["is_crypto"]
        ).tolist()
    }


def _run_buy_hold(inp, types, glob):
    return {"signals": strategies_signals.buy_hold_signals(inp["predictions"]).tolist()}


def _run_unprofit(inp, types, glob):
    return {
        "signals": strategies_signals.unprofit_shutdown_signals(
            inp["predictions"], inp["actual_returns"], inp["is_crypto"]
        ).tolist()
    }


def _run_ci_guard(inp, types, glob):
    signals = strategies_signals.ci_guard_signals(
        inp["close_predictions"], inp["ci_band"], inp["ci_multiplier"], inp["is_crypto"]
    )
    return {"signals": signals.tolist()}


def _run_calibrate(inp, types, glob):
    slope, intercept = strategies_inputs.calibrate_signal(
        _array(inp["predictions"], types.get("predictions")), _array(inp["actual_returns"], None)
    )
    return {"slope": slope, "intercept": intercept}


def _run_pre_process(inp, types, glob):
    frame = {k: np.asarray(v, dtype=np.float64) for k, v in inp["frame"].items()}
    frame[inp["key_to_predict"]] = strategies_inputs.legacy_percent_change(frame[inp["key_to_predict"]])
    return {"frame": {k: v.tolist() for k, v in frame.items()}}


def _run_kernel(inp, types, glob):
    values = maxdiff.limit_order_profit(
        inp["y_test_close"],
        inp["y_test_high"],
        inp["y_test_high_pred"],
        inp["y_test_low"],
        inp["y_test_low_pred"],
        inp["y_test_pred_trade"],
    )
    return {
        "profit_values": values.tolist(),
        "sum_via_calculate_trading_profit_torch_with_entry_buysell": float(values.sum()),
    }


def _maxdiff_args(inp):
    lp = inp["last_preds"]
    get = lambda key: None if key not in lp else np.asarray(lp[key], dtype=np.float32)  # noqa: E731
    return (
        get("close_actual_movement_values"),
        get("high_actual_movement_values"),
        get("low_actual_movement_values"),
        get("high_predictions"),
        get("low_predictions"),
        inp["simulation_data"],
        lp["high_predicted_price_value"],
        lp["low_predicted_price_value"],
        inp["trading_days_per_year"],
        inp["is_crypto"],
    )


def _run_maxdiff(inp, types, glob):
    kwargs = {}
    if "skip_invalid_forecasts" in inp:
        kwargs["skip_invalid_forecasts"] = inp["skip_invalid_forecasts"]
    result = maxdiff_oracle.evaluate_maxdiff(*_maxdiff_args(inp), **kwargs)
    ev = _evaluation_dict(result.evaluation)
    return {"evaluation": ev, "daily_returns": ev["returns"], "metadata": result.metadata}


def _run_always_on(inp, types, glob):
    result = maxdiff_oracle.evaluate_maxdiff_always_on(*_maxdiff_args(inp))
    ev = _evaluation_dict(result.evaluation)
    return {"evaluation": ev, "daily_returns": ev["returns"], "metadata": result.metadata}


_LIMIT_KEYS = ("close_predictions", "high_predictions", "low_predictions", "actual_close", "actual_high", "actual_low")


def _run_takeprofit(inp, types, glob):
    arrays = [_array(inp[k], types.get(k)) for k in _LIMIT_KEYS]
    result = strategies_limit.evaluate_entry_takeprofit(*arrays, inp["trading_fee"], inp["trading_days_per_year"])
    out = _evaluation_dict(result.evaluation)
    after = {k: a.tolist() for k, a in zip(_LIMIT_KEYS, arrays)}
    after["high_predictions"] = result.high_predictions_after.tolist()
    after["actual_close"] = result.close_actual_after.tolist()
    out["inputs_after_call"] = after
    return out


def _run_highlow(inp, types, glob):
    arrays = [_array(inp[k], types.get(k)) for k in _LIMIT_KEYS]
    ev = strategies_limit.evaluate_highlow(*arrays, inp["trading_fee"], inp["is_crypto"], inp["trading_days_per_year"])
    return _evaluation_dict(ev)


def _run_walk_forward(inp, types, glob):
    return metrics_oracle.walk_forward_stats(pd.DataFrame(inp["results_df"]))


# golden function name -> adapter calling the totowalk implementation
IMPLEMENTATIONS = {
    "evaluate_strategy": _run_evaluate_strategy,  # strategies_signals.evaluate_signal_strategy
    "_evaluate_daily_returns": _run_summed,  # metrics_oracle.evaluate_summed
    "_compute_return_profile": _run_profile,  # metrics.return_profile
    "simple_buy_sell_strategy": _run_simple,  # strategies_signals.simple_signals
    "all_signals_strategy": _run_all_signals,  # strategies_signals.all_signals
    "buy_hold_strategy": _run_buy_hold,  # strategies_signals.buy_hold_signals
    "unprofit_shutdown_buy_hold": _run_unprofit,  # strategies_signals.unprofit_shutdown_signals
    "confidence_guard_strategy": _run_ci_guard,  # strategies_signals.ci_guard_signals
    "calibrate_signal": _run_calibrate,  # strategies_inputs.calibrate_signal
    "pre_process_data": _run_pre_process,  # strategies_inputs.legacy_percent_change
    "calculate_profit_torch_with_entry_buysell_profit_values": _run_kernel,  # maxdiff.limit_order_profit
    "evaluate_maxdiff_strategy": _run_maxdiff,  # maxdiff_oracle.evaluate_maxdiff
    "evaluate_maxdiff_always_on_strategy": _run_always_on,  # maxdiff_oracle.evaluate_maxdiff_always_on
    "evaluate_entry_takeprofit_strategy": _run_takeprofit,  # strategies_limit.evaluate_entry_takeprofit
    "evaluate_highlow_strategy": _run_highlow,  # strategies_limit.evaluate_highlow
    "compute_walk_forward_stats": _run_walk_forward,  # metrics_oracle.walk_forward_stats
}

_SKIP_OUTPUT_KEYS = {"returns_type", "signals_dtype"}


def _differences(expected, got, rtol, atol, path=""):
    """Yield 'path: expected vs got' for every differing leaf (numbers compared with tolerances)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            yield f"{path}: expected a mapping, got {type(got).__name__}"
            return
        for key, value in expected.items():
            if key in _SKIP_OUTPUT_KEYS:
                continue
            if key not in got:
                yield f"{path}.{key}: missing"
                continue
            yield from _differences(value, got[key], rtol, atol, f"{path}.{key}")
    elif isinstance(expected, list):
        got = list(got) if got is not None else None
        if got is None or len(got) != len(expected):
            yield f"{path}: expected {len(expected)} items, got {None if got is None else len(got)}"
            return
        for i, (e, g) in enumerate(zip(expected, got)):
            yield from _differences(e, g, rtol, atol, f"{path}[{i}]")
    elif isinstance(expected, bool) or isinstance(expected, str) or expected is None:
        if expected != got:
            yield f"{path}: expected {expected!r}, got {got!r}"
    else:
        e, g = float(expected), float(got)
        if math.isnan(e) and math.isnan(g):
            return
        if not (e == g or abs(e - g) <= atol + rtol * abs(e)):
            yield f"{path}: expected {e!r}, got {g!r}"


def _drop_roundoff(outputs, fields):
    """Remove roundoff-sensitive fields anywhere in the output tree (asserted separately)."""
    if isinstance(outputs, dict):
        return {k: _drop_roundoff(v, fields) for k, v in outputs.items() if k not in fields}
    return outputs


def _roundoff_values(outputs, fields, found=None):
    found = [] if found is None else found
    if isinstance(outputs, dict):
        for k, v in outputs.items():
            if k in fields:
                found.append(v)
            else:
                _roundoff_values(v, fields, found)
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['function']}|{c['case_id']}")
def test_function_matches_golden(case):
    run = IMPLEMENTATIONS[case["function"]]
    expected = case["outputs"]
    got = run(case["inputs"], case.get("input_types", {}), case.get("globals", {}))
    tol = case["tolerance"]
    fields = set(case.get("roundoff_sensitive_fields", []))
    diffs = list(_differences(_drop_roundoff(expected, fields), got, tol["rtol"], tol["atol"]))
    # A constant series gives 0 or a huge ratio depending on the last bit: accept either (README).
    for value in _roundoff_values(got, fields):
        if not (value == 0.0 or abs(value) > 1e12):
            diffs.append(f"roundoff-sensitive field: got {value!r}, expected 0 or |x| > 1e12")
    assert not diffs, "\n".join(diffs)


def test_mapping_covers_every_golden_function():
    assert {c["function"] for c in CASES} <= set(IMPLEMENTATIONS)
