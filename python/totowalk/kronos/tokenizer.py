"""The Kronos tokenizer: rows of (open, high, low, close, volume, amount) to two token ids each.

Encoder: a linear embedding, ``n_enc_layers - 1`` causal transformer blocks, a projection to
``s1_bits + s2_bits`` dimensions, L2 normalisation, then binary spherical quantisation: each
dimension's sign is one bit. The first ``s1_bits`` bits (least significant first) are the coarse
token s1, the rest the fine token s2. Decoder: the bits back to ±1/sqrt(bits), a projection,
``n_dec_layers - 1`` causal blocks and a linear head to the six features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import KronosTokenizerConfig
from .layers import TransformerBlock, run_blocks

__all__ = ["KronosTokenizer"]


class _SignQuantizer(nn.Module):
    """Holds the published quantiser's buffers (state-dict compatibility); quantising is a sign."""

    def __init__(self, bits: int, group_size: int):
        super().__init__()
        self.register_buffer("basis", 2 ** torch.arange(bits - 1, -1, -1))
        self.register_buffer("group_basis", 2 ** torch.arange(group_size - 1, -1, -1))


class _Quantizer(nn.Module):
    def __init__(self, bits: int, group_size: int):
        super().__init__()
        self.bsq = _SignQuantizer(bits, group_size)


class KronosTokenizer(nn.Module):
    def __init__(self, config: KronosTokenizerConfig):
        super().__init__()
        self.config = config
        c = config
        bits = c.s1_bits + c.s2_bits
        self.embed = nn.Linear(c.d_in, c.d_model)
        self.head = nn.Linear(c.d_model, c.d_in)
        self.encoder = nn.ModuleList(
            TransformerBlock(c.d_model, c.n_heads, c.ff_dim) for _ in range(c.n_enc_layers - 1)
        )
        self.decoder = nn.ModuleList(
            TransformerBlock(c.d_model, c.n_heads, c.ff_dim) for _ in range(c.n_dec_layers - 1)
        )
        self.quant_embed = nn.Linear(c.d_model, bits)
        self.post_quant_embed_pre = nn.Linear(c.s1_bits, c.d_model)  # published; unused at inference
        self.post_quant_embed = nn.Linear(bits, c.d_model)
        self.tokenizer = _Quantizer(bits, c.group_size)

    @property
    def bits(self) -> int:
        return self.config.s1_bits + self.config.s2_bits

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, d_in) normalised features -> s1_ids, s2_ids, each (B, L) int64."""
        z, _ = run_blocks(self.encoder, self.embed(x))
        z = F.normalize(self.quant_embed(z), dim=-1)
        # sign(z) scaled by 1/sqrt(bits) is >= 0 exactly where z > 0: the bit is z > 0
        on = (z > 0).long()
        s1_bits = self.config.s1_bits
        weights = 2 ** torch.arange(self.bits, device=x.device)
        s1 = (on[..., :s1_bits] * weights[:s1_bits]).sum(-1)
        s2 = (on[..., s1_bits:] * weights[: self.bits - s1_bits]).sum(-1)
        return s1, s2

    def bits_of(self, s1_ids: torch.Tensor, s2_ids: torch.Tensor) -> torch.Tensor:
        """Token ids -> the quantised code, ±1/sqrt(bits) per dimension (B, L, bits)."""
        half = self.bits // 2  # the published decoder reads both ids with bits/2 bits each
        mask = 2 ** torch.arange(half, device=s1_ids.device)
        on = torch.cat([(s1_ids.unsqueeze(-1) & mask) != 0, (s2_ids.unsqueeze(-1) & mask) != 0], dim=-1)
        return (on.float() * 2 - 1) * (1.0 / self.bits**0.5)

    def decode(self, s1_ids: torch.Tensor, s2_ids: torch.Tensor) -> torch.Tensor:
        """s1_ids, s2_ids (B, L) -> reconstructed normalised features (B, L, d_in)."""
        z, _ = run_blocks(self.decoder, self.post_quant_embed(self.bits_of(s1_ids, s2_ids)))
        return self.head(z)

    def decode_cached(self, s1_ids: torch.Tensor, s2_ids: torch.Tensor, past: list | None = None, compute_dtype=None):
        """:meth:`decode` of a continuation after a cached prefix (the decoder is causal): returns the
        continuation's features and the caches including it. ``compute_dtype``: the decoder blocks'
        products in bf16 / fp16 (:func:`.layers.run_blocks`); the head stays in the weights' type."""
        z, caches = run_blocks(self.decoder, self.post_quant_embed(self.bits_of(s1_ids, s2_ids)), past, compute_dtype)
        return self.head(z), caches
