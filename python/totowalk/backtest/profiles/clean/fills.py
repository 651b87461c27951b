"""How the clean profile fills limit orders on a daily OHLC bar.

Every move is relative to the previous close: ``o``, ``H``, ``L``, ``y`` are the bar's open, high,
low and close moves (``L <= o, y <= H``). Orders are day orders, live from the open.

The default fill model, ``"adverse"``, books only what the bar proves:

* a buy limit at ``l`` fills when the bar trades through it (``L < l``), at ``l``, or at the open
  ``o`` when the bar opens below it (``o < l``: the order is marketable at the open);
  a sell limit at ``h`` likewise (``H > h``; at ``max(h, o)``);
* a round trip (entry limit, then an exit limit on the other side) whose entry fills at the open
  is followed by the whole bar, so its exit fills exactly when the bar trades through it;
* when the entry fills later, the bar cannot say whether its extreme on the exit side came before
  or after the entry, so the adverse order is booked: the exit does not fill and the position
  closes at the close - unless the close itself is beyond the exit, which the path must then
  have crossed after the entry (long: ``min(y, h) - l``; short: ``h - max(y, l)``).

Every booked P&L is therefore one some intraday path with these O, H, L, C would give, and never
more than the actual path gives; on a driftless path no rule has a positive expectation.

``"optimistic"`` is the earlier rule, kept for comparison and labelled as such in the results:
both limits inside the range are booked as if the entry came first (the full distance between
them), touching a limit fills it (exit ``h <= H``), and the open is ignored.
"""

from __future__ import annotations

import numpy as np
import torch

from ..torch_cpu import cpu_tensor

__all__ = ["FILL_MODELS", "check_fill_model", "round_trip_profit", "round_trip_fills", "buy_limit", "sell_limit"]

FILL_MODELS = ("adverse", "optimistic")


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
) -> np.ndarray:
    """Net float64 P&L of MaxDiff's buy-low / sell-high limit pair, one leg per sign of ``position``.

    The targets are clipped first: ``h = clip(high_target, 0, 10)``, ``l = clip(low_target, -1, 0)``.
    ``position > 0`` trades the long leg (buy at ``l``, take profit at ``h``), ``< 0`` the short
    leg (sell at ``h``, cover at ``l``), scaled by ``|position|``; a filled leg pays
    ``2 * unit_cost`` (entry and exit). Each leg is ``(exit - entry) - 2 * unit_cost`` (long) or
    ``(entry - exit) - 2 * unit_cost`` (short), with entry and exit as in the module docstring;
    csrc/strategy_grid.cpp computes the same operations. Arguments broadcast.
    """
    check_fill_model(fill_model)
    # torch on the CPU: the same IEEE float64 element-wise results as numpy, on all cores (the
    # walk-forward grids of the clean MaxDiff strategies are most of a clean backtest's time).
    y, o, h_act, l_act, h, low, q, cost = (
        cpu_tensor(a, np.float64)
        for a in (close_move, open_move, high_move, low_move, high_target, low_target, position, unit_cost)
    )
    h, low, cost = h.clamp(0.0, 10.0), low.clamp(-1.0, 0.0), 2.0 * cost
    bought, sold = low > l_act, h < h_act
    if fill_model == "adverse":
        long_open, short_open = o < low, o > h
        long_entry = torch.where(long_open, o, low)
        long_exit = torch.where(long_open, torch.where(h_act > h, h, y), torch.minimum(y, h))
        short_entry = torch.where(short_open, o, h)
        short_exit = torch.where(short_open, torch.where(l_act < low, low, y), torch.maximum(y, low))
    else:
        long_entry, long_exit = low, torch.where(h <= h_act, h, y)
        short_entry, short_exit = h, torch.where(low >= l_act, low, y)
    zero = torch.zeros((), dtype=torch.float64)
    long_leg = torch.where(bought, (long_exit - long_entry) - cost, zero) * q.clamp_min(0.0)
    short_leg = torch.where(sold, (short_entry - short_exit) - cost, zero) * (-q).clamp_min(0.0)
    return (long_leg + short_leg).numpy()


def round_trip_fills(high_move, low_move, high_target, low_target, position) -> np.ndarray:
    """Units of position change of :func:`round_trip_profit` (entry + exit = 2 per filled leg,
    times ``|position|``); the same in both fill models."""
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
