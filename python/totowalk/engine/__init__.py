"""Forecast engine: requests -> dedupe -> bucket by patch count -> pack -> batched forward -> sample -> reduce.

>>> from totowalk.engine import ForecastEngine, reference_forecast
"""

from .forecast_engine import DEFAULT_MAX_BATCH_TOKENS, ForecastEngine
from .plan import ForecastPlan, plan_forecast
from .reference import reference_forecast
from .result import ForecastParams, ForecastResult

__all__ = [
    "DEFAULT_MAX_BATCH_TOKENS",
    "ForecastEngine",
    "ForecastParams",
    "ForecastPlan",
    "ForecastResult",
    "plan_forecast",
    "reference_forecast",
]
