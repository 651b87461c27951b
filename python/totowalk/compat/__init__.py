"""Drop-ins: the engine behind the APIs people already call.

* :mod:`.pipeline`: the classic backtest's ``TotoPipeline.predict`` (LEGACY_SEMANTICS §2.3).
"""

from .pipeline import CompatForecast, TotoPipeline

__all__ = ["CompatForecast", "TotoPipeline"]
