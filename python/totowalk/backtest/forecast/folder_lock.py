"""One run a folder at a time: a run folder (its journal, parts and outputs) is held by the process
that writes it, so a second command given the same ``--out`` (another terminal, a scheduler's retry)
is refused at once instead of appending to the same journal and deleting the parts the first one
reads.

The hold is an exclusive ``flock`` on the folder itself: no lock file is left behind, and the
system lets it go when the process ends, however it ends. Within one process it is re-entrant
(the command holds the folder around ``backtest`` and its outputs; ``backtest`` holds it too), and
the descriptor is not inherited by spawned processes (Python's default), so host workers and the
outputs process never keep it. Where ``fcntl`` is missing (Windows) nothing is held.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from ...errors import UsageError

try:
    import fcntl
except ImportError:  # not a POSIX system
    fcntl = None

__all__ = ["FolderInUse", "run_folder_lock"]

_held: dict = {}  # real path -> [descriptor, depth] of the folders this process holds
_guard = threading.Lock()


class FolderInUse(UsageError):
    """Another process is running in the folder."""


@contextlib.contextmanager
def run_folder_lock(folder):
    """Hold ``folder`` (created if missing; removed again if this call created it and it stays
    empty) for the ``with`` block; :class:`FolderInUse` when another process holds it."""
    path = Path(folder)
    if path.exists() and not path.is_dir():  # the run refuses it, saying so
        yield
        return
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    try:
        _acquire(key, path)
        try:
            yield
        finally:
            _release(key)
    finally:
        if created:
            with contextlib.suppress(OSError):  # not empty: the run's files stay
                path.rmdir()


def _acquire(key: str, path: Path) -> None:
    if fcntl is None:
        return
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return
        fd = os.open(key, os.O_RDONLY)  # not inheritable (PEP 446): spawned processes never hold it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderInUse(
                f"{path} is in use by another totowalk run; wait for it to finish, or choose another folder"
            ) from None
        except OSError:  # a file system without flock (some network mounts): the run goes on unheld
            os.close(fd)
            fd = None
        _held[key] = [fd, 1]


def _release(key: str) -> None:
    if fcntl is None:
        return
    with _guard:
        held = _held[key]
        held[1] -= 1
        if held[1] == 0:
            del _held[key]
            if held[0] is not None:
                os.close(held[0])  # closing the descriptor lets the flock go
