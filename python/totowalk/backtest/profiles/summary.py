"""Summaries over simulations: per-symbol and overall column means, walk-forward stats, best strategy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .legacy.metrics import BEST_STRATEGY_COLUMNS, WALK_FORWARD_SHARPES, best_strategy

OVERALL = "(all)"  # index label of the row that summarises every symbol's simulations


def summarize(simulations: pd.DataFrame, best=None, headline=None, daily=None) -> pd.DataFrame:
    """One row per symbol plus an overall row (label ``"(all)"``, present even for one symbol).

    Columns: ``num_simulations``, the mean over simulations of every numeric result column
    (NaN-skipping means, as pandas' ``DataFrame.mean`` in §9), the walk-forward stats and
    ``best_strategy``. ``headline(rows, daily, label) -> dict`` (the clean profile's daily-series
    figures) overrides entries of the same name; ``best`` then sees the overridden values.
    ``daily`` is the run's daily table (:func:`.daily.daily_table` of ``simulations``), computed
    once for every group.
    """
    codes, labels = pd.factorize(simulations["symbol"], sort=False)  # groupby(sort=False)'s order
    groups = [(label, np.flatnonzero(codes == k)) for k, label in enumerate(labels)]
    # one symbol without a daily headline: the overall row is that symbol's row (same rows, same means)
    reuse = len(groups) == 1 and headline is None
    if not reuse:
        groups.append((OVERALL, np.arange(len(simulations))))
    columns, values = _numeric_columns(simulations)

    # each group's own rows of the daily table, split once (not filtered out of it per group)
    daily_parts = {} if daily is None else dict(tuple(daily.groupby("symbol", sort=False)))

    rows = {}
    for label, members in groups:
        means = dict(zip(columns, _nan_means(values[:, members]).tolist())) if len(members) else {}
        row = {"num_simulations": int(len(members)), **means}
        row.update(_walk_forward_stats(means, len(members), values, columns, members))
        if headline is not None:
            part = daily_parts.get(label, None if daily is None else daily.iloc[:0])
            row.update(headline(simulations.iloc[members], part, label))
        if best is not None:
            row["best_strategy"] = best(row)
        elif all(c in means for c in BEST_STRATEGY_COLUMNS.values()):
            row["best_strategy"] = best_strategy(means)
        rows[label] = row
    if reuse:
        rows[OVERALL] = dict(rows[groups[0][0]])
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "symbol"
    return out


def summary_columns(simulations: pd.DataFrame) -> pd.DataFrame:
    """The columns of result rows :func:`summarize` reads (symbol, simulation, date and every numeric
    or bool column, in order): the same summary from a third of the rows' memory (no list-valued
    fields)."""
    numeric = simulations.select_dtypes(include=[np.number, "bool"]).columns
    keep = [c for c in simulations.columns if c in ("symbol", "simulation", "date") or c in numeric]
    return simulations[keep]


def _numeric_columns(frame: pd.DataFrame) -> tuple[list, np.ndarray]:
    """The numeric and bool result columns (not symbol/simulation) and their values as one
    (columns, rows) float64 array, each column contiguous."""
    numeric = frame.drop(columns=["symbol", "simulation"], errors="ignore").select_dtypes(include=[np.number, "bool"])
    if any(dtype.kind == "f" and dtype.itemsize != 8 for dtype in numeric.dtypes):
        raise TypeError("summaries expect float64 result columns")  # pandas would sum float32 in float32
    return list(numeric.columns), np.ascontiguousarray(numeric.to_numpy(dtype=np.float64).T)


def _nan_means(values: np.ndarray) -> np.ndarray:
    """Per row of (columns, rows), the mean of its non-NaN values (NaN where there are none):
    pandas' nanmean, i.e. a pairwise sum along each contiguous row divided by the count."""
    values = np.ascontiguousarray(values)
    missing = np.isnan(values)
    counts = values.shape[1] - missing.sum(axis=1)
    sums = np.where(missing, 0.0, values).sum(axis=1) if missing.any() else values.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _walk_forward_stats(means: dict, count: int, values: np.ndarray, columns: list, members: np.ndarray) -> dict:
    """``metrics.walk_forward_stats`` of a group from its column means (the same figures)."""
    if count == 0:
        return {}
    nan = float("nan")
    out = {"walk_forward_oos_sharpe": means.get("simple_strategy_sharpe", nan)}
    if "simple_strategy_return" in means:
        row = values[columns.index("simple_strategy_return"), members]
        out["walk_forward_turnover"] = float(_nan_means(np.abs(row)[None, :])[0])
    else:
        out["walk_forward_turnover"] = nan
    for column, name in WALK_FORWARD_SHARPES:
        if column in means:
            out[name] = means[column]
    return out
