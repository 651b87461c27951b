"""Kronos' transformer pieces: RMS norm, SwiGLU feed-forward, rotary attention (causal self- and
non-causal cross-attention), pre-norm block. Module and parameter names follow the published
checkpoints' state-dict keys, so a checkpoint loads with ``load_state_dict(strict=True)``.

Self-attention supports a key/value cache (``past``): the keys and values of an earlier prefix,
per row, shared by every row (batch 1) or one of several shared prefixes per row (a group index),
so many continuations can attend to a prefix that was computed once. Rotary positions are
absolute within the sequence the cache and the new tokens form.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(torch.mean(x32 * x32, dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x), no biases."""

    def __init__(self, d_model: int, ff_dim: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, ff_dim, bias=False)
        self.w3 = nn.Linear(d_model, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Rotary(nn.Module):
    """Rotary embedding on half-split pairs (feature i with i + h/2)."""

    def __init__(self, head_dim: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)))

    def tables(self, start: int, length: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(start, start + length, device=like.device).type_as(self.inv_freq)
        angles = torch.outer(positions, self.inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos(), angles.sin()

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-second, first), dim=-1) * sin


class _Projections(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = Rotary(self.head_dim)

    def heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d) -> (B, H, L, h)
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.head_dim).transpose(1, 2)

    def merge(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, L, h) -> (B, L, d)
        b, _, length, _ = x.shape
        return self.out_proj(x.transpose(1, 2).reshape(b, length, self.n_heads * self.head_dim))


def _slots(group: torch.Tensor, groups: int) -> tuple[torch.Tensor, int]:
    """Each row's place among the rows of its group (in row order), and the largest group's size."""
    counts = torch.bincount(group, minlength=groups)
    order = torch.argsort(group, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(group)
    slot[order] = torch.arange(group.numel(), device=group.device) - starts[group[order]]
    return slot, int(counts.max())


def _by_group(values: torch.Tensor, group, slot, groups: int, width: int, heads: int) -> torch.Tensor:
    """Rows (R, H, Lq, n) -> (G * H, width * Lq, n): each group's rows side by side, zero-padded."""
    rows, _, lq, n = values.shape
    if group is None:  # one group, in row order
        return values.permute(1, 0, 2, 3).reshape(heads, rows * lq, n)
    padded = values.new_zeros(groups, width, heads, lq, n)
    padded[group, slot] = values
    return padded.permute(0, 2, 1, 3, 4).reshape(groups * heads, width * lq, n)


def _from_groups(values: torch.Tensor, group, slot, groups: int, width: int, heads: int, lq: int) -> torch.Tensor:
    """The inverse of :func:`_by_group`: (G * H, width * Lq, n) -> the rows (R, H, Lq, n)."""
    if group is None:
        return values.view(heads, width, lq, -1).permute(1, 0, 2, 3)
    return values.view(groups, heads, width, lq, -1).permute(0, 2, 1, 3, 4)[group, slot]


def attend_shared_prefix(q, shared_k, shared_v, own_k=None, own_v=None, causal_own=True, group=None):
    """Attention of q (R, H, Lq, h) over a prefix shared by many rows plus each row's own keys
    (R, H, Lo, h; causal when ``causal_own``, with Lq == Lo), without copying the prefix per row.

    The prefixes are ``shared_k`` / ``shared_v`` (G, H, P, h): row r attends to prefix ``group[r]``
    (None: one prefix, G = 1, for every row). The prefix scores are one batched product per (prefix,
    head): that group's rows (zero-padded to the largest group) against its keys. Softmax over both
    parts together, in float32; the same attention as scaled_dot_product_attention up to rounding."""
    rows, heads, lq, h = q.shape
    groups = shared_k.shape[0]
    if groups == 1:  # every row on the one prefix: side by side as they are, no padding or index
        group, slot, width = None, None, rows
    elif group is None:
        raise ValueError(f"{groups} cached prefixes need a group index naming each row's")
    else:
        slot, width = _slots(group, groups)
    scale = h**-0.5
    length = shared_k.shape[2]
    keys = shared_k.reshape(groups * heads, length, h).transpose(1, 2)
    prefix_scores = torch.bmm(_by_group(q, group, slot, groups, width, heads), keys)
    parts = [_from_groups(prefix_scores, group, slot, groups, width, heads, lq) * scale]
    if own_k is not None:
        own_scores = torch.matmul(q, own_k.transpose(-1, -2)) * scale
        if causal_own:
            hidden = torch.ones(lq, own_k.shape[2], dtype=torch.bool, device=q.device).triu(1)
            own_scores = own_scores.masked_fill(hidden, float("-inf"))
        parts.append(own_scores)
    probs = torch.softmax(torch.cat(parts, dim=-1).float(), dim=-1).type_as(q)
    prefix_probs = _by_group(probs[..., :length], group, slot, groups, width, heads)
    values = shared_v.reshape(groups * heads, length, h)
    out = _from_groups(torch.bmm(prefix_probs, values), group, slot, groups, width, heads, lq)
    if own_k is not None:
        out = out + torch.matmul(probs[..., length:], own_v)
    return out


class SelfAttention(_Projections):
    """Causal self-attention with rotary positions; optional cached prefix keys/values."""

    def forward(self, x: torch.Tensor, past: tuple | None = None) -> tuple[torch.Tensor, tuple | None]:
        """x (B, L, d); past: (keys, values) of the prefix, (B or 1, H, P, h), rotated already, or
        (keys, values, group) with G prefixes (G, H, P, h) and group (B,): row b continues prefix
        group[b]. Returns the output (B, L, d) and this call's (keys, values) including the prefix;
        on top of shared prefixes (batch 1, or grouped), None (they are not copied per row)."""
        start = 0 if past is None else past[0].shape[2]
        q, k, v = self.heads(self.q_proj(x)), self.heads(self.k_proj(x)), self.heads(self.v_proj(x))
        cos, sin = self.rotary.tables(start, x.shape[1], q)
        q, k = Rotary.rotate(q, cos, sin), Rotary.rotate(k, cos, sin)
        if past is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.merge(out), (k, v)
        if len(past) == 3 or past[0].shape[0] == 1:
            group = past[2] if len(past) == 3 else None
            return self.merge(attend_shared_prefix(q, past[0], past[1], k, v, group=group)), None
        keys, values = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        # new token i sees the whole prefix and new tokens 0..i
        visible = torch.ones(x.shape[1], start + x.shape[1], dtype=torch.bool, device=x.device).tril(start)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=visible)
        return self.merge(out), (keys, values)


class CrossAttention(_Projections):
    """Non-causal attention of a few queries over a sequence. As published, the rotary tables are
    those of the queries' length for both sides, so one query is at position 0 and not rotated."""

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q, k, v = self.heads(self.q_proj(query)), self.heads(self.k_proj(memory)), self.heads(self.v_proj(memory))
        cos, sin = self.rotary.tables(0, query.shape[1], q)
        if query.shape[1] != memory.shape[1] and query.shape[1] != 1:
            raise ValueError("cross-attention supports one query or as many queries as memory rows")
        q, k = Rotary.rotate(q, cos, sin), Rotary.rotate(k, cos, sin)
        return self.merge(F.scaled_dot_product_attention(q, k, v))

    def forward_shared(
        self,
        query: torch.Tensor,
        shared: torch.Tensor,
        own: torch.Tensor | None,
        own_index: torch.Tensor | None,
        group: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One query per row (B, 1, d) over a memory made of a shared part and the row's own part
        ``own[own_index]`` (U, Lo, d): :meth:`forward` on the concatenated memory, with the shared
        part's projections computed once. ``shared`` (G, P, d): row b's shared part is
        ``shared[group[b]]`` (None: G = 1). Position 0 rotates nothing (cos 1, sin 0)."""
        q = self.heads(self.q_proj(query))
        shared_k, shared_v = self.heads(self.k_proj(shared)), self.heads(self.v_proj(shared))
        own_k = own_v = None
        if own is not None:
            own_k, own_v = self.heads(self.k_proj(own))[own_index], self.heads(self.v_proj(own))[own_index]
        return self.merge(attend_shared_prefix(q, shared_k, shared_v, own_k, own_v, causal_own=False, group=group))


class TransformerBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, ff_dim: int):
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.self_attn = SelfAttention(d_model, n_heads)
        self.norm2 = RMSNorm(d_model)
        self.ffn = FeedForward(d_model, ff_dim)

    def forward(self, x: torch.Tensor, past: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        attended, cache = self.self_attn(self.norm1(x), past)
        x = x + attended
        return x + self.ffn(self.norm2(x)), cache


def run_blocks(
    blocks, x: torch.Tensor, past: list | None = None, compute_dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, list]:
    """Apply blocks in order; ``past`` one cache per block (or None). Returns x and the caches.

    ``compute_dtype`` (bfloat16 / float16): the blocks' products run in it (autocast), while the
    residual stream ``x`` stays in its own (float32) type: each block's output is added to it, so
    many small updates are not lost to a 16-bit running sum, and the norms' statistics are float32."""
    caches = []
    with _computing_in(x.device, compute_dtype):
        for i, block in enumerate(blocks):
            x, cache = block(x, None if past is None else past[i])
            caches.append(cache)
    return x, caches


def _computing_in(device: torch.device, compute_dtype: torch.dtype | None):
    if compute_dtype is None or compute_dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=compute_dtype)
