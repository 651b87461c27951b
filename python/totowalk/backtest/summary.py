"""Summaries over simulations: per-symbol and overall column means, walk-forward stats, best strategy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import BEST_STRATEGY_COLUMNS, best_strategy, walk_forward_stats

OVERALL = "(all)"  # index label of the row that summarises every symbol's simulations


def summarize(simulations: pd.DataFrame, best=None, headline=None, daily=None) -> pd.DataFrame:
    """One row per symbol plus an overall row (label ``"(all)"``, present even for one symbol).

    Columns: ``num_simulations``, the mean over simulations of every numeric result column
    (pandas NaN-skipping means, as §9), the walk-forward stats and ``best_strategy``.
    ``headline(rows, daily, label) -> dict`` (the clean profile's daily-series figures) overrides
    entries of the same name; ``best`` then sees the overridden values. ``daily`` is the run's
    daily table (:func:`.daily.daily_table` of ``simulations``), computed once for every group.
    """
    groups = [(sym, part) for sym, part in simulations.groupby("symbol", sort=False)]
    # one symbol without a daily headline: the overall row is that symbol's row (same rows, same means)
    reuse = len(groups) == 1 and headline is None
    if not reuse:
        groups.append((OVERALL, simulations))

    # each group's own rows of the daily table, split once (not filtered out of it per group)
    daily_parts = {} if daily is None else dict(tuple(daily.groupby("symbol", sort=False)))

    def group_headline(label):
        part = daily_parts.get(label, None if daily is None else daily.iloc[:0])
        return None if headline is None else (lambda rows: headline(rows, part, label))

    rows = {label: summarize_rows(part, best, group_headline(label)) for label, part in groups}
    if reuse:
        rows[OVERALL] = dict(rows[groups[0][0]])
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "symbol"
    return out


def summarize_rows(frame: pd.DataFrame, best=None, headline=None) -> dict:
    """Summary of one set of simulation rows (the legacy ``backtest_forecasts`` summary, §9)."""
    numeric = frame.drop(columns=["symbol", "simulation"], errors="ignore")
    numeric = numeric.select_dtypes(include=[np.number, "bool"])
    means = numeric.mean().to_dict() if len(frame) else {}
    out = {"num_simulations": int(len(frame)), **means}
    out.update(walk_forward_stats(frame))
    if headline is not None:
        out.update(headline(frame))
    if best is not None:
        out["best_strategy"] = best(out)
    elif all(c in means for c in BEST_STRATEGY_COLUMNS.values()):
        out["best_strategy"] = best_strategy(means)
    return out
