"""Toto transformer building blocks: RMSNorm, SwiGLU MLP, time-/space-wise attention, layer.

Shapes: B rows, V variates, S patches, d model width, H heads, h = d / H head dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rotary import XPosRotary


def readout_layout(rows: torch.Tensor, positions: torch.Tensor, batch: int, width: int | None = None) -> tuple:
    """Where each readout sits among its row's queries: ``slot`` (M,), the readout's place within
    its row (0, 1, ... in input order), and ``grid`` (batch, width), the patch each (row, slot)
    reads (unused slots read patch 0 and are discarded). ``width`` defaults to the largest count
    of readouts per row; a larger one (a fixed shape for a CUDA graph) changes no readout."""
    counts = torch.bincount(rows, minlength=batch)
    order = torch.argsort(rows, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(rows)
    slot[order] = torch.arange(rows.shape[0], device=rows.device) - starts[rows[order]]
    needed = int(counts.max())
    if width is None:
        width = needed
    elif width < needed:
        raise ValueError(f"readout width {width} is below the {needed} readouts of one row")
    grid = torch.zeros(batch, width, dtype=torch.long, device=rows.device)
    grid[rows, slot] = positions
    return slot, grid


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x**2) + eps) * scale`` over the last dim (scale only, no bias)."""

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps) * self.scale


class SwiGLU(nn.Module):
    """``w3(silu(a) * b)`` with ``[a, b] = w12(x)`` (gate first, as the official layout)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


class Attention(nn.Module):
    """Multi-head attention with a fused QKV projection.

    The official QKV output features are ordered (qkv, head_dim, heads) -- heads innermost --
    while the attention output is concatenated as (heads, head_dim). Both orders are kept
    so official weights work unchanged.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.wQKV = nn.Linear(dim, 3 * dim)
        self.wO = nn.Linear(dim, dim)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, L, d) -> q, k, v each (N, H, L, h)."""
        n, length, _ = x.shape
        qkv = self.wQKV(x).view(n, length, 3, self.head_dim, self.num_heads)
        q, k, v = qkv.permute(2, 0, 4, 1, 3).contiguous().unbind(0)
        return q, k, v

    def out(self, attended: torch.Tensor) -> torch.Tensor:
        """(N, H, L, h) -> (N, L, d) through wO."""
        n, _, length, _ = attended.shape
        return self.wO(attended.transpose(1, 2).reshape(n, length, -1))


class TimeAttention(Attention):
    """Causal attention over the patches of one (row, variate), rotary + xPos on q and k."""

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, ...], last_query_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Full causal pass.

        Parameters
        ----------
        x : Tensor, shape (B, V, S, d)
        rope : cos, sin, q_scale, k_scale, each (S, h)
        last_query_only : bool
            Return the output of the last patch only (shape (B, V, 1, d)).

        Returns
        -------
        out : Tensor, shape (B, V, S or 1, d)
        k, v : Tensor, shape (B*V, H, S, h)
            Rotated keys and the values, for a KV cache.
        """
        b, v_count, s, d = x.shape
        cos, sin, q_scale, k_scale = rope
        q, k, v = self.qkv(x.reshape(b * v_count, s, d))
        k = XPosRotary.apply(k, cos, sin, k_scale)
        if last_query_only:
            q = XPosRotary.apply(q[..., -1:, :], cos[-1:], sin[-1:], q_scale[-1:])
            attended = F.scaled_dot_product_attention(q, k, v)  # the last query sees every key
        else:
            q = XPosRotary.apply(q, cos, sin, q_scale)
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(attended).view(b, v_count, -1, d), k, v

    def readout(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, ...],
        rows: torch.Tensor,
        slot: torch.Tensor,
        grid: torch.Tensor,
    ) -> torch.Tensor:
        """Causal attention output at patch ``positions[i]`` of row ``rows[i]`` only.

        Each row's readouts become that row's queries (padded to the largest count), so keys and
        values are computed and stored once per row however many readouts share it.

        Parameters
        ----------
        x : Tensor, shape (B, V, S, d)
        rope : cos, sin, q_scale, k_scale, each (S, h)
        rows : Tensor of int64, shape (M,)
        slot, grid : :func:`readout_layout` of the readouts, computed ahead (on the host, so that
            nothing here waits for the device and a CUDA graph can capture it)

        Returns
        -------
        Tensor, shape (M, V, 1, d)
        """
        b, v_count, s, d = x.shape
        cos, sin, q_scale, k_scale = rope
        q, k, v = self.qkv(x.reshape(b * v_count, s, d))
        k = XPosRotary.apply(k, cos, sin, k_scale)
        width = grid.shape[1]
        heads, h = q.shape[1], q.shape[3]
        index = grid[:, None, None, :, None].expand(b, v_count, heads, width, h)
        query = q.view(b, v_count, heads, s, h).gather(3, index).reshape(b * v_count, heads, width, h)
        tables = [
            t[grid][:, None, None].expand(b, v_count, 1, width, h).reshape(b * v_count, 1, width, h)
            for t in (cos, sin, q_scale)
        ]
        query = XPosRotary.apply(query, *tables)
        visible = torch.arange(s, device=x.device)[None, None, :] <= grid[:, :, None]  # (b, width, S)
        mask = visible[:, None, None].expand(b, v_count, 1, width, s).reshape(b * v_count, 1, width, s)
        attended = F.scaled_dot_product_attention(query, k, v, attn_mask=mask)
        out = self.out(attended).view(b, v_count, width, d)
        return out[rows, :, slot].unsqueeze(2)

    def step(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, ...],
        key_cache: torch.Tensor,
        value_cache: torch.Tensor,
        position: int,
        key_mask: torch.Tensor,
    ) -> torch.Tensor:
        """One new patch against a static KV cache; writes its key/value at ``position``.

        Parameters
        ----------
        x : Tensor, shape (B, V, 1, d)
        rope : tables for the new position, each (1, h)
        key_cache, value_cache : Tensor, shape (B*V, H, S_max, h), updated in place
        key_mask : Tensor of bool, shape (1, S_max)
            True for the cache slots 0..position.
        """
        b, v_count, _, d = x.shape
        cos, sin, q_scale, k_scale = rope
        q, k, v = self.qkv(x.reshape(b * v_count, 1, d))
        key_cache[:, :, position : position + 1] = XPosRotary.apply(k, cos, sin, k_scale)
        value_cache[:, :, position : position + 1] = v
        q = XPosRotary.apply(q, cos, sin, q_scale)
        attended = F.scaled_dot_product_attention(q, key_cache, value_cache, attn_mask=key_mask)
        return self.out(attended).view(b, v_count, 1, d)


class SpaceAttention(Attention):
    """Bidirectional attention across the variates of one (row, patch), within equal ids."""

    def forward(self, x: torch.Tensor, group_mask: torch.Tensor | None) -> torch.Tensor:
        """
        Parameters
        ----------
        x : Tensor, shape (B, V, S, d)
        group_mask : Tensor of bool, shape (B, S, V, V), or None when all variates share an id
            True where variate i may attend to variate j.
        """
        b, v_count, s, d = x.shape
        q, k, v = self.qkv(x.transpose(1, 2).reshape(b * s, v_count, d))
        mask = None if group_mask is None else group_mask.reshape(b * s, 1, v_count, v_count)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(attended).view(b, s, v_count, d).transpose(1, 2)


class TransformerLayer(nn.Module):
    """Pre-norm block: ``x + attn(norm1(x))`` then ``+ mlp(norm2(.))``."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, spacewise: bool, eps: float):
        super().__init__()
        self.spacewise = spacewise
        self.norm1 = RMSNorm(dim, eps)
        self.norm2 = RMSNorm(dim, eps)
        self.attention = SpaceAttention(dim, num_heads) if spacewise else TimeAttention(dim, num_heads)
        self.mlp = SwiGLU(dim, mlp_hidden)

    def finish(self, residual: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        hidden = residual + attended
        return hidden + self.mlp(self.norm2(hidden))
