"""What a run keeps of each chunk for its summaries, a fraction of the chunk's tables.

:func:`summary_pieces` reads one chunk's tables (or a group of its symbols, in a worker process:
backtest/host_workers.py) and gives each symbol's summary row, every row's numeric result columns
(the overall row), the final days (the daily series), the absolute errors (MAE) and each distinct
scored forecast (calibration). :class:`KeptForSummaries` gathers them over the run, in run order.
"""

from __future__ import annotations

import pandas as pd

from ..memory import release_free_memory
from .profiles.summary import (
    OverallRows,
    numeric_columns,
    overall_row,
    summary_columns,
    summary_frame,
    symbol_rows,
)
from .stats.calibration import distinct_scored
from .stats.daily import final_day_table, portfolio_table, with_portfolio
from .stats.forecast_error import absolute_errors

__all__ = ["SCORED_COLUMNS", "KeptForSummaries", "summary_pieces"]

SCORED_COLUMNS = ("key", "target_date", "pit", "crps")  # what calibration reads of the distinct scored rows


def summary_pieces(rules, part: dict) -> dict:
    """What the summaries need of one chunk's (or symbol group's) tables ``part``, made where it
    was evaluated: ``rows`` ({symbol: summary row}), ``numeric`` ((columns, values) of every row),
    ``dates`` (the rows' dates, or None), ``days``, ``errors`` and ``scored``."""
    sims, forecasts = part["simulations"], part["forecasts"]
    days = final_day_table(sims, rules.strategy_prefixes)
    numeric = numeric_columns(sims)  # once: each symbol's means and the overall array both read it
    return {
        "rows": symbol_rows(summary_columns(sims), rules.best_strategy, rules.summary_headline, days, numeric),
        "numeric": numeric,
        "dates": sims["date"].to_numpy() if "date" in sims else None,
        "days": _compact_days(days),
        "errors": absolute_errors(forecasts),
        "scored": _compact_scored(distinct_scored(forecasts)),
    }


class KeptForSummaries:
    """The :func:`summary_pieces` of every chunk, in run order. Each list is handed over once and
    let go, so its parts and their concatenation do not stay together."""

    def __init__(self, rules, folder=None):
        self.rules, self.overall = rules, OverallRows(folder)  # its rows wait on disk
        self.symbol_rows: dict = {}
        self._final_days, self._errors, self._scored = [], [], []
        self._portfolio = None

    def add(self, part: dict) -> None:
        """Keep what the summaries need of one chunk's tables."""
        self.take(summary_pieces(self.rules, part))

    def take(self, pieces: dict) -> None:
        """Keep one chunk's (or group's) :func:`summary_pieces`, made here or in a worker."""
        self.symbol_rows.update(pieces["rows"])
        self.overall.add(*pieces["numeric"], pieces["dates"])
        self._final_days.append(pieces["days"])
        self._errors.append(pieces["errors"])
        self._scored.append(pieces["scored"])

    def summary(self, daily: pd.DataFrame) -> pd.DataFrame:
        rules, overall = self.rules, self.overall
        frame = overall.frame(rules.headline_columns) if rules.summary_headline is not None else None
        row = overall_row(overall.columns, overall, frame, rules.best_strategy, rules.summary_headline, daily)
        self.overall = None  # its file is let go with the summary made
        return summary_frame(self.symbol_rows, row, rules.summary_headline)

    @staticmethod
    def _joined(parts: list) -> pd.DataFrame:
        joined = parts[0].reset_index(drop=True) if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        parts.clear()
        release_free_memory()  # the parts' memory goes back now, not after the next table's peak
        return joined

    def portfolio(self) -> pd.DataFrame:
        """The portfolio's rows of the daily table (all the summary reads of it), made once."""
        self._portfolio = portfolio_table(self._final_days)
        return self._portfolio

    def daily(self) -> pd.DataFrame:
        """The daily table with its portfolio, the chunks' final days copied into it once."""
        return with_portfolio(self._final_days, self._portfolio)

    def errors(self) -> pd.DataFrame:
        return self._joined(self._errors)

    def scored(self) -> pd.DataFrame:
        return self._joined(self._scored)


def _compact_days(days: pd.DataFrame) -> pd.DataFrame:
    """A chunk's final days with the symbol and strategy as categories (a byte or two a row, where
    pandas 3 stores text at 13-20): the daily table is built from them, in its own dtypes, at the end."""
    return _as_categories(days, ("symbol", "strategy"))


def _compact_scored(scored: pd.DataFrame) -> pd.DataFrame:
    """The columns of distinct scored forecasts that calibration reads, the key a byte a row: a
    chunk's rows are distinct, and chunks hold distinct symbols, so the run's are too."""
    columns = [c for c in SCORED_COLUMNS if c in scored]
    if "target_date" not in scored and "context_end" in scored:
        columns.append("context_end")  # the days are counted by position where there are no dates
    return _as_categories(scored[columns], ("key",))


def _as_categories(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """``frame`` with those of ``columns`` it has as categories (a few labels, a code a row), their
    labels sorted. A text column is encoded in its own storage (pandas 3's Arrow text: no Python
    string a row); a column already of categories is re-made from its values, so its labels sort."""
    return frame.assign(**{c: _categories(frame[c]) for c in columns if c in frame})


def _categories(column: pd.Series) -> pd.Categorical:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pd.Categorical(column.to_numpy())
    return pd.Categorical(column)
