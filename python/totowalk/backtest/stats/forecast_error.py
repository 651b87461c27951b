"""Forecast error of a run: the mean absolute error of the point forecasts per key."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inputs.windows import EVAL_DAYS

__all__ = ["absolute_errors", "mae_by_key"]


def absolute_errors(forecasts: pd.DataFrame) -> pd.DataFrame:
    """``key`` and ``error`` (|prediction − actual|) of every evaluated step (0…5) with an outcome,
    in the forecasts table's row order: all :func:`mae_by_key` needs, a fraction of the table."""
    evaluated = forecasts[(forecasts["step"] < EVAL_DAYS) & forecasts["actual"].notna()]
    error = (evaluated["actual"] - evaluated["prediction"].astype(np.float64)).abs()
    key = pd.Categorical(evaluated["key"].to_numpy())  # a byte a row, not a string
    return pd.DataFrame({"key": key, "error": error.to_numpy()})


def mae_by_key(errors: pd.DataFrame, keys) -> pd.Series:
    """Mean absolute error per key of :func:`absolute_errors` rows, in ``keys`` order."""
    means = errors["error"].groupby(errors["key"].astype(object), observed=True).mean()
    return means.reindex(pd.Index(list(keys), name="key")).rename("mae")
