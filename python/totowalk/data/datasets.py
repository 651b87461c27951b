"""Bundled public-domain daily prices (see PROVENANCE.md beside this file)."""

from __future__ import annotations

import functools
from importlib import resources

import pandas as pd

from .prices import PriceDataError, load_prices

BUNDLED_FILE = "us_stocks_daily_2000_2013.csv.gz"


def path() -> str:
    """Filesystem path of the bundled CSV (daily OHLCV + Adj Close, several symbols)."""
    return str(resources.files(__package__).joinpath(BUNDLED_FILE))


@functools.lru_cache(maxsize=1)
def _symbols() -> tuple[str, ...]:
    frame = pd.read_csv(path(), usecols=["Ticker"])
    return tuple(dict.fromkeys(frame["Ticker"]))


def list() -> list[str]:  # noqa: A001 - the public name is datasets.list()
    """Symbols in the bundled data set, in file order."""
    return [*_symbols()]


def load(symbol: str, *, adjust: str | None = "adj_close", **kwargs) -> pd.DataFrame:
    """Load one bundled symbol as a validated frame.

    ``adjust="adj_close"`` (the default here) removes the unadjusted splits of the raw file (AAPL
    2000-06-21 and 2005-02-28, MSFT 2003-02-18) and, as Adj Close does, also folds in dividends
    (a small factor on each ex-dividend day); pass ``adjust=None`` for the prices as traded.
    """
    if symbol not in _symbols():
        raise PriceDataError(f"unknown bundled symbol {symbol!r}; available: {', '.join(_symbols())}", symbol=symbol)
    return load_prices(path(), symbol=symbol, adjust=adjust, **kwargs)
