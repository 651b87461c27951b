"""Replays: bars built from known intraday paths; every fill the clean profile books is one the
path's OHLC bar proves, never better than the path itself."""

from __future__ import annotations

import numpy as np
import pytest

from totowalk.backtest.profiles.clean.fills import round_trip_profit
from totowalk.backtest.profiles.clean.strategies import CleanStrategyInputs, evaluate_clean_strategies


def _paths(n=4000, ticks=24, seed=0):
    """Moves vs the previous close: column 0 is the open (gaps of ~0.5 %), the last the close."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.004, size=(n, ticks))
    steps[:, 0] = rng.normal(0.0, 0.005, size=n)
    return np.cumsum(steps, axis=1)


def _bar(paths):
    return paths[:, -1], paths[:, 0], paths.max(axis=1), paths.min(axis=1)  # y, o, H, L


def _execute(path, entry_limit, exit_limit, side, open_index=0):
    """A limit entry, then a limit exit on the other side, else out at the close, on one path.

    A limit fills at its price when the path crosses it, and at the tick when the path jumps
    through it at the open (tick ``open_index``; before it, e.g., the previous close). Returns
    (entered, P&L per unit)."""
    through = (lambda p, limit: p < limit) if side > 0 else (lambda p, limit: p > limit)
    exit_through = (lambda p, limit: p > limit) if side > 0 else (lambda p, limit: p < limit)
    hits = np.flatnonzero(through(path, entry_limit))
    if not hits.size:
        return False, 0.0
    start = hits[0]
    entry = path[start] if start <= open_index else entry_limit
    later = start + 1 + np.flatnonzero(exit_through(path[start + 1 :], exit_limit))
    if not later.size:
        exit_price = path[-1]
    else:
        exit_price = path[later[0]] if later[0] <= open_index else exit_limit
    return True, side * (exit_price - entry)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_round_trips_are_never_better_than_the_path(side):
    paths = _paths(seed=1 if side > 0 else 2)
    rng = np.random.default_rng(3)
    n = paths.shape[0]
    h, low = rng.uniform(0.0, 0.02, n), rng.uniform(-0.02, 0.0, n)
    y, o, high, lo = _bar(paths)
    booked = round_trip_profit(y, o, high, lo, h, low, side, 0.0)
    optimistic = round_trip_profit(y, o, high, lo, h, low, side, 0.0, "optimistic")
    entry, exit_ = (low, h) if side > 0 else (h, low)
    replay = [_execute(p, a, b, side) for p, a, b in zip(paths, entry, exit_)]
    entered = np.array([e for e, _ in replay])
    actual = np.array([v for _, v in replay])
    # the adverse-order path the bar allows: open, the exit side's extreme, the entry side's, close
    adverse_paths = np.stack([o, high, lo, y] if side > 0 else [o, lo, high, y], axis=1)
    adverse = np.array([_execute(p, a, b, side)[1] for p, a, b in zip(adverse_paths, entry, exit_)])
    np.testing.assert_array_equal(booked != 0, entered)  # booked exactly when the path entered
    np.testing.assert_allclose(booked, adverse, rtol=0, atol=1e-15)  # a P&L the bar allows
    assert (booked <= actual + 1e-15).all()  # never better than the path
    at_open = (o < low) if side > 0 else (o > h)
    np.testing.assert_allclose(booked[at_open], actual[at_open], rtol=0, atol=1e-15)  # gap entry: all known
    # the test can fail: both limits inside the bar happen, and the optimistic rule books more
    assert (booked < actual - 1e-6).sum() > 50
    assert (optimistic > actual + 1e-6).sum() > 50


def _one_day_inputs(paths, seed, crypto=False, fee=0.0, spread=0.0):
    """D = 1 windows (walk-forward offsets are 0 on a window's first day) with random forecasts,
    wrong-side ones included."""
    rng = np.random.default_rng(seed)
    n = paths.shape[0]
    y, o, high, lo = (a[:, None] for a in _bar(paths))
    col = lambda a, b: rng.uniform(a, b, (n, 1))  # noqa: E731
    return CleanStrategyInputs(
        cp=col(-0.01, 0.01),
        hp=col(-0.005, 0.02),
        lp=col(-0.02, 0.005),
        ca=y,
        ha=high,
        la=lo,
        oa=o,
        hp_own=col(-0.01, 0.01),
        lp_own=col(-0.01, 0.01),
        band=np.zeros((n, 1)),
        is_crypto=np.full(n, crypto),
        fee=fee,
        spread=spread,
    )


def test_take_profit_and_highlow_replay_exactly():
    paths = _paths(seed=4)
    inp = _one_day_inputs(paths, 5)
    out = evaluate_clean_strategies(inp)
    cp, hp, lp = inp.cp[:, 0], inp.hp[:, 0], inp.lp[:, 0]
    tp, hl = [], []
    for p, c, h, low in zip(paths, cp, hp, lp):
        side = 1.0 if c > 0 else -1.0
        # entry+take-profit: in at the previous close (0); the take-profit only above (long) /
        # below (short) that entry: a limit exit, as a round trip whose entry filled before the open
        target = h if side > 0 else low
        right_side = target > 0 if side > 0 else target < 0
        ext = np.concatenate([[0.0], p])  # the previous close, then the day's ticks
        tp.append(_execute(ext, side, target, side, open_index=1)[1] if right_side else side * p[-1])
        # highlow: a limit entry at the forecast low (long) / high (short), held to the close
        entered, value = _execute(p, low if side > 0 else h, np.inf if side > 0 else -np.inf, side)
        hl.append(value if entered else 0.0)
    np.testing.assert_allclose(out["entry_takeprofit_daily_returns"][:, 0], tp, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["highlow_daily_returns"][:, 0], hl, rtol=0, atol=1e-15)
    # the cases the rules exist for occurred
    assert ((cp > 0) & (hp <= 0)).any() and ((cp > 0) & (lp > inp.oa[:, 0])).any()


def test_maxdiff_and_always_on_replays_are_never_better_than_the_path():
    paths = _paths(seed=6)
    for crypto in (False, True):
        inp = _one_day_inputs(paths, 7, crypto=crypto)
        out = evaluate_clean_strategies(inp)
        h, low = np.clip(inp.hp[:, 0], 0, 10), np.clip(inp.lp[:, 0], -1, 0)
        long = np.array([_execute(p, a, b, 1.0)[1] for p, a, b in zip(paths, low, h)])
        short = np.array([_execute(p, a, b, -1.0)[1] for p, a, b in zip(paths, h, low)])
        q = out["maxdiff_positions"][:, 0]
        path_md = np.where(q > 0, long, np.where(q < 0, short, 0.0))
        assert (out["maxdiff_daily_returns"][:, 0] <= path_md + 1e-15).all()
        # AlwaysOn: two legs with their own capital, per unit of gross capital (crypto: one leg)
        path_ao = long if crypto else (long + short) / 2.0
        assert (out["maxdiffalwayson_daily_returns"][:, 0] <= path_ao + 1e-15).all()
        assert (out["maxdiffalwayson_turnover"] <= 2.0).all()


def test_costs_are_fee_plus_half_spread_per_unit_of_position_change():
    paths = _paths(n=1500, seed=8)
    free = evaluate_clean_strategies(_one_day_inputs(paths, 9))
    costly = evaluate_clean_strategies(_one_day_inputs(paths, 9, fee=0.0007, spread=0.0006))
    unit = 0.0007 + 0.0006 / 2
    prefixes = [k[: -len("_finalday_turnover")] for k in free if k.endswith("_finalday_turnover")]
    assert len(prefixes) == 9
    for prefix in prefixes:
        daily = f"{prefix}_daily_returns"
        changes = free[f"{prefix}_finalday_turnover"]
        np.testing.assert_allclose(
            costly[daily][:, 0], free[daily][:, 0] - unit * changes, rtol=0, atol=1e-15, err_msg=prefix
        )
        np.testing.assert_array_equal(costly[f"{prefix}_turnover"], changes)  # one day: the same
        assert changes.max() > 0, prefix  # every strategy traded somewhere


def test_reported_limit_prices_are_the_prices_used():
    rng = np.random.default_rng(10)
    s, d = 6, 6
    n = lambda scale: rng.normal(0.0, scale, size=(s, d))  # noqa: E731
    ca, oa = n(0.01), n(0.004)
    inp = CleanStrategyInputs(
        cp=n(0.01),
        hp=np.abs(n(0.01)),
        lp=-np.abs(n(0.01)),
        ca=ca,
        oa=oa,
        ha=np.maximum(ca, oa) + np.abs(n(0.01)),
        la=np.minimum(ca, oa) - np.abs(n(0.01)),
        hp_own=n(0.01),
        lp_own=n(0.01),
        band=np.zeros((s, d)),
        is_crypto=np.zeros(s, bool),
        fee=0.0,
        next_hp=np.array([0.01, -0.05, 0.02, 0.0, 0.012, 0.03]),
        next_lp=np.array([-0.01, 0.04, -0.002, 0.0, -0.011, -0.02]),
        last_close=np.full(s, 50.0),
    )
    out = evaluate_clean_strategies(inp)
    for prefix, x_key, z_key in (
        ("maxdiffprofit", "maxdiffprofit_profit_high_multiplier", "maxdiffprofit_profit_low_multiplier"),
        ("maxdiffalwayson", "maxdiffalwayson_high_multiplier", "maxdiffalwayson_low_multiplier"),
    ):
        high_target = np.clip(inp.next_hp + out[x_key], 0.0, 10.0)
        low_target = np.clip(inp.next_lp + out[z_key], -1.0, 0.0)
        np.testing.assert_array_equal(out[f"{prefix}_high_price"], 50.0 * (1.0 + high_target))
        np.testing.assert_array_equal(out[f"{prefix}_low_price"], 50.0 * (1.0 + low_target))
        # a high target below the close is placed at the close, never below it
        assert (out[f"{prefix}_high_price"] >= 50.0).all() and (out[f"{prefix}_low_price"] <= 50.0).all()
        assert out[f"{prefix}_high_price"][1] == 50.0 and out[f"{prefix}_low_price"][1] == 50.0


def test_an_expected_fill_does_not_depend_on_the_other_bars_of_the_call():
    # Both legs share one call of the bridge; a bar's booking is the same bits alone or in company
    y, o, high, low = _bar(_paths(600, seed=5))
    rng = np.random.default_rng(6)
    high_target, low_target = rng.uniform(-0.002, 0.012, y.size), rng.uniform(-0.012, 0.002, y.size)
    position = np.where(rng.random(y.size) < 0.5, 1.0, -1.0)
    sigma = np.full(y.size, 0.004 * np.sqrt(24))
    args = (y, o, high, low, high_target, low_target)
    together = round_trip_profit(*args, position, 0.0005, "expected", sigma)
    for side in (1.0, -1.0):
        mine = position == side
        alone = round_trip_profit(*(a[mine] for a in args), position[mine], 0.0005, "expected", sigma[mine])
        assert np.array_equal(alone, together[mine])
    for i in np.flatnonzero(position < 0)[:25]:  # one bar a call
        one = round_trip_profit(
            *(a[i : i + 1] for a in args), position[i : i + 1], 0.0005, "expected", sigma[i : i + 1]
        )
        assert one[0] == together[i]
    # each leg left open by the close is booked at its exit's expectation under the bridge
    from totowalk.backtest.profiles.clean import bridge

    h, low_limit = np.clip(high_target, 0.0, 10.0), np.clip(low_target, -1.0, 0.0)
    cost = 2.0 * 0.0005
    longs = (position > 0) & (low_limit > low) & (o >= low_limit) & (y < h) & (h < high)
    shorts = (position < 0) & (h < high) & (o <= h) & (y > low_limit) & (low_limit > low)
    assert longs.sum() > 20 and shorts.sum() > 20
    bars = [a[longs] for a in (o, y, high, low, low_limit, h, sigma)]
    p = bridge.p_long(*bars)
    exits = y[longs] + p * (h[longs] - y[longs])
    assert np.array_equal(together[longs], (exits - low_limit[longs]) - cost)
    bars = [a[shorts] for a in (o, y, high, low, low_limit, h, sigma)]
    p = bridge.p_short(*bars)
    covers = y[shorts] + p * (low_limit[shorts] - y[shorts])
    assert np.array_equal(together[shorts], (h[shorts] - covers) - cost)
    # the bars it books between the bounds: some in each direction
    adverse = round_trip_profit(*args, position, 0.0005, "adverse")
    optimistic = round_trip_profit(*args, position, 0.0005, "optimistic")
    assert (adverse <= together + 1e-15).all() and (together <= optimistic + 1e-15).all()
    assert ((together > adverse) & (position > 0)).any() and ((together > adverse) & (position < 0)).any()


def test_a_bar_without_a_probability_is_named_with_its_own_prices(monkeypatch):
    from totowalk.backtest.profiles.clean import fills

    y, o, high, low = (np.array([v]) for v in (0.001, 0.0, 0.004, -0.005))
    unanswered = lambda *bars: np.full(np.size(bars[0]), np.nan)  # noqa: E731
    monkeypatch.setattr(fills, "p_long", unanswered)
    with pytest.raises(
        FloatingPointError, match=r"open 0\.0, high 0\.004, low -0\.005, close 0\.001, limits -0\.003 / 0\.002"
    ):
        round_trip_profit(
            y, o, high, low, np.array([0.002]), np.array([-0.003]), np.array([-1.0]), 0.0, "expected", np.array([0.01])
        )
