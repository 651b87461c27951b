"""How a problem in price data is reported: the error, the repair warning, and where they point.

:class:`PriceDataError` says where and what; :class:`PriceRepairWarning` counts a repair made as
asked, and points at the code that loaded the prices.
"""

from __future__ import annotations

import sys
import warnings

import pandas as pd

# the modules between load_prices' caller and a repair's warning (reading.py and dates.py warn of nothing)
_LOADING_MODULES = {f"{__package__}.{name}" for name in ("errors", "per_symbol", "panel", "prices")}


class PriceRepairWarning(UserWarning):
    """Prices were repaired as asked (or an optional column was blanked); the message counts it."""


class PriceDataError(ValueError):
    """Bad price data. ``symbol``, ``column``, ``row`` (0-based position in the input for that
    symbol) and ``date`` say where; the message says what and how to fix it."""

    def __init__(self, message, *, symbol=None, column=None, row=None, date=None):
        self.symbol, self.column, self.row, self.date = symbol, column, row, date
        where = []
        if symbol is not None:
            where.append(f"symbol {symbol!r}")
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}" + (f" ({fmt_date(date)})" if date is not None else ""))
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def fmt_date(date) -> str:
    """A date as the messages write it: the day alone at midnight."""
    if isinstance(date, pd.Timestamp):
        return date.strftime("%Y-%m-%d") if date == date.normalize() else str(date)
    return str(date)


def warn_repair(message: str) -> None:
    """Warn with :class:`PriceRepairWarning`, pointed at the first caller outside the loading modules
    (the code that called load_prices), however deep in them the warning is raised."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_globals.get("__name__") in _LOADING_MODULES:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, PriceRepairWarning, stacklevel=level)
