"""The data report.html's universe table is built from, embedded in the page as compact JSON: per statistic
one base64 array of the exact float64 values (int16 or int32 where all are whole numbers, as days), so each
cell's ``data-value`` is summary.json's number as in the other tables; and per symbol its latest distinct
forecasts as 16-bit integers times a per-symbol scale (4-5 significant digits of its largest value), its
dates as runs of one shared date list. FIGURE_POINTS bounds those forecasts over all symbols together (the
latest FIGURE_POINTS / symbols of each, at least MIN_FIGURE_POINTS): the exact statistics of 5,000 symbols
x 9 strategies take 3 MB and plotly 4.8 MB, so 5,000 symbols x 250 simulations get each symbol's latest 32
forecasts in a page of 9.4 MB. Every forecast stays in the forecasts table. The page's script
(page_universe.py) decodes them."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd

from .page_charts import _percent

FIGURE_POINTS = 160_000  # forecasts embedded for the universe's figure, all symbols together (8 characters each)
MIN_FIGURE_POINTS = 30  # ... but at least this many of each symbol's latest

# the universe table's statistics: (statistic, heading, format); the data hold these and the Sharpe interval
_UNIVERSE_COLUMNS = (
    ("sharpe", "Sharpe [95% CI]", "sharpe"),
    ("total_return", "total return", "pct"),
    ("max_drawdown", "max DD", "pct"),
    ("win_rate", "win rate", "pct"),
    ("days", "days", "int"),
)
_UNIVERSE_VALUES = tuple(s for s, _, _ in _UNIVERSE_COLUMNS) + ("sharpe_low", "sharpe_high")


def _table_data(stats: dict, symbols: list, strategies: list) -> dict:
    """The table's exact values: per statistic one array over the rows (symbol-major, strategy-minor), and
    the rows summary.json does not hold (a strategy without a series for a symbol)."""
    grid = np.full((len(_UNIVERSE_VALUES), len(symbols) * len(strategies)), np.nan)
    missing = []
    for i, symbol in enumerate(symbols):
        for j, strategy in enumerate(strategies):
            row = stats[symbol].get(strategy)
            if row is None:
                missing.append(i * len(strategies) + j)
            else:
                grid[:, i * len(strategies) + j] = [row.get(stat) for stat in _UNIVERSE_VALUES]
    return {"columns": {stat: _packed(values) for stat, values in zip(_UNIVERSE_VALUES, grid)}, "missing": missing}


def _packed(values: np.ndarray) -> list:
    """[type, base64 of the little-endian array]: the smallest of int16 and int32 that holds every value when
    all are whole numbers (days), else float64: bit for bit the numbers summary.json holds."""
    whole = bool(np.isfinite(values).all() and (values == np.round(values)).all())
    dtype = next((t for t in ("<i2", "<i4") if whole and (np.abs(values) < np.iinfo(t).max).all()), "<f8")
    return [dtype[1:], base64.b64encode(values.astype(dtype).tobytes()).decode("ascii")]


def _figure_data(distinct: pd.DataFrame, symbols: list) -> tuple:
    """Each symbol's latest distinct forecasts for the figure, compact, and the sentence that says how many:
    the dates once ("dates"), and per symbol [scale, runs, values] ("figures", null without forecasts):
    runs are (first index, count) pairs of consecutive dates, values base64 little-endian int16 triples
    (forecast, half band, outcome) that times scale give percent; -32768 marks a missing value."""
    latest = max(MIN_FIGURE_POINTS, FIGURE_POINTS // max(1, len(symbols)))
    owner = pd.Index(symbols).get_indexer(distinct["symbol"])
    f = distinct.assign(owner=owner)[owner >= 0].sort_values(["owner", "context_end"], kind="stable")
    kept = f.groupby("owner", sort=False).tail(latest)
    figures: list = [None] * len(symbols)
    data = {"dates": [], "figures": figures}
    if not len(kept):
        return data, _figure_note(latest, False)
    owner = kept["owner"].to_numpy()
    codes, dates = pd.factorize(kept["target_date"].astype(str), sort=True)
    starts = np.flatnonzero(np.r_[True, np.diff(owner) != 0])
    scales, quantised = _quantised(np.column_stack(_percent(kept)), starts)
    ends = np.r_[starts[1:], len(owner)]
    for start, end, scale, runs in zip(starts, ends, scales, _date_runs(owner, codes, starts)):
        figures[owner[start]] = [scale, runs, base64.b64encode(quantised[start:end].tobytes()).decode("ascii")]
    data["dates"] = list(dates)
    return data, _figure_note(latest, len(f) > len(kept))


def _quantised(values: np.ndarray, starts: np.ndarray) -> tuple:
    """Per symbol (its rows from each of ``starts``) a scale of 4 significant digits putting its largest
    |value| near 32,000, and every value as an int16 count of its symbol's scale; -32768 where missing."""
    finite = np.isfinite(values)
    peaks = np.maximum.reduceat(np.where(finite, np.abs(values), 0.0).max(axis=1), starts)
    scales = [float(f"{peak / 32000:.4g}") if peak > 0 else 1.0 for peak in peaks]  # |count| <= ~32,016
    per_row = np.repeat(scales, np.diff(np.r_[starts, len(values)]))[:, None]
    counts = np.rint(np.where(finite, values, 0.0) / per_row)
    return scales, np.where(finite, counts, -32768).astype("<i2")


def _date_runs(owner: np.ndarray, codes: np.ndarray, starts: np.ndarray) -> list:
    """Per symbol, flat (first, count) pairs of its runs of consecutive date codes."""
    first = np.flatnonzero(np.r_[True, (np.diff(owner) != 0) | (np.diff(codes) != 1)])
    pairs = np.column_stack([codes[first], np.diff(np.r_[first, len(codes)])])
    bounds = np.searchsorted(first, np.r_[starts, len(codes)])  # a symbol's first row starts a run
    return [pairs[a:b].ravel().tolist() for a, b in zip(bounds[:-1], bounds[1:])]


def _figure_note(latest: int, cut: bool) -> str:
    if not cut:
        return "Every symbol's forecasts are drawn."
    return (
        f"Each symbol's latest {latest:,} forecasts are drawn, to keep the page small; all of them are in the "
        "forecasts table."
    )
