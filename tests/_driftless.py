"""Daily bars from simulated driftless intraday paths, for the no-information tests.

Each day is a path of ``ticks`` multiplicative steps with mean-zero noise (a martingale: no
strategy without information has a positive expected return on it). The bar is what an OHLC file
would hold: open = the previous close, high / low = the path's extremes, close = its end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def intraday_paths(days: int, seed: int, ticks: int = 200, daily_vol: float = 0.02, start: float = 100.0):
    """(days, ticks + 1) prices: column 0 is the open (= the previous day's close)."""
    rng = np.random.default_rng(seed)
    steps = 1.0 + rng.normal(0.0, daily_vol / np.sqrt(ticks), size=(days, ticks))
    flat = start * np.cumprod(steps.ravel())
    closes = flat.reshape(days, ticks)[:, -1]
    opens = np.concatenate([[start], closes[:-1]])
    return np.concatenate([opens[:, None], flat.reshape(days, ticks)], axis=1)


def bars_from_paths(paths: np.ndarray) -> pd.DataFrame:
    index = pd.bdate_range("2001-01-01", periods=paths.shape[0], name="Date")
    return pd.DataFrame(
        {"Open": paths[:, 0], "High": paths.max(axis=1), "Low": paths.min(axis=1), "Close": paths[:, -1]}, index=index
    )


def driftless_bars(days: int, seed: int, **kw) -> pd.DataFrame:
    return bars_from_paths(intraday_paths(days, seed, **kw))


def zero_forecaster(contexts):
    return np.zeros(len(contexts), dtype=np.float32)


def constant_forecaster(contexts):
    return np.full(len(contexts), 0.002, dtype=np.float32)


def noise_forecaster(contexts):
    # seeded by each context's content, so a context's forecast does not depend on its batch
    out = np.empty(len(contexts), dtype=np.float32)
    for i, c in enumerate(contexts):
        key = (len(c), float(np.asarray(c, dtype=np.float64)[-1]) if len(c) else 0.0)
        out[i] = np.random.default_rng(abs(hash(key)) % 2**32).normal(0.0, 0.01)
    return out
