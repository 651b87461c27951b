"""What a loaded model computes with: a digest of its weights and the precision actually applied.

A run's fingerprint and its summary.json use this, so it must describe the weights in memory,
not the options someone asked for: an int8 checkpoint loaded with the default precision runs on
int8-rounded weights (dequantized to fp32), and its results are int8's, not fp32's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

__all__ = ["SOURCE_ATTR", "applied_precision", "file_sha256", "file_stat", "model_identity", "record_source"]

SOURCE_ATTR = "_totowalk_source"  # set by load_model: where the weights came from
_FILE_DIGESTS: dict[tuple, str] = {}


def record_source(model, weights_path, int8_checkpoint: bool, spec=None, precision: str | None = None) -> None:
    """Remember the weights file, whether it stored int8 weights, and the spec and precision it was
    loaded with (called by ``load_model``; enough to load the same model elsewhere)."""
    source = {"path": str(weights_path), "int8_checkpoint": bool(int8_checkpoint)}
    if spec is not None:
        source.update(spec=os.fspath(spec), precision=precision, file_stat=file_stat(weights_path))
    object.__setattr__(model, SOURCE_ATTR, source)


def file_stat(path) -> tuple:
    """(size, modification time in ns) of a file: whether it changed since it was read."""
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def file_sha256(path) -> str:
    """sha256 of a file, memoised per (path, size, mtime) so repeated runs hash a checkpoint once."""
    path = Path(path).resolve()
    key = (str(path), *file_stat(path))
    if key not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                digest.update(block)
        _FILE_DIGESTS[key] = digest.hexdigest()
    return _FILE_DIGESTS[key]


def _state_sha256(model) -> str:
    """sha256 of every tensor in the state dict (models built in memory have no file)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def applied_precision(model) -> tuple[str, str]:
    """``(precision, detail)`` of the weights in ``model`` as they are now.

    precision is "int8", "bf16", "fp16" or "fp32"; detail adds what changes numbers besides it
    (int8 activation dtype and matmul kernel, or an int8 checkpoint dequantized to fp32).
    """
    int8 = [m for m in model.modules() if hasattr(m, "qweight") and hasattr(m, "weight_scale")]
    if int8:
        m = int8[0]
        kernel = getattr(getattr(m, "kernel", None), "value", getattr(m, "kernel", None))
        act = str(getattr(m, "compute_dtype", "")).replace("torch.", "")
        return "int8", f"int8 weight-only, {act} activations, kernel {kernel}"
    compute = getattr(model, "compute_dtype", None)
    if compute is None:
        linear = next((m for m in model.modules() if isinstance(m, torch.nn.Linear)), None)
        compute = linear.weight.dtype if linear is not None else torch.float32
    name = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}.get(compute, str(compute))
    source = getattr(model, SOURCE_ATTR, None) or {}
    if source.get("int8_checkpoint"):
        return "int8", f"int8 checkpoint weights dequantized to {name}"
    return name, name


def model_identity(model, hash_memory: bool = True) -> dict:
    """``{"weights_sha256", "weights_file", "precision", "precision_detail"}`` of ``model``.

    The digest is the weights file's when the model was loaded from one (conversion to a
    precision is deterministic and named beside it); a model built in memory is hashed tensor by
    tensor, only when ``hash_memory`` (a base-size model takes about a second), else None.
    """
    source = getattr(model, SOURCE_ATTR, None) or {}
    path = source.get("path")
    precision, detail = applied_precision(model)
    if path and os.path.isfile(path):
        digest = file_sha256(path)
    else:
        digest = _state_sha256(model) if hash_memory else None
    return {"weights_sha256": digest, "weights_file": path, "precision": precision, "precision_detail": detail}
