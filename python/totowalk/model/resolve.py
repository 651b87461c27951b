"""Turn a user's model spec (CLI ``--model``) into a model: the one place that knows the default.

A spec is anything :func:`totowalk.load_model` accepts (a preset with shipped weights, a
checkpoint directory, a ``.safetensors`` file, a hub id) or ``random:PRESET`` for random weights,
which runs only when explicitly allowed and always carries a warning into the report.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "toto-mini"  # bundled, trained by tools/train_mini.py (see its EVALUATION.md)
RANDOM_PREFIX = "random:"
RANDOM_WARNING = ("model {spec} has RANDOM weights: its forecasts are noise and every figure in "
                  "this report is meaningless except as a pipeline check")


@dataclass
class ResolvedModel:
    """A loaded model and what a report must say about it."""

    model: object
    spec: str
    random_weights: bool
    warning: str | None = None


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
        from .config import TotoConfig

        model = build_model(TotoConfig.preset(preset), seed=seed)
        if device is not None:
            model = model.to(device)
        return ResolvedModel(model, spec, True, RANDOM_WARNING.format(spec=spec))
    from .checkpoint import load_model

    return ResolvedModel(load_model(spec, device=device, precision=precision), spec, False)
