"""The counter-based random stream shared by the torch and Triton samplers.

Sample ``i`` of a row with stream key ``key`` under ``seed`` reads Philox4x32-10 blocks at the
counters ``(i, draw, key_lo, key_hi)`` with Philox key ``(seed_lo, seed_hi)``, where ``draw``
numbers the blocks one sample consumes (see :data:`COMPONENT_DRAW`, :data:`GAMMA_DRAWS`). No
counter depends on the row's position in a batch, which is what makes results batch invariant.
"""

from __future__ import annotations

import numpy as np
import torch

from .philox import philox4x32, split_uint64

__all__ = ["COMPONENT_DRAW", "GAMMA_DRAWS", "philox_block", "philox_block_at", "request_keys", "seed_words"]

#: Block 0 of a sample: word 0 picks the component, words 1-2 give the Box-Muller normal of the
#: Student-T numerator, word 3 is unused.
COMPONENT_DRAW = 0
#: Blocks 1..GAMMA_DRAWS feed Marsaglia-Tsang: each gives two normals (Box-Muller on words 0-1)
#: and two acceptance uniforms (words 2-3), i.e. two tries per block.
GAMMA_DRAWS = 4

_GOLDEN_GAMMA = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, splitmix64's increment


def _splitmix64_finalize(z: np.ndarray) -> np.ndarray:
    """splitmix64's output mix (Steele, Lea & Flood 2014): a bijection on uint64 with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def request_keys(content_hashes: np.ndarray, steps: int) -> torch.Tensor:
    """Stream keys for every (request, forecast step).

    ``key[b, h] = splitmix64_finalize(content_hashes[b] + (h + 1) * 0x9E3779B97F4A7C15)`` in
    wrapping uint64 arithmetic, reinterpreted as int64. The same request content and step always
    give the same key, whatever else is in the batch; distinct (hash, step) pairs collide only by
    chance (about 2**-64 per pair).

    Parameters
    ----------
    content_hashes : numpy.ndarray, shape (B,), uint64
        One hash of each request's content (context values, settings).
    steps : int
        Forecast horizon H (>= 1).

    Returns
    -------
    torch.Tensor, shape (B, H), int64
    """
    hashes = np.asarray(content_hashes)
    if hashes.ndim != 1 or hashes.dtype != np.uint64:
        raise ValueError(
            f"request_keys: content_hashes must be a 1-D uint64 array; got shape {hashes.shape}, dtype {hashes.dtype}"
        )
    if int(steps) != steps or steps < 1:
        raise ValueError(f"request_keys: steps must be a positive integer; got {steps!r}")
    step_offsets = (np.arange(1, int(steps) + 1, dtype=np.uint64) * np.uint64(_GOLDEN_GAMMA))[None, :]
    with np.errstate(over="ignore"):
        mixed = _splitmix64_finalize(hashes[:, None] + step_offsets)
    return torch.from_numpy(np.ascontiguousarray(mixed).view(np.int64))


def seed_words(seed: int) -> tuple[int, int]:
    """Validate ``seed`` and split it into the two 32-bit Philox key words ``(low, high)``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must lie in [0, 2**63); got {seed}")
    return seed & 0xFFFFFFFF, seed >> 32


def philox_block(
    seed: int, keys: torch.Tensor, sample_index: torch.Tensor, draw: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four 32-bit words of block ``draw`` for every (row, sample).

    Parameters
    ----------
    seed : int
        In [0, 2**63).
    keys : torch.Tensor, shape (N,), int64
        Per-row stream keys.
    sample_index : torch.Tensor, shape (S,), int64
        Sample indices (< 2**32).
    draw : int
        Block number within a sample.

    Returns
    -------
    tuple of four torch.Tensor, shape (N, S), int64 in [0, 2**32)
    """
    seed_lo, seed_hi = seed_words(seed)
    key_lo, key_hi = split_uint64(keys)
    counter0 = sample_index[None, :]
    counter1 = torch.full((1, 1), draw, dtype=torch.int64, device=keys.device)
    return philox4x32(counter0, counter1, key_lo[:, None], key_hi[:, None], seed_lo, seed_hi)


def philox_block_at(
    seed: int, keys: torch.Tensor, sample_index: torch.Tensor, draw: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Block ``draw`` for M explicit (key, sample index) pairs.

    Parameters
    ----------
    seed : int
    keys, sample_index : torch.Tensor, shape (M,), int64
    draw : int

    Returns
    -------
    tuple of four torch.Tensor, shape (M,), int64 in [0, 2**32)
    """
    seed_lo, seed_hi = seed_words(seed)
    key_lo, key_hi = split_uint64(keys)
    counter1 = torch.full((1,), draw, dtype=torch.int64, device=keys.device)
    return philox4x32(sample_index, counter1, key_lo, key_hi, seed_lo, seed_hi)
