"""A user's model spec (CLI ``--model``): the default and what ``random:NAME`` means.

``totowalk.loading.resolve_model`` loads a spec; this module only names things, so the model
layer needs nothing above it. A spec is anything :func:`totowalk.load_model` accepts (a preset
with shipped weights, a checkpoint directory, a ``.safetensors`` file, a hub id) or
``random:PRESET`` for random weights, which runs only when explicitly allowed and always carries a
warning into the report.
"""

from __future__ import annotations

DEFAULT_MODEL = "toto-mini"  # bundled, trained by tools/train_mini.py (see its EVALUATION.md)
RANDOM_PREFIX = "random:"
RANDOM_WARNING = (
    "model {spec} has RANDOM weights: its forecasts are noise and every figure computed from "
    "them is meaningless except as a pipeline check"
)


def random_config(name: str):
    """The configuration of ``random:NAME``: a preset, or the shape of a bundled model (toto-mini)."""
    from .checkpoint import CONFIG_FILE, WEIGHTS_DIR
    from .config import PRESETS, TotoConfig

    if name in PRESETS:
        return TotoConfig.preset(name)
    bundled = WEIGHTS_DIR / name / CONFIG_FILE
    if "/" not in name and bundled.is_file():
        import json

        return TotoConfig.from_official_json(json.loads(bundled.read_text()), source=str(bundled))
    names = sorted(PRESETS) + sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / CONFIG_FILE).is_file())
    raise ValueError(f"unknown model shape {name!r} for random:NAME; known: {', '.join(names)}")
