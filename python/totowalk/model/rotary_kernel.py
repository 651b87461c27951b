"""Rotary + xPos in one Triton kernel, bit for bit the torch expression it replaces on CUDA.

``XPosRotary.apply`` is ``(x * cos + rotate_half(x) * sin) * scale``: in torch that is a negation,
a stack, three products and a sum, each its own kernel reading and writing the whole tensor, and
strided ones at that (q and k are views of the fused QKV projection). This kernel reads x once
(with its pair partner), the three tables through broadcast strides, and writes the result once.

Exactness: torch evaluates each operation in float32 and rounds it to the tensors' dtype before
the next one (fp16/bf16), or stays in float32; the kernel does the same operations in the same
order, rounding after each one, with no fused multiply-add. So its output equals the torch
expression's bit for bit (tests/test_rotary_kernel.py, in Triton's interpreter off a GPU).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["rotary_xpos", "supports"]

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_BLOCK_ROWS = 16


def supports(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, scale: torch.Tensor) -> bool:
    """Whether :func:`rotary_xpos` takes these operands (else the torch expression runs)."""
    head_dim = x.shape[-1]
    return (
        x.dim() == 4
        and x.dtype in _DTYPES
        and all(t.dtype == x.dtype for t in (cos, sin, scale))
        and head_dim >= 2
        and head_dim & (head_dim - 1) == 0
        and x.numel() > 0
    )


@triton.jit
def _rotary_xpos_kernel(
    x_ptr,
    cos_ptr,
    sin_ptr,
    scale_ptr,
    out_ptr,
    rows,
    seq,
    heads,
    sx_n,
    sx_h,
    sx_s,
    sx_d,
    st_n,
    st_h,
    st_s,
    st_d,
    HEAD_DIM: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
):
    row = (tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)
    valid = (row < rows)[:, None]
    d = tl.arange(0, HEAD_DIM).to(tl.int64)
    s = row % seq
    h = (row // seq) % heads
    n = row // (seq * heads)
    x_row = (n * sx_n + h * sx_h + s * sx_s)[:, None]
    t_off = (n * st_n + h * st_h + s * st_s)[:, None] + d[None, :] * st_d
    x = tl.load(x_ptr + x_row + d[None, :] * sx_d, mask=valid, other=0.0)
    partner = tl.load(x_ptr + x_row + (d ^ 1)[None, :] * sx_d, mask=valid, other=0.0)
    cos = tl.load(cos_ptr + t_off, mask=valid, other=0.0).to(tl.float32)
    sin = tl.load(sin_ptr + t_off, mask=valid, other=0.0).to(tl.float32)
    scale = tl.load(scale_ptr + t_off, mask=valid, other=0.0).to(tl.float32)
    dtype = x.dtype
    # rotate_half: feature 2j takes -x[2j + 1], feature 2j + 1 takes x[2j] (negation is exact)
    rotated = tl.where((d % 2 == 0)[None, :], -partner, partner)
    first = (x.to(tl.float32) * cos).to(dtype)
    second = (rotated.to(tl.float32) * sin).to(dtype)
    summed = (first.to(tl.float32) + second.to(tl.float32)).to(dtype)
    out = (summed.to(tl.float32) * scale).to(dtype)
    tl.store(out_ptr + row[:, None] * HEAD_DIM + d[None, :], out, mask=valid)


def rotary_xpos(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(x * cos + rotate_half(x) * sin) * scale`` for x of shape (N, H, S, h) (any strides) and
    tables broadcastable to it; a new contiguous tensor of x's dtype. Check :func:`supports` first."""
    n, heads, seq, head_dim = x.shape
    tables = [t.expand(n, heads, seq, head_dim) for t in (cos, sin, scale)]
    strides = tables[0].stride()
    if any(t.stride() != strides for t in tables[1:]):
        tables = [t.contiguous() for t in tables]
        strides = tables[0].stride()
    out = torch.empty((n, heads, seq, head_dim), dtype=x.dtype, device=x.device)
    rows = n * heads * seq
    _rotary_xpos_kernel[(triton.cdiv(rows, _BLOCK_ROWS),)](
        x,
        *tables,
        out,
        rows,
        seq,
        heads,
        *x.stride(),
        *strides,
        HEAD_DIM=head_dim,
        BLOCK_ROWS=_BLOCK_ROWS,
        num_warps=4,
        enable_fp_fusion=False,  # no multiply-add contraction: the torch expression's roundings
    )
    return out
