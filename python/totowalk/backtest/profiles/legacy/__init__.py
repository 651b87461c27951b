"""The legacy profile: the classic loop's result rows, field names and values (docs/LEGACY_SEMANTICS.md).

Its per-simulation metrics (``metrics.py``) keep the classic definitions on purpose, the summing
evaluator's population std included, for parity; the run's statistics of the daily series are
the shared ones of ``backtest/stats``.
"""

from __future__ import annotations

from ...forecast.kronos import KRONOS_MISALIGNED_WARNING
from ..profile import Profile
from .rows import evaluate, order_columns

__all__ = ["PROFILE", "LEGACY_MAXDIFF_WARNING", "LEGACY_DAILY_WARNING"]

LEGACY_MAXDIFF_WARNING = (
    "legacy profile: MaxDiff / MaxDiffAlwaysOn figures use limit offsets fitted in-sample on the "
    "very days they report (LEGACY_SEMANTICS §11.1); they overstate what the strategy earns"
)
LEGACY_DAILY_WARNING = (
    "legacy profile: the daily walk-forward series is each simulation's classic final-day field, which "
    "trades the stale 7th forecast (its target return is already observed, LEGACY_SEMANTICS §11.3) with "
    "MaxDiff/AlwaysOn offsets fitted in-sample (§11.1), and for entry_takeprofit and highlow is the "
    "window's average day (§11.7); its statistics are not out-of-sample"
)


def notes(settings) -> list:
    """The legacy rows' known defects a reader must see; Kronos' misaligned steps when it forecasts."""
    out = [LEGACY_MAXDIFF_WARNING, LEGACY_DAILY_WARNING]
    if (settings.forecaster or {}).get("kind") == "kronos":
        out.append(KRONOS_MISALIGNED_WARNING)
    return out


PROFILE = Profile(name="legacy", evaluate=evaluate, order_columns=order_columns, notes=notes)
