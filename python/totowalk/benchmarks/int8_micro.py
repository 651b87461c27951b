"""int8 weight-only linear layers (``totowalk.precision``) against the fp32 ``nn.Linear``.

Shapes are the base model's linears over 64 contexts x 23 patches = 1,472 tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from .session import BenchSession
from .timing import same_call, time_interleaved

TOKENS = 64 * 23
SHAPES = (("QKV", 768, 2304), ("SwiGLU w12", 768, 6144), ("SwiGLU w3", 3072, 768))


def _kernels(device: torch.device) -> list:
    # CUDA: the Triton int8-weight matmul; CPU: the dynamic int8 x int8 path and the dequantizing one
    return ["triton"] if device.type == "cuda" else ["int_mm", "dequant"]


def bench_int8(session: BenchSession) -> list:
    """One row per (shape, int8 kernel): int8 layer time vs the fp32 layer time on the same input."""
    try:
        from ..precision import Int8Linear, int8_activation_dtype
    except ImportError as exc:  # the precision package is another engineer's work in progress
        session.log(f"micro int8: totowalk.precision has no usable Int8Linear ({exc}); skipped")
        return []
    device = session.device
    act_dtype = int8_activation_dtype(device)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for name, k, n in SHAPES:
        torch.manual_seed(0)
        linear = nn.Linear(k, n).to(device).eval()
        x = torch.randn(TOKENS, k, generator=gen).to(device)
        layers = [Int8Linear.from_linear(linear, act_dtype, kernel).to(device) for kernel in _kernels(device)]
        with torch.inference_mode():
            # fp32 and every int8 kernel in turn, so all see the same machine load
            timings, outputs = time_interleaved(
                [same_call(m, x) for m in [linear, *layers]],
                device,
                [max(session.options.repeats, 5)] * (1 + len(layers)),
            )
        fp32, expected = timings[0], outputs[0]
        for kernel, timing, out in zip(_kernels(device), timings[1:], outputs[1:]):
            error = float((out.float() - expected).abs().max() / expected.abs().max())
            gflops = 2 * TOKENS * k * n / timing.median_s / 1e9
            session.log(
                f"micro int8 {name} {TOKENS}x{k}->{n} ({kernel}): {timing.median_s * 1e3:.2f} ms, "
                f"fp32 {fp32.median_s * 1e3:.2f} ms"
            )
            rows.append(
                session.row(
                    f"micro int8 {name} {TOKENS}x{k}->{n}",
                    timing.median_s,
                    "fp32 nn.Linear",
                    fp32.median_s,
                    engine_gflops=gflops,
                    gemm_gflops=0.0,  # int8 ops: no share of the fp32 ceiling
                    precision=f"int8 weights, {str(act_dtype).replace('torch.', '')} activations",
                    notes=f"Int8Linear kernel {kernel}; GFLOP/s column = effective rate 2MKN / time; "
                    f"max abs error / max abs output {error:.1e}",
                )
            )
    return rows
