"""The clean profile: the legacy strategy family with the defects of LEGACY_SEMANTICS §11 fixed,
out-of-sample fits, one cost rule and a stated fill model."""

from __future__ import annotations

from ..profile import Profile
from .headline import FRAME_COLUMNS, summary_headline
from .rows import evaluate, order_columns
from .selection import named_best
from .stateful import carry_state

__all__ = ["PROFILE", "ADVERSE_FILL_WARNING", "OPTIMISTIC_FILL_WARNING"]

OPTIMISTIC_FILL_WARNING = (
    "clean profile with fill_model='optimistic': a round trip the bar cannot settle is booked as if its exit "
    "filled, the upper bound of what the bar allows; it overstates limit-order strategies (the default "
    "'expected' books the expectation over the bar's paths)"
)
ADVERSE_FILL_WARNING = (
    "clean profile with fill_model='adverse': a round trip the bar cannot settle is booked as if its exit "
    "never filled, the lower bound of what the bar allows; it understates limit-order strategies and loses "
    "money on information-free forecasts (the default 'expected' books the expectation over the bar's paths)"
)


def notes(settings) -> list:
    """A fill model that books a bound instead of the expectation is named in every report."""
    model = getattr(settings, "fill_model", None)
    return {"optimistic": [OPTIMISTIC_FILL_WARNING], "adverse": [ADVERSE_FILL_WARNING]}.get(model, [])


PROFILE = Profile(
    name="clean",
    evaluate=evaluate,
    order_columns=order_columns,
    notes=notes,
    best_strategy=named_best,
    summary_headline=summary_headline,
    headline_columns=FRAME_COLUMNS,
    carry_state=carry_state,
)
