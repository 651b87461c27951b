"""The legacy MaxDiff limit-order kernel and grids (LEGACY_SEMANTICS.md §6.5-6.7).

* :func:`limit_order_profit` - the element-wise float32 profit kernel (§6.5), broadcasting over
  any leading shape, so the batch code evaluates ``(S, grid, days)`` at once;
* the offset grids of MaxDiff (two sequential 500-point sweeps) and MaxDiffAlwaysOn (81 x 81),
  both fitted **on the reported days** (defect 1, kept for parity).

:mod:`.strategies` runs the searches for every simulation at once; the literal one-simulation
searches it is tested against are test oracles (tests/oracles/maxdiff.py).
"""

from __future__ import annotations

import numpy as np
import torch

from ..torch_cpu import cpu_tensor

__all__ = [
    "KERNEL_FEE",
    "MAXDIFF_GRID",
    "ALWAYS_ON_GRID",
    "limit_order_profit",
    "sum_days_f32",
    "previous_bar_spreads",
]

KERNEL_FEE = np.float32(0.0005)  # loss_utils.TRADING_FEE, hard-coded for stocks and crypto (defect 4)
MAXDIFF_GRID = np.linspace(-0.03, 0.03, 500)  # 0 is not a grid point
ALWAYS_ON_GRID = np.linspace(-0.03, 0.03, 81)  # contains 0 exactly


def limit_order_profit(close_move, high_move, high_pred, low_move, low_pred, position) -> np.ndarray:
    """Element-wise float32 P&L of a buy-low / sell-high limit pair (§6.5).

    All arguments broadcast together (float32 arithmetic throughout).

    Parameters
    ----------
    close_move : array_like
        Actual close move ``y``.
    high_move, low_move : array_like
        Actual high / low moves ``H``, ``L``.
    high_pred, low_pred : array_like
        Predicted high / low moves; clipped to [0, 10] and [-1, 0].
    position : array_like
        Signed position; the long leg uses ``clip(q, 0, 10)``, the short leg ``clip(q, -10, 0)``.

    Returns
    -------
    numpy.ndarray, float32, the broadcast shape
    """
    # torch on the CPU: the same IEEE float32 element-wise results as numpy, on all cores (the
    # MaxDiff grids are a large part of a many-simulation backtest).
    y, h_act, l_act, h_pred, l_pred, q = (
        cpu_tensor(a) for a in (close_move, high_move, low_move, high_pred, low_pred, position)
    )
    zero = torch.zeros((), dtype=torch.float32)
    h_pred = h_pred.clamp(0.0, 10.0)
    l_pred = l_pred.clamp(-1.0, 0.0)
    q_long = q.clamp(0.0, 10.0)
    q_short = q.clamp(-10.0, 0.0).abs()
    bought = l_pred > l_act
    sold = h_pred < h_act
    # Long leg: bought at the low target, sold at the high target if reached, else closed at y.
    # The un-hit case books |l - y| (a loss turned into a gain, defect 13) - kept for parity.
    long_leg = torch.where(h_pred <= h_act, (l_pred - h_pred).abs(), (l_pred - y).abs()) * q_long
    long_leg = torch.where(bought, long_leg, zero)
    # Short leg: sold at the high target, covered at the low target if reached, else a loss |h - y|.
    short_leg = torch.where(l_pred >= l_act, (h_pred - l_pred).abs(), -(h_pred - y).abs()) * q_short
    short_leg = torch.where(sold, short_leg, zero)
    fee = torch.where(bought & sold, q.abs() * cpu_tensor(KERNEL_FEE), zero)
    return (long_leg + short_leg - fee).numpy()


def sum_days_f32(values):
    """Float32 sum over the last axis, accumulated left to right (the order of a 6-element sum).

    A fixed order makes the batched and the single-simulation searches see identical sums. A
    float32 torch tensor is summed as a tensor (the same additions, so the same bits).
    """
    if not isinstance(values, torch.Tensor):
        values = np.asarray(values, dtype=np.float32)
    zeros_like = torch.zeros_like if isinstance(values, torch.Tensor) else np.zeros_like
    total = zeros_like(values[..., 0])
    for day in range(values.shape[-1]):
        total = total + values[..., day]
    return total


def previous_bar_spreads(close, high, low) -> tuple[np.ndarray, np.ndarray]:
    """``kappa_high = |1 - High/Close|``, ``kappa_low = |1 - Low/Close|`` per row (§6.6).

    The ratio counts as 0 where Close is 0 (kappa = 1); NaN / inf kappas become 0.
    Shapes broadcast; float64 out.
    """
    c = np.asarray(close, dtype=np.float64)
    safe = np.where(c == 0, 1.0, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa_high = np.abs(1.0 - np.where(c == 0, 0.0, np.asarray(high, dtype=np.float64) / safe))
        kappa_low = np.abs(1.0 - np.where(c == 0, 0.0, np.asarray(low, dtype=np.float64) / safe))
    kappa_high[~np.isfinite(kappa_high)] = 0.0
    kappa_low[~np.isfinite(kappa_low)] = 0.0
    return kappa_high, kappa_low
