"""Kronos configurations: the keyword arguments of the published checkpoints' ``config.json``.

A Kronos forecaster is two checkpoints: a tokenizer (continuous OHLCVA rows -> two token ids per
row, and back) and a decoder-only transformer over those tokens. The presets are the published
shapes (KRONOS_SEMANTICS.md §6) plus a small one for tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["KronosConfig", "KronosTokenizerConfig", "TOKENIZER_PRESETS", "MODEL_PRESETS"]


def _from_dict(cls, data: dict, where: str):
    known = {f.name for f in fields(cls)}
    missing = sorted(known - set(data))
    if missing:
        raise ValueError(f"{where}: config.json lacks {', '.join(missing)}")
    return cls(**{k: data[k] for k in known})


@dataclass(frozen=True)
class KronosTokenizerConfig:
    d_in: int = 6
    d_model: int = 256
    n_heads: int = 4
    ff_dim: int = 512
    n_enc_layers: int = 4  # the encoder has n_enc_layers - 1 blocks (as published)
    n_dec_layers: int = 4  # likewise
    ffn_dropout_p: float = 0.0
    attn_dropout_p: float = 0.0
    resid_dropout_p: float = 0.0
    s1_bits: int = 10
    s2_bits: int = 10
    beta: float = 0.05
    gamma0: float = 1.0
    gamma: float = 1.1
    zeta: float = 0.05
    group_size: int = 4

    @classmethod
    def from_dict(cls, data: dict, where: str = "tokenizer") -> "KronosTokenizerConfig":
        return _from_dict(cls, data, where)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class KronosConfig:
    s1_bits: int = 10
    s2_bits: int = 10
    n_layers: int = 12
    d_model: int = 832
    n_heads: int = 16
    ff_dim: int = 2048
    ffn_dropout_p: float = 0.0
    attn_dropout_p: float = 0.0
    resid_dropout_p: float = 0.0
    token_dropout_p: float = 0.0
    learn_te: bool = True

    @classmethod
    def from_dict(cls, data: dict, where: str = "model") -> "KronosConfig":
        return _from_dict(cls, data, where)

    def to_dict(self) -> dict:
        return asdict(self)


TOKENIZER_PRESETS = {
    "tokenizer-base": KronosTokenizerConfig(),
    "reduced": KronosTokenizerConfig(
        d_model=32, n_heads=2, ff_dim=64, n_enc_layers=2, n_dec_layers=2, s1_bits=4, s2_bits=4, group_size=4
    ),
}
MODEL_PRESETS = {
    "kronos-base": KronosConfig(),
    "kronos-small": KronosConfig(n_layers=8, d_model=512, n_heads=8, ff_dim=1024),
    "reduced": KronosConfig(s1_bits=4, s2_bits=4, n_layers=2, d_model=32, n_heads=4, ff_dim=64),
}
