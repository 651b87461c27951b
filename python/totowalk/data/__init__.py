"""Price loading, validation and the bundled data sets."""

from . import datasets
from .prices import PRICE_COLUMNS, PriceDataError, load_prices, require_rows

__all__ = ["PRICE_COLUMNS", "PriceDataError", "datasets", "load_prices", "require_rows"]
