"""Numeric precision a loaded model runs in.

``load_model(..., precision=...)`` looks the name up here. Only "fp32" exists today; a later
module registers "bf16", "fp16" and "int8" with ``register_precision`` (a function that converts
an fp32 ``TotoModel`` in place and returns it).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

PLANNED = ("bf16", "fp16", "int8")

_CONVERTERS: dict[str, Callable[[nn.Module], nn.Module]] = {"fp32": lambda model: model.float()}


def register_precision(name: str, convert: Callable[[nn.Module], nn.Module]) -> None:
    """Make ``precision=name`` available to ``load_model``."""
    _CONVERTERS[name] = convert


def apply_precision(model: nn.Module, precision: str) -> nn.Module:
    """Convert ``model`` to ``precision``; unknown or not-yet-implemented names raise ValueError."""
    if precision in _CONVERTERS:
        return _CONVERTERS[precision](model)
    if precision in PLANNED:
        raise ValueError(
            f"precision {precision!r} is not implemented yet; available: {sorted(_CONVERTERS)}"
        )
    raise ValueError(f"unknown precision {precision!r}; available: {sorted(_CONVERTERS)}")
