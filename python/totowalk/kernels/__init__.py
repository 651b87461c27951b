"""Mixture-of-Student-T sampling and sample reductions (torch reference, fused Triton kernels), and
exact population statistics of the same mixtures.

>>> from totowalk.kernels import sample_and_reduce, request_keys
"""

from .backend import SamplingBackend
from .mixture_exact import STATISTICS_BACKENDS, exact_statistics, mixture_summary
from .philox import philox4x32
from .reduction_plan import build_reduction_plan
from .sampling import MAX_TRITON_SAMPLES, mixture_mean, reduce_samples, sample_and_reduce, sample_mixture
from .stream import request_keys

__all__ = [
    "MAX_TRITON_SAMPLES",
    "STATISTICS_BACKENDS",
    "SamplingBackend",
    "build_reduction_plan",
    "exact_statistics",
    "mixture_mean",
    "mixture_summary",
    "philox4x32",
    "reduce_samples",
    "request_keys",
    "sample_and_reduce",
    "sample_mixture",
]
