"""Whether this CPU runs bf16 / fp16 matmuls natively; without it they are emulated and slow.

torch runs bf16 matmuls on CPU through oneDNN, fast only with AVX512-BF16 or AMX-BF16 (fp16 needs
AVX512-FP16 or AMX-FP16); elsewhere they are emulated, several times slower than fp32.
"""

from __future__ import annotations

import functools

__all__ = ["NATIVE_FLAGS", "cpu_flags", "slow_precision_note"]

# precision -> /proc/cpuinfo flags any one of which gives native matmuls
NATIVE_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}
# what was measured where the flags were missing (W1 forecasting, base-size model, 2 cores)
MEASURED = {
    "bf16": "W1 forecasting took 43.7 s in bf16 against 5.0 s in fp32 (8.7x slower) on an AVX2-only CPU",
    "fp16": "W1 forecasting took 7.58 s in fp16 against 1.81 s in fp32 (4.2x slower) on a CPU without "
    "avx512_fp16 (bench/RESULTS.md)",
}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where that file does not exist."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return frozenset()


def slow_precision_note(precision: str, device=None, flags=None) -> str | None:
    """A warning text when ``precision`` would run emulated on this CPU, else None.

    ``device`` None or "cpu" means the CPU; ``flags`` overrides the detected CPU flags (tests).
    """
    if precision not in NATIVE_FLAGS or (device is not None and str(device).split(":")[0] != "cpu"):
        return None
    flags = cpu_flags() if flags is None else frozenset(flags)
    if flags is None or any(f in flags for f in NATIVE_FLAGS[precision]):
        return None
    return (
        f"precision {precision!r} on this CPU is emulated (no {' or '.join(NATIVE_FLAGS[precision])}): "
        f"expect it to be slower than fp32 ({MEASURED[precision]}); use --precision fp32 here"
    )
