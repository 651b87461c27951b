"""The batched legacy strategies equal (a) the golden simulations' strategy outputs and (b) a plain
per-simulation loop over the single-case functions on random inputs (crypto, zeros, ties)."""

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
from totowalk.backtest.profiles import native_grids
from totowalk.backtest.profiles.legacy import maxdiff, metrics
from totowalk.backtest.profiles.legacy import strategies as _strategies
from totowalk.backtest.profiles.legacy.strategies import LegacyStrategyInputs, evaluate_legacy_strategies

SIM = load_golden("legacy_simulation.json")
RUNS = [("runs", i, r) for i, r in enumerate(SIM["runs"])] + [
    ("extra_runs", i, r) for i, r in enumerate(SIM["extra_runs"])
]


def _golden_inputs(run) -> LegacyStrategyInputs:
    """Stack a golden run's simulations into batch inputs (strategy inputs recorded by the harness)."""
    ohlc = {k: np.asarray(v, dtype=np.float64) for k, v in SIM["input_ohlc"].items() if k != "Date"}
    rows = []
    for sim in run["simulations"]:
        lp = sim["last_preds_before_strategies"]
        n = sim["n_rows"]
        rows.append(
            {
                "cp": lp["close_predictions"],
                "hp": lp["high_predictions"],
                "lp": lp["low_predictions"],
                "ca": lp["close_actual_movement_values"],
                "ha": lp["high_actual_movement_values"],
                "la": lp["low_actual_movement_values"],
                "r": sim["actual_returns_close_6"],
                "band": lp["close_ci_band"],
                "prev_close": ohlc["Close"][n - 8 : n - 2],
                "prev_high": ohlc["High"][n - 8 : n - 2],
                "prev_low": ohlc["Low"][n - 8 : n - 2],
                "high_predicted_price_value": lp["high_predicted_price_value"],
                "low_predicted_price_value": lp["low_predicted_price_value"],
                "is_crypto": sim["is_crypto"],
                "fee": sim["trading_fee"],
                "spread": run["SPREAD"],
            }
        )
    stacked = {k: np.asarray([row[k] for row in rows]) for k in rows[0]}
    stacked["cp"] = stacked["cp"].astype(np.float32)
    return LegacyStrategyInputs(**stacked, ci_multiplier=1.0)


def _diff_lines(expected: dict, got: dict, keys, rtol, atol):
    lines = []
    for key in keys:
        e = np.asarray(expected[key], dtype=np.float64)
        g = np.asarray(got[key], dtype=np.float64)
        if e.shape != g.shape or not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
            lines.append(f"{key}: expected {e.tolist()}, got {g.tolist()}")
    return lines


@pytest.mark.parametrize(
    "where,index,run", RUNS, ids=lambda v: str(v) if not isinstance(v, dict) else f"{v['forecaster']}"
)
def test_batch_equals_golden_simulations(where, index, run):
    out = evaluate_legacy_strategies(_golden_inputs(run))
    diffs = []
    for k, sim in enumerate(run["simulations"]):
        result = sim["result"]
        keys = [key for key in out if not key.endswith("_after")]
        assert not set(keys) - set(result), f"not result-row columns: {sorted(set(keys) - set(result))}"
        row = {key: out[key][k] for key in keys}
        # rtol 1e-6: the float32 kernel paths; the float64 paths agree far tighter
        diffs += [f"sim {k}: {line}" for line in _diff_lines(result, row, keys, 1e-6, 1e-9)]
        after = sim["last_preds_after_all_strategies"]
        diffs += [
            f"sim {k}: {line}"
            for line in _diff_lines(
                {
                    "high_predictions_after": after["high_predictions"],
                    "close_actual_movement_values_after": after["close_actual_movement_values"],
                },
                {
                    "high_predictions_after": out["high_predictions_after"][k],
                    "close_actual_movement_values_after": out["close_actual_movement_values_after"][k],
                },
                ["high_predictions_after", "close_actual_movement_values_after"],
                0.0,
                0.0,
            )
        ]
    assert not diffs, f"{where}[{index}]\n" + "\n".join(diffs)


@pytest.mark.parametrize(
    "where,index,run", RUNS, ids=lambda v: str(v) if not isinstance(v, dict) else f"{v['forecaster']}"
)
def test_walk_forward_stats_and_best_strategy_match_golden(where, index, run):
    frame = pd.DataFrame([sim["result"] for sim in run["simulations"]])
    summary = run["summary"]
    stats = metrics_oracle.walk_forward_stats(frame)
    expected = summary["walk_forward_stats"]
    assert set(stats) == set(expected)
    for key, value in expected.items():
        assert math.isclose(stats[key], value, rel_tol=1e-9, abs_tol=1e-12), key
    means = frame.select_dtypes(include=[np.number]).mean()
    assert metrics.best_strategy(means) == summary["best_strategy"]


def test_best_strategy_tie_order_and_maxdiff_sanitising():
    means = {c: 0.0 for c in metrics.BEST_STRATEGY_COLUMNS.values()}
    assert metrics.best_strategy(means) == "ci_guard"  # every tie resolves to the first label checked
    means["simple_strategy_return"] = 0.1
    assert metrics.best_strategy(means) == "simple"
    means["maxdiff_return"] = float("nan")  # a non-finite MaxDiff mean becomes -inf
    assert metrics.best_strategy(means) == "simple"
    means["all_signals_strategy_return"] = 0.2
    assert metrics.best_strategy(means) == "all_signals"
    with pytest.raises(KeyError, match="ci_guard_return"):
        metrics.best_strategy({"simple_strategy_return": 0.1})


# ---------------------------------------------------------------------------------------------
# Random inputs: the batch equals a per-simulation loop over the single-case functions.


def _random_inputs(seed: int, s: int) -> LegacyStrategyInputs:
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    moves = lambda scale: f32(rng.normal(0.0, scale, size=(s, 6)))  # noqa: E731
    cp, hp, lp, ca, ha, la = (moves(0.015) for _ in range(6))
    cp[rng.random((s, 6)) < 0.15] = 0.0  # zero forecasts
    # ties: forecasts equal to actuals (the 'last' forecaster produces these)
    tie = rng.random((s, 6)) < 0.2
    hp[tie], lp[tie] = ha[tie], la[tie]
    hp[:, 0] = np.where(rng.random(s) < 0.3, 0.0, hp[:, 0])
    band = f32(np.abs(rng.normal(0.0, 0.01, size=(s, 7))))
    band[rng.random(s) < 0.3] = 0.0
    closes = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, size=(s, 6)), axis=1)
    highs = closes * (1.0 + np.abs(rng.normal(0.0, 0.01, size=(s, 6))))
    lows = closes * (1.0 - np.abs(rng.normal(0.0, 0.01, size=(s, 6))))
    return LegacyStrategyInputs(
        cp=cp,
        hp=hp,
        lp=lp,
        ca=ca,
        ha=ha,
        la=la,
        r=ca.astype(np.float64) + rng.normal(0.0, 1e-4, size=(s, 6)) * (rng.random((s, 1)) < 0.5),
        band=band,
        prev_close=closes,
        prev_high=highs,
        prev_low=lows,
        high_predicted_price_value=100.0 * (1.0 + rng.normal(0.0, 0.01, size=s)),
        low_predicted_price_value=99.0 * (1.0 + rng.normal(0.0, 0.01, size=s)),
        is_crypto=rng.random(s) < 0.4,
        fee=np.where(rng.random(s) < 0.5, 0.0005, 0.0015),
        spread=np.where(rng.random(s) < 0.5, 1.0, 1.0008711461252937),
        ci_multiplier=0.8,
    )


def _loop_reference(inp: LegacyStrategyInputs, k: int) -> dict:
    """One simulation through the single-case functions, in the legacy order (§7)."""
    g = lambda name: getattr(inp, name)[k]  # noqa: E731
    crypto, fee, spread, days = (
        bool(g("is_crypto")),
        float(g("fee")),
        float(g("spread")),
        float(g("trading_days_per_year")),
    )
    prices = {
        "Close": np.r_[g("prev_close"), 0.0, 0.0],
        "High": np.r_[g("prev_high"), 0.0, 0.0],
        "Low": np.r_[g("prev_low"), 0.0, 0.0],
    }
    refs = (float(g("high_predicted_price_value")), float(g("low_predicted_price_value")))
    row = {}
    md = maxdiff_oracle.evaluate_maxdiff(g("ca"), g("ha"), g("la"), g("hp"), g("lp"), prices, *refs, days, crypto)
    ao = maxdiff_oracle.evaluate_maxdiff_always_on(
        g("ca"), g("ha"), g("la"), g("hp"), g("lp"), prices, *refs, days, crypto
    )
    for prefix, res in (("maxdiff", md), ("maxdiffalwayson", ao)):
        ev = res.evaluation
        row.update(
            {
                f"{prefix}_return": ev.total_return,
                f"{prefix}_sharpe": ev.sharpe_ratio,
                f"{prefix}_finalday_return": ev.returns[-1],
                f"{prefix}_avg_daily_return": ev.avg_daily_return,
                f"{prefix}_annual_return": ev.annualized_return,
            }
        )
        # the result row keeps the metadata except MaxDiff's trade counts / side / validity counts
        row.update(
            {
                key: value
                for key, value in res.metadata.items()
                if key.startswith(("maxdiffprofit_", "maxdiffalwayson_")) or key == "maxdiff_turnover"
            }
        )
    signals = {
        "simple_strategy": strategies_signals.simple_signals(g("cp"), crypto),
        "all_signals_strategy": strategies_signals.all_signals(g("cp"), g("hp"), g("lp"), crypto),
        "buy_hold": strategies_signals.buy_hold_signals(g("cp")),
        "unprofit_shutdown": strategies_signals.unprofit_shutdown_signals(g("cp"), g("r"), crypto),
        "ci_guard": strategies_signals.ci_guard_signals(g("cp"), g("band")[:6], inp.ci_multiplier, crypto),
    }
    for prefix, s in signals.items():
        ev = strategies_signals.evaluate_signal_strategy(s, pd.Series(g("r")), fee, days, spread)
        row.update(
            {
                f"{prefix}_return": ev.total_return,
                f"{prefix}_sharpe": ev.sharpe_ratio,
                f"{prefix}_finalday": float(s[-1]) * g("r")[-1] - 2 * fee * spread,
                f"{prefix}_avg_daily_return": ev.avg_daily_return,
                f"{prefix}_annual_return": ev.annualized_return,
            }
        )
    row["buy_hold_return"] = float(np.prod(1.0 + g("r")) - 1.0 - fee)
    row["buy_hold_finalday"] = g("r")[-1] - fee
    tp = strategies_limit.evaluate_entry_takeprofit(g("cp"), g("hp"), g("lp"), g("ca"), g("ha"), g("la"), fee, days)
    hl = strategies_limit.evaluate_highlow(
        g("cp"), tp.high_predictions_after, g("lp"), tp.close_actual_after, g("ha"), g("la"), fee, crypto, days
    )
    for prefix, ev, final in (("entry_takeprofit", tp.evaluation, "finalday"), ("highlow", hl, "finalday_return")):
        row.update(
            {
                f"{prefix}_return": ev.total_return,
                f"{prefix}_sharpe": ev.sharpe_ratio,
                f"{prefix}_{final}": ev.total_return / 6,
                f"{prefix}_avg_daily_return": ev.avg_daily_return,
                f"{prefix}_annual_return": ev.annualized_return,
            }
        )
    row["high_predictions_after"] = tp.high_predictions_after
    row["close_actual_movement_values_after"] = tp.close_actual_after
    return row


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_equals_per_simulation_loop(seed):
    inp = _random_inputs(seed, 12)
    out = evaluate_legacy_strategies(inp)
    diffs = []
    for k in range(inp.num_simulations):
        ref = _loop_reference(inp, k)
        missing = set(out) ^ set(ref)
        assert not missing, f"columns only on one side: {sorted(missing)}"
        for key, value in ref.items():
            e, g = np.asarray(value, np.float64), np.asarray(out[key][k], np.float64)
            # identical float paths: only float64 summation-order noise is allowed
            if e.shape != g.shape or not np.allclose(g, e, rtol=1e-12, atol=1e-15):
                diffs.append(f"sim {k} {key}: loop {e.tolist()}, batch {g.tolist()}")
    assert not diffs, "\n".join(diffs[:40])


def test_batch_handles_all_zero_forecasts_and_chunking(monkeypatch):
    from totowalk.backtest.profiles.legacy import strategies

    inp = _random_inputs(5, 7)
    for name in ("cp", "hp", "lp"):
        getattr(inp, name)[2] = 0.0
    monkeypatch.setattr(native_grids, "native_search", lambda name: None)  # the array searches...
    monkeypatch.setattr(strategies, "ALWAYS_ON_CHUNK", 3)  # ...in several chunks
    monkeypatch.setattr(strategies, "MAXDIFF_CHUNK", 2)
    out = evaluate_legacy_strategies(inp)
    ref = _loop_reference(inp, 2)
    for key in (
        "maxdiff_return",
        "maxdiffalwayson_high_multiplier",
        "maxdiffalwayson_low_multiplier",
        "simple_strategy_return",
        "highlow_return",
        "entry_takeprofit_return",
    ):
        assert out[key][2] == pytest.approx(ref[key], rel=1e-12, abs=1e-15), key
    assert out["simple_strategy_finalday"][2] == pytest.approx(
        (0.0 if inp.is_crypto[2] else -1.0) * inp.r[2, -1] - 2 * inp.fee[2] * inp.spread[2]
    )


def test_input_validation_names_the_field():
    inp = _random_inputs(0, 3)
    with pytest.raises(ValueError, match=r"band must have shape \(3, 7\)"):
        LegacyStrategyInputs(**{**_fields(inp), "band": np.zeros((3, 6))})
    with pytest.raises(ValueError, match=r"cp must have shape \(S, 6\)"):
        LegacyStrategyInputs(**{**_fields(inp), "cp": np.zeros((3, 7))})


def _fields(inp):
    return {name: getattr(inp, name) for name in inp.__dataclass_fields__}


def test_fused_always_on_legs_equal_the_kernel_bitwise():
    from totowalk.backtest.profiles.legacy import strategies

    inp = _random_inputs(9, 6)
    y, ha, la, hp, lp = (m[:, None, None, :] for m in strategies._adjusted_moves(inp))
    grid = maxdiff.ALWAYS_ON_GRID.astype(np.float32)
    highs, lows = hp + grid[None, :, None, None], lp + grid[None, None, :, None]
    buy, sell = (leg.numpy() for leg in strategies._always_on_legs(y, ha, highs, la, lows))
    np.testing.assert_array_equal(buy, maxdiff.limit_order_profit(y, ha, highs, la, lows, np.float32(1.0)))
    np.testing.assert_array_equal(sell, maxdiff.limit_order_profit(y, ha, highs, la, lows, np.float32(-1.0)))


def test_torch_day_sums_equal_the_numpy_kernel_bitwise():
    import torch

    rng = np.random.default_rng(11)
    # magnitudes spread over 8 decades so that a different summation order would round differently
    values = (rng.normal(size=(5, 81, 81, 6)) * 10.0 ** rng.integers(-6, 2, size=(5, 81, 81, 6))).astype(np.float32)
    np.testing.assert_array_equal(maxdiff.sum_days_f32(torch.from_numpy(values)).numpy(), maxdiff.sum_days_f32(values))


NATIVE_ALWAYS_ON = native_grids.native_search("always_on_search")
NATIVE_MAXDIFF = native_grids.native_search("maxdiff_search")


def _bits(array: np.ndarray) -> np.ndarray:
    return array.view(np.uint32) if array.dtype == np.float32 else array.view(np.uint64)


def _awkward_moves(seed: int, sims: int = 97) -> tuple[LegacyStrategyInputs, list[np.ndarray]]:
    """Random moves plus whole-grid ties (no fill anywhere: every total 0, the first offset wins),
    a NaN forecast and a NaN actual (NaN sums: the first one wins), infinities, signed zeros."""
    inp = _random_inputs(seed, sims)
    moves = [m.copy() for m in _strategies._adjusted_moves(inp)]
    y, h_act, l_act, h_pred, l_pred = moves
    h_pred[3], l_pred[3] = 50.0, -50.0
    h_pred[5, 2] = np.nan
    l_act[7, 4] = np.nan
    h_act[11, 0], l_pred[13, 5] = np.inf, -np.inf
    y[np.random.default_rng(seed).random(y.shape) < 0.1] = -0.0
    return inp, moves


@pytest.mark.skipif(NATIVE_ALWAYS_ON is None, reason="totowalk._C is not built")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_native_always_on_search_equals_the_torch_search_bitwise(seed):
    inp, moves = _awkward_moves(seed)
    want = _strategies._always_on_search(moves, inp.is_crypto)
    got = _strategies._always_on_search_native(NATIVE_ALWAYS_ON, moves, inp.is_crypto)
    for name, w, g in zip(("best_x", "best_z", "buy", "sell"), want, got):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        np.testing.assert_array_equal(_bits(g), _bits(w), err_msg=name)
    assert got[0][3] == 0 and got[1][3] == 0  # the all-tie simulation


@pytest.mark.skipif(NATIVE_MAXDIFF is None, reason="totowalk._C is not built")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_native_maxdiff_search_equals_the_array_search_bitwise(seed):
    inp, moves = _awkward_moves(seed)
    rng = np.random.default_rng(seed)
    q = rng.choice(np.array([-1.0, 0.0, 1.0], dtype=np.float32), size=moves[0].shape)
    want = _strategies._maxdiff_search(moves, q)
    got = _strategies._maxdiff_search_native(NATIVE_MAXDIFF, moves, q)
    for name, w, g in zip(("x_best", "z_best"), want, got):
        assert g.dtype == w.dtype == np.float64 and g.shape == w.shape, name
        np.testing.assert_array_equal(_bits(g), _bits(w), err_msg=name)
    assert (want[0] != 0).any() and (want[1] != 0).any()  # the sweeps did move some offsets


@pytest.mark.skipif(NATIVE_ALWAYS_ON is None, reason="totowalk._C is not built")
def test_native_grid_searches_name_bad_arguments():
    inp = _random_inputs(0, 4)
    y, h_act, l_act, h_pred, l_pred = _strategies._adjusted_moves(inp)
    grid = maxdiff.ALWAYS_ON_GRID.astype(np.float32)
    with pytest.raises(ValueError, match=r"low_pred must be a C-contiguous float32 array of shape \(4, 6\)"):
        NATIVE_ALWAYS_ON(y, h_act, l_act, h_pred, l_pred[:, :5].copy(), inp.is_crypto, grid, 0.0005)
    with pytest.raises(ValueError, match=r"is_crypto must be a bool array of shape \(4\)"):
        NATIVE_ALWAYS_ON(y, h_act, l_act, h_pred, l_pred, inp.is_crypto[:3], grid, 0.0005)
    with pytest.raises(ValueError, match=r"maxdiff_search: position must be a C-contiguous float32"):
        NATIVE_MAXDIFF(y, h_act, l_act, h_pred, l_pred, np.ones((4, 6)), grid, 0.0005)
    with pytest.raises(ValueError, match=r"grid must be a non-empty 1-D float32 array"):
        NATIVE_MAXDIFF(y, h_act, l_act, h_pred, l_pred, np.ones((4, 6), np.float32), grid[:0], 0.0005)
