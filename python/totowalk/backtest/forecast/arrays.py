"""Stack the forecasts and prices every (symbol, simulation) row needs into (R, …) arrays.

Rows are (symbol, simulation) pairs in run order; the strategies are evaluated on these arrays
for all rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..inputs.frames import float64_columns
from ..inputs.windows import EVAL_DAYS, close_returns
from .plan import ForecastPlan

ATR_DAYS = 14
DOLLAR_VOLUME_DAYS = 20
INTRABAR_VOL_DAYS = 20  # bars before a day whose Garman-Klass variances estimate its intrabar volatility


@dataclass
class WalkForwardArrays:
    """Per-row inputs of the strategies (R rows, 7 steps, 6 evaluated days).

    Attributes
    ----------
    symbol : (R,) object; simulation : (R,) int; n_rows : (R,) int window length N
    date : (R,) Index, the index label of each window's last row (the frames' own index type:
        dates stay datetime64, never one Timestamp object a row)
    predictions, bands : dict key -> (R, 7) float32
    actuals : dict key -> (R, 7) float64 percent change at each target row (NaN if not observed)
    context_ends : (R, 7) int, last price row of each step's context
    last_price : dict key -> (R,) float64, the key's price in the window's last row
    close_returns : (R, 6) float64, ``C_i / C_{i−1} − 1`` for the window's last 6 rows (§4)
    prev_bar : dict "High"/"Low"/"Close"/"Open" -> (R, 6) float64, prices in the row where each
        evaluated day's target return starts (MaxDiff's previous-bar spreads, §6.6; the clean
        profile re-bases the day's moves on its close)
    atr_pct_14, dollar_vol_20d : (R,) float64 diagnostics (§4)
    intrabar_vol : (R, 6) float64, each evaluated day's open-to-close volatility as a move, estimated
        from the bars before it only (:func:`intrabar_volatility`); the clean profile's expected
        limit fills condition on it
    kronos_move : (R,) float64 Kronos' Close r_7 (backtest/forecast/kronos.py), None when not run
    """

    symbol: np.ndarray
    simulation: np.ndarray
    n_rows: np.ndarray
    date: pd.Index
    predictions: dict
    bands: dict
    actuals: dict
    context_ends: np.ndarray
    last_price: dict
    close_returns: np.ndarray
    prev_bar: dict
    atr_pct_14: np.ndarray
    dollar_vol_20d: np.ndarray
    intrabar_vol: np.ndarray
    kronos_move: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        return int(self.simulation.shape[0])

    def take(self, rows: np.ndarray) -> "WalkForwardArrays":
        """The subset of rows ``rows`` (e.g. the ones a resumed run still has to evaluate)."""

        def pick(v):
            if isinstance(v, dict):
                return {k: pick(x) for k, x in v.items()}
            return None if v is None else v[rows]

        return WalkForwardArrays(**{f: pick(getattr(self, f)) for f in self.__dataclass_fields__})


def build_arrays(plan: ForecastPlan, point: np.ndarray, band: np.ndarray) -> WalkForwardArrays:
    """Map the distinct forecasts back to every (row, key, step) slot and gather the prices.

    Parameters
    ----------
    plan : ForecastPlan of the run
    point, band : (U,) float32 results of the plan's requests
    """
    parts = [_symbol_arrays(plan, s_i, point, band) for s_i in range(len(plan.series))]
    out = {}
    for field in parts[0]:  # kronos_move is set later, when Kronos runs
        first = parts[0][field]
        if isinstance(first, dict):
            out[field] = {k: np.concatenate([p[field][k] for p in parts]) for k in first}
        elif isinstance(first, pd.Index):
            out[field] = first.append([p[field] for p in parts[1:]])
        else:
            out[field] = np.concatenate([p[field] for p in parts])
    return WalkForwardArrays(**out)


def _symbol_arrays(plan, s_i, point, band) -> dict:
    s = plan.series[s_i]
    lay = s.layout
    offset = sum(x.layout.num_simulations for x in plan.series[:s_i])
    rows = slice(offset, offset + lay.num_simulations)
    n = lay.window_rows  # (K,)
    last = n - 1
    observed = lay.observed
    frame = s.frame
    # each price column read out of the frame once (a column lookup costs more than its arithmetic)
    columns = [c for c in ("Open", "High", "Low", "Close", "Volume") if c in frame]
    prices = dict(zip(columns, float64_columns(frame, columns)))
    predictions, bands, actuals, last_price = {}, {}, {}, {}
    for k_i, key in enumerate(plan.keys):
        req = plan.slot_request[rows, k_i, :]  # (K, 7)
        predictions[key] = point[req]
        bands[key] = band[req]
        pct = s.pct[key]
        target = np.minimum(lay.target_rows, len(pct) - 1)
        actuals[key] = np.where(observed, pct[target], np.nan)
        last_price[key] = prices[key][last]
    close = prices["Close"]
    day_rows = last[:, None] - EVAL_DAYS + 1 + np.arange(EVAL_DAYS)[None, :]  # (K, 6)
    start_rows = lay.target_rows[:, :EVAL_DAYS] - 1
    return {
        "symbol": np.array([s.symbol] * lay.num_simulations, dtype=object),
        "simulation": np.arange(lay.num_simulations),
        "n_rows": n.copy(),
        "date": frame.index[last],
        "predictions": predictions,
        "bands": bands,
        "actuals": actuals,
        "context_ends": lay.context_ends.copy(),
        "last_price": last_price,
        "close_returns": close_returns(close)[day_rows],
        "prev_bar": {c: prices[c][start_rows] for c in ("High", "Low", "Close", "Open")},
        "atr_pct_14": _atr_pct(prices, n),
        "dollar_vol_20d": _dollar_volume(prices, n),
        "intrabar_vol": intrabar_volatility(prices)[np.minimum(lay.target_rows[:, :EVAL_DAYS], len(frame) - 1)],
    }


def _atr_pct(prices, n: np.ndarray) -> np.ndarray:
    """§4: mean true range of the window's last 14 rows over its last close, in percent.

    0.0 when the window has fewer than 15 rows.
    """
    high, low, close = (np.asarray(prices[c]) for c in ("High", "Low", "Close"))
    prev = np.concatenate([[np.nan], close[:-1]])
    with np.errstate(invalid="ignore"):
        tr = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    tr[0] = high[0] - low[0]
    csum = np.concatenate([[0.0], np.cumsum(tr)])
    atr = (csum[n] - csum[n - ATR_DAYS]) / ATR_DAYS
    out = atr / close[n - 1] * 100.0
    return np.where(n >= ATR_DAYS + 1, out, 0.0)


def _dollar_volume(prices, n: np.ndarray) -> np.ndarray:
    """§4: mean Close × Volume over the window's last 20 rows (0.0 without a Volume column);
    like the classic pandas mean it skips missing volumes (NaN when all 20 are missing)."""
    if "Volume" not in prices:
        return np.zeros(n.shape, dtype=np.float64)
    dv = np.asarray(prices["Close"]) * np.asarray(prices["Volume"])
    known = np.isfinite(dv)
    csum = np.concatenate([[0.0], np.cumsum(np.where(known, dv, 0.0))])
    count = np.concatenate([[0], np.cumsum(known)])
    lo = np.maximum(n - DOLLAR_VOLUME_DAYS, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (csum[n] - csum[lo]) / (count[n] - count[lo])


def intrabar_volatility(prices, days: int = INTRABAR_VOL_DAYS) -> np.ndarray:
    """(rows,) each row's open-to-close volatility, from the ``days`` bars before it.

    A bar's Garman-Klass variance ``0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2`` is unbiased for the
    variance of a driftless Brownian path from the open to the close; the mean over the bars before
    a row (as many as exist, up to ``days``; the first row uses its own bar) is that row's
    variance, so a day's fills never read the day's own range twice. Floored at 1e-8.
    """
    o, h, low, c = (np.asarray(prices[k], dtype=np.float64) for k in ("Open", "High", "Low", "Close"))
    with np.errstate(divide="ignore", invalid="ignore"):
        gk = 0.5 * np.log(h / low) ** 2 - (2.0 * np.log(2.0) - 1.0) * np.log(c / o) ** 2
    gk = np.where(np.isfinite(gk), gk, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(gk)])
    rows = np.arange(len(gk))
    start = np.maximum(rows - days, 0)
    count = rows - start
    mean = np.where(count > 0, (csum[rows] - csum[start]) / np.maximum(count, 1), gk)
    return np.sqrt(np.maximum(mean, 1e-16))
