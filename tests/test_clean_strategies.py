"""Clean-profile strategies: one hand-computable case per fixed defect, and walk-forward fitting
that never looks at the evaluated day."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from totowalk.backtest.profiles.clean.strategies import (
    ALWAYS_ON_GRID,
    MAXDIFF_GRID,
    CleanStrategyInputs,
    clean_best_strategy,
    clean_limit_order_profit,
    evaluate_clean_strategies,
)


def _inputs(
    cp,
    ca,
    *,
    hp=None,
    lp=None,
    ha=None,
    la=None,
    oa=None,
    crypto=False,
    fee=0.0,
    spread=0.0,
    band=None,
    hp_own=None,
    lp_own=None,
    **kw,
):
    cp = np.atleast_2d(np.asarray(cp, dtype=float))
    ca = np.atleast_2d(np.asarray(ca, dtype=float))
    like = lambda v, default: np.broadcast_to(np.asarray(default if v is None else v, dtype=float), cp.shape).copy()  # noqa: E731
    hp, lp = like(hp, 0.01), like(lp, -0.01)
    return CleanStrategyInputs(
        cp=cp,
        ca=ca,
        hp=hp,
        lp=lp,
        ha=like(ha, 0.005),
        la=like(la, -0.005),
        oa=like(oa, 0.0),
        hp_own=like(hp_own, hp),
        lp_own=like(lp_own, lp),
        band=like(band, 0.0),
        is_crypto=np.full(cp.shape[0], crypto),
        fee=fee,
        spread=spread,
        **kw,
    )


def _random(seed, s=4, d=6, crypto=None, fill_model="adverse"):
    rng = np.random.default_rng(seed)
    n = lambda scale: rng.normal(0.0, scale, size=(s, d))  # noqa: E731
    ca, oa = n(0.01), n(0.004)
    return CleanStrategyInputs(
        cp=n(0.01),
        hp=np.abs(n(0.01)),
        lp=-np.abs(n(0.01)),
        ca=ca,
        oa=oa,
        ha=np.maximum(ca, oa) + np.abs(n(0.01)),
        la=np.minimum(ca, oa) - np.abs(n(0.01)),
        hp_own=n(0.01),
        lp_own=n(0.01),
        band=np.abs(n(0.005)),
        is_crypto=(rng.random(s) < 0.5) if crypto is None else np.full(s, crypto),
        fee=0.0005,
        spread=0.0004,
        next_hp=np.full(s, 0.011),
        next_lp=np.full(s, -0.009),
        last_close=np.full(s, 100.0),
        fill_model=fill_model,
    )


def test_signals_are_applied_to_the_return_they_forecast_with_stated_costs():
    # defects 2, 4, 5, 9: aligned returns; cost = |position change| * (fee + spread / 2), no 0.523 factor
    out = evaluate_clean_strategies(_inputs([1.0, -1.0, 0.0], [0.01, -0.02, 0.03], fee=0.001, spread=0.002))
    unit = 0.001 + 0.001
    np.testing.assert_allclose(out["simple_strategy_daily_returns"][0], [0.01 - unit, 0.02 - 2 * unit, 0.0 - unit])
    np.testing.assert_allclose(out["simple_strategy_turnover"], [4.0 / 3.0])
    # defect 8: compounded total
    expected_total = (1 + 0.01 - unit) * (1 + 0.02 - 2 * unit) * (1 - unit) - 1
    np.testing.assert_allclose(out["simple_strategy_return"], [expected_total])


def test_buy_and_hold_uses_one_position_path_and_final_day_is_last_day():
    # defects 6 and 7
    ca = [0.01, -0.02, 0.03]
    out = evaluate_clean_strategies(_inputs([-1.0, -1.0, -1.0], ca, fee=0.001))
    daily = np.array([0.01 - 0.001, -0.02, 0.03])
    np.testing.assert_allclose(out["buy_hold_daily_returns"][0], daily)
    np.testing.assert_allclose(out["buy_hold_return"], [np.prod(1 + daily) - 1])
    np.testing.assert_allclose(out["buy_hold_sharpe"], [daily.mean() / daily.std(ddof=1) * math.sqrt(252)])
    np.testing.assert_allclose(out["buy_hold_finalday"], [0.03])
    np.testing.assert_allclose(out["highlow_finalday_return"], out["highlow_daily_returns"][:, -1])


def test_crypto_never_shorts_anywhere():
    inp = _random(3, s=6, crypto=True)
    inp.cp[:] = -np.abs(inp.cp)  # every forecast bearish
    inp.band[:] = 0.0
    out = evaluate_clean_strategies(inp)
    for prefix in ("simple_strategy", "all_signals_strategy", "unprofit_shutdown", "ci_guard"):
        assert (out[f"{prefix}_positions"] >= 0).all(), prefix
    for prefix in ("entry_takeprofit", "highlow"):
        assert (out[f"{prefix}_daily_returns"] == 0).all(), prefix
    assert (out["maxdiff_positions"] >= 0).all()
    assert (out["maxdiffalwayson_sell_contribution"] == 0).all()
    assert (out["maxdiffalwayson_filled_sell_trades"] == 0).all()


def test_entry_takeprofit_zero_forecast_is_flat_and_round_trip_cost():
    # defect 12; a traded day is a round trip: 2 * (fee + spread / 2)
    out = evaluate_clean_strategies(_inputs([0.0, 0.01], [0.02, 0.02], hp=0.015, ha=0.01, fee=0.001))
    np.testing.assert_allclose(out["entry_takeprofit_daily_returns"][0], [0.0, 0.02 - 0.002])


def test_kernel_unhit_target_closes_at_the_real_close():
    # defect 13: bought at -1 %, high target 2 % not reached, close -3 %: a 2 % loss (legacy: +2 %)
    long = clean_limit_order_profit(-0.03, 0.0, 0.01, -0.015, 0.02, -0.01, 1.0, 0.0)
    assert long == pytest.approx(-0.02)
    # sold at +1 %, low target -2 % not reached, close -0.5 %: a 1.5 % gain (legacy: -1.5 %)
    short = clean_limit_order_profit(-0.005, 0.0, 0.015, -0.01, 0.01, -0.02, -1.0, 0.0)
    assert short == pytest.approx(0.015)


def test_both_limits_inside_the_bar_book_the_adverse_order():
    # buy -1 %, sell +2 %, the bar spans -3 % .. +3 % and closes at 0: which came first is unknown,
    # so the entry fills and the position closes at the close (the optimistic rule books 3 %)
    args = (0.0, 0.0, 0.03, -0.03, 0.02, -0.01)
    assert clean_limit_order_profit(*args, 1.0, 0.001) == pytest.approx(0.01 - 0.002)
    assert clean_limit_order_profit(*args, 1.0, 0.001, "optimistic") == pytest.approx(0.03 - 0.002)
    # a close beyond the exit proves the exit filled after the entry: capped at the limit
    assert clean_limit_order_profit(0.025, 0.0, 0.03, -0.03, 0.02, -0.01, 1.0, 0.0) == pytest.approx(0.03)
    # short leg: sold at +2 %, cover at -1 %, close +0.5 %: covered at the close
    assert clean_limit_order_profit(0.005, 0.0, 0.03, -0.03, 0.02, -0.01, -1.0, 0.0) == pytest.approx(0.015)


def test_gap_fills_at_the_open_and_the_whole_bar_follows():
    # the bar opens at -2 %, below the buy limit at -1 %: bought at the open, and the high of +3 %
    # came after it, so the sell limit at +2 % filled
    assert clean_limit_order_profit(0.0, -0.02, 0.03, -0.03, 0.02, -0.01, 1.0, 0.0) == pytest.approx(0.04)
    # opens at +2.5 % above the sell limit at +2 %: sold at the open, covered at -1 %
    assert clean_limit_order_profit(0.0, 0.025, 0.03, -0.03, 0.02, -0.01, -1.0, 0.0) == pytest.approx(0.035)
    # opened through the entry but the exit was never traded through: closed at the close
    assert clean_limit_order_profit(0.01, -0.02, 0.015, -0.03, 0.02, -0.01, 1.0, 0.0) == pytest.approx(0.03)


def test_inputs_are_not_modified():
    # defect 11
    inp = _random(4)
    before = {k: getattr(inp, k).copy() for k in ("cp", "hp", "lp", "ca", "ha", "la", "band")}
    evaluate_clean_strategies(inp)
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(inp, k), v, err_msg=k)


def test_unprofit_shutdown_day_zero_follows_forecast():
    # defect 17: day 0 short forecast -> short (legacy: always long); wrong day -> flat next day
    out = evaluate_clean_strategies(_inputs([-0.01, 0.01, 0.01, 0.01], [0.02, 0.01, -0.01, 0.01]))
    # day 1: day 0 was wrong -> flat; day 2: after a flat day follow the forecast; day 3: day 2 wrong -> flat
    np.testing.assert_array_equal(out["unprofit_shutdown_positions"][0], [-1.0, 0.0, 1.0, 0.0])


def test_constant_series_has_an_undefined_sharpe():
    # defect 18: legacy gives ~1e17 for seven days of 0.1 (round-off leaves a tiny std); a neutral 0
    # would hide a strategy that loses the same amount every day
    const = evaluate_clean_strategies(_inputs([1.0] * 7, [0.1] * 7, fee=0.0))
    np.testing.assert_allclose(const["simple_strategy_daily_returns"][0], [0.1] * 7)
    assert np.isnan(const["simple_strategy_sharpe"][0]) and const["simple_strategy_avg_daily_return"][0] > 0
    varied = evaluate_clean_strategies(_inputs([1.0] * 7, [0.1] * 6 + [0.2], fee=0.0))
    assert varied["simple_strategy_sharpe"][0] > 0.0


def test_bad_input_names_field_and_row():
    # defects 21 and 22
    with pytest.raises(ValueError, match=r"ca has a non-finite value at simulation row 1, day 2"):
        ca = np.zeros((2, 3))
        ca[1, 2] = np.nan
        _inputs(np.zeros((2, 3)), ca)
    with pytest.raises(ValueError, match=r"hp must have shape \(1, 3\)"):
        dataclasses.replace(_inputs([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), hp=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="fee must be >= 0"):
        _inputs([0.0], [0.0], fee=-0.1)


def test_best_strategy_ignores_nan_and_breaks_ties_in_stated_order():
    # defect 19
    means = {
        "simple_strategy_return": 0.01,
        "buy_hold_return": 0.01,
        "maxdiff_return": float("nan"),
        "unprofit_shutdown_return": 0.005,
        "maxdiffalwayson_return": -0.2,
    }
    assert clean_best_strategy(means) == "buy_hold"
    means["maxdiffalwayson_return"] = 0.02
    assert clean_best_strategy(means) == "maxdiffalwayson"
    assert clean_best_strategy({"maxdiff_return": float("nan")}) is None


# ---------------------------------------------------------------------------------------------
# Walk-forward offsets (defect 1)


@pytest.mark.parametrize("day", [1, 3, 5])
def test_walk_forward_fit_never_uses_the_evaluated_day(day):
    inp = _random(7, s=5)
    base = evaluate_clean_strategies(inp)
    perturbed = _random(7, s=5)
    rng = np.random.default_rng(day)
    for name in ("ca", "ha", "la"):
        getattr(perturbed, name)[:, day:] += rng.normal(0.0, 0.02, size=(5, 6 - day))
    out = evaluate_clean_strategies(perturbed)
    for prefix in ("maxdiffprofit", "maxdiffalwayson"):
        for side in ("high", "low"):
            key = f"{prefix}_{side}_multiplier_by_day"
            # offsets used on days <= day were fitted on days < day: unchanged
            np.testing.assert_array_equal(out[key][:, : day + 1], base[key][:, : day + 1], err_msg=key)
    for key in ("maxdiff_daily_returns", "maxdiffalwayson_daily_returns", "simple_strategy_daily_returns"):
        np.testing.assert_array_equal(out[key][:, :day], base[key][:, :day], err_msg=key)
    # the perturbation did change something later, so the test can fail
    assert not np.array_equal(out["maxdiff_daily_returns"][:, day:], base["maxdiff_daily_returns"][:, day:])


def test_day_zero_uses_zero_offsets():
    out = evaluate_clean_strategies(_random(8))
    for key in (
        "maxdiffprofit_high_multiplier_by_day",
        "maxdiffprofit_low_multiplier_by_day",
        "maxdiffalwayson_high_multiplier_by_day",
        "maxdiffalwayson_low_multiplier_by_day",
    ):
        assert (out[key][:, 0] == 0.0).all(), key


def _loop_maxdiff_offsets(inp: CleanStrategyInputs, row: int, upto: int) -> tuple[float, float]:
    """Plain two-stage sweep over days < upto for one simulation (strict >, 0 must be beaten)."""
    g = lambda name: getattr(inp, name)[row, :upto]  # noqa: E731
    q = np.where(np.abs(g("hp")) > np.abs(g("lp")), 1.0, -1.0)
    if inp.is_crypto[row]:
        q = np.maximum(q, 0.0)
    q = np.where(g("lp") < g("hp"), q, 0.0)
    cost = inp.unit_cost[row]

    def total(x, z):
        return float(
            np.sum(
                clean_limit_order_profit(
                    g("ca"), g("open_move"), g("ha"), g("la"), g("hp") + x, g("lp") + z, q, cost, inp.fill_model
                )
            )
        )

    best, best_x = total(0.0, 0.0), 0.0
    for x in MAXDIFF_GRID:
        if total(x, 0.0) > best:
            best, best_x = total(x, 0.0), float(x)
    best_z = 0.0
    for z in MAXDIFF_GRID:
        if total(best_x, z) > best:
            best, best_z = total(best_x, z), float(z)
    return best_x, best_z


def _loop_always_on_offsets(inp: CleanStrategyInputs, row: int, upto: int) -> tuple[float, float]:
    g = lambda name: getattr(inp, name)[row, :upto]  # noqa: E731
    cost = inp.unit_cost[row]
    best, best_xz = None, (0.0, 0.0)
    for x in ALWAYS_ON_GRID:
        for z in ALWAYS_ON_GRID:
            bar = (g("ca"), g("open_move"), g("ha"), g("la"), g("hp") + x, g("lp") + z)
            legs = clean_limit_order_profit(*bar, 1.0, cost, inp.fill_model)
            if not inp.is_crypto[row]:
                legs = legs + clean_limit_order_profit(*bar, -1.0, cost, inp.fill_model)
            value = float(np.sum(legs))
            if x == 0.0 and z == 0.0:
                zero = value
            if best is None or value > best:
                best, best_xz = value, (float(x), float(z))
    return best_xz if best > zero else (0.0, 0.0)


@pytest.mark.parametrize("fill_model", ["adverse", "optimistic"])
def test_walk_forward_offsets_equal_a_plain_loop(fill_model):
    inp = _random(11, s=2, d=4, fill_model=fill_model)
    out = evaluate_clean_strategies(inp)
    for row in range(2):
        for day in range(5):  # day 4 = offsets reported for the next (unseen) day
            md = _loop_maxdiff_offsets(inp, row, day)
            got_md = (
                out["maxdiffprofit_high_multiplier_by_day"][row, day]
                if day < 4
                else out["maxdiffprofit_profit_high_multiplier"][row],
                out["maxdiffprofit_low_multiplier_by_day"][row, day]
                if day < 4
                else out["maxdiffprofit_profit_low_multiplier"][row],
            )
            assert got_md == pytest.approx(md, abs=1e-15), (row, day)
        for day in (2, 4):
            ao = _loop_always_on_offsets(inp, row, day)
            got_ao = (
                out["maxdiffalwayson_high_multiplier_by_day"][row, day]
                if day < 4
                else out["maxdiffalwayson_high_multiplier"][row],
                out["maxdiffalwayson_low_multiplier_by_day"][row, day]
                if day < 4
                else out["maxdiffalwayson_low_multiplier"][row],
            )
            assert got_ao == pytest.approx(ao, abs=1e-15), (row, day)


def _numpy_round_trip(y, o, h_act, l_act, h, low, q, cost, fill_model):
    """clean_fills.round_trip_profit written out in numpy, operation for operation."""
    h_c, l_c = np.clip(h, 0.0, 10.0), np.clip(low, -1.0, 0.0)
    long_entry = np.where(o < l_c, o, l_c)
    short_entry = np.where(o > h_c, o, h_c)
    if fill_model == "adverse":
        long_later, short_later = np.minimum(y, h_c), np.maximum(y, l_c)
    else:  # optimistic: after a later entry the exit fills whenever the bar traded through it
        long_later = np.where((h_c < h_act) | (y >= h_c), h_c, y)
        short_later = np.where((l_c > l_act) | (y <= l_c), l_c, y)
    long_exit = np.where(o < l_c, np.where(h_act > h_c, h_c, y), long_later)
    short_exit = np.where(o > h_c, np.where(l_act < l_c, l_c, y), short_later)
    long_leg = np.where(l_c > l_act, (long_exit - long_entry) - 2 * cost, 0.0) * np.maximum(q, 0.0)
    short_leg = np.where(h_c < h_act, (short_entry - short_exit) - 2 * cost, 0.0) * np.maximum(-q, 0.0)
    return long_leg + short_leg


@pytest.mark.parametrize("fill_model", ["adverse", "optimistic"])
def test_kernel_on_a_grid_equals_the_numpy_formula_bitwise(fill_model):
    # clean_limit_order_profit runs on torch CPU; its float64 values must be numpy's, bit for bit.
    rng = np.random.default_rng(21)
    y, ha, la, hp, lp = (rng.normal(scale=0.02, size=(7, 1, 1, 6)) for _ in range(5))
    o = rng.normal(scale=0.01, size=(7, 1, 1, 6))
    grid = np.linspace(-0.03, 0.03, 81)
    highs, lows = hp + grid[None, :, None, None], lp + grid[None, None, :, None]
    # the second case rounds targets and moves to 0.001, so exact ties exercise <, <=, >= and >
    cases = [(highs, lows, ha, la, o), tuple(np.round(a, 3) for a in (highs, lows, ha, la, o))]
    for q in (1.0, -1.0, rng.normal(size=(7, 1, 1, 1))):
        for h, low, h_act, l_act, op in cases:
            cost = rng.uniform(0, 1e-3, size=(7, 1, 1, 1))
            got = clean_limit_order_profit(y, op, h_act, l_act, h, low, q, cost, fill_model)
            assert got.dtype == np.float64 and got.shape == (7, 81, 81, 6)
            np.testing.assert_array_equal(got, _numpy_round_trip(y, op, h_act, l_act, h, low, q, cost, fill_model))
    assert (cases[1][0] == cases[1][2]).any() and (cases[1][1] == cases[1][3]).any()  # ties occurred


# --------------------------------------------------------------------- compiled walk-forward fits

from totowalk.backtest.profiles import native_grids  # noqa: E402
from totowalk.backtest.profiles.clean import strategies as clean_strategies  # noqa: E402

NATIVE_CLEAN = native_grids.native_search("clean_maxdiff_fit") is not None


def _tied(inp: CleanStrategyInputs) -> CleanStrategyInputs:
    """Targets and moves rounded to 0.001 (exact ties for <, <=, >= and between grid sums), one
    simulation that never fills (every sum 0: the first index, or the middle point, must win) and
    two that open exactly at a target."""
    fields = {f.name: getattr(inp, f.name) for f in dataclasses.fields(inp)}
    for name in ("cp", "hp", "lp", "ca", "ha", "la", "oa"):
        fields[name] = np.round(fields[name], 3)
    fields["hp"][0], fields["lp"][0] = 5.0, -0.9
    # opens exactly at a target (AlwaysOn's middle offset is 0): the gap tests o < l and o > h tie
    fields["oa"][1], fields["oa"][2] = fields["lp"][1], fields["hp"][2]
    fields["la"][1:3] = np.minimum(fields["la"][1:3], fields["oa"][1:3] - 0.001)
    fields["ha"][1:3] = np.maximum(fields["ha"][1:3], fields["oa"][1:3] + 0.001)
    return CleanStrategyInputs(**fields)


@pytest.mark.skipif(not NATIVE_CLEAN, reason="totowalk._C is not built")
@pytest.mark.parametrize("days", [1, 6, 9])  # 9: numpy sums 8 values or more pairwise
@pytest.mark.parametrize("rounded", [False, True])
@pytest.mark.parametrize("fill_model", ["adverse", "optimistic"])
def test_compiled_walk_forward_fits_equal_the_array_fits(days, rounded, fill_model):
    inp = _random(days, s=13, d=days, fill_model=fill_model)
    inp = _tied(inp) if rounded else inp
    q = clean_strategies._maxdiff_direction(inp)
    want_x, want_z = clean_strategies._maxdiff_fit(inp, q, slice(None))
    got_x, got_z = clean_strategies._maxdiff_fit_native(native_grids.native_search("clean_maxdiff_fit"), inp, q)
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_z, want_z)
    want_ix, want_iz = clean_strategies._always_on_fit(inp, slice(None))
    got_ix, got_iz = clean_strategies._always_on_fit_native(native_grids.native_search("clean_always_on_fit"), inp)
    np.testing.assert_array_equal(got_ix, want_ix)
    np.testing.assert_array_equal(got_iz, want_iz)
    if days > 1:  # the fits did move off zero somewhere
        assert (want_x != 0).any() and (want_ix != ALWAYS_ON_GRID.size // 2).any()


@pytest.mark.skipif(not NATIVE_CLEAN, reason="totowalk._C is not built")
@pytest.mark.parametrize("fill_model", ["adverse", "optimistic"])
def test_compiled_and_array_clean_strategies_give_identical_results(monkeypatch, fill_model):
    inp = _random(5, s=9, d=6, fill_model=fill_model)
    compiled = evaluate_clean_strategies(inp)
    monkeypatch.setattr(native_grids, "native_search", lambda name: None)
    array = evaluate_clean_strategies(inp)
    assert compiled.keys() == array.keys()
    for key in compiled:
        np.testing.assert_array_equal(compiled[key], array[key], err_msg=key)
