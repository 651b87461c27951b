"""Mixture-of-Student-T sampling and sample reductions: torch reference and fused Triton kernels.

>>> from totowalk.kernels import sample_and_reduce, request_keys
"""

from .backend import SamplingBackend
from .philox import philox4x32
from .reduction_plan import build_reduction_plan
from .sampling import MAX_TRITON_SAMPLES, mixture_mean, reduce_samples, sample_and_reduce, sample_mixture
from .stream import request_keys

__all__ = [
    "MAX_TRITON_SAMPLES",
    "SamplingBackend",
    "build_reduction_plan",
    "mixture_mean",
    "philox4x32",
    "reduce_samples",
    "request_keys",
    "sample_and_reduce",
    "sample_mixture",
]
