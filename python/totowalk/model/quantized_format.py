"""The int8 checkpoint format (``totowalk quantize``), as far as reading weights needs it.

``model.safetensors`` keeps every official key; a Linear's ``<prefix>.weight`` is int8 (N, K)
and ``<prefix>.weight_scale`` (N,) fp32 sits beside it. ``config.json`` gains a
``"quantization"`` entry (``QUANTIZATION``). Reading lives in the model layer so that loading
weights never needs the precision layer; writing (``totowalk.precision.save_quantized``) and
the int8 modules stay there.
"""

from __future__ import annotations

import torch

from . import keys

__all__ = ["QUANTIZATION", "SCALE_SUFFIX", "dequantize_weight", "split_quantized_tensors"]

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


def dequantize_weight(qweight: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``q * s[:, None]`` in ``dtype``; qweight (N, K) int8, scale (N,) -> (N, K)."""
    return (qweight.to(torch.float32) * scale.to(torch.float32)[:, None]).to(dtype)


def split_quantized_tensors(
    official: dict[str, torch.Tensor], quantization: dict, source: str
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
            raise ValueError(
                f"{source}: {weight_key!r} must be int8 (N, K) with {scale_key!r} (N,); got "
                f"{qweight.dtype} {tuple(qweight.shape)} and {tuple(scale.shape)}"
            )
        ours = keys.to_ours(weight_key)
        if ours is None:
            raise ValueError(f"{source}: quantized tensor {weight_key!r} is not a Toto weight")
        out[weight_key] = dequantize_weight(qweight, scale)
        stored[ours[: -len(".weight")]] = (qweight, scale)
    leftover = [k for k, t in out.items() if t.dtype == torch.int8]
    if leftover:
        raise ValueError(f"{source}: int8 tensors without a {suffix!r} scale: {sorted(leftover)}")
    return out, stored
