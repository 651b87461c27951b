"""Quantized checkpoints: int8 Linear weights + per-channel scales in the official layout.

The format (and reading it) is ``totowalk.model.quantized_format``; this module writes it.
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
from ..model.quantized_format import QUANTIZATION, SCALE_SUFFIX, split_quantized_tensors
from .int8 import Int8Linear, quantize_weight

__all__ = ["QUANTIZATION", "SCALE_SUFFIX", "save_quantized", "split_quantized_tensors"]


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
