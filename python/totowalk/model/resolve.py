"""Turn a user's model spec (CLI ``--model``) into a model: the one place that knows the default.

A spec is anything :func:`totowalk.load_model` accepts (a preset with shipped weights, a
checkpoint directory, a ``.safetensors`` file, a hub id) or ``random:PRESET`` for random weights,
which runs only when explicitly allowed and always carries a warning into the report.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

DEFAULT_MODEL = "toto-mini"  # bundled, trained by tools/train_mini.py (see its EVALUATION.md)
RANDOM_PREFIX = "random:"
RANDOM_WARNING = ("model {spec} has RANDOM weights: its forecasts are noise and every figure in "
                  "this report is meaningless except as a pipeline check")


@dataclass
class ResolvedModel:
    """A loaded model and what a report must say about it.

    ``notes`` holds every warning of the loading (random weights, an ungated precision, a CPU
    without native support for it) as text, for the report and summary.json.
    """

    model: object
    spec: str
    random_weights: bool
    warning: str | None = None
    notes: list = field(default_factory=list)
    weights_file: str | None = None


def resolve_model(spec: str | None = None, device=None, precision: str = "fp32",
                  allow_random: bool = False, seed: int = 0) -> ResolvedModel:
    """Load ``spec`` (default :data:`DEFAULT_MODEL`) on ``device`` at ``precision``.

    ``random:PRESET`` builds random weights (seed ``seed``) and needs ``allow_random=True``.
    """
    spec = spec or DEFAULT_MODEL
    if spec.startswith(RANDOM_PREFIX):
        preset = spec[len(RANDOM_PREFIX):]
        if not allow_random:
            raise ValueError(f"--model {spec} has random weights; add --allow-random-weights to run it anyway")
        if precision not in (None, "fp32"):
            raise ValueError(f"random-weight models run in fp32 only, got --precision {precision}")
        from .checkpoint import build_model

        model = build_model(random_config(preset), seed=seed)
        if device is not None:
            model = model.to(device)
        warning = RANDOM_WARNING.format(spec=spec)
        return ResolvedModel(model, spec, True, warning, [warning])
    from .checkpoint import load_model
    from .cpu_support import slow_precision_note
    from .identity import SOURCE_ATTR

    with warnings.catch_warnings(record=True) as caught:  # reported as text, not as a source line
        warnings.simplefilter("always")
        model = load_model(spec, device=device, precision=precision)
    notes = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)))
    slow = slow_precision_note(precision, device)
    if slow:
        notes.append(slow)
    for w in caught:  # library deprecations and the like are not the user's business here
        if not issubclass(w.category, UserWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    source = getattr(model, SOURCE_ATTR, None) or {}
    return ResolvedModel(model, spec, False, None, notes, source.get("path"))


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
