"""Weight-only int8: per-output-channel symmetric quantization and the ``Int8Linear`` module.

A weight ``W`` of shape (N, K) is stored as ``q = round(W / s)`` clamped to [-127, 127] (int8)
with one fp32 scale per output channel ``s_n = max_k |W_nk| / 127``; ``W ~ q * s[:, None]``.
The worst error of an element is ``s_n / 2`` (rounding), i.e. ``max|W_n| / 254``.
"""

from __future__ import annotations

import enum
import functools

import torch
import torch.nn.functional as F
from torch import nn

from .._native import triton_installed
from ..model.quantized_format import dequantize_weight  # the format's definition, shared

__all__ = ["Int8Kernel", "Int8Linear", "dequantize_weight", "quantize_weight"]

QMAX = 127  # symmetric: -128 is never used, so negation is exact


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8 quantization.

    Parameters
    ----------
    weight : Tensor, shape (N, K), floating point

    Returns
    -------
    qweight : Tensor, shape (N, K), int8 in [-127, 127]
    scale : Tensor, shape (N,), float32, > 0 (a row of zeros gets scale 1 and q = 0)
    """
    if weight.ndim != 2 or not weight.is_floating_point():
        raise ValueError(
            f"quantize_weight: expected a 2-D floating weight (N, K), got {weight.dtype} {tuple(weight.shape)}"
        )
    w = weight.detach().to(torch.float32)
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"quantize_weight: weight of shape {tuple(w.shape)} holds NaN or inf")
    absmax = w.abs().amax(dim=1)
    scale = torch.where(absmax > 0, absmax / QMAX, torch.ones_like(absmax))
    qweight = torch.round(w / scale[:, None]).clamp_(-QMAX, QMAX).to(torch.int8)
    return qweight, scale


class Int8Kernel(str, enum.Enum):
    """How ``Int8Linear`` multiplies."""

    AUTO = "auto"
    """TRITON for CUDA inputs (DEQUANT if Triton is not installed), DEQUANT on CPU."""
    TRITON = "triton"
    """Triton int8-weight matmul (``triton_int8.py``): CUDA, or CPU under TRITON_INTERPRET=1."""
    DEQUANT = "dequant"
    """Weight-only on any device: dequantize the weight to the activation dtype, then a float GEMM.
    Numerically the reference; on CPU not faster than fp32 (it adds the dequantization)."""
    INT_MM = "int_mm"
    """Activations also quantized per row (dynamic, symmetric int8), ``torch._int_mm`` with int32
    accumulation, rescaled by both scales. Faster than fp32 on AVX512-VNNI CPUs, but it is not
    weight-only: the quality gate must be run for it separately. On CUDA (untimed), calls of 16
    rows or fewer are padded with zero rows, which ``torch._int_mm`` requires there."""


@functools.cache
class _RowSlicer:
    """What ``Int8Linear.weight`` returns: ``weight[:rows]`` dequantizes only those rows.

    ``TotoModel._params`` un-embeds with ``F.linear(h, unembed.weight[:rows], ...)``; slicing the
    int8 rows first keeps that cheap (the un-embedding is the largest layer).
    """

    def __init__(self, linear: Int8Linear):
        self._linear = linear
        self.shape = linear.qweight.shape
        self.device = linear.qweight.device
        self.dtype = linear.compute_dtype

    def __getitem__(self, rows) -> torch.Tensor:
        lin = self._linear
        return dequantize_weight(lin.qweight[rows], lin.weight_scale[rows], lin.compute_dtype)


class Int8Linear(nn.Module):
    """``y = x W^T + b`` with W stored as int8 + per-output-channel scales.

    Parameters
    ----------
    qweight : Tensor, shape (N, K), int8
    scale : Tensor, shape (N,), float32
    bias : Tensor, shape (N,), optional
    compute_dtype : torch.dtype
        Activation dtype (float32 on CPU, float16/bfloat16 on GPU); inputs are cast to it.
    kernel : Int8Kernel or str
    """

    def __init__(
        self,
        qweight: torch.Tensor,
        scale: torch.Tensor,
        bias: torch.Tensor | None,
        compute_dtype: torch.dtype = torch.float32,
        kernel: Int8Kernel | str = Int8Kernel.AUTO,
    ):
        super().__init__()
        n, k = qweight.shape
        if qweight.dtype != torch.int8 or tuple(scale.shape) != (n,):
            raise ValueError(
                f"Int8Linear: qweight must be int8 (N, K) and scale (N,); got {qweight.dtype} "
                f"{tuple(qweight.shape)} and {tuple(scale.shape)}"
            )
        self.in_features, self.out_features = k, n
        self.register_buffer("qweight", qweight.contiguous())
        self.register_buffer("weight_scale", scale.to(torch.float32).contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().to(compute_dtype).clone())
        self.compute_dtype = compute_dtype
        self.kernel = Int8Kernel(kernel)

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, compute_dtype: torch.dtype = torch.float32, kernel: Int8Kernel | str = Int8Kernel.AUTO
    ) -> Int8Linear:
        qweight, scale = quantize_weight(linear.weight)
        return cls(qweight, scale, linear.bias, compute_dtype, kernel)

    @property
    def weight(self) -> _RowSlicer:
        return _RowSlicer(self)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"compute_dtype={self.compute_dtype}, kernel={self.kernel.value}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., K) -> (..., N) in ``compute_dtype``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Int8Linear: input has {x.shape[-1]} features, the layer expects {self.in_features}")
        x = x.to(self.compute_dtype)
        kernel = self.kernel
        if kernel is Int8Kernel.AUTO:
            kernel = Int8Kernel.TRITON if x.is_cuda and triton_installed() else Int8Kernel.DEQUANT
        flat = x.reshape(-1, self.in_features)
        if kernel is Int8Kernel.TRITON:
            from .triton_int8 import int8_weight_matmul

            out = int8_weight_matmul(flat, self.qweight, self.weight_scale, self.bias)
        elif kernel is Int8Kernel.INT_MM:
            from .cpu_int8 import int_mm_linear

            out = int_mm_linear(flat, self.qweight, self.weight_scale, self.bias)
        else:
            out = F.linear(flat, dequantize_weight(self.qweight, self.weight_scale, self.compute_dtype), self.bias)
        return out.reshape(*x.shape[:-1], self.out_features)
