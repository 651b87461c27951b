"""Numeric precision a loaded model runs in: "fp32", "bf16", "fp16" or "int8".

``load_model(..., precision=...)`` calls ``apply_precision``; the conversions live in
``totowalk.precision`` (imported on first use so fp32 loading does not need it).
"""

from __future__ import annotations

from torch import nn

PRECISIONS = ("fp32", "bf16", "fp16", "int8")


def apply_precision(model: nn.Module, precision: str, device=None, stored_int8: dict | None = None) -> nn.Module:
    """Convert an fp32 ``model`` in place to ``precision`` for ``device``; unknown names raise ValueError.

    ``stored_int8`` holds a quantized checkpoint's ``{module name: (qweight, scale)}``, used
    as they are for "int8".
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; available: {list(PRECISIONS)}")
    if precision == "fp32":
        return model.float()
    from ..precision.convert import convert_precision

    return convert_precision(model, precision, device, stored_int8)
