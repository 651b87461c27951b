"""Compile the Triton kernels for a CUDA architecture on a machine without a GPU; report their resources.

The Triton interpreter checks what a kernel computes, not whether it compiles or how it uses the
chip. Compiling to PTX with Triton and assembling with the ``ptxas`` bundled in its wheel needs no
driver, so any machine (CI included) can catch a kernel that no longer lowers for sm_80/sm_90 and a
launch setting that makes the kernel spill registers to local memory.

    python -m totowalk.benchmarks.offline_compile [--arch 90] [--samples 4096] [--dtype fp16] [--json]

prints registers and spill bytes per kernel at the launch settings the library uses. Run it
without ``TRITON_INTERPRET``: interpreter-mode kernels cannot be compiled.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

__all__ = ["KernelResources", "compile_for_arch", "int8_matmul_resources", "mixture_resources", "rotary_resources"]

_TYPES = {"fp32": "*fp32", "fp16": "*fp16", "bf16": "*bf16"}


@dataclasses.dataclass(frozen=True)
class KernelResources:
    """ptxas' resource report for one compiled kernel specialisation."""

    kernel: str
    arch: str  # the PTX target ptxas assembled for, e.g. "sm_90a"
    config: str  # the specialisation, e.g. "S=4096 fp32"
    num_warps: int
    registers: int  # per thread
    spill_store_bytes: int
    spill_load_bytes: int
    stack_bytes: int
    shared_bytes: int  # dynamic shared memory Triton asks for at launch

    @property
    def spills(self) -> bool:
        return self.spill_store_bytes > 0 or self.spill_load_bytes > 0


def _ptxas_report(ptx: str, arch: int) -> tuple[str, dict[str, int]]:
    from triton.backends.nvidia.compiler import get_ptxas

    target = re.search(r"^\.target\s+(sm_\w+)", ptx, re.MULTILINE)
    if target is None:
        raise RuntimeError("offline_compile: Triton's PTX names no .target")
    with tempfile.TemporaryDirectory() as tmp:
        ptx_path = Path(tmp) / "kernel.ptx"
        ptx_path.write_text(ptx)
        result = subprocess.run(
            [
                get_ptxas(arch).path,
                "-v",
                f"--gpu-name={target.group(1)}",
                str(ptx_path),
                "-o",
                str(Path(tmp) / "kernel.cubin"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    report = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"offline_compile: ptxas failed for {target.group(1)}:\n{report}")

    def number(pattern: str) -> int:
        found = re.search(pattern, report)
        return int(found.group(1)) if found else 0

    return target.group(1), {
        "registers": number(r"Used (\d+) registers"),
        "spill_store_bytes": number(r"(\d+) bytes spill stores"),
        "spill_load_bytes": number(r"(\d+) bytes spill loads"),
        "stack_bytes": number(r"(\d+) bytes stack frame"),
    }


def compile_for_arch(
    fn, signature: dict[str, str], constexprs: dict[str, object], *, arch: int, num_warps: int, config: str, **options
) -> KernelResources:
    """Compile ``fn`` (a ``triton.jit`` function) for ``sm_<arch>`` and read ptxas' report.

    ``signature`` maps every non-constexpr parameter to its Triton type ("*fp32", "i64", ...);
    ``constexprs`` gives every ``tl.constexpr`` parameter its value.
    """
    full_signature = dict(signature)
    full_signature.update({name: "constexpr" for name in constexprs})
    missing = [p.name for p in fn.params if p.name not in full_signature]
    if missing:
        raise ValueError(f"offline_compile: no type or value for parameter(s) {', '.join(missing)} of {fn.__name__}")
    source = ASTSource(fn=fn, signature=full_signature, constexprs=dict(constexprs))
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options={"num_warps": num_warps, **options})
    target, numbers = _ptxas_report(compiled.asm["ptx"], arch)
    return KernelResources(
        kernel=fn.__name__,
        arch=target,
        config=config,
        num_warps=num_warps,
        shared_bytes=int(compiled.metadata.shared),
        **numbers,
    )


def mixture_resources(
    num_samples: int,
    *,
    arch: int = 90,
    dtype: str = "fp32",
    components: int = 24,
    n_stats: int = 4,
    num_warps: int | None = None,
    chunk_samples: int | None = None,
) -> KernelResources:
    """The fused sampling kernel as :func:`~.mixture_triton.sample_and_reduce_triton` launches it for S samples."""
    from ..kernels import mixture_triton
    from ..kernels.reduction_plan import COLUMNS
    from ..kernels.stream import GAMMA_DRAWS

    block, default_warps, default_chunk = mixture_triton._launch_settings(num_samples)
    chunk = min(chunk_samples or default_chunk, block)
    pointer = _TYPES[dtype]
    signature = {
        name: pointer
        for name in (
            "weights_ptr",
            "df_ptr",
            "loc_ptr",
            "scale_ptr",
            "affine_loc_ptr",
            "affine_scale_ptr",
            "samples_ptr",
        )
    }
    signature.update(
        keys_ptr="*i64",
        plan_ptr="*fp32",
        stats_ptr="*fp32",
        seed="i64",
        num_samples="i32",
        sample_count="fp32",
        extreme_limit="fp32",
    )
    constexprs = dict(
        K=components,
        BLOCK_S=block,
        CHUNK_S=chunk,
        N_STATS=n_stats,
        N_COLUMNS=len(COLUMNS),
        GAMMA_BLOCKS=GAMMA_DRAWS,
        **mixture_triton.plan_columns(),
    )
    return compile_for_arch(
        mixture_triton._mixture_sample_reduce_kernel,
        signature,
        constexprs,
        arch=arch,
        num_warps=num_warps or default_warps,
        enable_fp_fusion=False,
        config=f"S={num_samples} {dtype}{f' chunk={chunk}' if chunk < block else ''}",
    )


def int8_matmul_resources(m: int, *, arch: int = 90, dtype: str = "fp16", has_bias: bool = True) -> KernelResources:
    """The weight-only int8 matmul as :func:`~totowalk.precision.triton_int8.int8_weight_matmul` launches it for M rows."""
    import torch

    from ..precision import triton_int8

    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    block_m, block_n, block_k, warps = triton_int8._block_sizes(m, torch_dtype, interpreter=False)
    pointer = _TYPES[dtype]
    signature = dict(
        x_ptr=pointer,
        q_ptr="*i8",
        scale_ptr="*fp32",
        bias_ptr=pointer,
        out_ptr=pointer,
        M="i32",
        N="i32",
        K="i32",
        stride_xm="i32",
        stride_xk="i32",
        stride_qn="i32",
        stride_qk="i32",
        stride_om="i32",
        stride_on="i32",
    )
    constexprs = dict(HAS_BIAS=has_bias, IEEE_FP32=dtype == "fp32", BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k)
    return compile_for_arch(
        triton_int8._int8_weight_matmul_kernel,
        signature,
        constexprs,
        arch=arch,
        num_warps=warps,
        enable_fp_fusion=True,
        config=f"M={m} {dtype}",
    )


def rotary_resources(*, arch: int = 90, dtype: str = "fp16", head_dim: int = 64) -> KernelResources:
    """The fused rotary + xPos kernel as :func:`~totowalk.model.rotary_kernel.rotary_xpos` launches it."""
    from ..model import rotary_kernel

    pointer = _TYPES[dtype]
    signature = {name: pointer for name in ("x_ptr", "cos_ptr", "sin_ptr", "scale_ptr", "out_ptr")}
    signature.update(
        {
            name: "i64"
            for name in ("rows", "seq", "heads", "sx_n", "sx_h", "sx_s", "sx_d", "st_n", "st_h", "st_s", "st_d")
        }
    )
    constexprs = dict(HEAD_DIM=head_dim, BLOCK_ROWS=rotary_kernel._BLOCK_ROWS)
    return compile_for_arch(
        rotary_kernel._rotary_xpos_kernel,
        signature,
        constexprs,
        arch=arch,
        num_warps=4,
        enable_fp_fusion=False,
        config=f"h={head_dim} {dtype}",
    )


def exact_summary_resources(*, arch: int = 90, components: int = 24) -> KernelResources:
    """The exact statistics' kernel (:mod:`~totowalk.kernels.mixture_exact_triton`) as it is launched."""
    from ..kernels import mixture_exact_triton as kernel

    pointers = ("w_ptr", "df_ptr", "loc_ptr", "scale_ptr", "log_beta_ptr", "levels_ptr", "guess_ptr")
    signature = {name: "*fp64" for name in (*pointers, "mean_ptr", "std_ptr", "quantile_ptr", "partial_ptr")}
    signature.update(failed_ptr="*i32", n_rows="i32", n_components="i32", n_levels="i32", tol="fp64")
    constexprs = dict(
        BLOCK=kernel._BLOCK_ROWS,
        KP=max(2, triton.next_power_of_2(components)),
        MAX_NEWTON=kernel._MAX_NEWTON,
        MAX_TERMS=kernel._MAX_TERMS,
    )
    return compile_for_arch(
        kernel._summary_kernel,
        signature,
        constexprs,
        arch=arch,
        num_warps=4,
        config=f"K={components} fp64",
        enable_fp_fusion=True,
    )


def exact_scores_resources(*, arch: int = 90, components: int = 24) -> KernelResources:
    """The exact scores' kernel (:mod:`~totowalk.kernels.mixture_scores_triton`) as it is launched."""
    from ..kernels import mixture_scores_triton as kernel

    pointers = ("w_ptr", "df_ptr", "loc_ptr", "scale_ptr", "log_beta_ptr", "a_ptr", "b_ptr", "y_ptr", "single_ptr")
    signature = {name: "*fp64" for name in (*pointers, "crps_ptr", "pit_ptr", "log_score_ptr")}
    signature.update(failed_ptr="*i32", n_rows="i32", n_components="i32", tol="fp64")
    constexprs = dict(
        BLOCK=kernel._BLOCK_ROWS, KP=max(2, triton.next_power_of_2(components)), MAX_TERMS=kernel._MAX_TERMS
    )
    return compile_for_arch(
        kernel._scores_kernel,
        signature,
        constexprs,
        arch=arch,
        num_warps=4,
        config=f"K={components} fp64 scores",
        enable_fp_fusion=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m totowalk.benchmarks.offline_compile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--arch", type=int, action="append", help="compute capability x 10 (default: 80 and 90)")
    parser.add_argument(
        "--samples",
        type=int,
        action="append",
        help="S for the sampling kernel (default: 128 512 1024 2048 4096; 0 skips the kernel)",
    )
    parser.add_argument(
        "--dtype",
        action="append",
        choices=sorted(_TYPES),
        help="sample / activation dtype (default: fp32 and fp16; bf16 applies to int8 only)",
    )
    parser.add_argument(
        "--int8-rows",
        type=int,
        action="append",
        help="M for the int8 matmul (default: 64 and 1024; 0 skips the kernel)",
    )
    parser.add_argument("--rotary", action="store_true", help="also the fused rotary kernel (fp32, fp16, bf16)")
    parser.add_argument(
        "--exact", action="store_true", help="also the exact statistics' and scores' kernels (K = 24, fp64)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per kernel instead of a table")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes"):
        parser.error("TRITON_INTERPRET is set: the kernels are interpreter functions and cannot be compiled; unset it")
    dtypes = args.dtype or ["fp32", "fp16"]
    samples_list = [s for s in (args.samples or [128, 512, 1024, 2048, 4096]) if s > 0]
    int8_rows = [m for m in (args.int8_rows or [64, 1024]) if m > 0]
    reports = []
    for arch in args.arch or [80, 90]:
        for samples in samples_list:
            reports += [mixture_resources(samples, arch=arch, dtype=d) for d in dtypes if d != "bf16"]
        for m in int8_rows:
            reports += [int8_matmul_resources(m, arch=arch, dtype=d) for d in dtypes]
        if args.rotary:
            reports += [rotary_resources(arch=arch, dtype=d) for d in ("fp32", "fp16", "bf16")]
        if args.exact:
            reports += [exact_summary_resources(arch=arch), exact_scores_resources(arch=arch)]
    if args.json:
        for r in reports:
            print(json.dumps(dataclasses.asdict(r)))
        return 0
    print(f"triton {triton.__version__}")
    print("| kernel | arch | config | warps | registers | spill stores B | spill loads B | shared B |")
    print("|---|---|---|---|---|---|---|---|")
    for r in reports:
        print(
            f"| {r.kernel} | {r.arch} | {r.config} | {r.num_warps} | {r.registers} | {r.spill_store_bytes} "
            f"| {r.spill_load_bytes} | {r.shared_bytes} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
