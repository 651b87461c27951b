"""int8 GEMM with dynamically quantized activations (``Int8Kernel.INT_MM``; faster than fp32 on CPU).

``y = (q_x q_w^T) * s_x[:, None] * s_w[None, :] + b`` where each activation row is quantized
symmetric per row (``s_x = max|x_m| / 127``) at call time and ``q_x q_w^T`` is an exact int32
product from ``torch._int_mm`` (oneDNN VNNI kernels on x86). Not weight-only: the activation
rounding adds up to ``s_x / 2`` per element, so this path has its own quality-gate result.
"""

from __future__ import annotations

import torch

__all__ = ["int_mm", "int_mm_linear", "quantize_rows"]


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric int8: x (M, K) float -> q (M, K) int8, scale (M, 1) float32."""
    x = x.to(torch.float32)
    scale = x.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny) / 127.0
    return torch.round(x / scale).to(torch.int8), scale


_CUDA_INT_MM_MIN_ROWS = 17  # torch._int_mm on CUDA refuses 16 rows or fewer


def int_mm(qx: torch.Tensor, qweight_t: torch.Tensor, min_rows: int | None = None) -> torch.Tensor:
    """``torch._int_mm`` for any number of rows: fewer than ``min_rows`` (17 on CUDA) are padded
    with zero rows, whose products are dropped. Rows are independent, so the result is exact."""
    rows = qx.shape[0]
    min_rows = (_CUDA_INT_MM_MIN_ROWS if qx.is_cuda else 1) if min_rows is None else min_rows
    if rows >= min_rows:
        return torch._int_mm(qx, qweight_t)
    return torch._int_mm(torch.nn.functional.pad(qx, (0, 0, 0, min_rows - rows)), qweight_t)[:rows]


def int_mm_linear(
    x: torch.Tensor, qweight: torch.Tensor, weight_scale: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """x (M, K) float, qweight (N, K) int8, weight_scale (N,) -> (M, N) in x's dtype."""
    qx, row_scale = quantize_rows(x)
    acc = int_mm(qx, qweight.t())  # (M, N) int32, exact
    out = acc.to(torch.float32) * (row_scale * weight_scale.to(torch.float32))
    if bias is not None:
        out += bias.to(torch.float32)
    return out.to(x.dtype)
