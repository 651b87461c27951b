"""The strategy grid searches compiled in ``totowalk._C``, when the extension is built.

Each has an array twin in :mod:`.strategies` / :mod:`.clean_strategies` (the fallback, and the
reference the tests compare them with, bit for bit). Callers look them up through
:func:`native_search` at call time, so one patch of it switches every profile to the array path.
"""

from __future__ import annotations

__all__ = ["native_search"]


def native_search(name: str):
    """The compiled search ``name``, or None (extension not built, or built before it existed)."""
    try:
        from .. import _C
    except ImportError:
        return None
    return getattr(_C, name, None)
