"""Memory of a long run: freed memory given back to the operating system, and the garbage
collector kept off the objects the run did not make.

A universe's run frees each chunk's tables before the next, but the allocators keep what was freed:
pyarrow's pool (pandas' text columns and every Parquet read go through it) and glibc's heaps. The
run's peak memory then grows with the universe although its live data does not; read from a 500-symbol
forecasts.parquet, 8 MB of kept rows held 300 MB.

A process that has imported torch and pandas tracks some 200,000 objects, and each of the
collector's full passes walks all of them: about 100 ms, in one W2 run of three (bench/RESULTS.md).
"""

from __future__ import annotations

import ctypes
import gc
import sys
from contextlib import contextmanager

__all__ = ["frozen_heap", "release_free_memory"]


@contextmanager
def frozen_heap():
    """Within the block (or the decorated call), the garbage collector passes over the objects that
    existed when it began: a full pass then walks what the block made (about 2 ms at W2, against
    100 ms). Nothing is lost: a cycle among the older objects is collected after the block. Where
    the process has frozen objects itself (``gc.freeze``), that is its choice and nothing changes."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


_LIBC: list = []  # glibc's handle, looked up once ([None] where there is none)


def release_free_memory() -> None:
    """Return the allocators' free memory: pyarrow's pool (only when pyarrow is already imported) and
    glibc's heaps (malloc_trim; nothing elsewhere)."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _malloc_trim():
    if not _LIBC:
        try:
            _LIBC.append(ctypes.CDLL("libc.so.6").malloc_trim if sys.platform.startswith("linux") else None)
        except (OSError, AttributeError):
            _LIBC.append(None)
    return _LIBC[0]
