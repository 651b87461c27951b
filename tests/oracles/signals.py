"""Test oracle: the legacy close-signal strategies and their evaluator ``evaluate_strategy``, one
simulation at a time, literally (LEGACY_SEMANTICS.md §6.1-6.2).

Signals are float32 vectors with values in {-1, 0, +1}, one per evaluated day. These single-case
functions follow the legacy rules literally; :mod:`totowalk.backtest.profiles.legacy.strategies` evaluates many
simulations at once and is tested against them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from totowalk.backtest.profiles.legacy.metrics import Evaluation, evaluate_compounded
from totowalk.backtest.profiles.legacy.strategies import CI_GUARD_FLOOR, MIXED_BOOK_FEE_FACTOR

__all__ = [
    "simple_signals",
    "all_signals",
    "buy_hold_signals",
    "unprofit_shutdown_signals",
    "ci_guard_signals",
    "signal_trading_cost",
    "evaluate_signal_strategy",
]


def _f32(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float32).reshape(-1)


def simple_signals(close_predictions, is_crypto: bool) -> np.ndarray:
    """+1 if the predicted close move is > 0, else -1 (a zero forecast is short); crypto: -1 -> 0.

    Parameters
    ----------
    close_predictions : array_like, shape (n,)

    Returns
    -------
    numpy.ndarray, shape (n,), float32
    """
    cp = _f32(close_predictions)
    short = np.float32(0.0) if is_crypto else np.float32(-1.0)
    return np.where(cp > 0, np.float32(1.0), short).astype(np.float32)


def all_signals(close_pred, high_pred, low_pred, is_crypto: bool) -> np.ndarray:
    """+1 when close, high and low moves are all predicted > 0; -1 when all < 0 (stocks only)."""
    cp, hp, lp = _f32(close_pred), _f32(high_pred), _f32(low_pred)
    long = (cp > 0) & (hp > 0) & (lp > 0)
    short = (cp < 0) & (hp < 0) & (lp < 0) & (not is_crypto)
    return (long.astype(np.float32) - short.astype(np.float32)).astype(np.float32)


def buy_hold_signals(close_predictions) -> np.ndarray:
    """Signal path used for buy & hold's Sharpe and averages: ``[cp > 0]`` (§6.2)."""
    return (_f32(close_predictions) > 0).astype(np.float32)


def unprofit_shutdown_signals(close_predictions, actual_returns, is_crypto: bool) -> np.ndarray:
    """Unprofitable-shutdown buy & hold (§6.1): day 0 long; go flat after a wrong day.

    Parameters
    ----------
    close_predictions : array_like, shape (n,)
    actual_returns : array_like, shape (>= n - 1,)
        ``r`` by position (the legacy code indexes a RangeIndex Series by label).
    is_crypto : bool
        Negative signals are zeroed *after* the loop (the loop itself sees them, defect 17).
    """
    cp = _f32(close_predictions)
    r = np.asarray(actual_returns, dtype=np.float64).reshape(-1)
    signals = np.zeros(cp.size, dtype=np.float32)
    if cp.size == 0:
        return signals
    direction = np.sign(cp).astype(np.float32)
    signals[0] = 1.0
    for i in range(1, cp.size):
        previous_correct = (r[i - 1] > 0 and cp[i - 1] > 0) or (r[i - 1] < 0 and cp[i - 1] < 0)
        signals[i] = direction[i] if (signals[i - 1] == 0 or previous_correct) else 0.0
    if is_crypto:
        signals[signals < 0] = 0.0
    return signals


def ci_guard_signals(close_predictions, ci_band, ci_multiplier: float, is_crypto: bool) -> np.ndarray:
    """Confidence-guard signals: trade only when |forecast| beats the band (§6.1).

    ``w = max(|band|, 1e-8) * multiplier``; +1 if ``cp > w``; -1 if ``cp < -w`` (stocks only).
    """
    cp = _f32(close_predictions)
    band = np.asarray(ci_band, dtype=np.float64).reshape(-1)
    if band.shape != cp.shape:
        raise ValueError(f"ci_guard_signals: ci_band has shape {band.shape}, close_predictions {cp.shape}")
    width = np.maximum(np.abs(band), CI_GUARD_FLOOR) * ci_multiplier
    long = cp > width
    short = (cp < -width) & (not is_crypto)
    return (long.astype(np.float32) - short.astype(np.float32)).astype(np.float32)


def signal_trading_cost(signals: np.ndarray, trading_fee: float, spread: float) -> np.ndarray:
    """Per-day cost ``|s_t - s_{t-1}| * (fee' + |1 - SPREAD| / 2)`` with ``s_{-1} = 0`` (§6.1 step 3).

    ``fee' = fee * 0.523`` when the signals contain a long, a short and a flat day.
    """
    s = np.asarray(signals, dtype=np.float64)
    mixed = bool((s > 0).any() and (s < 0).any() and (s == 0).any())
    per_unit = trading_fee * (MIXED_BOOK_FEE_FACTOR if mixed else 1.0) + abs(1.0 - spread) / 2.0
    return np.abs(np.diff(s, prepend=0.0)) * per_unit


def evaluate_signal_strategy(
    signals, actual_returns, trading_fee: float, trading_days_per_year: float, spread: float
) -> Evaluation:
    """Legacy ``evaluate_strategy``: position signals applied to returns, compounded (§6.1, §5.2).

    Parameters
    ----------
    signals : array_like, shape (n,)
    actual_returns : pandas.Series or array_like, shape (m,)
        When n != m both are cut to their last min(n, m) entries (the returns keep their index).
    trading_fee : float
    trading_days_per_year : float
    spread : float
        The global bid/ask ratio ``SPREAD`` (1.0 means no spread cost).
    """
    s = _f32(signals).astype(np.float64)
    r = (
        actual_returns
        if isinstance(actual_returns, pd.Series)
        else pd.Series(np.asarray(actual_returns, dtype=np.float64))
    )
    if s.size == 0 or len(r) == 0:
        return Evaluation(0.0, 0.0, 0.0, 0.0, pd.Series(dtype=np.float64))
    n = min(s.size, len(r))
    s, r = s[s.size - n :], r.iloc[len(r) - n :].astype(np.float64)
    net = s * r.to_numpy() - signal_trading_cost(s, trading_fee, spread)
    return evaluate_compounded(pd.Series(net, index=r.index), trading_days_per_year)
