"""Drop-ins: the engine behind the APIs people already call.

* :mod:`.pipeline`: the classic backtest's ``TotoPipeline.predict`` (LEGACY_SEMANTICS §2.3).
* :mod:`.toto`: toto-ts 0.2.0's ``TotoForecaster.forecast``, its ``Forecast`` and ``MaskedTimeseries``
  (and a ``Toto.from_pretrained`` stand-in there): a toto-ts script changes its imports only.
* :mod:`.kronos`: the Kronos reference's ``KronosPredictor`` (``predict``, ``predict_batch``), one
  engine call per batch.
* :mod:`.gluonts`: ``TotoPredictor``, a GluonTS predictor with exact quantiles (needs ``totowalk[gluonts]``).
"""

from .kronos import KronosPredictor
from .pipeline import CompatForecast, TotoPipeline
from .toto import Forecast, MaskedTimeseries, TotoForecaster

__all__ = ["CompatForecast", "Forecast", "KronosPredictor", "MaskedTimeseries", "TotoForecaster", "TotoPipeline"]
