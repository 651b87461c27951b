"""The strategy grid searches compiled in ``totowalk._C``, when the extension is built.

Each has an array twin in :mod:`.legacy.strategies` / :mod:`.clean.strategies` (the fallback, and the
reference the tests compare them with, bit for bit). Callers look them up through
:func:`native_search` at call time, so one patch of it switches every profile to the array path.
"""

from __future__ import annotations

import numpy as np

from ..._native import native

__all__ = ["native_search", "grid_offsets"]


def native_search(name: str):
    """The compiled search ``name``, or None (extension not built, or built before it existed)."""
    return getattr(native(), name, None)


def grid_offsets(index: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The offsets a MaxDiff search's indices stand for: ``grid[index]``, and 0.0 where the index
    is -1 (no offset beat the incumbent), as the array searches report them."""
    return np.where(index >= 0, grid[np.maximum(index, 0)], 0.0)
