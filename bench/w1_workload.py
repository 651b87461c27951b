"""Workload W1: the classic run's forecast requests (LEGACY_SEMANTICS §1.2, §2.1-2.3).

One daily series of T rows, K simulations; simulation k keeps rows [0, T-k-1); for each key
(Close, Low, High, Open) it asks for 7 one-step forecasts of the percent-change series with
contexts pct_1..pct_l, l = T-k-9+j (j = 0..6), as float32. K x 4 x 7 calls, K + 6 distinct
contexts per key.
"""

from __future__ import annotations

import numpy as np

KEYS = ("Close", "Low", "High", "Open")


def percent_change(prices: np.ndarray) -> np.ndarray:
    """pct_0 = 1, pct_i = (P_i - P_{i-1}) / P_{i-1} (0 where P_{i-1} = 0); non-finite -> 0. float64."""
    prices = np.asarray(prices, dtype=np.float64)
    pct = np.empty_like(prices)
    if prices.size == 0:
        return pct
    pct[0] = 1.0
    previous = prices[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(previous != 0, (prices[1:] - previous) / previous, 0.0)
    pct[1:] = np.where(np.isfinite(change), change, 0.0)
    return pct


def w1_contexts(frame, num_simulations: int = 10) -> list:
    """The classic loop's contexts, in its call order (simulation, key, pred_idx 7..1).

    Parameters
    ----------
    frame : pandas.DataFrame
        Daily OHLC rows in time order (T rows).
    num_simulations : int
        K.

    Returns
    -------
    list of np.ndarray
        K * 4 * 7 float32 1-D contexts.
    """
    rows = len(frame)
    contexts = []
    for k in range(num_simulations):
        for key in KEYS:
            pct = percent_change(frame[key].to_numpy()[: rows - k - 1])
            n = len(pct)
            for j in range(7):
                contexts.append(pct[1 : n - 7 + j].astype(np.float32))
    return contexts
