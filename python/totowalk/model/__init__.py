"""Toto model: own implementation that loads Toto-Open-Base-1.0 checkpoints.

Public names: ``TotoConfig``, ``TotoModel``, ``MixtureParams``, ``DecodeState``,
``build_model``, ``read_checkpoint``, ``save_checkpoint``, ``default_model_info``.
Loading with a precision (``totowalk.load_model``, ``resolve_model``) is ``totowalk.loading``:
this layer never imports ``totowalk.precision``.
"""

from .checkpoint import Checkpoint, CheckpointError, build_model, read_checkpoint, save_checkpoint
from .config import PRESETS, TotoConfig
from .decode import DecodeState
from .head import MixtureParams
from .info import default_model_info
from .resolve import DEFAULT_MODEL
from .toto import TotoModel

__all__ = [
    "PRESETS",
    "Checkpoint",
    "CheckpointError",
    "DEFAULT_MODEL",
    "DecodeState",
    "MixtureParams",
    "TotoConfig",
    "TotoModel",
    "build_model",
    "default_model_info",
    "read_checkpoint",
    "save_checkpoint",
]
