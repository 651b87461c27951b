"""Quantized checkpoints: int8 Linear weights + per-channel scales in the official layout.

``model.safetensors`` keeps every official key; a Linear's ``<prefix>.weight`` is int8 (N, K)
and ``<prefix>.weight_scale`` (N,) fp32 sits beside it. ``config.json`` gains a
``"quantization"`` entry (``QUANTIZATION``) so ``load_model`` knows to dequantize / keep them.
The official Toto loader cannot read this file; ``totowalk.load_model`` can, in any precision.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from ..model import keys
from ..model.checkpoint import CHECKPOINT_FILE, CONFIG_FILE
from .int8 import Int8Linear, dequantize_weight, quantize_weight

__all__ = ["QUANTIZATION", "SCALE_SUFFIX", "save_quantized", "split_quantized_tensors"]

SCALE_SUFFIX = ".weight_scale"
QUANTIZATION = {
    "method": "int8_weight_only",
    "granularity": "per_output_channel",
    "symmetric": True,
    "qmax": 127,
    "scale_suffix": SCALE_SUFFIX,
    "layers": "every nn.Linear",
    "version": 1,
}


def _linear_weights(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module name: (qweight, scale)} of every Linear / Int8Linear of ``model``."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, Int8Linear):
            found[name] = (module.qweight.cpu(), module.weight_scale.cpu())
        elif isinstance(module, nn.Linear):
            found[name] = quantize_weight(module.weight.cpu())
    return found


def save_quantized(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Write an int8 checkpoint of ``model`` (fp32 or already int8) to ``directory``.

    Non-Linear tensors (RMSNorm scales) are stored in fp32, biases in fp32.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    quantized = _linear_weights(model)
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        module_name, _, leaf = name.rpartition(".")
        if module_name in quantized and leaf in ("qweight", "weight_scale", "weight"):
            continue
        tensors[keys.to_official(name)] = tensor.detach().cpu().to(torch.float32).contiguous().clone()
    for module_name, (qweight, scale) in quantized.items():
        official = keys.to_official(module_name + ".weight")
        tensors[official] = qweight.contiguous().clone()
        tensors[official[: -len(".weight")] + SCALE_SUFFIX] = scale.to(torch.float32).contiguous().clone()
    save_file(tensors, str(directory / CHECKPOINT_FILE), metadata={"format": "pt", "quantization": "int8_weight_only"})
    config = model.config.to_official_json()
    config["quantization"] = dict(QUANTIZATION)
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def split_quantized_tensors(official: dict[str, torch.Tensor], quantization: dict, source: str
                            ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Dequantize the int8 weights of a quantized checkpoint for loading.

    Returns
    -------
    official : dict
        The tensors with each int8 weight replaced by its fp32 dequantization and no scales.
    stored : dict
        ``{our module name: (qweight (N, K) int8, scale (N,) fp32)}`` for ``precision="int8"``.
    """
    if quantization.get("method") != QUANTIZATION["method"] or quantization.get("version") != QUANTIZATION["version"]:
        raise ValueError(f"{source}: unsupported quantization {quantization!r}; this totowalk reads {QUANTIZATION!r}")
    suffix = quantization.get("scale_suffix", SCALE_SUFFIX)
    out = dict(official)
    stored = {}
    for scale_key in [k for k in official if k.endswith(suffix)]:
        weight_key = scale_key[: -len(suffix)] + ".weight"
        if weight_key not in official:
            raise ValueError(f"{source}: scale {scale_key!r} has no int8 weight {weight_key!r}")
        qweight, scale = official[weight_key], out.pop(scale_key).to(torch.float32)
        if qweight.dtype != torch.int8 or qweight.ndim != 2 or tuple(scale.shape) != (qweight.shape[0],):
            raise ValueError(f"{source}: {weight_key!r} must be int8 (N, K) with {scale_key!r} (N,); got "
                             f"{qweight.dtype} {tuple(qweight.shape)} and {tuple(scale.shape)}")
        ours = keys.to_ours(weight_key)
        if ours is None:
            raise ValueError(f"{source}: quantized tensor {weight_key!r} is not a Toto weight")
        out[weight_key] = dequantize_weight(qweight, scale)
        stored[ours[: -len(".weight")]] = (qweight, scale)
    leftover = [k for k, t in out.items() if t.dtype == torch.int8]
    if leftover:
        raise ValueError(f"{source}: int8 tensors without a {suffix!r} scale: {sorted(leftover)}")
    return out, stored
