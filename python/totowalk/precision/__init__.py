"""Reduced precision (bf16 / fp16) and int8 weight-only quantization, behind a quality gate.

>>> model = totowalk.load_model("toto-mini", precision="int8")   # warns until `totowalk quality` passes

The gate's runs (backtests, a layer above) are :mod:`totowalk.quality.gate`.
"""

from .convert import (
    PRECISIONS,
    convert_precision,
    int8_activation_dtype,
    quantize_linears_,
    set_int8_kernel,
)
from .gate import (
    GateSettings,
    GateThresholds,
    UngatedPrecisionWarning,
    format_report,
)
from .int8 import Int8Kernel, Int8Linear, dequantize_weight, quantize_weight
from .int8_checkpoint import save_quantized
from .reduced import ReducedPrecisionToto, to_reduced_precision

__all__ = [
    "PRECISIONS",
    "GateSettings",
    "GateThresholds",
    "Int8Kernel",
    "Int8Linear",
    "ReducedPrecisionToto",
    "UngatedPrecisionWarning",
    "convert_precision",
    "dequantize_weight",
    "format_report",
    "int8_activation_dtype",
    "quantize_linears_",
    "quantize_weight",
    "save_quantized",
    "set_int8_kernel",
    "to_reduced_precision",
]
