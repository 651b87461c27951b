"""totowalk: exact, batched walk-forward backtests driven by the Toto forecasting model.

Public names (see the README): ``build_info``, ``load_prices``, ``datasets``, ``TotoConfig``,
``build_model``, ``load_model``, ``save_checkpoint``, ``ForecastEngine``, ``backtest``.
"""

from . import engine
from ._build_info import build_info
from ._version import __version__
from .backtest import BacktestResult, backtest
from .backtest.forecast.ray_executor import RayExecutor
from .backtest.report.files import write_outputs
from .data import PriceDataError, datasets, load_prices
from .engine import ForecastEngine, ForecastResult, reference_forecast
from .kronos import KronosEngine, KronosForecast, KronosInput, load_kronos
from .loading import load_model
from .model import TotoConfig, TotoModel, build_model, save_checkpoint

__all__ = [
    "BacktestResult",
    "ForecastEngine",
    "ForecastResult",
    "KronosEngine",
    "KronosForecast",
    "KronosInput",
    "PriceDataError",
    "RayExecutor",
    "TotoConfig",
    "TotoModel",
    "__version__",
    "backtest",
    "build_info",
    "build_model",
    "datasets",
    "engine",
    "load_kronos",
    "load_model",
    "load_prices",
    "reference_forecast",
    "save_checkpoint",
    "write_outputs",
]
