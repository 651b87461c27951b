"""The Kronos decoder: a causal transformer over (s1, s2) token pairs with time-feature embeddings.

Each position embeds its coarse and fine tokens (each table scaled by sqrt(d_model), concatenated,
projected) plus the sum of five time embeddings (minute, hour, weekday, day, month). After the
blocks and a final norm, ``proj_s1`` gives the coarse token's logits. The fine token is predicted
given the coarse one: the coarse token's (unscaled) embedding attends, non-causally, over the
hidden states; that is added to the hidden states, normed, and ``proj_s2`` gives its logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import KronosConfig
from .layers import CrossAttention, RMSNorm, TransformerBlock, run_blocks

__all__ = ["KronosModel", "TIME_FEATURES"]

TIME_FEATURES = ("minute", "hour", "weekday", "day", "month")
_TIME_SIZES = {"minute": 60, "hour": 24, "weekday": 7, "day": 32, "month": 13}


class _FixedEmbedding(nn.Module):
    """Sinusoidal table (learn_te = False): sin on even features, cos on odd ones."""

    def __init__(self, size: int, d_model: int):
        super().__init__()
        position = torch.arange(size).float().unsqueeze(1)
        rate = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        table = torch.zeros(size, d_model)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate)
        self.emb = nn.Embedding(size, d_model)
        self.emb.weight = nn.Parameter(table, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x)


class _TimeEmbedding(nn.Module):
    def __init__(self, d_model: int, learned: bool):
        super().__init__()
        for name in TIME_FEATURES:
            size = _TIME_SIZES[name]
            setattr(self, f"{name}_embed", nn.Embedding(size, d_model) if learned else _FixedEmbedding(size, d_model))

    def forward(self, stamp: torch.Tensor) -> torch.Tensor:
        """stamp (B, L, 5): minute, hour, weekday, day, month (floats holding integers)."""
        ids = stamp.long()
        parts = {name: getattr(self, f"{name}_embed")(ids[..., i]) for i, name in enumerate(TIME_FEATURES)}
        # the published sum order (float addition is not associative)
        return parts["hour"] + parts["weekday"] + parts["day"] + parts["month"] + parts["minute"]


class _TokenEmbedding(nn.Module):
    def __init__(self, s1_bits: int, s2_bits: int, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.emb_s1 = nn.Embedding(2**s1_bits, d_model)
        self.emb_s2 = nn.Embedding(2**s2_bits, d_model)
        self.fusion_proj = nn.Linear(2 * d_model, d_model)

    def forward(self, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        scale = math.sqrt(self.d_model)
        return self.fusion_proj(torch.cat([self.emb_s1(s1) * scale, self.emb_s2(s2) * scale], dim=-1))


class _DependencyLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int = 4):
        super().__init__()
        self.cross_attn = CrossAttention(d_model, n_heads)
        self.norm = RMSNorm(d_model)

    def forward(self, hidden: torch.Tensor, sibling: torch.Tensor) -> torch.Tensor:
        return self.norm(hidden + self.cross_attn(sibling, hidden))


class _DualHead(nn.Module):
    def __init__(self, s1_bits: int, s2_bits: int, d_model: int):
        super().__init__()
        self.proj_s1 = nn.Linear(d_model, 2**s1_bits)
        self.proj_s2 = nn.Linear(d_model, 2**s2_bits)


class KronosModel(nn.Module):
    def __init__(self, config: KronosConfig):
        super().__init__()
        self.config = c = config
        self.embedding = _TokenEmbedding(c.s1_bits, c.s2_bits, c.d_model)
        self.time_emb = _TimeEmbedding(c.d_model, c.learn_te)
        self.transformer = nn.ModuleList(TransformerBlock(c.d_model, c.n_heads, c.ff_dim) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.d_model)
        self.dep_layer = _DependencyLayer(c.d_model)
        self.head = _DualHead(c.s1_bits, c.s2_bits, c.d_model)

    def hidden(
        self,
        s1: torch.Tensor,
        s2: torch.Tensor,
        stamp: torch.Tensor | None,
        past: list | None = None,
        compute_dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, list]:
        """Final-normed hidden states (B, L, d) of tokens (B, L) after an optional cached prefix
        (per-block keys/values from an earlier call, batch 1 or B), and the caches including them.
        ``compute_dtype``: the blocks' products in bf16 / fp16 (:func:`.layers.run_blocks`); the
        embeddings, the residual stream and the final norm stay in the weights' type."""
        x = self.embedding(s1, s2)
        if stamp is not None:
            x = x + self.time_emb(stamp)
        x, caches = run_blocks(self.transformer, x, past, compute_dtype)
        return self.norm(x), caches

    def s1_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head.proj_s1(hidden)

    def s2_logits_last(self, hidden: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        """:meth:`s2_logits` at the last position only (B, V2): the dependency layer's norm and head
        act per position, so only the attention needs every hidden state."""
        attended = self.dep_layer.cross_attn(self.embedding.emb_s1(s1), hidden)
        return self.head.proj_s2(self.dep_layer.norm(hidden[:, -1:] + attended))[:, 0]

    def s2_logits_last_shared(
        self,
        shared: torch.Tensor,
        own: torch.Tensor | None,
        own_index: torch.Tensor,
        s1: torch.Tensor,
        group: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`s2_logits_last` for rows whose hidden states are a shared part followed by
        own[own_index] (U, Lo, d) (None: the shared part only), without building those windows.
        ``shared`` (G, P, d): row b's shared part is ``shared[group[b]]`` (None: G = 1)."""
        if own is not None:
            last = own[own_index, -1:]
        else:
            last = shared[:, -1:].expand(len(s1), -1, -1) if group is None else shared[group, -1:]
        attended = self.dep_layer.cross_attn.forward_shared(self.embedding.emb_s1(s1), shared, own, own_index, group)
        return self.head.proj_s2(self.dep_layer.norm(last + attended))[:, 0]

    def s2_logits(self, hidden: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        """Fine-token logits at every position of ``hidden`` (B, L, d) given one coarse token per
        row, s1 (B, 1): that token's embedding is the one query of the dependency layer."""
        return self.head.proj_s2(self.dep_layer(hidden, self.embedding.emb_s1(s1)))
