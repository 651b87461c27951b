"""The clean profile: the legacy strategy family with the defects of LEGACY_SEMANTICS §11 fixed,
out-of-sample fits, one cost rule and a stated fill model."""

from __future__ import annotations

from ..profile import Profile
from .headline import summary_headline
from .rows import evaluate, order_columns
from .selection import named_best
from .stateful import carry_state

__all__ = ["PROFILE", "OPTIMISTIC_FILL_WARNING"]

OPTIMISTIC_FILL_WARNING = (
    "clean profile with fill_model='optimistic': a round trip whose limits both lie inside a bar is "
    "booked as if the entry came first; this overstates limit-order strategies (use the default 'adverse')"
)


def notes(settings) -> list:
    """A fill model that overstates limit orders is named in every report."""
    return [OPTIMISTIC_FILL_WARNING] if getattr(settings, "fill_model", None) == "optimistic" else []


PROFILE = Profile(
    name="clean",
    evaluate=evaluate,
    order_columns=order_columns,
    notes=notes,
    best_strategy=named_best,
    summary_headline=summary_headline,
    carry_state=carry_state,
)
