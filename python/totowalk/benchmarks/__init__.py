"""Benchmark harness: named workloads (W1, W1-small, W2, micro), each timed with the engine and a
baseline in the same run, reported as rows of bench/RESULTS.md (``totowalk bench``).

>>> from totowalk.benchmarks import BenchOptions, BenchSession, run_benchmarks, markdown_table
>>> rows = run_benchmarks(["W1-small"], BenchSession(BenchOptions(device="cpu", official="off")))
"""

from .flops import contexts_flops, forward_flops, gemm_ceiling
from .report import BenchRow, markdown_row, markdown_table, to_json
from .session import BenchOptions, BenchSession
from .suites import SUITES, run_benchmarks
from .workloads import WORKLOADS, WorkloadSpec

__all__ = [
    "SUITES",
    "WORKLOADS",
    "BenchOptions",
    "BenchRow",
    "BenchSession",
    "WorkloadSpec",
    "contexts_flops",
    "forward_flops",
    "gemm_ceiling",
    "markdown_row",
    "markdown_table",
    "run_benchmarks",
    "to_json",
]
