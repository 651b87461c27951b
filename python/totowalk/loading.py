"""Loading a model for use: weights (model layer), then a precision and its quality-gate warning.

This sits above both layers so that ``totowalk.model`` never imports ``totowalk.precision``
(reading weights needs no precision; the precision layer reads weights through the model layer).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import torch

from .devices import resolve_device
from .errors import CheckpointError
from .model.checkpoint import build_model, read_checkpoint, resolve_checkpoint
from .model.config import TotoConfig
from .model.identity import SOURCE_ATTR, file_sha256, file_stat, record_source
from .model.resolve import DEFAULT_MODEL, RANDOM_PREFIX, RANDOM_WARNING, random_config
from .model.toto import TotoModel

__all__ = ["ModelReference", "ResolvedModel", "load_model", "model_reference", "resolve_model"]


def load_model(
    spec: str | os.PathLike,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    config: TotoConfig | None = None,
) -> TotoModel:
    """Load Toto weights (see ``totowalk.model.checkpoint.read_checkpoint`` for ``spec``/``config``).

    Parameters
    ----------
    device : optional
        Where to put the model (default CPU).
    precision : str
        "fp32", "bf16", "fp16" or "int8" (weight-only, per-channel; see ``totowalk.precision``).
        Anything but fp32 warns once unless ``totowalk quality`` has a passing result for
        these weights and precision; so does an int8 checkpoint at any precision.
    """
    from .precision.convert import PRECISIONS, convert_precision
    from .precision.gate import warn_if_not_gated

    if precision not in PRECISIONS:  # before reading a possibly large file
        raise ValueError(f"unknown precision {precision!r}; available: {list(PRECISIONS)}")
    device = resolve_device(device)
    ckpt = read_checkpoint(spec, config)
    model = convert_precision(ckpt.model, precision, device, ckpt.stored_int8)
    record_source(
        model, ckpt.weights_path, int8_checkpoint=ckpt.stored_int8 is not None, spec=spec, precision=precision
    )
    # an int8 checkpoint computes int8 numbers whatever precision was asked for: gate it as int8
    gated = "int8" if ckpt.stored_int8 is not None else precision
    if gated != "fp32":  # the warning belongs where a precision is applied, once per weights and precision
        warn_if_not_gated(ckpt.weights_path, gated)
    return (model.to(device) if device is not None else model).eval()


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


def resolve_model(
    spec: str | None = None, device=None, precision: str = "fp32", allow_random: bool = False, seed: int = 0
) -> ResolvedModel:
    """Load a user's model spec (CLI ``--model``; default :data:`DEFAULT_MODEL`) on ``device`` at ``precision``.

    ``random:PRESET`` builds random weights (seed ``seed``) and needs ``allow_random=True``.
    """
    spec = spec or DEFAULT_MODEL
    if spec.startswith(RANDOM_PREFIX):
        preset = spec[len(RANDOM_PREFIX) :]
        if not allow_random:
            raise ValueError(f"--model {spec} has random weights; add --allow-random-weights to run it anyway")
        if precision not in (None, "fp32"):
            raise ValueError(f"random-weight models run in fp32 only, got --precision {precision}")
        model = build_model(random_config(preset), seed=seed)
        if device is not None:
            model = model.to(device)
        warning = RANDOM_WARNING.format(spec=spec)
        return ResolvedModel(model, spec, True, warning, [warning])
    from .model.cpu_support import slow_precision_note

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


@dataclass(frozen=True)
class ModelReference:
    """Enough to load a model that was loaded from a weights file again somewhere else (a Ray
    worker), instead of sending its weights: the file, the spec it was named by, the precision, the
    configuration it was built with and the file's sha256, which the loaded file must match."""

    path: str
    spec: str
    precision: str
    sha256: str
    config: TotoConfig

    def load(self, device=None) -> TotoModel:
        """The model, from :attr:`path` where that file exists here, else from :attr:`spec` (a hub
        id or a bundled preset resolves on this machine); refused unless the file's digest is the
        one the reference was made from."""
        path = self.path if os.path.isfile(self.path) else None
        if path is None:
            try:
                path = str(resolve_checkpoint(self.spec)[0])
            except CheckpointError as err:
                raise CheckpointError(
                    f"{_host()} cannot read the weights the driver loaded ({self.path}, spec {self.spec!r}): {err}; "
                    "put the file at the same path here, or let the executor send the weights (ship_weights=True)"
                ) from err
        found = file_sha256(path)
        if found != self.sha256:
            raise CheckpointError(
                f"{_host()}: {path} has sha256 {found}, not the driver's {self.sha256}: the weights differ from "
                "the ones the run was started with"
            )
        with warnings.catch_warnings():  # the driver gave the precision's warnings when it loaded
            warnings.simplefilter("ignore", UserWarning)
            return load_model(path, device=device, precision=self.precision, config=self.config)


def model_reference(model) -> ModelReference | None:
    """The :class:`ModelReference` of a model ``load_model`` read from a file that is still there,
    unchanged, else None (weights built in memory, or a file rewritten since: only sending the
    weights reproduces them)."""
    source = getattr(model, SOURCE_ATTR, None) or {}
    path, spec = source.get("path"), source.get("spec")
    if not path or spec is None or not os.path.isfile(path) or getattr(model, "config", None) is None:
        return None
    if file_stat(path) != tuple(source.get("file_stat", ())):  # rewritten since: its weights are not these
        return None
    path = os.path.abspath(path)  # a worker's working directory is not the driver's
    return ModelReference(path, spec, source.get("precision") or "fp32", file_sha256(path), model.config)


def _host() -> str:
    import socket

    return f"host {socket.gethostname()} (pid {os.getpid()})"
