"""End-to-end legacy backtest against golden/legacy_simulation.json (every run and extra run).

The classic loop was run with injected forecasters ("last", "mean5"; extra_runs[4] returns
3072 spread samples per context), so ``backtest(..., forecaster=fn)`` must reproduce every
per-key forecast exactly and every result field within the README's tolerances.
"""

import math

import numpy as np
import pandas as pd
import pytest
from _golden import load_golden

from totowalk.backtest import backtest

# result-field prefixes computed in float32 by the original (README: rtol 1e-6, atol 1e-9)
FLOAT32_PREFIXES = ("entry_takeprofit_", "highlow_", "maxdiff", "calibrat")
STRATEGY_PREFIX = {
    "simple": "simple_strategy",
    "all_signals": "all_signals_strategy",
    "buy_hold": "buy_hold",
    "unprofit_shutdown": "unprofit_shutdown",
    "ci_guard": "ci_guard",
    "entry_takeprofit": "entry_takeprofit",
    "highlow": "highlow",
    "maxdiff": "maxdiff",
    "maxdiffalwayson": "maxdiffalwayson",
}
SAMPLES = 3072


@pytest.fixture(scope="module")
def golden():
    return load_golden("legacy_simulation.json")


def _all_runs():
    data = load_golden("legacy_simulation.json")
    return [("runs", i) for i in range(len(data["runs"]))] + [("extra_runs", i) for i in range(len(data["extra_runs"]))]


def last(contexts):
    return np.array([c[-1] for c in contexts])


def mean5(contexts):
    return np.array([np.mean(c[-5:].astype(np.float64)) for c in contexts])


def _forecaster(run):
    fn = {"last": last, "mean5": mean5}[run["forecaster"]]
    if run["sample_mode"] == "constant":
        return fn
    assert run["sample_mode"] == "linspread"
    # golden/README.md: samples float32(v + 0.01 * ((2 (i + 0.5) / n) - 1)), i = 0 .. n-1
    offsets = 0.01 * ((2 * (np.arange(SAMPLES) + 0.5) / SAMPLES) - 1)
    return lambda contexts: (fn(contexts)[:, None] + offsets[None, :]).astype(np.float32)


def _tolerance(field):
    if field.startswith(FLOAT32_PREFIXES):
        return 1e-6, 1e-9
    return 1e-9, 1e-12


def _diffs(got_row, want, skip):
    bad = []
    for field, expected in want.items():
        if field in skip:
            continue
        value = got_row[field]
        if isinstance(expected, str):
            ok = value == expected
        else:
            rtol, atol = _tolerance(field)
            ok = np.allclose(
                np.asarray(value, dtype=np.float64),
                np.asarray(expected, dtype=np.float64),
                rtol=rtol,
                atol=atol,
                equal_nan=True,
            )
            if field.endswith("multiplier"):
                ok = abs(value - expected) <= 1e-12
        if not ok:
            bad.append(f"{field}: got {value!r}, want {expected!r}")
    return bad


@pytest.mark.parametrize("group,index", _all_runs())
def test_golden_run(golden, group, index):
    run = golden[group][index]
    ohlc = pd.DataFrame({k: golden["input_ohlc"][k] for k in ("Open", "High", "Low", "Close")})
    bt = backtest(
        ohlc,
        symbol="IBM",
        num_simulations=run["num_simulations"],
        forecaster=_forecaster(run),
        profile="legacy",
        is_crypto=run["is_crypto"],
        fee=run["trading_fee"],
        spread=run["SPREAD"],
    )
    assert bt.profile == "legacy"
    sims = bt.simulations
    assert list(sims["simulation"]) == [s["sim_index"] for s in run["simulations"]]
    problems = []
    for sim in run["simulations"]:
        k = sim["sim_index"]
        row = sims.iloc[k]
        # forecasts: exact float32 values, in step order, per key
        f = bt.forecasts[bt.forecasts["simulation"] == k]
        for key, per_key in sim["per_key"].items():
            part = f[f["key"] == key].sort_values("step")
            np.testing.assert_array_equal(part["prediction"].to_numpy(), np.float32(per_key["predictions_7"]))
            np.testing.assert_array_equal(part["band"].to_numpy(), np.float32(per_key["bands_7"]))
            np.testing.assert_allclose(part["actual"].to_numpy(), per_key["validation_y_7"], rtol=1e-9)
            # y_i = pct_{i+1}: the working-frame row of a target is the row its context ends at
            assert list(part["context_end"]) == per_key["validation_y_row_index"]
        skip = {
            f"{STRATEGY_PREFIX[name]}_sharpe"
            for name, st in sim["strategies"].items()
            if "sharpe_ratio" in st.get("roundoff_sensitive_fields", [])
        }
        for field in skip:  # README: 0 (std exactly 0) or huge (round-off std) are both faithful
            assert row[field] == 0.0 or abs(row[field]) > 1e12, field
        problems += [f"sim {k} {p}" for p in _diffs(row, sim["result"], skip)]
    assert not problems, "\n".join(problems)

    summary = bt.summary.loc["IBM"]
    want = run["summary"]
    means = {k: v for k, v in want["means_over_simulations"].items()}
    huge = {f for f in means if f.endswith("_sharpe") and f in sims and any(abs(sims[f]) > 1e12)}
    problems = _diffs(summary, means, skip=huge)
    assert not problems, "\n".join(problems)
    for name, value in want["walk_forward_stats"].items():
        if not math.isfinite(value) or abs(value) < 1e12:
            assert summary[name] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), name
    assert summary["best_strategy"] == want["best_strategy"]
    assert bt.summary.loc["(all)", "best_strategy"] == want["best_strategy"]
