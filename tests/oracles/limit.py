"""Test oracle: the legacy entry+take-profit and highlow strategies, one simulation (LEGACY_SEMANTICS.md §6.3-6.4).

Precision follows the inputs, as in the legacy code: float32 arrays (the simulation path, torch
tensors in the original) use float32 arithmetic; anything else is float64. Inputs are never
modified; entry+take-profit instead *returns* the values the original wrote back into its float32
inputs (defect 11), so callers can hand them to highlow as the original did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracles.metrics import evaluate_summed
from totowalk.backtest.profiles.legacy.metrics import Evaluation

__all__ = ["EntryTakeprofitResult", "evaluate_entry_takeprofit", "evaluate_highlow"]


def _as_arrays(*arrays):
    converted = [np.asarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a).reshape(-1) for a in arrays]
    float32 = all(a.dtype == np.float32 for a in converted)
    dtype = np.float32 if float32 else np.float64
    return [a.astype(dtype) for a in converted], dtype


@dataclass
class EntryTakeprofitResult:
    """Evaluation plus the two arrays the legacy code mutates in place (float32 inputs only).

    ``high_predictions_after`` / ``close_actual_after`` have the input's length; they equal the
    inputs except, on buy days that paid a fee, the entry the target-hit (high) or the
    target-missed (close) branch read, which holds that day's net return.
    """

    evaluation: Evaluation
    high_predictions_after: np.ndarray
    close_actual_after: np.ndarray


def evaluate_entry_takeprofit(
    close_pred,
    high_pred,
    low_pred,
    actual_close,
    actual_high,
    actual_low,
    trading_fee: float,
    trading_days_per_year: float,
) -> EntryTakeprofitResult:
    """Legacy ``evaluate_entry_takeprofit_strategy`` (§6.3).

    Parameters
    ----------
    close_pred, high_pred, low_pred, actual_close, actual_high, actual_low : array_like, shape (n_k,)
        Cut to the common minimum length n. All float32 -> float32 arithmetic and mutation.
    trading_fee : float
        Paid once per side change; twice (close + open) after day 0. A zero forecast is short and
        crypto does not disable shorts here (defect 12).
    trading_days_per_year : float
    """
    arrays, dtype = _as_arrays(close_pred, high_pred, low_pred, actual_close, actual_high, actual_low)
    high_after, close_after = arrays[1].copy(), arrays[3].copy()
    n = min(a.size for a in arrays)
    cp, hp, lp, ca, ha, la = (a[:n] for a in arrays)
    daily = np.zeros(n, dtype=dtype)
    previous = None
    for i in range(n):
        side = "buy" if cp[i] > 0 else "short"
        if side == "buy":
            hit = ha[i] >= hp[i]
            gross = hp[i] if hit else ca[i]
        else:
            hit = la[i] <= lp[i]
            gross = -lp[i] if hit else -ca[i]
        fee = 0.0
        if side != previous:
            fee = trading_fee * (2.0 if i > 0 else 1.0)
        daily[i] = gross - dtype(fee)
        if dtype is np.float32 and side == "buy" and fee > 0:
            (high_after if hit else close_after)[i] = daily[i]
        previous = side
    return EntryTakeprofitResult(
        evaluate_summed(daily.astype(np.float64), trading_days_per_year), high_after, close_after
    )


def evaluate_highlow(
    close_pred,
    high_pred,
    low_pred,
    actual_close,
    actual_high,
    actual_low,
    trading_fee: float,
    is_crypto: bool,
    trading_days_per_year: float,
) -> Evaluation:
    """Legacy ``evaluate_highlow_strategy`` (§6.4): limit entry at the predicted low (long) or high (short).

    Iterates over ``len(close_pred)`` days without truncating the other arrays (defect 22); a
    shorter array read on some day raises ``IndexError`` naming it. Zero forecasts (and, for
    crypto, negative ones) are flat days with no fee.
    """
    arrays, dtype = _as_arrays(close_pred, high_pred, low_pred, actual_close, actual_high, actual_low)
    cp, hp, lp, ca, ha, la = arrays
    names = ("high_predictions", "low_predictions", "actual_close", "actual_high", "actual_low")

    def read(array_index: int, day: int):
        array = arrays[array_index]
        if day >= array.size:
            raise IndexError(
                f"evaluate_highlow: {names[array_index - 1]} has {array.size} values, day {day} needs more"
            )
        return array[day]

    daily = np.zeros(cp.size, dtype=dtype)
    previous = None
    for i in range(cp.size):
        if cp[i] > 0:
            close, low, low_target = read(3, i), read(5, i), read(2, i)
            entry = low_target if low <= low_target else close
            gain, side = close - entry, "buy"
        elif not is_crypto and cp[i] < 0:
            close, high, high_target = read(3, i), read(4, i), read(1, i)
            entry = high_target if high >= high_target else close
            gain, side = entry - close, "short"
        else:
            previous = None
            continue
        fee = 0.0
        if side != previous:
            fee = trading_fee * (2.0 if previous is not None else 1.0)
        daily[i] = gain - dtype(fee)
        previous = side
    return evaluate_summed(daily.astype(np.float64), trading_days_per_year)
