"""What this installation of totowalk can do: native module, CUDA, Triton, versions."""

from __future__ import annotations

import platform

from ._native import native, native_error, triton_installed
from ._version import __version__


def _staging_status() -> dict:
    try:
        from .engine.staging import native_status
    except ImportError as exc:
        return {"error": str(exc)}
    return native_status()


def build_info() -> dict:
    """Report the build and the runtime.

    Keys: ``version``, ``torch``, ``numpy``, ``python``, ``native`` (the compiled module imports),
    ``native_error``, ``cuda_compiled`` (the module was built with CUDA), ``cuda_available`` (a CUDA
    device is usable now, by both torch and the native module), ``cuda_devices``,
    ``cuda_unavailable_reason``, ``triton`` (importable), ``triton_version``, ``default_device``,
    ``staging`` (which pack / staging path the engine uses).
    """
    import numpy
    import torch

    compiled, compiled_error = native(), native_error()
    cuda_compiled = bool(compiled and compiled.cuda_compiled())
    native_devices = compiled.cuda_device_count() if cuda_compiled else 0
    torch_cuda = torch.cuda.is_available()
    reason = ""
    if not torch_cuda:
        reason = "torch sees no CUDA device"
    elif not cuda_compiled:
        reason = compiled.cuda_unavailable_reason() if compiled else "native module missing"
    elif native_devices == 0:
        reason = compiled.cuda_unavailable_reason()

    triton_version = None
    if triton_installed():
        try:
            import triton

            triton_version = triton.__version__
        except Exception:  # a broken triton install must not break `info`
            triton_version = None

    return {
        "version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "native": compiled is not None,
        "native_error": compiled_error,
        "cuda_compiled": cuda_compiled,
        "cuda_available": bool(torch_cuda and cuda_compiled and native_devices > 0),
        "cuda_devices": native_devices,
        "cuda_unavailable_reason": reason,
        "triton": triton_version is not None,
        "triton_version": triton_version,
        "default_device": "cuda" if torch_cuda else "cpu",
        "staging": _staging_status(),
    }
