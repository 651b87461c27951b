"""Toto model: own implementation that loads Toto-Open-Base-1.0 checkpoints.

Public names: ``TotoConfig``, ``TotoModel``, ``MixtureParams``, ``DecodeState``,
``build_model``, ``load_model``, ``save_checkpoint``, ``default_model_info``, ``resolve_model``.
"""

from .checkpoint import CheckpointError, build_model, load_model, save_checkpoint
from .config import PRESETS, TotoConfig
from .decode import DecodeState
from .head import MixtureParams
from .info import default_model_info
from .resolve import DEFAULT_MODEL, ResolvedModel, resolve_model
from .toto import TotoModel

__all__ = [
    "PRESETS",
    "ResolvedModel",
    "CheckpointError",
    "DEFAULT_MODEL",
    "DecodeState",
    "MixtureParams",
    "TotoConfig",
    "TotoModel",
    "build_model",
    "default_model_info",
    "load_model",
    "resolve_model",
    "save_checkpoint",
]
