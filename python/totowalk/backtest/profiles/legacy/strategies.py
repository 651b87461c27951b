"""All legacy strategies for a batch of simulations at once (LEGACY_SEMANTICS.md §6, §7, §8).

:func:`evaluate_legacy_strategies` takes :class:`LegacyStrategyInputs` (leading dimension ``S``,
one row per (symbol, simulation)) and returns the strategy columns of the legacy result row,
each ``(S,)`` (or ``(S, 6)`` for per-day values), named exactly as in the original.

The legacy evaluation order matters and is kept (§7): MaxDiff and MaxDiffAlwaysOn see the
original arrays; entry+take-profit then overwrites ``high_predictions`` / ``close_actual_movement_values``
on fee-paying buy days (defect 11) and highlow sees those overwritten values. Nothing is modified
in place here: the overwritten arrays are returned as ``high_predictions_after`` and
``close_actual_movement_values_after``.

Precision follows the original: signals and the MaxDiff kernel in float32, offset searches with
strict ``>`` (the first maximiser in grid order wins), float32 six-day sums compared as float64.
The MaxDiff sweeps and the AlwaysOn grid search run in the compiled extension
(``totowalk._C.maxdiff_search`` / ``always_on_search``: fused, multithreaded, nothing
materialised) or, without it, as array operations over ``(S, 500, 6)`` and ``(S, 81, 81, 6)``
chunked over ``S``; the two are bit-identical (tested). Each piece is tested against the
single-simulation functions of :mod:`.strategies_signals`, :mod:`.strategies_limit` and
:mod:`.maxdiff`, which are tested against the goldens.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .. import native_grids
from ..torch_cpu import cpu_tensor
from .maxdiff import ALWAYS_ON_GRID, KERNEL_FEE, MAXDIFF_GRID, limit_order_profit, previous_bar_spreads, sum_days_f32
from .metrics import compounded_metrics_batch, evaluate_compounded, summed_metrics_batch

MIXED_BOOK_FEE_FACTOR = 0.523  # legacy factor when long, short and flat days all occur (defect 9)
CI_GUARD_FLOOR = 1e-8

__all__ = ["LegacyStrategyInputs", "evaluate_legacy_strategies", "SIGNAL_STRATEGY_PREFIXES", "ALWAYS_ON_CHUNK"]

EVAL_DAYS = 6
SIGNAL_STRATEGY_PREFIXES = ("simple_strategy", "all_signals_strategy", "unprofit_shutdown", "ci_guard")
MAXDIFF_CHUNK = 256  # simulations per (chunk, 500, 6) sweep
ALWAYS_ON_CHUNK = 32  # simulations per (chunk, 81, 81, 6) grid evaluation: ~20 MB per float32 array

_F32_FIELDS = ("cp", "hp", "lp", "ca", "ha", "la")
_DAY_F64_FIELDS = ("r", "prev_close", "prev_high", "prev_low")
_SCALAR_F64_FIELDS = ("high_predicted_price_value", "low_predicted_price_value", "fee", "spread")


@dataclass
class LegacyStrategyInputs:
    """Strategy inputs of ``S`` simulations (LEGACY_SEMANTICS.md §2.4, §4, §6.6).

    Attributes
    ----------
    cp, hp, lp : (S, 6) float32
        Close / high / low forecasts ``pred_0..pred_5`` (percent moves).
    ca, ha, la : (S, 6) float32
        The matching actual moves ``fl32(v_0..v_5)``.
    r : (S, 6) float64
        Actual close returns the signal strategies are applied to (§4, one row later).
    band : (S, 7) float32
        Close confidence bands ``band_0..band_6`` (CI guard uses the first 6).
    prev_close, prev_high, prev_low : (S, 6) float64
        Price rows N-8 .. N-3 (the row each evaluated day's return starts from), for MaxDiff's
        previous-bar spreads.
    high_predicted_price_value, low_predicted_price_value : (S,) float64
        ``P_{N-1} * (1 + pred_6)`` of High / Low: the references of the reported limit prices.
    is_crypto : (S,) bool
    fee : (S,) float64
        Trading fee of the signal strategies, entry+take-profit and highlow.
    spread : (S,) float64
        The global ``SPREAD`` bid/ask ratio in force for the simulation.
    ci_multiplier : float
        ``TOTO_CI_GUARD_MULTIPLIER`` (1.0 by default).
    trading_days_per_year : (S,) float64 or None
        Defaults to 365 for crypto and 252 otherwise.
    """

    cp: np.ndarray
    hp: np.ndarray
    lp: np.ndarray
    ca: np.ndarray
    ha: np.ndarray
    la: np.ndarray
    r: np.ndarray
    band: np.ndarray
    prev_close: np.ndarray
    prev_high: np.ndarray
    prev_low: np.ndarray
    high_predicted_price_value: np.ndarray
    low_predicted_price_value: np.ndarray
    is_crypto: np.ndarray
    fee: np.ndarray
    spread: np.ndarray
    ci_multiplier: float = 1.0
    trading_days_per_year: np.ndarray | None = None

    def __post_init__(self) -> None:
        cp = np.asarray(self.cp)
        if cp.ndim != 2 or cp.shape[1] != EVAL_DAYS:
            raise ValueError(f"LegacyStrategyInputs.cp must have shape (S, {EVAL_DAYS}); got {cp.shape}")
        s = cp.shape[0]

        def check(name, dtype, shape):
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                value_b = np.broadcast_to(value, shape) if value.ndim == 0 else value
                if value_b.shape != shape:
                    raise ValueError(f"LegacyStrategyInputs.{name} must have shape {shape}; got {value.shape}")
                value = value_b
            setattr(self, name, np.ascontiguousarray(value, dtype=dtype))

        for name in _F32_FIELDS:
            check(name, np.float32, (s, EVAL_DAYS))
        for name in _DAY_F64_FIELDS:
            check(name, np.float64, (s, EVAL_DAYS))
        check("band", np.float32, (s, EVAL_DAYS + 1))
        for name in _SCALAR_F64_FIELDS:
            check(name, np.float64, (s,))
        check("is_crypto", bool, (s,))
        if self.trading_days_per_year is None:
            self.trading_days_per_year = np.where(self.is_crypto, 365.0, 252.0)
        check("trading_days_per_year", np.float64, (s,))
        self.ci_multiplier = float(self.ci_multiplier)

    @property
    def num_simulations(self) -> int:
        return int(self.cp.shape[0])

    def take(self, rows) -> "LegacyStrategyInputs":
        """The inputs of a subset of simulations."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        picked = {k: (v if k == "ci_multiplier" else v[rows]) for k, v in values.items()}
        return LegacyStrategyInputs(**picked)


# ---------------------------------------------------------------------------------------------
# Close-signal family (§6.1, §6.2)


def _unprofit_shutdown_signals(cp: np.ndarray, r: np.ndarray, is_crypto: np.ndarray) -> np.ndarray:
    direction = np.sign(cp).astype(np.float32)
    signals = np.zeros_like(cp)
    signals[:, 0] = 1.0
    for i in range(1, cp.shape[1]):
        correct = ((r[:, i - 1] > 0) & (cp[:, i - 1] > 0)) | ((r[:, i - 1] < 0) & (cp[:, i - 1] < 0))
        signals[:, i] = np.where((signals[:, i - 1] == 0) | correct, direction[:, i], np.float32(0.0))
    return np.where(is_crypto[:, None] & (signals < 0), np.float32(0.0), signals)


def _signals(inp: LegacyStrategyInputs) -> dict[str, np.ndarray]:
    one, zero = np.float32(1.0), np.float32(0.0)
    crypto = inp.is_crypto[:, None]
    cp = inp.cp
    width = np.maximum(np.abs(inp.band[:, :EVAL_DAYS].astype(np.float64)), CI_GUARD_FLOOR) * inp.ci_multiplier
    all_long = (cp > 0) & (inp.hp > 0) & (inp.lp > 0)
    all_short = (cp < 0) & (inp.hp < 0) & (inp.lp < 0) & ~crypto
    return {
        "simple_strategy": np.where(cp > 0, one, np.where(crypto, zero, -one)),
        "all_signals_strategy": all_long.astype(np.float32) - all_short.astype(np.float32),
        "buy_hold": (cp > 0).astype(np.float32),
        "unprofit_shutdown": _unprofit_shutdown_signals(cp, inp.r, inp.is_crypto),
        "ci_guard": (cp > width).astype(np.float32) - ((cp < -width) & ~crypto).astype(np.float32),
    }


def _evaluate_signals(signals: np.ndarray, inp: LegacyStrategyInputs) -> dict[str, np.ndarray]:
    """Batched ``evaluate_strategy`` (compounded) for (S, 6) signals on ``inp.r``."""
    s = signals.astype(np.float64)
    mixed = (s > 0).any(axis=1) & (s < 0).any(axis=1) & (s == 0).any(axis=1)
    per_unit = inp.fee * np.where(mixed, MIXED_BOOK_FEE_FACTOR, 1.0) + np.abs(1.0 - inp.spread) / 2.0
    net = s * inp.r - np.abs(np.diff(s, axis=1, prepend=0.0)) * per_unit[:, None]
    metrics = compounded_metrics_batch(net, inp.trading_days_per_year)
    bad = ~np.isfinite(net).all(axis=1)
    for row in np.flatnonzero(bad):  # NaN days follow pandas' NaN-skipping rules: rare, per row
        ev = evaluate_compounded(net[row], inp.trading_days_per_year[row])
        for key in metrics:
            metrics[key][row] = getattr(ev, key)
    return metrics


def _signal_columns(inp: LegacyStrategyInputs, signals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    final_fee_term = 2.0 * inp.fee * inp.spread  # legacy: fee scaled by the spread ratio (defect 5)
    for prefix in (*SIGNAL_STRATEGY_PREFIXES, "buy_hold"):
        m = _evaluate_signals(signals[prefix], inp)
        out[f"{prefix}_return"] = m["total_return"]
        out[f"{prefix}_sharpe"] = m["sharpe_ratio"]
        out[f"{prefix}_finalday"] = signals[prefix][:, -1].astype(np.float64) * inp.r[:, -1] - final_fee_term
        out[f"{prefix}_avg_daily_return"] = m["avg_daily_return"]
        out[f"{prefix}_annual_return"] = m["annualized_return"]
    # Buy & hold reports an always-long compounded return minus one fee (defect 6).
    out["buy_hold_return"] = np.cumprod(1.0 + inp.r, axis=1)[:, -1] - 1.0 - inp.fee
    out["buy_hold_finalday"] = inp.r[:, -1] - inp.fee
    return out


# ---------------------------------------------------------------------------------------------
# Entry + take-profit (§6.3) and highlow (§6.4), float32


def _side_change_fee(side: np.ndarray, fee: np.ndarray, second_leg: np.ndarray) -> np.ndarray:
    """fee * [side changed] * (1 + second_leg), cast to float32 like the original's scalar."""
    previous = np.concatenate([np.zeros((side.shape[0], 1), side.dtype), side[:, :-1]], axis=1)
    changed = (side != previous) & (side != 0)
    return (fee[:, None] * changed * (1.0 + second_leg)).astype(np.float32)


def _entry_takeprofit(inp: LegacyStrategyInputs) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    buy = inp.cp > 0  # a zero forecast is a short (defect 12); crypto still shorts
    hit_high = inp.ha >= inp.hp
    hit_low = inp.la <= inp.lp
    gross = np.where(buy, np.where(hit_high, inp.hp, inp.ca), np.where(hit_low, -inp.lp, -inp.ca))
    side = np.where(buy, 1, -1)
    day = np.arange(EVAL_DAYS)
    fee = _side_change_fee(side, inp.fee, (day > 0)[None, :])
    daily = (gross - fee).astype(np.float32)
    # the original subtracts the fee in place from the element the buy branch read (defect 11)
    paid = buy & (fee > 0)
    high_after = np.where(paid & hit_high, daily, inp.hp)
    close_after = np.where(paid & ~hit_high, daily, inp.ca)
    m = summed_metrics_batch(daily.astype(np.float64), inp.trading_days_per_year)
    out = {
        "entry_takeprofit_return": m["total_return"],
        "entry_takeprofit_sharpe": m["sharpe_ratio"],
        "entry_takeprofit_finalday": m["total_return"] / EVAL_DAYS,  # an average (defect 7)
        "entry_takeprofit_avg_daily_return": m["avg_daily_return"],
        "entry_takeprofit_annual_return": m["annualized_return"],
    }
    return out, high_after, close_after


def _highlow(inp: LegacyStrategyInputs, hp: np.ndarray, ca: np.ndarray) -> dict[str, np.ndarray]:
    long = inp.cp > 0
    short = ~long & (inp.cp < 0) & ~inp.is_crypto[:, None]
    long_gain = ca - np.where(inp.la <= inp.lp, inp.lp, ca)
    short_gain = np.where(inp.ha >= hp, hp, ca) - ca
    side = np.where(long, 1, np.where(short, -1, 0))
    previous = np.concatenate([np.zeros((side.shape[0], 1), side.dtype), side[:, :-1]], axis=1)
    fee = _side_change_fee(side, inp.fee, previous != 0)
    daily = np.where(long, long_gain - fee, np.where(short, short_gain - fee, np.float32(0.0))).astype(np.float32)
    m = summed_metrics_batch(daily.astype(np.float64), inp.trading_days_per_year)
    return {
        "highlow_return": m["total_return"],
        "highlow_sharpe": m["sharpe_ratio"],
        "highlow_finalday_return": m["total_return"] / EVAL_DAYS,  # an average (defect 7)
        "highlow_avg_daily_return": m["avg_daily_return"],
        "highlow_annual_return": m["annualized_return"],
    }


# ---------------------------------------------------------------------------------------------
# MaxDiff family (§6.6, §6.7)


def _adjusted_moves(inp: LegacyStrategyInputs):
    kappa_high, kappa_low = previous_bar_spreads(inp.prev_close, inp.prev_high, inp.prev_low)
    kh, kl = kappa_high.astype(np.float32), kappa_low.astype(np.float32)
    return inp.ca, inp.ha + kh, inp.la - kl, inp.hp + kh, inp.lp - kl


def _first_improvement(sums: np.ndarray, incumbent: np.ndarray, grid: np.ndarray):
    """Sequential strict-``>`` sweep result: (best value, offset) per row; offset 0 if none beats."""
    idx = np.argmax(sums, axis=1)
    best = np.take_along_axis(sums, idx[:, None], axis=1)[:, 0]
    improved = best > incumbent
    return np.where(improved, best, incumbent), np.where(improved, grid[idx], 0.0)


def _maxdiff_search(moves, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two sequential 500-point sweeps for a chunk of simulations: (x*, z*), (S,) each."""
    y, h_act, l_act, h_pred, l_pred = moves
    grid = MAXDIFF_GRID.astype(np.float32)[None, :, None]
    y3, ha3, la3, q3 = y[:, None, :], h_act[:, None, :], l_act[:, None, :], q[:, None, :]
    base = sum_days_f32(limit_order_profit(y, h_act, h_pred, l_act, l_pred, q)).astype(np.float64)
    stage1 = sum_days_f32(limit_order_profit(y3, ha3, h_pred[:, None, :] + grid, la3, l_pred[:, None, :], q3))
    best, x_best = _first_improvement(stage1.astype(np.float64), base, MAXDIFF_GRID)
    highs = h_pred + x_best.astype(np.float32)[:, None]
    stage2 = sum_days_f32(limit_order_profit(y3, ha3, highs[:, None, :], la3, l_pred[:, None, :] + grid, q3))
    _, z_best = _first_improvement(stage2.astype(np.float64), best, MAXDIFF_GRID)
    return x_best, z_best


def _day_arrays(moves) -> list[np.ndarray]:
    return [np.ascontiguousarray(m, dtype=np.float32) for m in moves]


def _maxdiff_search_native(search, moves, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_maxdiff_search` through the extension: same offsets, bit for bit."""
    ix, iz = search(
        *_day_arrays(moves),
        np.ascontiguousarray(q, dtype=np.float32),
        MAXDIFF_GRID.astype(np.float32),
        float(KERNEL_FEE),
        torch.get_num_threads(),
    )
    return native_grids.grid_offsets(ix, MAXDIFF_GRID), native_grids.grid_offsets(iz, MAXDIFF_GRID)


def _maxdiff(inp: LegacyStrategyInputs, moves) -> dict[str, np.ndarray]:
    y, h_act, l_act, h_pred, l_pred = moves
    q = np.where(np.abs(h_pred) > np.abs(l_pred), np.float32(1.0), np.float32(-1.0))
    q = np.where(inp.is_crypto[:, None] & (q < 0), np.float32(0.0), q)
    q = np.where(l_pred < h_pred, q, np.float32(0.0))  # skip_invalid_forecasts=True, as the backtest calls it
    search = native_grids.native_search("maxdiff_search")
    if search is not None:
        x_best, z_best = _maxdiff_search_native(search, moves, q)
    else:
        x_best, z_best = np.zeros(inp.num_simulations), np.zeros(inp.num_simulations)
        for start in range(0, inp.num_simulations, MAXDIFF_CHUNK):
            part = slice(start, start + MAXDIFF_CHUNK)
            x_best[part], z_best[part] = _maxdiff_search([m[part] for m in moves], q[part])
    highs = h_pred + x_best.astype(np.float32)[:, None]
    daily = limit_order_profit(y, h_act, highs, l_act, l_pred + z_best.astype(np.float32)[:, None], q).astype(
        np.float64
    )
    m = summed_metrics_batch(daily, inp.trading_days_per_year)
    return {
        "maxdiff_return": m["total_return"],
        "maxdiff_sharpe": m["sharpe_ratio"],
        "maxdiff_finalday_return": daily[:, -1],
        "maxdiff_avg_daily_return": m["avg_daily_return"],
        "maxdiff_annual_return": m["annualized_return"],
        "maxdiff_turnover": np.abs(daily).mean(axis=1),
        "maxdiffprofit_profit": m["total_return"],
        "maxdiffprofit_profit_values": daily,
        "maxdiffprofit_profit_high_multiplier": x_best,
        "maxdiffprofit_profit_low_multiplier": z_best,
        "maxdiffprofit_high_price": inp.high_predicted_price_value * (1.0 + x_best),
        "maxdiffprofit_low_price": inp.low_predicted_price_value * (1.0 + z_best),
    }


def _always_on_legs(y, h_act, h_pred, l_act, l_pred):
    """:func:`limit_order_profit` with q = +1 and q = -1 on the (S, 81, 81, 6) grid, fused.

    Same float32 operations per element as the kernel (multiplying by a unit position and adding
    the other leg's zero are exact), but terms that depend only on the high offset (axis 1) or only
    on the low offset (axis 2) are computed once on their smaller shapes. Evaluated with torch on
    the CPU: the same IEEE float32 results as numpy (a test compares them bit for bit), on all
    cores (numpy runs element-wise work on one), the grid being the largest strategy cost.
    """
    y, h_act, l_act = (cpu_tensor(a) for a in (y, h_act, l_act))
    h = cpu_tensor(h_pred).clamp(0.0, 10.0)  # (S, 81, 1, 6)
    low = cpu_tensor(l_pred).clamp(-1.0, 0.0)  # (S, 1, 81, 6)
    zero = torch.zeros((), dtype=torch.float32)
    bought, sold = low > l_act, h < h_act  # (S, 1, 81, 6), (S, 81, 1, 6)
    target_gap = (low - h).abs()  # |l - h| == |h - l| exactly; the only full-grid input
    # The kernel's fee (bought & sold) is subtracted from both legs. Where a leg is not taken it
    # is 0 - 0 = 0 either way, and where it is taken "- fee" is "- FEE" if the other side also
    # filled and "- 0" (exact) otherwise: so each leg subtracts the other side's fill fee, a
    # per-offset term, and the full-grid passes drop from ten to eight.
    fee = cpu_tensor(KERNEL_FEE)
    fee_if_sold, fee_if_bought = torch.where(sold, fee, zero), torch.where(bought, fee, zero)
    buy = torch.where(bought, torch.where(h <= h_act, target_gap, (low - y).abs()) - fee_if_sold, zero)
    sell = torch.where(sold, torch.where(low >= l_act, target_gap, -(h - y).abs()) - fee_if_bought, zero)
    return buy, sell


def _always_on_search(moves, is_crypto: np.ndarray):
    """Best (x, z) grid indices and the chosen long / short legs, (S,), (S,), (S, 6), (S, 6)."""
    y, h_act, l_act, h_pred, l_pred = (m[:, None, None, :] for m in moves)
    grid = ALWAYS_ON_GRID.astype(np.float32)
    highs = h_pred + grid[None, :, None, None]  # (S, 81, 1, 6): x varies on axis 1
    lows = l_pred + grid[None, None, :, None]  # (S, 1, 81, 6): z varies on axis 2
    buy, sell = _always_on_legs(y, h_act, highs, l_act, lows)
    sell = torch.where(cpu_tensor(is_crypto, bool)[:, None, None, None], torch.zeros((), dtype=torch.float32), sell)
    totals = (sum_days_f32(buy).double() + sum_days_f32(sell).double()).numpy()
    flat = np.argmax(totals.reshape(totals.shape[0], -1), axis=1)  # x outer, z inner: legacy order
    ix, iz = np.divmod(flat, grid.size)
    rows = torch.arange(totals.shape[0])
    pick_x, pick_z = torch.from_numpy(ix), torch.from_numpy(iz)
    return ix, iz, buy[rows, pick_x, pick_z].numpy(), sell[rows, pick_x, pick_z].numpy()


def _always_on_search_native(search, moves, is_crypto: np.ndarray):
    """:func:`_always_on_search` through the extension: same results, bit for bit."""
    return search(
        *_day_arrays(moves),
        np.ascontiguousarray(is_crypto, dtype=bool),
        ALWAYS_ON_GRID.astype(np.float32),
        float(KERNEL_FEE),
        torch.get_num_threads(),
    )


def _maxdiff_always_on(inp: LegacyStrategyInputs, moves) -> dict[str, np.ndarray]:
    s = inp.num_simulations
    search = native_grids.native_search("always_on_search")
    if search is not None:
        ix, iz, buy, sell = _always_on_search_native(search, moves, inp.is_crypto)
    else:
        ix, iz = np.zeros(s, np.int64), np.zeros(s, np.int64)
        buy, sell = np.zeros((s, EVAL_DAYS), np.float32), np.zeros((s, EVAL_DAYS), np.float32)
        for start in range(0, s, ALWAYS_ON_CHUNK):
            part = slice(start, start + ALWAYS_ON_CHUNK)
            ix[part], iz[part], buy[part], sell[part] = _always_on_search([m[part] for m in moves], inp.is_crypto[part])
    x_best, z_best = ALWAYS_ON_GRID[ix], ALWAYS_ON_GRID[iz]
    daily = (buy + sell).astype(np.float64)
    m = summed_metrics_batch(daily, inp.trading_days_per_year)
    buy_sum, sell_sum = buy.astype(np.float64).sum(axis=1), sell.astype(np.float64).sum(axis=1)
    abs_total = np.abs(daily).sum(axis=1)
    filled_buy, filled_sell = np.count_nonzero(buy, axis=1), np.count_nonzero(sell, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        bias = np.where(abs_total != 0, (buy_sum - sell_sum) / np.where(abs_total != 0, abs_total, 1.0), 0.0)
    return {
        "maxdiffalwayson_return": m["total_return"],
        "maxdiffalwayson_sharpe": m["sharpe_ratio"],
        "maxdiffalwayson_finalday_return": daily[:, -1],
        "maxdiffalwayson_avg_daily_return": m["avg_daily_return"],
        "maxdiffalwayson_annual_return": m["annualized_return"],
        "maxdiffalwayson_turnover": np.abs(daily).mean(axis=1),
        "maxdiffalwayson_profit": m["total_return"],
        "maxdiffalwayson_profit_values": daily,
        "maxdiffalwayson_high_multiplier": x_best,
        "maxdiffalwayson_low_multiplier": z_best,
        "maxdiffalwayson_high_price": inp.high_predicted_price_value * (1.0 + x_best),
        "maxdiffalwayson_low_price": inp.low_predicted_price_value * (1.0 + z_best),
        "maxdiffalwayson_buy_contribution": buy_sum,
        "maxdiffalwayson_sell_contribution": sell_sum,
        "maxdiffalwayson_filled_buy_trades": filled_buy,
        "maxdiffalwayson_filled_sell_trades": filled_sell,
        "maxdiffalwayson_trades_total": filled_buy + filled_sell,
        "maxdiffalwayson_trade_bias": bias,
    }


def evaluate_legacy_strategies(inp: LegacyStrategyInputs) -> dict[str, np.ndarray]:
    """Evaluate every legacy strategy for ``S`` simulations, in the legacy order (§7).

    Parameters
    ----------
    inp : LegacyStrategyInputs
        Arrays with leading dimension ``S``.

    Returns
    -------
    dict
        The result-row columns the strategies produce (``simple_strategy_return`` ...
        ``maxdiffalwayson_trade_bias``), each ``(S,)``, except ``maxdiffprofit_profit_values`` and
        ``maxdiffalwayson_profit_values`` ``(S, 6)``; plus ``high_predictions_after`` and
        ``close_actual_movement_values_after`` ``(S, 6)`` float32: ``hp`` / ``ca`` as
        entry+take-profit left them (what highlow and the original's ``last_preds`` see).
    """
    out: dict[str, np.ndarray] = {}
    moves = _adjusted_moves(inp)
    out.update(_maxdiff(inp, moves))
    out.update(_maxdiff_always_on(inp, moves))
    out.update(_signal_columns(inp, _signals(inp)))
    takeprofit, high_after, close_after = _entry_takeprofit(inp)
    out.update(takeprofit)
    out.update(_highlow(inp, high_after, close_after))
    out["high_predictions_after"] = high_after
    out["close_actual_movement_values_after"] = close_after
    return out
