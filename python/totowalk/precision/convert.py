"""The converters behind ``load_model(..., precision=...)``: "bf16", "fp16" and "int8".

int8 activations: fp32 on CPU, bf16 on CUDA (the device the model is loaded for).
"""

from __future__ import annotations

import torch
from torch import nn

from ..model.toto import TotoModel
from .int8 import Int8Kernel, Int8Linear
from .reduced import to_reduced_precision

__all__ = ["PRECISIONS", "convert_precision", "int8_activation_dtype", "quantize_linears_", "set_int8_kernel"]

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
_REDUCED = {"bf16": torch.bfloat16, "fp16": torch.float16}


def int8_activation_dtype(device: str | torch.device | None) -> torch.dtype:
    """Activation dtype of the int8 model on ``device``: fp32 on CPU, bf16 on CUDA."""
    return torch.bfloat16 if device is not None and torch.device(device).type == "cuda" else torch.float32


def quantize_linears_(
    model: nn.Module,
    compute_dtype: torch.dtype = torch.float32,
    stored: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    kernel: Int8Kernel | str = Int8Kernel.AUTO,
) -> nn.Module:
    """Replace every ``nn.Linear`` of ``model`` (in place) with an ``Int8Linear``.

    Parameters
    ----------
    stored : dict, optional
        ``{module name: (qweight (N, K) int8, scale (N,))}`` from a quantized checkpoint; those
        layers use the stored values instead of quantizing their (dequantized) weights again.
    """
    stored = stored or {}
    linears = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    for name, linear in linears:
        if name in stored:
            qweight, scale = stored[name]
            if tuple(qweight.shape) != tuple(linear.weight.shape):
                raise ValueError(
                    f"stored int8 weight {name!r} has shape {tuple(qweight.shape)}, "
                    f"the layer needs {tuple(linear.weight.shape)}"
                )
            replacement = Int8Linear(qweight, scale, linear.bias, compute_dtype, kernel)
        else:
            replacement = Int8Linear.from_linear(linear, compute_dtype, kernel)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, replacement)
    return model


def set_int8_kernel(model: nn.Module, kernel: Int8Kernel | str) -> nn.Module:
    """Choose the matmul of every ``Int8Linear`` (see ``Int8Kernel``); returns ``model``."""
    choice = Int8Kernel(kernel)
    for module in model.modules():
        if isinstance(module, Int8Linear):
            module.kernel = choice
    return model


def convert_precision(model: TotoModel, precision: str, device=None, stored_int8: dict | None = None) -> TotoModel:
    """Convert an fp32 ``TotoModel`` in place to ``precision`` for ``device``; returns it."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision == "fp32":
        return model.float()
    if precision in _REDUCED:
        return to_reduced_precision(model, _REDUCED[precision])
    dtype = int8_activation_dtype(device)
    quantize_linears_(model, dtype, stored=stored_int8)
    if dtype != torch.float32:
        to_reduced_precision(model, dtype)
    return model
