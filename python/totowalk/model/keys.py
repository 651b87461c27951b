"""Translation between official Toto checkpoint key names and this package's module names.

Official keys (``toto.model.toto.Toto`` state dict) start with ``model.``; the MLP is stored
either fused (xFormers SwiGLU: ``mlp.0.w12.*``, ``mlp.0.w3.*``) or unfused
(``mlp.0.*``, ``mlp.2.*``). Rotary frequency buffers (``...rotary_emb.freqs``) are derived
from the config and ignored.
"""

from __future__ import annotations

import re

# (official pattern, our replacement); applied in order, first match wins.
_TO_OURS = [
    (re.compile(r"^model\.patch_embed\.projection\.(weight|bias)$"), r"patch_embed.\1"),
    (re.compile(r"^model\.transformer\.layers\.(\d+)\.mlp\.0\.w12\.(weight|bias)$"), r"layers.\1.mlp.w12.\2"),
    (re.compile(r"^model\.transformer\.layers\.(\d+)\.mlp\.0\.w3\.(weight|bias)$"), r"layers.\1.mlp.w3.\2"),
    (re.compile(r"^model\.transformer\.layers\.(\d+)\.mlp\.0\.(weight|bias)$"), r"layers.\1.mlp.w12.\2"),
    (re.compile(r"^model\.transformer\.layers\.(\d+)\.mlp\.2\.(weight|bias)$"), r"layers.\1.mlp.w3.\2"),
    (re.compile(r"^model\.transformer\.layers\.(\d+)\.(norm1\.scale|norm2\.scale)$"), r"layers.\1.\2"),
    (
        re.compile(r"^model\.transformer\.layers\.(\d+)\.attention\.(wQKV|wO)\.(weight|bias)$"),
        r"layers.\1.attention.\2.\3",
    ),
    (re.compile(r"^model\.unembed\.(weight|bias)$"), r"unembed.\1"),
    (
        re.compile(r"^model\.output_distribution\.(df|loc_proj|scale_proj|mixture_weights)\.(weight|bias)$"),
        r"head.\1.\2",
    ),
]

_TO_OFFICIAL = [
    (re.compile(r"^patch_embed\.(weight|bias)$"), r"model.patch_embed.projection.\1"),
    (re.compile(r"^layers\.(\d+)\.mlp\.(w12|w3)\.(weight|bias)$"), r"model.transformer.layers.\1.mlp.0.\2.\3"),
    (re.compile(r"^layers\.(\d+)\.(.*)$"), r"model.transformer.layers.\1.\2"),
    (re.compile(r"^unembed\.(weight|bias)$"), r"model.unembed.\1"),
    (re.compile(r"^head\.(.*)$"), r"model.output_distribution.\1"),
]


def is_ignored(official_key: str) -> bool:
    """Keys that carry no weights of their own (derived rotary buffers)."""
    return official_key.endswith("rotary_emb.freqs")


def to_ours(official_key: str) -> str | None:
    """Our parameter name for an official key, or None if the key is not recognised."""
    for pattern, replacement in _TO_OURS:
        if pattern.match(official_key):
            return pattern.sub(replacement, official_key)
    return None


def to_official(our_key: str) -> str:
    """The official (fused MLP layout) key for one of our parameter names."""
    for pattern, replacement in _TO_OFFICIAL:
        if pattern.match(our_key):
            return pattern.sub(replacement, our_key)
    raise KeyError(f"no official checkpoint name for parameter {our_key!r}")
