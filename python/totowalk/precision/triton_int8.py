"""Triton matmul with int8 weights: ``y = x (q * s)^T + b``, dequantized inside the kernel.

x (M, K) in fp16/bf16/fp32, q (N, K) int8, s (N,) fp32. Each program computes a
(BLOCK_M, BLOCK_N) tile: the int8 weight tile is converted to x's dtype in registers (weights
cross memory as one byte each), ``tl.dot`` accumulates in fp32, and the per-channel scale is
applied once to the accumulator (``sum_k x_k q_nk s_n = s_n sum_k x_k q_nk``), then the bias.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._native import triton_interpreter_enabled

__all__ = ["int8_weight_matmul", "int8_weight_matmul_reference"]


@triton.jit
def _int8_weight_matmul_kernel(
    x_ptr,  # (M, K) activations
    q_ptr,  # (N, K) int8 weights
    scale_ptr,  # (N,) fp32 per-output-channel scales
    bias_ptr,  # (N,) bias in the output dtype (ignored without HAS_BIAS)
    out_ptr,  # (M, N) output, x's dtype
    M,
    N,
    K,
    stride_xm,
    stride_xk,
    stride_qn,
    stride_qk,
    stride_om,
    stride_on,
    HAS_BIAS: tl.constexpr,
    IEEE_FP32: tl.constexpr,  # fp32 inputs: full-precision dot instead of TF32
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + ks
        x = tl.load(
            x_ptr + rows[:, None] * stride_xm + k[None, :] * stride_xk,
            mask=(rows[:, None] < M) & (k[None, :] < K),
            other=0.0,
        )
        # (BLOCK_K, BLOCK_N) tile of q^T
        q = tl.load(
            q_ptr + cols[None, :] * stride_qn + k[:, None] * stride_qk,
            mask=(cols[None, :] < N) & (k[:, None] < K),
            other=0,
        )
        w = q.to(x.dtype)  # int8 values are exact in fp16/bf16/fp32
        if IEEE_FP32:
            acc += tl.dot(x, w, input_precision="ieee")
        else:
            acc += tl.dot(x, w)
    scale = tl.load(scale_ptr + cols, mask=cols < N, other=0.0)
    acc = acc * scale[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
    tl.store(
        out_ptr + rows[:, None] * stride_om + cols[None, :] * stride_on,
        acc.to(out_ptr.dtype.element_ty),
        mask=(rows[:, None] < M) & (cols[None, :] < N),
    )


def _block_sizes(m: int, dtype: torch.dtype, interpreter: bool | None = None) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_K, num_warps): large tiles for batched contexts, small for decode.

    fp32 activations take the IEEE (non-tensor-core) dot, whose tiles live in registers: the
    fp16/bf16 tiles would spill 20 KB per thread there, these spill nothing on sm_80 and sm_90
    (ptxas, ``python -m totowalk.benchmarks.offline_compile``).
    """
    if triton_interpreter_enabled() if interpreter is None else interpreter:
        return 16, 16, 16, 1  # the interpreter runs numpy per program: keep tiles minimal
    if dtype == torch.float32:
        return (128, 64, 16, 8) if m >= 256 else (32, 64, 16, 4)
    if m >= 256:
        return 128, 128, 64, 8
    return 32, 64, 64, 4  # tl.dot needs every tile dim >= 16


def int8_weight_matmul(
    x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``x @ (qweight * scale[:, None])^T + bias``.

    Parameters
    ----------
    x : Tensor, shape (M, K), float16 / bfloat16 / float32, CUDA (or CPU under TRITON_INTERPRET=1)
    qweight : Tensor, shape (N, K), int8, same device
    scale : Tensor, shape (N,), float32
    bias : Tensor, shape (N,), optional

    Returns
    -------
    Tensor, shape (M, N), dtype of x
    """
    if x.ndim != 2 or qweight.ndim != 2 or x.shape[1] != qweight.shape[1]:
        raise ValueError(
            f"int8_weight_matmul: x {tuple(x.shape)} and qweight {tuple(qweight.shape)} must be (M, K) and (N, K)"
        )
    if qweight.dtype != torch.int8:
        raise ValueError(f"int8_weight_matmul: qweight must be int8, got {qweight.dtype}")
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"int8_weight_matmul: x must be float16, bfloat16 or float32, got {x.dtype}")
    if tuple(scale.shape) != (qweight.shape[0],):
        raise ValueError(f"int8_weight_matmul: scale has shape {tuple(scale.shape)}, expected ({qweight.shape[0]},)")
    if not x.is_cuda and not triton_interpreter_enabled():
        raise ValueError(
            f"int8_weight_matmul needs CUDA tensors (got {x.device}); set TRITON_INTERPRET=1 to run on CPU"
        )
    m, k = x.shape
    n = qweight.shape[0]
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    scale = scale.to(device=x.device, dtype=torch.float32).contiguous()
    bias_arg = bias.to(device=x.device, dtype=x.dtype).contiguous() if bias is not None else out
    block_m, block_n, block_k, warps = _block_sizes(m, x.dtype)
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, block_n))
    _int8_weight_matmul_kernel[grid](
        x,
        qweight,
        scale,
        bias_arg,
        out,
        m,
        n,
        k,
        x.stride(0),
        x.stride(1),
        qweight.stride(0),
        qweight.stride(1),
        out.stride(0),
        out.stride(1),
        HAS_BIAS=bias is not None,
        IEEE_FP32=x.dtype == torch.float32,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        num_warps=warps,
        enable_fp_fusion=True,  # FMA in the epilogue; stated, since Triton's default is changing
    )
    return out


def int8_weight_matmul_reference(
    x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """The torch reference: dequantize to fp32, matmul in fp32, cast to x's dtype."""
    w = qweight.to(torch.float32) * scale.to(torch.float32)[:, None]
    out = x.to(torch.float32) @ w.t()
    if bias is not None:
        out = out + bias.to(torch.float32)
    return out.to(x.dtype)
