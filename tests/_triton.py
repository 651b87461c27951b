"""Module-level setup for the Triton test files: skip without Triton, else make sure the kernels
can run here (compiled on CUDA, in Triton's CPU interpreter otherwise)."""

import importlib.util
import os
import sys

import pytest
import torch


def require_triton() -> None:
    """Call at the top of a test module, before it imports triton."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed", allow_module_level=True)
    if not torch.cuda.is_available():
        if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
            # triton.language's own jit functions were built for a GPU at import; the interpreter
            # cannot run them. tests/conftest.py sets TRITON_INTERPRET=1 before any import.
            pytest.skip("triton was imported before TRITON_INTERPRET=1 was set", allow_module_level=True)
        os.environ["TRITON_INTERPRET"] = "1"
