"""How the clean profile fills limit orders on a daily OHLC bar (docs/FILLS.md has the whole model).

Every move is relative to the previous close: ``o``, ``H``, ``L``, ``y`` are the bar's open, high,
low and close moves (``L <= o, y <= H``). Orders are day orders, live from the open.

What the bar proves, in every fill model:

* a buy limit at ``l`` fills when the bar trades through it (``L < l``), at ``l``, or at the open
  ``o`` when the bar opens below it (``o < l``: the order is marketable at the open); a sell limit
  at ``h`` likewise (``H > h``; at ``max(h, o)``);
* a round trip (entry limit, then an exit limit on the other side) whose entry fills at the open
  is followed by the whole bar, so its exit fills exactly when the bar trades through it;
* when the entry fills later and the close is beyond the exit, the path crossed the exit after the
  entry: the exit fills.

One case the bar cannot settle: the entry fills during the bar, the close is short of the exit,
and the bar traded through the exit (long: ``o >= l > L``, ``y < h < H``). Whether the path came
back to the exit after the entry depends on the order of the extremes. The fill models book it:

* ``"expected"`` (default): the expectation over the intrabar paths consistent with the bar, a
  driftless Brownian motion from the open to the close with the bar's high and low: the exit fills
  with probability ``p`` (:mod:`.bridge`), so the leg earns ``(y - l) + p (h - y)``. On a martingale
  a rule without information then neither earns nor loses;
* ``"adverse"``: ``p = 0``, the exit does not fill and the position closes at the close: the lower
  bound of what the bar allows;
* ``"optimistic"``: ``p = 1``, the exit fills: the upper bound.

Whatever the model, the other two are the bracket every clean run reports beside it:
``adverse <= expected <= optimistic`` for the same orders, day by day.
"""

from __future__ import annotations

import numpy as np

from .bridge import mirrored_bar, p_long

__all__ = [
    "DEFAULT_FILL_MODEL",
    "FILL_MODELS",
    "buy_limit",
    "check_fill_model",
    "round_trip_fills",
    "round_trip_profit",
    "sell_limit",
]

FILL_MODELS = ("expected", "adverse", "optimistic")
DEFAULT_FILL_MODEL = "expected"


def check_fill_model(fill_model: str) -> str:
    if fill_model not in FILL_MODELS:
        raise ValueError(f"fill_model must be one of {FILL_MODELS}, got {fill_model!r}")
    return fill_model


def round_trip_profit(
    close_move,
    open_move,
    high_move,
    low_move,
    high_target,
    low_target,
    position,
    unit_cost,
    fill_model: str = "adverse",
    sigma=None,
) -> np.ndarray:
    """Net float64 P&L of MaxDiff's buy-low / sell-high limit pair, one leg per sign of ``position``.

    The targets are clipped first: ``h = clip(high_target, 0, 10)``, ``l = clip(low_target, -1, 0)``.
    ``position > 0`` trades the long leg (buy at ``l``, take profit at ``h``), ``< 0`` the short
    leg (sell at ``h``, cover at ``l``), scaled by ``|position|``; a filled leg pays
    ``2 * unit_cost`` (entry and exit). Each leg is ``(exit - entry) - 2 * unit_cost`` (long) or
    ``(entry - exit) - 2 * unit_cost`` (short), with entry and exit as in the module docstring;
    csrc/strategy_grid.cpp computes the same operations for the adverse and optimistic models.
    ``sigma`` (the bar's intrabar volatility as a move, > 0) is needed by ``"expected"`` only.
    Arguments broadcast.
    """
    check_fill_model(fill_model)
    # numpy: a chunk's arrays are a few thousand rows of seven days, where torch's per-call cost
    # (the CPU tensors it once ran on for all cores) outweighed the work; the same IEEE operations
    y, o, h_act, l_act, h, low, q, cost = (
        np.asarray(a, dtype=np.float64)
        for a in (close_move, open_move, high_move, low_move, high_target, low_target, position, unit_cost)
    )
    h, low, cost = np.clip(h, 0.0, 10.0), np.clip(low, -1.0, 0.0), 2.0 * cost
    bought, sold = low > l_act, h < h_act
    long_open, short_open = o < low, o > h
    long_entry = np.where(long_open, o, low)
    short_entry = np.where(short_open, o, h)
    long_after_open = np.where(h_act > h, h, y)
    short_after_open = np.where(l_act < low, low, y)
    if fill_model == "adverse":
        long_later, short_later = np.minimum(y, h), np.maximum(y, low)
    elif fill_model == "optimistic":
        long_later = np.where((h < h_act) | (y >= h), h, y)
        short_later = np.where((low > l_act) | (y <= low), low, y)
    else:
        long_later, short_later = _expected_exits(y, o, h_act, l_act, h, low, q, bought, sold, sigma)
    long_exit = np.where(long_open, long_after_open, long_later)
    short_exit = np.where(short_open, short_after_open, short_later)
    long_leg = np.where(bought, (long_exit - long_entry) - cost, 0.0) * np.maximum(q, 0.0)
    short_leg = np.where(sold, (short_entry - short_exit) - cost, 0.0) * np.maximum(-q, 0.0)
    return long_leg + short_leg


def _expected_exits(y, o, h_act, l_act, h, low, q, bought, sold, sigma) -> tuple:
    """The exits after an entry during the bar, as the expectation over the bar's paths: certain
    where the bar settles it, ``y + p (h - y)`` (long) / ``y + p (l - y)`` (short) where not."""
    if sigma is None:
        raise ValueError("fill_model='expected' needs sigma, the bars' intrabar volatility")
    s = np.asarray(sigma, dtype=np.float64)
    if not np.isfinite(s).all() or (s <= 0).any():
        raise ValueError("fill_model='expected': sigma must be finite and > 0 for every bar")
    y, o, h_act, l_act, h, low, q, s, bought, sold = np.broadcast_arrays(y, o, h_act, l_act, h, low, q, s, bought, sold)
    long_later, short_later = np.minimum(y, h), np.maximum(y, low)
    # only the legs traded, filled during the bar and left open by the close need a probability
    unsettled_long = (q > 0) & bought & (o >= low) & (y < h) & (h < h_act)
    unsettled_short = (q < 0) & sold & (o <= h) & (y > low) & (low > l_act)
    sides = []
    for unsettled in (unsettled_long, unsettled_short):
        cells = np.nonzero(unsettled)
        bar_open, close, high, low_move, buy, sell, vol = (t[cells] for t in (o, y, h_act, l_act, low, h, s))
        # moves re-based on the previous close can leave the open or close an ulp outside the bar
        bar_open, close = (np.clip(v, low_move, high) for v in (bar_open, close))
        sides.append((cells, (bar_open, close, high, low_move, buy, sell, vol)))
    (long_cells, long_bars), (short_cells, short_bars) = sides
    if not long_cells[0].size + short_cells[0].size:
        return long_later, short_later
    # Both legs in one call of the bridge, whose cost is as much per call as per bar: a short leg's
    # chance is the long leg's on the mirrored bar (bridge.p_short), the same operations bar by bar.
    bar_open, close, high, low_move, buy, sell, vol = short_bars
    mirrored = (*mirrored_bar(bar_open, close, high, low_move, buy, sell), vol)
    p = np.asarray(p_long(*(np.concatenate(pair) for pair in zip(long_bars, mirrored))), dtype=np.float64)
    if not np.isfinite(p).all():
        at = int(np.flatnonzero(~np.isfinite(p))[0])
        bars, at = (long_bars, at) if at < long_cells[0].size else (short_bars, at - long_cells[0].size)
        bar_open, close, high, low_move, buy, sell, vol = (float(v[at]) for v in bars)
        raise FloatingPointError(
            f"expected fill: no probability for the bar (open {bar_open!r}, high {high!r}, low "
            f"{low_move!r}, close {close!r}, limits {buy!r} / {sell!r}, sigma {vol!r})"
        )
    split = long_cells[0].size
    long_later[long_cells] = y[long_cells] + p[:split] * (h[long_cells] - y[long_cells])
    short_later[short_cells] = y[short_cells] + p[split:] * (low[short_cells] - y[short_cells])
    return long_later, short_later


def round_trip_fills(high_move, low_move, high_target, low_target, position) -> np.ndarray:
    """Units of position change of :func:`round_trip_profit` (entry + exit = 2 per filled leg,
    times ``|position|``); the same in every fill model."""
    h = np.clip(high_target, 0.0, 10.0)
    low = np.clip(low_target, -1.0, 0.0)
    return 2.0 * ((low > low_move) * np.maximum(position, 0.0) + (h < high_move) * np.maximum(-position, 0.0))


def buy_limit(open_move, low_move, limit):
    """A buy limit order live from the open: ``(filled, price)``, filled when the bar trades below
    the limit, at the limit, or at the open when the bar opens below it."""
    return low_move < limit, np.minimum(limit, open_move)


def sell_limit(open_move, high_move, limit):
    """A sell limit order live from the open: ``(filled, price)``, filled when the bar trades above
    the limit, at the limit, or at the open when the bar opens above it."""
    return high_move > limit, np.maximum(limit, open_move)
