"""Drop-ins: the engine behind the APIs people already call.

* :mod:`.pipeline`: the classic backtest's ``TotoPipeline.predict`` (LEGACY_SEMANTICS §2.3).
* :mod:`.toto`: toto-ts 0.2.0's ``TotoForecaster.forecast``, its ``Forecast`` and ``MaskedTimeseries``
  (and a ``Toto.from_pretrained`` stand-in there): a toto-ts script changes its imports only.
"""

from .pipeline import CompatForecast, TotoPipeline
from .toto import Forecast, MaskedTimeseries, TotoForecaster

__all__ = ["CompatForecast", "Forecast", "MaskedTimeseries", "TotoForecaster", "TotoPipeline"]
