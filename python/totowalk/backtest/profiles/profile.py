"""What a profile is: the one interface the run reaches every profile through.

A profile turns the walk-forward arrays (forecasts and aligned outcomes of every (symbol,
simulation) row) into result rows, and says how those rows are summarised and what a reader must
be warned of. ``legacy`` and ``clean`` are the two; :func:`.registry.profile_named` finds one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

__all__ = ["Profile", "STRATEGY_PREFIXES"]

# The strategy family of both profiles, by result-column prefix, in run order (the daily series,
# the statistics and the report list strategies in this order).
STRATEGY_PREFIXES = (
    "simple_strategy",
    "all_signals_strategy",
    "buy_hold",
    "unprofit_shutdown",
    "ci_guard",
    "entry_takeprofit",
    "highlow",
    "maxdiff",
    "maxdiffalwayson",
)


@dataclass(frozen=True)
class Profile:
    """A backtest profile.

    Attributes
    ----------
    name : "legacy" or "clean"
    evaluate : ``(arrays, settings) -> DataFrame``: one result row per row of the walk-forward
        arrays, all rows at once
    order_columns : ``(rows) -> DataFrame``: the rows with the profile's column order
    notes : ``(settings) -> list[str]``: warnings every report of such a run must show
    best_strategy : ``(summary row) -> str | None``: the summary's ``best_strategy``; None keeps
        the classic rule of the summary (LEGACY_SEMANTICS §9)
    summary_headline : ``(rows, series, label, means) -> dict``: summary entries that replace the
        window means (the clean profile's daily-series figures); None for none
    headline_columns : the result columns ``summary_headline`` reads of its rows beside their
        means and ``date``; None for every column (the overall row's rows are read from disk)
    carry_state : ``(rows, arrays, settings) -> rows``: the final-day fields of strategies whose
        decisions depend on their own past, recomputed as one continuous path over each symbol's
        days (after every row is evaluated: a resumed run's rows come back stateless); None when
        every strategy is judged window by window
    strategy_prefixes : the strategies whose final days form the daily series, in run order
    """

    name: str
    evaluate: Callable[..., pd.DataFrame]
    order_columns: Callable[[pd.DataFrame], pd.DataFrame]
    notes: Callable[..., list]
    best_strategy: Callable[[Mapping], str | None] | None = None
    summary_headline: Callable[..., dict] | None = None
    headline_columns: tuple | None = None
    carry_state: Callable[..., pd.DataFrame] | None = None
    strategy_prefixes: tuple = STRATEGY_PREFIXES
