"""Forecast error of a run: the mean absolute error of the point forecasts per key."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inputs.windows import EVAL_DAYS

__all__ = ["absolute_errors", "mae_by_key"]


def absolute_errors(forecasts: pd.DataFrame) -> pd.DataFrame:
    """``key`` and ``error`` (|prediction − actual|) of every evaluated step (0…5) with an outcome,
    in the forecasts table's row order: all :func:`mae_by_key` needs, a fraction of the table
    (read three columns at a time, not the table filtered whole)."""
    actual = forecasts["actual"].to_numpy(np.float64)
    evaluated = (forecasts["step"].to_numpy() < EVAL_DAYS) & ~np.isnan(actual)
    error = np.abs(actual[evaluated] - forecasts["prediction"].to_numpy()[evaluated].astype(np.float64))
    key = pd.Categorical(forecasts["key"].array[evaluated])  # a byte a row, not a string
    return pd.DataFrame({"key": key, "error": error})


def mae_by_key(errors: pd.DataFrame, keys) -> pd.Series:
    """Mean absolute error per key of :func:`absolute_errors` rows, in ``keys`` order."""
    means = errors["error"].groupby(errors["key"], observed=True).mean()  # a category's codes, not its text
    means.index = means.index.astype(object)
    return means.reindex(pd.Index(list(keys), name="key")).rename("mae")
