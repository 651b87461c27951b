"""The fused rotary + xPos kernel equals the torch expression bit for bit (on CUDA when present,
else in Triton's CPU interpreter), for every way the model calls it."""

from __future__ import annotations

import pytest
import torch
from _triton import require_triton

require_triton()

from totowalk.model.rotary import XPosRotary  # noqa: E402
from totowalk.model.rotary_kernel import rotary_xpos, supports  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# bf16 conversions are broken in the Triton interpreter (see test_precision_triton.py)
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if torch.cuda.is_available() else [])


def _operands(n, heads, seq, head_dim, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    qkv = torch.randn(3, n, heads, seq, head_dim, generator=generator) * 3
    rotary = XPosRotary(head_dim)
    cos, sin, q_scale, _ = rotary.full_tables(seq, torch.device("cpu"))
    cast = [t.to(device=DEVICE, dtype=dtype) for t in (qkv, cos, sin, q_scale)]
    return cast[0].unbind(0), cast[1:]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 37, 64), (1, 2, 1, 16), (5, 8, 20, 32)])
def test_kernel_equals_the_torch_expression_bit_for_bit(dtype, shape):
    (q, k, _), (cos, sin, scale) = _operands(*shape, dtype, seed=sum(shape))
    assert supports(k, cos, sin, scale)
    assert torch.equal(rotary_xpos(k, cos, sin, scale), XPosRotary.apply_torch(k, cos, sin, scale))
    # the last query alone: a strided view of q against the tables' last row
    last = q[..., -1:, :]
    assert torch.equal(
        rotary_xpos(last, cos[-1:], sin[-1:], scale[-1:]), XPosRotary.apply_torch(last, cos[-1:], sin[-1:], scale[-1:])
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_takes_per_row_tables_as_the_readout_passes_them(dtype):
    # TimeAttention.readout: gathered queries (B*V, H, W, h), tables (B*V, 1, W, h) per row
    (q, _, _), (cos, sin, scale) = _operands(6, 4, 9, 64, dtype, seed=3)
    grid = torch.tensor([[8, 3, 0], [2, 2, 5], [7, 1, 4], [0, 0, 0], [6, 5, 4], [1, 8, 3]], device=DEVICE)
    query = q.gather(2, grid[:, None, :, None].expand(6, 4, 3, 64))
    tables = [t[grid][:, None] for t in (cos, sin, scale)]
    assert torch.equal(rotary_xpos(query, *tables), XPosRotary.apply_torch(query, *tables))


def test_unsupported_operands_are_declined():
    x = torch.randn(1, 1, 4, 6)  # head dim not a power of two
    tables = [torch.randn(4, 6) for _ in range(3)]
    assert not supports(x, *tables)
    assert not supports(torch.randn(1, 1, 4, 8, dtype=torch.float16), *[torch.randn(4, 8) for _ in range(3)])
