"""The columns of a price frame, as load_prices names them, and the columns that name a symbol."""

from __future__ import annotations

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
OPTIONAL_COLUMNS = ("Volume", "Adj Close")
SYMBOL_COLUMNS = ("ticker", "symbol")
