"""The forecasts table: one row per (symbol, simulation, key, step), its forecast, band, outcome
and scores, from the walk-forward arrays of a chunk of symbols."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .arrays import WalkForwardArrays
from .forecasters import Forecasts
from .plan import ForecastPlan

__all__ = ["forecast_table", "labels_at", "slot_scores"]


def slot_scores(plan: ForecastPlan, found: Forecasts) -> dict:
    """{"pit", "crps"}: each distinct forecast's scores at every (row, key, step) slot that uses it,
    in :func:`forecast_table`'s row order; NaN when the forecaster scored nothing."""
    if not found.scored:
        return {name: np.full(plan.num_slots, np.nan) for name in ("pit", "crps")}
    return {"pit": found.pit[plan.slot_request].reshape(-1), "crps": found.crps[plan.slot_request].reshape(-1)}


def forecast_table(a: WalkForwardArrays, keys, indexes: dict | None = None, scores: dict | None = None) -> pd.DataFrame:
    """Long table of every (symbol, simulation, key, step) forecast with its actual outcome.

    Row order: run order of (symbol, simulation), then key in ``keys`` order, then step.
    ``indexes`` (symbol -> the price frame's index) adds ``context_end_date``, the index label of
    the context's last row, and ``target_date``: that of the row whose return is forecast
    (``context_end + 1``), None past the end of the data. ``scores`` ({column: (rows,) values},
    e.g. :func:`slot_scores`) are appended as columns.
    """
    r, steps = a.context_ends.shape
    n_keys = len(keys)

    def stack(d):  # dict key -> (R, 7)  ->  (R * n_keys * 7,)
        return np.stack([d[k] for k in keys], axis=1).reshape(-1)

    codes, names = pd.factorize(a.symbol)  # per (symbol, simulation) row: cheap, then repeated
    symbol_codes = np.repeat(codes, n_keys * steps)
    context_ends = np.repeat(a.context_ends[:, None, :], n_keys, axis=1).reshape(-1)
    columns = {
        "symbol": labels_at(names, symbol_codes),
        "simulation": np.repeat(a.simulation, n_keys * steps),
        "key": labels_at(keys, np.tile(np.repeat(np.arange(n_keys), steps), r)),
        "step": np.tile(np.arange(steps), r * n_keys),
        "context_end": context_ends,
    }
    if indexes is not None:
        columns["context_end_date"] = _dates_at(symbol_codes, list(names), context_ends, indexes)
        columns["target_date"] = _dates_at(symbol_codes, list(names), context_ends + 1, indexes)
    return pd.DataFrame(
        {
            **columns,
            "prediction": stack(a.predictions),
            "band": stack(a.bands),
            "actual": stack(a.actuals),
            **(scores or {}),
        }
    )


def labels_at(labels, codes: np.ndarray):
    """The column ``labels[codes]`` as pandas would type a column of those labels, built by a take
    over the few distinct labels (a column of one Python string per row is converted row by row)."""
    return pd.Series(list(labels), dtype=None).array.take(codes)


def _dates_at(codes: np.ndarray, names: list, positions: np.ndarray, indexes: dict):
    """Index label of row ``positions`` of each row's symbol (``names[codes]``), None (NaT) past
    the end of its data.

    Dates stay datetime64 when every index is a DatetimeIndex of one resolution (no Timestamp
    objects per row); other labels go through a list, so pandas infers the column type.
    """
    dtypes = {index.dtype for index in indexes.values()}
    datetime_only = len(dtypes) == 1 and all(isinstance(i, pd.DatetimeIndex) and i.tz is None for i in indexes.values())
    dates = np.full(
        len(codes), np.datetime64("NaT") if datetime_only else None, dtype=dtypes.pop() if datetime_only else object
    )
    # each symbol's rows, found by one stable sort rather than one scan of every row per symbol
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(names) + 1))
    for code, sym in enumerate(names):
        rows = order[starts[code] : starts[code + 1]]
        targets = positions[rows]
        inside = targets < len(indexes[sym])
        labels = indexes[sym][targets[inside]]
        dates[rows[inside]] = labels.to_numpy() if datetime_only else np.asarray(labels.astype(object))
    return dates if datetime_only else dates.tolist()
