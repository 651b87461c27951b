"""The columns of a price frame, as load_prices names them, and the columns that name a symbol."""

from __future__ import annotations

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
OPTIONAL_COLUMNS = ("Volume", "Adj Close")
SYMBOL_COLUMNS = ("ticker", "symbol")
# other names a bar's time goes by (Kronos' frames say "timestamps", exchange exports "timestamp"
# or "datetime"); read as Date when no column is called Date
DATE_ALIASES = ("timestamp", "timestamps", "datetime", "time")


def date_columns(columns) -> list:
    """The columns that name the bars' dates: those called Date (any case, spaces stripped), or,
    when there is none, those called by one of DATE_ALIASES. More than one is ambiguous."""
    keys = [(c, str(c).strip().lower()) for c in columns]
    named = [c for c, key in keys if key == "date"]
    return named or [c for c, key in keys if key in DATE_ALIASES]
