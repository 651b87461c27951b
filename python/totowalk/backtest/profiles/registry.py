"""The profiles by name."""

from __future__ import annotations

from .clean import PROFILE as CLEAN
from .legacy import PROFILE as LEGACY
from .profile import Profile

__all__ = ["PROFILES", "profile_named"]

PROFILES = {p.name: p for p in (LEGACY, CLEAN)}


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"profile must be one of {tuple(PROFILES)}, got {name!r}") from None
