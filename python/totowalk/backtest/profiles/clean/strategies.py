"""Clean-profile strategies: the legacy strategy family with the defects of LEGACY_SEMANTICS.md §11 fixed.

Inputs are :class:`CleanStrategyInputs` (``S`` simulations x ``D`` evaluated days, float64). Every
move - forecast or actual, close, high or low - is relative to the **previous close**, so a
forecast ``cp[:, j]`` is the forecast of exactly the return ``ca[:, j]`` it trades.

Cost model (one rule everywhere): each unit of position change costs ``fee + spread / 2``, where
``spread`` is the bid/ask spread as a fraction of the price (default 0). A signal strategy pays it on
``|s_t - s_{t-1}|`` (``s_{-1} = 0``); a limit-order round trip (entry fill + exit) pays it twice.

Limit orders are filled by the model of :mod:`.fills` (a run's default ``"expected"``: a limit
fills when the bar trades through it, at the limit or at the open on a gap; a round trip whose
entry fills during the bar and whose exit the bar does not settle is booked as the expectation
over the bar's intrabar paths; ``"adverse"`` and ``"optimistic"`` book its lower and upper bound,
and every run reports both beside the headline: ``<prefix>_return_adverse`` / ``_optimistic``,
``<prefix>_finalday_adverse`` / ``_optimistic``). The MaxDiff offsets are fitted on the adverse
booking when the model is "expected" (:attr:`CleanStrategyInputs.fit_model`). Capital: every strategy
holds at most one unit of capital per day; MaxDiffAlwaysOn's long and short legs are two positions
with their own unit each, and its returns are per unit of gross capital (the legs' mean; crypto
has only the long leg).

Every strategy is evaluated the same way: net daily returns ``g`` -> compounded total
``prod(1 + g) - 1``, ``avg = mean(g)``, ``annual = avg * trading_days_per_year``, Sharpe
``mean / std(ddof=1) * sqrt(trading_days_per_year)`` (undefined, NaN, when the std is below 1e-12, i.e. a
numerically constant series, or for a single day), ``finalday`` = the last day's return and
``turnover`` = mean units of position change per day (sum of |position changes|, per unit of
capital), ``finalday_turnover`` the last day's.

Fixes, by defect number of §11:

1. In-sample optimisation: the MaxDiff offsets and the MaxDiffAlwaysOn offsets used on day ``j`` are
   fitted on days ``< j`` only (walk-forward; 0 offsets on day 0). The reported ``*_multiplier`` /
   ``*_price`` are the offsets fitted on all ``D`` days, i.e. those for the next, unseen day, and
   the prices are the limit prices the rule would place: ``last_close * (1 + clip(next move +
   offset))``.
2. Signal/return offset: every signal multiplies the return it forecasts (``cp[:, j]`` -> ``ca[:, j]``).
3. Stale last forecast, 16. simulation 0 dropping the newest row: pipeline matters (windows and
   contexts), not handled here; these functions only see aligned forecasts and outcomes.
4. Unused / hard-coded fee: the caller's fee is charged on every fill of every strategy (stock and
   crypto alike), including single-leg fills.
5. Spread: a fraction, default 0, charged as half the spread per unit of position change; no 1.05
   fallback and no ``2 * fee * SPREAD`` final-day term.
6. Buy & hold: return, Sharpe and averages all come from the same always-long position (one entry).
7. "Final day": ``*_finalday`` is the last day's net return for every strategy.
8. Aggregation: compounded totals and ddof-1 Sharpe for every strategy.
9. No 0.523 fee factor. 10. No no-op loops (costs are computed once, vectorized).
11. No in-place mutation: inputs are never written; highlow sees the same forecasts as the others.
12. Entry+take-profit: crypto never shorts; a zero forecast is flat, not short. Entered at the
    previous close; its take-profit is a limit live from the open and exists only on the right
    side of the entry (long: ``hp > 0``; short: ``lp < 0``), else the position closes at the close.
    Highlow's entry is a limit live from the open, so one above (below, short) the open fills at
    the open: it never pays more than the market.
13. Kernel asymmetry: an un-hit target closes at the actual close with its real sign; fills follow
    the stated fill model (:mod:`.fills`).
14. Mixed bases: all moves share the previous close as base, so no |1 - H/C| patch is needed.
17. Unprofit shutdown: day 0 follows the forecast, and the crypto rule (no shorts) applies inside
    the loop, so the "previous day" rule sees the positions actually held. Its state is its own
    past, so the run's headline runs it as one continuous path over the daily series
    (:mod:`.stateful`), not restarted in every window.
18. Near-zero std: a numerically constant series has an undefined Sharpe, NaN (no 1e17 ratios, and
    no neutral 0 for a strategy that loses the same amount every day).
19. Best strategy: :func:`clean_best_strategy` compares every strategy's total return (in the run
    summary: of the daily walk-forward series, :mod:`.headline`), ignores NaN, and breaks ties
    by a fixed, stated order.
20. Turnover is mean units of position change per day; AlwaysOn fills count filled legs.
    ``all_signals`` keeps the classic meaning: long when the Close, High and Low forecasts (each
    its own series' move) all rise, short when all fall.
21. NaN: non-finite inputs raise ``ValueError`` naming the field and simulation row.
22. Mismatched lengths raise ``ValueError`` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...stats.measures import sharpe_ratio
from .. import native_grids
from .fills import buy_limit, check_fill_model, round_trip_fills, round_trip_profit, sell_limit

__all__ = [
    "CleanStrategyInputs",
    "evaluate_clean_strategies",
    "clean_limit_order_profit",
    "clean_best_strategy",
    "moves_vs_previous_close",
    "shutdown_positions",
    "signal_direction",
]

MAXDIFF_GRID = np.linspace(-0.03, 0.03, 500)
ALWAYS_ON_GRID = np.linspace(-0.03, 0.03, 81)
MAXDIFF_CHUNK = 32  # simulations per (chunk, D+1, 500, D) stage-2 array
ALWAYS_ON_CHUNK = 16
CI_GUARD_FLOOR = 1e-8

_DAY_FIELDS = ("cp", "hp", "lp", "ca", "ha", "la", "oa", "hp_own", "lp_own", "band")
_PRICE_FIELDS = ("next_hp", "next_lp", "last_close")


def moves_vs_previous_close(predicted_move, previous_level, previous_close):
    """Re-base a move forecast of a series (e.g. High vs previous High) onto the previous close.

    ``(previous_level * (1 + predicted_move)) / previous_close - 1``; arrays broadcast.
    """
    level = np.asarray(previous_level, dtype=np.float64) * (1.0 + np.asarray(predicted_move, dtype=np.float64))
    return level / np.asarray(previous_close, dtype=np.float64) - 1.0


@dataclass
class CleanStrategyInputs:
    """Aligned forecasts and outcomes of ``S`` simulations over ``D`` days (float64).

    Attributes
    ----------
    cp, hp, lp : (S, D)
        Forecast close / high / low of day j as moves from the previous close.
    ca, ha, la, oa : (S, D)
        Realised close / high / low / open of day j as moves from the previous close.
    hp_own, lp_own : (S, D)
        The high / low forecasts as their own series' moves (vs the previous high / low), for
        all_signals' "all three forecasts point the same way".
    band : (S, D)
        Forecast uncertainty of the close move (e.g. p60 - p40) for the confidence guard.
    is_crypto : (S,) bool
        No short positions anywhere.
    fee : (S,)
        Cost per unit of position change (e.g. 0.0005).
    spread : (S,)
        Bid/ask spread as a fraction of the price; half of it is paid per unit change. Default 0.
    next_hp, next_lp, last_close : (S,) or None
        The next (unseen) day's high / low forecasts as moves from the window's last close, and
        that close: the reported MaxDiff limit prices. NaN prices when not given.
    trading_days_per_year : (S,) or None
        Defaults to 365 for crypto, 252 otherwise.
    ci_multiplier : float
    fill_model : "expected", "adverse" or "optimistic" (:mod:`.fills`); "adverse" unless given (a
        run passes its settings' model, "expected" by default)
    sigma : (S, D) or None
        Each day's intrabar (open-to-close) volatility as a move; needed by ``"expected"``
    """

    cp: np.ndarray
    hp: np.ndarray
    lp: np.ndarray
    ca: np.ndarray
    ha: np.ndarray
    la: np.ndarray
    oa: np.ndarray
    hp_own: np.ndarray
    lp_own: np.ndarray
    band: np.ndarray
    is_crypto: np.ndarray
    fee: np.ndarray
    spread: np.ndarray | float = 0.0
    next_hp: np.ndarray | None = None
    next_lp: np.ndarray | None = None
    last_close: np.ndarray | None = None
    trading_days_per_year: np.ndarray | None = None
    ci_multiplier: float = 1.0
    fill_model: str = "adverse"
    sigma: np.ndarray | None = None

    def __post_init__(self) -> None:
        cp = np.asarray(self.cp, dtype=np.float64)
        if cp.ndim != 2 or cp.shape[1] < 1:
            raise ValueError(f"CleanStrategyInputs.cp must have shape (S, D) with D >= 1; got {cp.shape}")
        s, _ = cp.shape
        for name in _DAY_FIELDS:
            self._set(name, np.asarray(getattr(self, name), dtype=np.float64), cp.shape)
        self._set("is_crypto", np.broadcast_to(np.asarray(self.is_crypto, dtype=bool), (s,)), (s,))
        if self.trading_days_per_year is None:
            self.trading_days_per_year = np.where(self.is_crypto, 365.0, 252.0)
        for name in ("fee", "spread", "trading_days_per_year", *_PRICE_FIELDS):
            value = getattr(self, name)
            value = np.full(s, np.nan) if value is None else np.asarray(value, dtype=np.float64)
            self._set(
                name, np.broadcast_to(value, (s,)) if value.ndim == 0 else value, (s,), allow_nan=name in _PRICE_FIELDS
            )
        for name in ("fee", "spread"):
            bad = np.flatnonzero(getattr(self, name) < 0)
            if bad.size:
                raise ValueError(
                    f"CleanStrategyInputs.{name} must be >= 0; simulation row {bad[0]} has {getattr(self, name)[bad[0]]}"
                )
        self.ci_multiplier = float(self.ci_multiplier)
        check_fill_model(self.fill_model)
        if self.sigma is not None:
            self._set("sigma", np.asarray(self.sigma, dtype=np.float64), cp.shape)
            if (self.sigma <= 0).any():
                row, day = np.argwhere(self.sigma <= 0)[0]
                raise ValueError(f"CleanStrategyInputs.sigma must be > 0; simulation row {row}, day {day}")
        elif self.fill_model == "expected":
            raise ValueError("CleanStrategyInputs: fill_model='expected' needs sigma, each day's intrabar volatility")

    def _set(self, name: str, value: np.ndarray, shape, allow_nan: bool = False) -> None:
        if value.shape != shape:
            raise ValueError(f"CleanStrategyInputs.{name} must have shape {shape}; got {value.shape}")
        if not allow_nan and value.dtype != bool:
            bad = np.argwhere(~np.isfinite(value))
            if bad.size:
                raise ValueError(
                    f"CleanStrategyInputs.{name} has a non-finite value at simulation row {bad[0][0]}"
                    + (f", day {bad[0][1]}" if value.ndim == 2 else "")
                )
        setattr(self, name, np.ascontiguousarray(value))

    @property
    def unit_cost(self) -> np.ndarray:
        """Cost per unit of position change, (S,)."""
        return self.fee + self.spread / 2.0

    @property
    def fit_model(self) -> str:
        """The fill model the walk-forward offset fits book past days with: the run's own, except
        that ``"expected"`` fits on the adverse booking (a conservative rule that needs no intrabar
        model on the 10^8 grid cells of a run; the chosen orders are then booked as expected)."""
        return "adverse" if self.fill_model == "expected" else self.fill_model

    @property
    def open_move(self) -> np.ndarray:
        """``oa`` inside ``[la, ha]``: re-basing the four prices on the previous close can leave an
        open equal to the high or low an ulp outside the bar."""
        return np.minimum(np.maximum(self.oa, self.la), self.ha)


# ---------------------------------------------------------------------------------------------


def clean_limit_order_profit(
    close_move,
    open_move,
    high_move,
    low_move,
    high_target,
    low_target,
    position,
    unit_cost,
    fill_model: str = "adverse",
):
    """MaxDiff's limit pair under the clean fill model: :func:`.fills.round_trip_profit`."""
    return round_trip_profit(
        close_move, open_move, high_move, low_move, high_target, low_target, position, unit_cost, fill_model
    )


def _metrics(
    prefix: str, daily: np.ndarray, changes: np.ndarray, days_per_year: np.ndarray, final_key: str = "finalday"
):
    """Metrics of (S, D) net daily returns and (S, D) units of position change per unit of capital."""
    total = np.prod(1.0 + daily, axis=1) - 1.0
    mean = daily.mean(axis=1)
    if daily.shape[1] > 1:
        sharpe = sharpe_ratio(mean, daily.std(axis=1, ddof=1), days_per_year)
    else:
        sharpe = np.zeros(daily.shape[0])
    return {
        f"{prefix}_return": total,
        f"{prefix}_sharpe": sharpe,
        f"{prefix}_{final_key}": daily[:, -1].copy(),
        f"{prefix}_avg_daily_return": mean,
        f"{prefix}_annual_return": mean * days_per_year,
        f"{prefix}_turnover": changes.mean(axis=1),
        f"{prefix}_finalday_turnover": changes[:, -1].copy(),
        f"{prefix}_daily_returns": daily,
    }


def _position_strategy(prefix: str, positions: np.ndarray, inp: CleanStrategyInputs):
    changes = np.abs(np.diff(positions, axis=1, prepend=0.0))
    daily = positions * inp.ca - changes * inp.unit_cost[:, None]
    out = _metrics(prefix, daily, changes, inp.trading_days_per_year)
    out[f"{prefix}_positions"] = positions
    return out


def shutdown_positions(direction: np.ndarray, cp: np.ndarray, ca: np.ndarray) -> np.ndarray:
    """Unprofit shutdown's positions over consecutive days (axis 1): day 0 follows ``direction``;
    after a day held against a wrong forecast (``sign(ca) * sign(cp) <= 0`` while in the market) it
    stays flat one day, then follows ``direction`` again. Its state is its own past, so a run
    evaluates it as one path over the whole daily series (:mod:`.stateful`)."""
    positions = np.zeros_like(direction)
    positions[:, 0] = direction[:, 0]
    for i in range(1, direction.shape[1]):
        was_right = np.sign(ca[:, i - 1]) * np.sign(cp[:, i - 1]) > 0
        keep = (positions[:, i - 1] == 0) | was_right
        positions[:, i] = np.where(keep, direction[:, i], 0.0)
    return positions


def signal_direction(cp: np.ndarray, is_crypto: np.ndarray) -> np.ndarray:
    """The sign of the close forecast, long only for crypto (``is_crypto`` broadcasts over days)."""
    direction = np.sign(cp)
    return np.where(is_crypto, np.maximum(direction, 0.0), direction)


def _signal_strategies(inp: CleanStrategyInputs) -> dict:
    no_short = inp.is_crypto[:, None]
    direction = signal_direction(inp.cp, no_short)
    # the classic "all three forecasts rise / fall", each forecast its own series' move
    all_long = (inp.cp > 0) & (inp.hp_own > 0) & (inp.lp_own > 0)
    all_short = (inp.cp < 0) & (inp.hp_own < 0) & (inp.lp_own < 0) & ~no_short
    width = np.maximum(np.abs(inp.band), CI_GUARD_FLOOR) * inp.ci_multiplier
    guard = (inp.cp > width).astype(float) - ((inp.cp < -width) & ~no_short)
    out = {}
    out.update(_position_strategy("simple_strategy", direction, inp))
    out.update(_position_strategy("all_signals_strategy", all_long.astype(float) - all_short, inp))
    out.update(_position_strategy("buy_hold", np.ones_like(inp.cp), inp))
    out.update(_position_strategy("unprofit_shutdown", shutdown_positions(direction, inp.cp, inp.ca), inp))
    out.update(_position_strategy("ci_guard", guard, inp))
    return out


def _entry_takeprofit_and_highlow(inp: CleanStrategyInputs) -> dict:
    cost = 2.0 * inp.unit_cost[:, None]  # a round trip per traded day
    o = inp.open_move
    long = inp.cp > 0
    short = (inp.cp < 0) & ~inp.is_crypto[:, None]
    traded = long | short
    sold, sell_price = sell_limit(o, inp.ha, inp.hp)
    bought, buy_price = buy_limit(o, inp.la, inp.lp)
    # Entry+take-profit: in at the previous close (move 0); a take-profit exists only on the right
    # side of that entry, else the position closes at the close.
    long_exit = np.where((inp.hp > 0) & sold, sell_price, inp.ca)
    short_exit = np.where((inp.lp < 0) & bought, buy_price, inp.ca)
    tp_daily = np.where(traded, np.where(long, long_exit, -short_exit) - cost, 0.0)
    # Highlow: a limit entry at the forecast low (long) / high (short), held to the close.
    long_fill = long & bought
    short_fill = short & sold
    hl_daily = np.where(long_fill, inp.ca - buy_price - cost, np.where(short_fill, sell_price - inp.ca - cost, 0.0))
    out = {}
    out.update(_metrics("entry_takeprofit", tp_daily, 2.0 * traded, inp.trading_days_per_year))
    out.update(
        _metrics(
            "highlow", hl_daily, 2.0 * (long_fill | short_fill), inp.trading_days_per_year, final_key="finalday_return"
        )
    )
    return out


def _first_best(sums: np.ndarray, incumbent: np.ndarray, grid: np.ndarray):
    """Strict-``>`` sweep over the grid axis (-1): (best, offset), offset 0 when nothing beats."""
    idx = np.argmax(sums, axis=-1)
    best = np.take_along_axis(sums, idx[..., None], axis=-1)[..., 0]
    improved = best > incumbent
    return np.where(improved, best, incumbent), np.where(improved, grid[idx], 0.0)


def _prefix_before(values: np.ndarray) -> np.ndarray:
    """``out[..., j] = sum(values[..., :j])`` for j = 0..D (days strictly before j), shape (..., D+1)."""
    zeros = np.zeros(values.shape[:-1] + (1,))
    return np.concatenate([zeros, np.cumsum(values, axis=-1)], axis=-1)


def _maxdiff_direction(inp: CleanStrategyInputs) -> np.ndarray:
    q = np.where(np.abs(inp.hp) > np.abs(inp.lp), 1.0, -1.0)
    q = np.where(inp.is_crypto[:, None] & (q < 0), 0.0, q)
    return np.where(inp.lp < inp.hp, q, 0.0)  # flat when the low target is not below the high


def _maxdiff_fit(inp: CleanStrategyInputs, q: np.ndarray, rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """Two-stage offsets fitted on days < j for j = 0..D, for a chunk of simulations: (S_c, D+1) each."""
    ca, o, ha, la, hp, lp, q = (a[rows] for a in (inp.ca, inp.open_move, inp.ha, inp.la, inp.hp, inp.lp, q))
    cost = inp.unit_cost[rows][:, None]
    d = ca.shape[1]
    grid = MAXDIFF_GRID[None, :, None]

    def pnl(highs, lows, extra_axes=1):
        expand = lambda a: a.reshape(a.shape[:1] + (1,) * extra_axes + a.shape[1:])  # noqa: E731
        return round_trip_profit(
            expand(ca), expand(o), expand(ha), expand(la), highs, lows, expand(q), expand(cost), inp.fit_model
        )

    # Stage 1: high offset with low offset 0.
    base = _prefix_before(pnl(hp, lp, extra_axes=0))  # (S, D+1)
    stage1 = _prefix_before(pnl(hp[:, None, :] + grid, lp[:, None, :]))  # (S, 500, D+1)
    best, x_fit = _first_best(np.moveaxis(stage1, 1, -1), base, MAXDIFF_GRID)  # (S, D+1)
    # Stage 2: low offset given each day's high offset. Axes: (S, j, grid, day).
    highs = hp[:, None, None, :] + x_fit[:, :, None, None]
    lows = lp[:, None, None, :] + MAXDIFF_GRID[None, None, :, None]
    per_day = pnl(highs, lows, extra_axes=2)  # (S, D+1, 500, D)
    before = np.arange(d)[None, :] < np.arange(d + 1)[:, None]  # (D+1, D): day < j
    stage2 = (per_day * before[None, :, None, :]).sum(axis=-1)
    _, z_fit = _first_best(stage2, best, MAXDIFF_GRID)
    return x_fit, z_fit


def _day_arrays(inp: CleanStrategyInputs) -> list[np.ndarray]:
    """The compiled fits' (S, D) inputs: close, open, high, low moves, high and low forecasts."""
    return [np.ascontiguousarray(a, dtype=np.float64) for a in (inp.ca, inp.open_move, inp.ha, inp.la, inp.hp, inp.lp)]


def _maxdiff_fit_native(search, inp: CleanStrategyInputs, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_maxdiff_fit` for all simulations through the extension: same offsets, bit for bit."""
    ix, iz = search(
        *_day_arrays(inp),
        np.ascontiguousarray(q, dtype=np.float64),
        np.ascontiguousarray(inp.unit_cost, dtype=np.float64),
        MAXDIFF_GRID,
        inp.fit_model == "optimistic",
        torch.get_num_threads(),
    )
    return native_grids.grid_offsets(ix, MAXDIFF_GRID), native_grids.grid_offsets(iz, MAXDIFF_GRID)


def _booked_models(inp: CleanStrategyInputs) -> tuple:
    """The run's fill model and the bracket's two bounds (every round trip is booked three ways)."""
    return tuple(dict.fromkeys((inp.fill_model, "adverse", "optimistic")))


def _bracket(prefix: str, booked: dict) -> dict:
    """The same orders booked by the adverse and optimistic bounds: per-window total return and
    the final day's return of each (``adverse <= fill model <= optimistic`` day by day)."""
    out = {}
    for model in ("adverse", "optimistic"):
        daily = booked[model]
        out[f"{prefix}_return_{model}"] = np.prod(1.0 + daily, axis=1) - 1.0
        out[f"{prefix}_finalday_{model}"] = daily[:, -1].copy()
    return out


def _limit_prices(prefix: str, inp: CleanStrategyInputs, x: np.ndarray, z: np.ndarray) -> dict:
    """The next day's limit prices as the backtested rule places them (targets clipped as filled)."""
    return {
        f"{prefix}_high_price": inp.last_close * (1.0 + np.clip(inp.next_hp + x, 0.0, 10.0)),
        f"{prefix}_low_price": inp.last_close * (1.0 + np.clip(inp.next_lp + z, -1.0, 0.0)),
    }


def _maxdiff_offsets(inp: CleanStrategyInputs) -> tuple:
    """MaxDiff's direction and its walk-forward offsets: (q, x_fit, z_fit), (S, D) and (S, D+1) each."""
    s, d = inp.cp.shape
    q = _maxdiff_direction(inp)
    search = native_grids.native_search("clean_maxdiff_fit")
    if search is not None:
        x_fit, z_fit = _maxdiff_fit_native(search, inp, q)
    else:
        x_fit, z_fit = np.zeros((s, d + 1)), np.zeros((s, d + 1))
        for start in range(0, s, MAXDIFF_CHUNK):
            rows = slice(start, start + MAXDIFF_CHUNK)
            x_fit[rows], z_fit[rows] = _maxdiff_fit(inp, q, rows)
    return q, x_fit, z_fit


def _maxdiff_rows(inp: CleanStrategyInputs, offsets: tuple, targets: tuple, booked: dict) -> dict:
    """MaxDiff's result fields from its offsets, their day-by-day ``targets`` (:func:`_targets`) and
    its round trips ``booked`` by each fill model."""
    q, x_fit, z_fit = offsets
    highs, lows = targets
    d = inp.cp.shape[1]
    days = np.arange(d)
    daily = booked[inp.fill_model]
    fills = round_trip_fills(inp.ha, inp.la, highs, lows, q)
    out = _metrics("maxdiff", daily, fills, inp.trading_days_per_year, final_key="finalday_return")
    out.update(_bracket("maxdiff", booked))
    out.update(
        {
            "maxdiffprofit_profit": out["maxdiff_return"],
            "maxdiffprofit_profit_values": daily,
            "maxdiffprofit_high_multiplier_by_day": x_fit[:, days],
            "maxdiffprofit_low_multiplier_by_day": z_fit[:, days],
            "maxdiffprofit_profit_high_multiplier": x_fit[:, d],
            "maxdiffprofit_profit_low_multiplier": z_fit[:, d],
            **_limit_prices("maxdiffprofit", inp, x_fit[:, d], z_fit[:, d]),
            "maxdiff_positions": q,
        }
    )
    return out


def _always_on_fit(inp: CleanStrategyInputs, rows: slice):
    """Per-day (x, z) grid indices fitted on days < j, j = 0..D: (S_chunk, D+1) each.

    The fit maximises the legs' sum; the reported return is that sum per unit of gross capital
    (an exact scaling, so the same argmax).
    """
    e = lambda a: a[rows][:, None, None, :]  # noqa: E731
    grid = ALWAYS_ON_GRID
    highs = e(inp.hp) + grid[None, :, None, None]
    lows = e(inp.lp) + grid[None, None, :, None]
    cost = inp.unit_cost[rows][:, None, None, None]
    bar = (e(inp.ca), e(inp.open_move), e(inp.ha), e(inp.la))
    total = round_trip_profit(*bar, highs, lows, 1.0, cost, inp.fit_model)
    sell = round_trip_profit(*bar, highs, lows, -1.0, cost, inp.fit_model)
    total = total + np.where(inp.is_crypto[rows][:, None, None, None], 0.0, sell)
    prefix = _prefix_before(total)  # (S, 81, 81, D+1)
    flat = prefix.reshape(prefix.shape[0], -1, prefix.shape[-1])  # x outer, z inner
    best = np.argmax(flat, axis=1)  # first maximiser; day 0 (all zeros) -> index 0
    at_zero = grid.size // 2 * grid.size + grid.size // 2
    zero_sums = flat[:, at_zero, :]
    best_sums = np.take_along_axis(flat, best[:, None, :], axis=1)[:, 0, :]
    best = np.where(best_sums > zero_sums, best, at_zero)  # an offset must strictly beat (0, 0)
    return np.divmod(best, grid.size)


def _always_on_fit_native(search, inp: CleanStrategyInputs) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_always_on_fit` for all simulations through the extension: same indices."""
    return search(
        *_day_arrays(inp),
        np.ascontiguousarray(inp.is_crypto, dtype=bool),
        np.ascontiguousarray(inp.unit_cost, dtype=np.float64),
        ALWAYS_ON_GRID,
        inp.fit_model == "optimistic",
        torch.get_num_threads(),
    )


def _always_on_offsets(inp: CleanStrategyInputs) -> tuple:
    """MaxDiffAlwaysOn's walk-forward offsets: (x_fit, z_fit), (S, D+1) each."""
    s, d = inp.cp.shape
    search = native_grids.native_search("clean_always_on_fit")
    if search is not None:
        ix, iz = _always_on_fit_native(search, inp)
    else:
        ix, iz = np.zeros((s, d + 1), np.int64), np.zeros((s, d + 1), np.int64)
        for start in range(0, s, ALWAYS_ON_CHUNK):
            rows = slice(start, start + ALWAYS_ON_CHUNK)
            ix[rows], iz[rows] = _always_on_fit(inp, rows)
    return ALWAYS_ON_GRID[ix], ALWAYS_ON_GRID[iz]


def _always_on_rows(inp: CleanStrategyInputs, offsets: tuple, targets: tuple, booked: dict) -> dict:
    """MaxDiffAlwaysOn's result fields from its offsets, their day-by-day ``targets`` and, per fill
    model, its buy and sell legs' round trips ``booked`` (positions +1 and -1)."""
    x_fit, z_fit = offsets
    highs, lows = targets
    d = inp.cp.shape[1]
    no_short = inp.is_crypto[:, None]
    # two legs, each with its own unit of capital (one for crypto): per unit of gross capital
    legs = np.where(no_short, 1.0, 2.0)
    legs_by_model = {m: (buy / legs, np.where(no_short, 0.0, sell) / legs) for m, (buy, sell) in booked.items()}
    buy, sell = legs_by_model[inp.fill_model]
    fills = (
        round_trip_fills(inp.ha, inp.la, highs, lows, 1.0)
        + np.where(no_short, 0.0, round_trip_fills(inp.ha, inp.la, highs, lows, -1.0))
    ) / legs
    daily = buy + sell
    out = _metrics("maxdiffalwayson", daily, fills, inp.trading_days_per_year, final_key="finalday_return")
    out.update(_bracket("maxdiffalwayson", {m: b + x for m, (b, x) in legs_by_model.items()}))
    filled_buy = (np.clip(lows, -1.0, 0.0) > inp.la).sum(axis=1)
    filled_sell = np.where(no_short, False, np.clip(highs, 0.0, 10.0) < inp.ha).sum(axis=1)
    gross = np.abs(buy).sum(axis=1) + np.abs(sell).sum(axis=1)
    out.update(
        {
            "maxdiffalwayson_profit": out["maxdiffalwayson_return"],
            "maxdiffalwayson_profit_values": daily,
            "maxdiffalwayson_high_multiplier_by_day": x_fit[:, :d],
            "maxdiffalwayson_low_multiplier_by_day": z_fit[:, :d],
            "maxdiffalwayson_high_multiplier": x_fit[:, d],
            "maxdiffalwayson_low_multiplier": z_fit[:, d],
            **_limit_prices("maxdiffalwayson", inp, x_fit[:, d], z_fit[:, d]),
            "maxdiffalwayson_buy_contribution": buy.sum(axis=1),
            "maxdiffalwayson_sell_contribution": sell.sum(axis=1),
            "maxdiffalwayson_filled_buy_trades": filled_buy,
            "maxdiffalwayson_filled_sell_trades": filled_sell,
            "maxdiffalwayson_trades_total": filled_buy + filled_sell,
            "maxdiffalwayson_trade_bias": np.where(
                gross > 0, (buy.sum(axis=1) - sell.sum(axis=1)) / np.where(gross > 0, gross, 1.0), 0.0
            ),
        }
    )
    return out


def _limit_pairs(inp: CleanStrategyInputs) -> dict:
    """MaxDiff's and MaxDiffAlwaysOn's result fields, their offsets fitted first and then every
    round trip of both booked at once per fill model: MaxDiff's, AlwaysOn's buy leg (+1) and its
    sell leg (-1) on a leading axis, so the expected fills cross the intrabar bridge once (its cost
    is as much per call as per bar); each bar's booking is the same bits as booked alone."""
    maxdiff, always_on = _maxdiff_offsets(inp), _always_on_offsets(inp)
    md_targets, ao_targets = _targets(inp, *maxdiff[1:]), _targets(inp, *always_on)
    highs, lows = (np.stack([md, ao, ao]) for md, ao in zip(md_targets, ao_targets))
    q = maxdiff[0]
    positions = np.stack([q, np.ones_like(q), -np.ones_like(q)])
    bar = (inp.ca, inp.open_move, inp.ha, inp.la)
    cost = inp.unit_cost[:, None]
    booked = {m: round_trip_profit(*bar, highs, lows, positions, cost, m, sigma=inp.sigma) for m in _booked_models(inp)}
    out = _maxdiff_rows(inp, maxdiff, md_targets, {m: b[0] for m, b in booked.items()})
    out.update(_always_on_rows(inp, always_on, ao_targets, {m: (b[1], b[2]) for m, b in booked.items()}))
    return out


def _targets(inp: CleanStrategyInputs, x_fit: np.ndarray, z_fit: np.ndarray) -> tuple:
    """Each day's high and low limit targets, (S, D) each: the forecasts moved by the offsets fitted
    on the days before it."""
    d = inp.cp.shape[1]
    return inp.hp + x_fit[:, :d], inp.lp + z_fit[:, :d]


def evaluate_clean_strategies(inp: CleanStrategyInputs) -> dict[str, np.ndarray]:
    """Evaluate the clean-profile strategy family for ``S`` simulations at once.

    Returns
    -------
    dict
        For each prefix of :data:`..profile.STRATEGY_PREFIXES`: ``_return``, ``_sharpe``,
        ``_finalday`` (``_finalday_return`` for highlow and the MaxDiff family),
        ``_avg_daily_return``, ``_annual_return``, ``_turnover``, ``_finalday_turnover`` (S,) and
        ``_daily_returns`` (S, D); signal strategies add ``_positions`` (S, D). MaxDiff adds the
        ``maxdiffprofit_*`` fields with per-day walk-forward offsets ``*_multiplier_by_day``
        (S, D); MaxDiffAlwaysOn the ``maxdiffalwayson_*`` fields likewise (per unit of gross
        capital). ``fill_model`` (S,) names the fill model the limit orders were booked with.
    """
    out = {}
    out.update(_signal_strategies(inp))
    out.update(_entry_takeprofit_and_highlow(inp))
    out.update(_limit_pairs(inp))
    out["fill_model"] = np.full(inp.cp.shape[0], inp.fill_model, dtype=object)
    return out


_TIE_ORDER = (
    "buy_hold",
    "simple_strategy",
    "all_signals_strategy",
    "unprofit_shutdown",
    "ci_guard",
    "entry_takeprofit",
    "highlow",
    "maxdiff",
    "maxdiffalwayson",
)


def clean_best_strategy(means) -> str | None:
    """Strategy with the highest total return (``<prefix>_return``), NaN ignored.

    Ties go to the first prefix in the order buy_hold, simple_strategy, all_signals_strategy,
    unprofit_shutdown, ci_guard, entry_takeprofit, highlow, maxdiff, maxdiffalwayson (simplest
    first). ``None`` when no strategy has a finite mean.
    """
    best_label, best_value = None, -math.inf
    for label in _TIE_ORDER:
        value = means.get(f"{label}_return", math.nan) if hasattr(means, "get") else math.nan
        value = float(value)
        if math.isfinite(value) and (best_label is None or value > best_value):
            best_label, best_value = label, value
    return best_label
