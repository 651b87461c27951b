"""Kronos (NeoQuasar), the classic loop's second forecaster: our implementation of its tokenizer and
decoder, loading the published checkpoints (KRONOS_SEMANTICS.md)."""

from .config import KronosConfig, KronosTokenizerConfig
from .engine import FEATURES, KronosEngine, KronosForecast, KronosInput
from .loading import load_kronos, random_kronos, save_kronos_checkpoint
from .model import KronosModel
from .tokenizer import KronosTokenizer

__all__ = [
    "FEATURES",
    "KronosEngine",
    "KronosForecast",
    "KronosInput",
    "KronosConfig",
    "KronosModel",
    "KronosTokenizer",
    "KronosTokenizerConfig",
    "load_kronos",
    "random_kronos",
    "save_kronos_checkpoint",
]
