"""Optional compiled code, detected once at the bottom of the package: the C++/CUDA extension
``totowalk._C`` and the Triton compiler.

Everything runs without either (torch and numpy paths); a module that can use them asks here, so
there is one place that knows whether they are present and why not.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os

__all__ = ["native", "native_error", "triton_installed", "triton_interpreter_enabled"]


@functools.cache
def _load() -> tuple:
    try:  # by name: the extension is a sibling module, not something of the package face
        compiled = importlib.import_module(f"{__package__}._C")
    except ImportError as exc:  # not built: everything still works through torch and numpy
        return None, str(exc)
    return compiled, ""


def native():
    """The compiled module ``totowalk._C``, or None when it is not built."""
    return _load()[0]


def native_error() -> str:
    """Why :func:`native` is None ("" when it is not)."""
    return _load()[1]


def triton_installed() -> bool:
    """Whether the triton package can be imported (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def triton_interpreter_enabled() -> bool:
    """``TRITON_INTERPRET=1``: Triton kernels run on CPU tensors in its interpreter (tests)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")
