"""totowalk: exact, batched walk-forward backtests driven by the Toto forecasting model.

Public names (see the README): ``build_info``, ``load_prices``, ``datasets``, ``TotoConfig``,
``build_model``, ``load_model``, ``save_checkpoint``, ``ForecastEngine``, ``backtest``.
"""

from ._build_info import build_info
from ._version import __version__
from .data import datasets, load_prices, PriceDataError

__all__ = ["__version__", "build_info", "datasets", "load_prices", "PriceDataError"]
