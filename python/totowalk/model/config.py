"""Toto architecture configuration, presets, and the official ``config.json`` mapping."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

# Strings the official checkpoints store for their scaler and output head classes.
OFFICIAL_SCALER_CLS = "<class 'model.scaler.CausalPatchStdMeanScaler'>"
OFFICIAL_MIXTURE_CLS = "<class 'model.distribution.MixtureOfStudentTsOutput'>"


@dataclass(frozen=True)
class TotoConfig:
    """Hyper-parameters of a Toto model (only the variant used by Toto-Open-Base-1.0).

    Parameters
    ----------
    patch_size, stride
        Time steps per patch; Toto uses non-overlapping patches (stride == patch_size).
    embed_dim
        Model width d.
    num_layers, num_heads
        Transformer depth and attention heads per layer (d must divide by num_heads).
    mlp_hidden_dim
        SwiGLU hidden width.
    spacewise_every_n_layers, spacewise_first
        Every block of ``spacewise_every_n_layers`` layers holds one space-wise layer, first
        or last in the block; -1 means time-wise layers only.
    k_components
        Student-T mixture components of the output head.
    stabilize_with_global, scale_factor_exponent
        Clamp the causal scale to 10**(+-exponent) times the context's global scale.
    min_scale
        Added to the variance before the square root in the scaler (the official 0.1).
    rope_theta, xpos_scale_base
        Rotary base frequency and xPos scale base of the time-wise attention.
    norm_eps
        RMSNorm epsilon.
    dropout
        Kept only so config.json round-trips; inference never uses dropout.
    """

    patch_size: int = 64
    stride: int = 64
    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_hidden_dim: int = 3072
    spacewise_every_n_layers: int = 12
    spacewise_first: bool = False
    k_components: int = 24
    stabilize_with_global: bool = True
    scale_factor_exponent: float = 10.0
    min_scale: float = 0.1
    rope_theta: float = 10000.0
    xpos_scale_base: float = 512.0
    norm_eps: float = 1e-8
    dropout: float = 0.1

    def __post_init__(self) -> None:
        positive = ("patch_size", "stride", "embed_dim", "num_layers", "num_heads", "mlp_hidden_dim", "k_components")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"TotoConfig.{name} must be a positive int, got {value!r}")
        if self.stride != self.patch_size:
            raise ValueError(
                f"TotoConfig: stride ({self.stride}) must equal patch_size ({self.patch_size}); "
                "only non-overlapping patches are supported"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"TotoConfig: embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        if (self.embed_dim // self.num_heads) % 2:
            raise ValueError(
                f"TotoConfig: head dim {self.embed_dim // self.num_heads} must be even for rotary embeddings"
            )
        n = self.spacewise_every_n_layers
        if n != -1 and (n <= 0 or self.num_layers % n):
            raise ValueError(
                f"TotoConfig: num_layers ({self.num_layers}) must be a multiple of spacewise_every_n_layers ({n}), "
                "or spacewise_every_n_layers must be -1"
            )

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    def layer_is_spacewise(self) -> list[bool]:
        """One flag per layer: True for a space-wise layer, False for a time-wise one."""
        n = self.spacewise_every_n_layers
        if n == -1:
            return [False] * self.num_layers
        block = [False] * (n - 1)
        block = [True] + block if self.spacewise_first else block + [True]
        return block * (self.num_layers // n)

    @classmethod
    def preset(cls, name: str) -> TotoConfig:
        """A named configuration: ``toto-open-base-1.0``, ``toto-small``, ``toto-tiny``."""
        if name not in PRESETS:
            hint = difflib.get_close_matches(name, PRESETS, n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"unknown Toto preset {name!r}; known presets: {sorted(PRESETS)}.{extra}")
        return PRESETS[name]

    def replace(self, **changes: Any) -> TotoConfig:
        return dataclasses.replace(self, **changes)

    # -- official config.json --------------------------------------------------------------

    def to_official_json(self) -> dict[str, Any]:
        """The keys of the official Toto ``config.json`` (what ``toto.model.toto.Toto`` takes)."""
        return {
            "patch_size": self.patch_size,
            "stride": self.stride,
            "embed_dim": self.embed_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_hidden_dim": self.mlp_hidden_dim,
            "dropout": self.dropout,
            "spacewise_every_n_layers": self.spacewise_every_n_layers,
            "spacewise_first": self.spacewise_first,
            "scaler_cls": OFFICIAL_SCALER_CLS,
            "output_distribution_classes": [OFFICIAL_MIXTURE_CLS],
            "output_distribution_kwargs": {"k_components": self.k_components},
            "use_memory_efficient_attention": True,
            "stabilize_with_global": self.stabilize_with_global,
            "scale_factor_exponent": self.scale_factor_exponent,
        }

    @classmethod
    def from_official_json(cls, data: dict[str, Any], source: str = "config.json") -> TotoConfig:
        """Parse an official ``config.json``; unsupported variants raise naming the key."""
        if data.get("scaler_cls", OFFICIAL_SCALER_CLS) != OFFICIAL_SCALER_CLS:
            raise ValueError(
                f"{source}: scaler_cls {data['scaler_cls']!r} is not supported (only {OFFICIAL_SCALER_CLS!r})"
            )
        heads = data.get("output_distribution_classes", [OFFICIAL_MIXTURE_CLS])
        if list(heads) != [OFFICIAL_MIXTURE_CLS]:
            raise ValueError(
                f"{source}: output_distribution_classes {heads!r} is not supported (only [{OFFICIAL_MIXTURE_CLS!r}])"
            )
        required = (
            "patch_size",
            "stride",
            "embed_dim",
            "num_layers",
            "num_heads",
            "mlp_hidden_dim",
            "spacewise_every_n_layers",
        )
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"{source}: missing config keys {missing}")
        kwargs = data.get("output_distribution_kwargs") or {}
        if "k_components" not in kwargs:
            raise ValueError(f"{source}: output_distribution_kwargs.k_components is missing")
        return cls(
            patch_size=int(data["patch_size"]),
            stride=int(data["stride"]),
            embed_dim=int(data["embed_dim"]),
            num_layers=int(data["num_layers"]),
            num_heads=int(data["num_heads"]),
            mlp_hidden_dim=int(data["mlp_hidden_dim"]),
            spacewise_every_n_layers=int(data["spacewise_every_n_layers"]),
            # the official constructor defaults spacewise_first to True when the key is absent
            spacewise_first=bool(data.get("spacewise_first", True)),
            k_components=int(kwargs["k_components"]),
            stabilize_with_global=bool(data.get("stabilize_with_global", True)),
            scale_factor_exponent=float(data.get("scale_factor_exponent", 10.0)),
            dropout=float(data.get("dropout", 0.0)),
        )


PRESETS: dict[str, TotoConfig] = {
    # Datadog/Toto-Open-Base-1.0: 151,306,080 parameters.
    "toto-open-base-1.0": TotoConfig(),
    # Small shapes for tests and CPU benchmarks; same architecture, one space-wise layer each.
    "toto-small": TotoConfig(
        embed_dim=256, num_layers=4, num_heads=8, mlp_hidden_dim=1024, spacewise_every_n_layers=4, k_components=24
    ),
    "toto-tiny": TotoConfig(
        embed_dim=64, num_layers=3, num_heads=4, mlp_hidden_dim=128, spacewise_every_n_layers=3, k_components=8
    ),
}
