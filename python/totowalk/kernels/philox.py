"""Philox4x32-10 in torch, bit-exact with Triton's ``tl.philox`` / ``tl.randint4x``.

Everything is held in int64 tensors whose values stay in [0, 2**32): torch has no full uint32
arithmetic, and the 32x32 -> 64 bit product is split into 16-bit halves so that no intermediate
leaves the int64 range. On the host, where the extension is built, the same function runs as one
compiled loop (``csrc/philox.cpp``: uint32 words, a 64-bit product), bit for bit the same (a test),
instead of the many small tensor operations of the rounds.
"""

from __future__ import annotations

import torch

from .._native import native

__all__ = ["philox4x32", "philox4x32_torch", "split_uint64", "uniform_open01"]

_MASK32 = 0xFFFFFFFF
_MASK16 = 0xFFFF
# Philox4x32 round multipliers and Weyl key increments (Salmon et al., SC'11), as in Triton.
_ROUND_A = 0xD2511F53
_ROUND_B = 0xCD9E8D57
_KEY_A = 0x9E3779B9
_KEY_B = 0xBB67AE85
PHILOX_ROUNDS = 10


def _mul_hi_lo(constant: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32-bit words of ``constant * x`` for a 32-bit constant and x in [0, 2**32)."""
    x_lo = x & _MASK16
    x_hi = x >> 16
    part_lo = constant * x_lo  # < 2**48
    part_hi = constant * x_hi  # < 2**48
    # constant*x = part_hi * 2**16 + part_lo; both nested floors are exact for non-negative ints.
    high = (part_hi + (part_lo >> 16)) >> 16
    # Only the low 16 bits of part_hi reach the low word, so the shift cannot overflow.
    low = (part_lo + ((part_hi & _MASK16) << 16)) & _MASK32
    return high, low


def philox4x32(
    c0: torch.Tensor,
    c1: torch.Tensor,
    c2: torch.Tensor,
    c3: torch.Tensor,
    k0: int,
    k1: int,
    rounds: int = PHILOX_ROUNDS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Philox4x32 block function on broadcastable int64 counter words.

    Parameters
    ----------
    c0, c1, c2, c3 : torch.Tensor, int64, broadcastable shapes, values in [0, 2**32)
        The 128-bit counter, least significant word first (Triton's argument order).
    k0, k1 : int
        The 64-bit key as two 32-bit words; ``tl.philox(seed, ...)`` uses ``k0 = seed & 0xffffffff``
        and ``k1 = seed >> 32``.
    rounds : int
        Number of rounds (10 is the standard Philox4x32-10 and Triton's default).

    Returns
    -------
    tuple of four torch.Tensor, int64, broadcast shape, values in [0, 2**32)
        Equal, as unsigned integers, to the four outputs of ``tl.philox``.
    """
    for tensor, name in ((c0, "c0"), (c1, "c1"), (c2, "c2"), (c3, "c3")):
        if tensor.dtype != torch.int64:
            raise TypeError(f"philox4x32: counter word {name} must be int64, got {tensor.dtype}")
    c0, c1, c2, c3 = torch.broadcast_tensors(c0, c1, c2, c3)
    k0 &= _MASK32
    k1 &= _MASK32
    compiled = native()
    if c0.device.type == "cpu" and hasattr(compiled, "philox4x32"):
        shape = c0.shape
        words = [t.reshape(-1).contiguous().numpy() for t in (c0, c1, c2, c3)]
        return tuple(torch.from_numpy(w).reshape(shape) for w in compiled.philox4x32(*words, k0, k1, rounds, 0))
    return philox4x32_torch(c0, c1, c2, c3, k0, k1, rounds)


def philox4x32_torch(c0, c1, c2, c3, k0: int, k1: int, rounds: int = PHILOX_ROUNDS) -> tuple:
    """:func:`philox4x32` as tensor operations, on any device (broadcast int64 words, 32-bit keys)."""
    for _ in range(rounds):
        hi_b, lo_b = _mul_hi_lo(_ROUND_B, c2)
        hi_a, lo_a = _mul_hi_lo(_ROUND_A, c0)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0 = (k0 + _KEY_A) & _MASK32
        k1 = (k1 + _KEY_B) & _MASK32
    return c0, c1, c2, c3


def split_uint64(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Low and high 32-bit words of int64 values read as unsigned 64-bit integers.

    Parameters
    ----------
    values : torch.Tensor, int64, any shape

    Returns
    -------
    (low, high) : two int64 tensors of the same shape, values in [0, 2**32)
    """
    return values & _MASK32, (values >> 32) & _MASK32


def uniform_open01(bits: torch.Tensor) -> torch.Tensor:
    """Map 32 random bits to a float32 uniform on the open interval (0, 1).

    ``u = ((bits >> 9) + 0.5) * 2**-23``: the top 23 bits pick one of 2**23 equal cells and the
    value is the cell centre, which float32 represents exactly, so torch and Triton agree bit for
    bit, and neither 0 (log would be -inf) nor 1 can occur.

    Parameters
    ----------
    bits : torch.Tensor, int64, values in [0, 2**32)

    Returns
    -------
    torch.Tensor, float32, same shape
    """
    return ((bits >> 9).to(torch.float32) + 0.5) * (2.0**-23)
