"""Errors a user can cause and fix, shared by every layer (this module imports nothing of totowalk).

The command line prints each of them as one line ``error: ...`` and exits with status 2; any
other exception is a bug and keeps its traceback (see ``totowalk.cli``).
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["CheckpointError", "MissingExtraError", "UsageError", "one_line", "require_extra"]


class UsageError(ValueError):
    """A bad option value or a combination of options that cannot work; the message names it."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be found, or does not match the model it should fill."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require_extra(module: str, extra: str, purpose: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install 'totowalk[extra]'``."""
    try:
        return import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{purpose} needs {module}, which is not installed; install it with pip install 'totowalk[{extra}]'"
        ) from err


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (OS errors as 'what: path')."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.strerror}: {err.filename}"
    text = " ".join(str(err).split())
    return text or type(err).__name__
