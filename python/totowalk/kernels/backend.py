"""Choice between the torch and Triton implementations of the sampling kernels."""

from __future__ import annotations

import enum

import torch

from .._native import triton_installed, triton_interpreter_enabled

__all__ = ["SamplingBackend", "resolve_backend", "triton_can_run"]


def triton_can_run(device) -> bool:
    """Whether a Triton kernel can run on tensors of ``device``: a CUDA device, or any device under
    ``TRITON_INTERPRET=1`` (tests), with triton installed."""
    return triton_installed() and (torch.device(device).type == "cuda" or triton_interpreter_enabled())


class SamplingBackend(str, enum.Enum):
    """Which implementation samples and reduces."""

    AUTO = "auto"
    """Triton for CUDA tensors when Triton is installed, torch otherwise."""
    TORCH = "torch"
    """The torch reference: any device; the CPU path."""
    TRITON = "triton"
    """The fused Triton kernel: CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1`` (tests)."""


def resolve_backend(backend: str | SamplingBackend, device: torch.device) -> SamplingBackend:
    """Resolve ``"auto"`` to a concrete backend and check that the choice can run on ``device``.

    Raises
    ------
    ValueError
        Unknown name, or Triton asked for where it cannot run (names the fix).
    """
    try:
        choice = SamplingBackend(backend)
    except ValueError:
        names = ", ".join(repr(b.value) for b in SamplingBackend)
        raise ValueError(f"backend must be one of {names}; got {backend!r}") from None
    if choice is SamplingBackend.AUTO:
        use_triton = device.type == "cuda" and triton_installed()
        return SamplingBackend.TRITON if use_triton else SamplingBackend.TORCH
    if choice is SamplingBackend.TRITON:
        if not triton_installed():
            raise ValueError("backend='triton' needs the triton package; install it or use backend='torch'")
        if device.type != "cuda" and not triton_interpreter_enabled():
            raise ValueError(
                f"backend='triton' needs CUDA tensors (got {device}); on CPU set TRITON_INTERPRET=1 "
                "before the first sampling call (slow, for tests) or use backend='torch'"
            )
    return choice
