"""One benchmark run: the device, machine facts, models per preset and the GEMM ceiling."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..devices import resolve_device
from ..engine import ForecastEngine
from ..kernels.mixture_exact import resolved_backend
from ..model import TotoConfig, build_model
from ..precision.convert import convert_precision
from ..provenance import git_commit, machine_description, today
from .flops import gemm_ceiling
from .report import BenchRow


@dataclass
class BenchOptions:
    """Settings of a run (the ``totowalk bench`` flags).

    Attributes
    ----------
    device : "cpu", "cuda", ... or None for cuda when available
    precision : model precision name (``totowalk.precision.convert``)
    repeats : timed repeats after one warm-up (the median is reported)
    reference_calls : ``reference_forecast`` calls actually timed per workload
    official : "auto" (toto-ts when found), "off", or the path of a python with toto-ts
    official_calls : official forecaster calls actually timed per workload
    w2_series, w2_simulations : W2 slice; None means the whole W2 on CUDA, 2 x 10 on CPU
    strategy_loop_sims : (series, simulation) pairs timed in the per-simulation strategy loop
    seed : model weights and sampling streams
    preset : run every model workload on this preset instead of its own (rows say so)
    cuda_graphs : the engine replays a CUDA graph of the forward per bucket shape (CUDA only)
    estimator : "sampled" (the classic loop's Monte Carlo draws) or "exact" (population values)
    statistics_backend : where an exact engine's statistics run (``ForecastEngine(statistics_backend=)``)
    scores_backend : where the clean backtests' exact scores run (``backtest(scores_backend=)``)
    host_workers : worker processes evaluating the whole backtests' strategies (``backtest(host_workers=)``)
    """

    device: str | None = None
    precision: str = "fp32"
    repeats: int = 3
    reference_calls: int = 2
    official: str = "auto"
    official_calls: int = 2
    w2_series: int | None = None
    w2_simulations: int | None = None
    strategy_loop_sims: int = 10
    seed: int = 0
    preset: str | None = None
    cuda_graphs: bool = False
    estimator: str = "sampled"
    statistics_backend: str = "auto"
    scores_backend: str = "auto"
    host_workers: int = 0


class BenchSession:
    """State shared by the workloads of one run; builds every row with the run's machine facts."""

    def __init__(self, options: BenchOptions, log=print):
        self.options = options
        self.device = resolve_device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.machine = machine_description(self.device)
        self.commit = git_commit()
        self.date = today()
        self.log = log
        self._models: dict = {}
        self._ceiling: dict | None = None
        self.ceilings: list = []  # every measurement of this run, in order
        self.load_at_start = _load_average()
        self.on_row = None  # called with every row as it is made (the CLI saves rows as they come)

    @property
    def ceiling(self) -> dict:
        """The latest GEMM ceiling measurement (measured on first use)."""
        if self._ceiling is None:
            self.measure_ceiling()
        return self._ceiling

    def measure_ceiling(self) -> dict:
        """Measure the GEMM ceiling now; each workload does so first, since the load of a shared
        machine changes within a run and the ceiling should match its moment."""
        dtype = _activation_dtype(self.options.precision, self.device)
        self._ceiling = gemm_ceiling(self.device, dtype)
        if dtype != torch.float32:
            # A reduced-precision forward keeps some products in float32 (scaler, head); where the
            # reduced type is slower (a CPU without native bf16/fp16 matmuls), that float32 rate is
            # the real ceiling, or a row would report a rate above its own ceiling.
            fp32 = gemm_ceiling(self.device, torch.float32)
            if fp32["gflops"] > self._ceiling["gflops"]:
                fp32["note"] = (
                    f"float32 rate: faster here than {self._ceiling['dtype']} ({self._ceiling['gflops']:.1f} GFLOP/s)"
                )
                self._ceiling = fp32
        self.ceilings.append(self._ceiling)
        note = f"; {self._ceiling['note']}" if "note" in self._ceiling else ""
        self.log(
            f"GEMM ceiling: {self._ceiling['gflops']:.1f} GFLOP/s "
            f"({self._ceiling['dtype']} matmul {self._ceiling['shape']}) on {self.machine}{note}"
        )
        return self._ceiling

    def model(self, preset: str):
        """Random-weight model of a preset (seeded), in the run's precision, on the run's device."""
        if preset not in self._models:
            model = build_model(TotoConfig.preset(preset), seed=self.options.seed)
            model = convert_precision(model.to(self.device), self.options.precision, self.device).eval()
            self._models[preset] = model
        return self._models[preset]

    def engine(self, preset: str, num_samples: int, estimator: str | None = None) -> ForecastEngine:
        """The engine of a workload (``estimator``: the run's --estimator unless given)."""
        return ForecastEngine(
            self.model(preset),
            num_samples=num_samples,
            seed=self.options.seed,
            cuda_graphs=self.options.cuda_graphs,
            estimator=self.options.estimator if estimator is None else estimator,
            statistics_backend=self.options.statistics_backend,
        )

    def statistics_note(self) -> str:
        """Where an exact engine's statistics and a clean backtest's scores run, for the notes column."""
        where = {"native": "the host's compiled loop", "triton": "one Triton kernel on the device"}
        statistics = resolved_backend(self.options.statistics_backend)
        scores = "triton" if self.options.scores_backend == "triton" else "native"  # auto: the host's loop
        note = f"statistics: {where.get(statistics, statistics)}; scores: {where[scores]}"
        if self.options.host_workers:
            note += f"; strategies in {self.options.host_workers} host worker processes"
        return note

    def load_note(self) -> str:
        """Machine-load statement for the notes column (CPU runs on a shared machine)."""
        if self.device.type != "cpu" or self.load_at_start is None:
            return ""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        now = _load_average()
        return (
            f"CPU shared with other jobs: 1-min load average (all jobs, this one included) {self.load_at_start:.1f} at start, "
            f"{now:.1f} now, on {cores} cores"
        )

    def row(self, workload: str, engine_s: float, baseline: str, baseline_s: float, **fields) -> BenchRow:
        graphs = (
            "engine forward replayed as CUDA graphs" if self.options.cuda_graphs and self.device.type == "cuda" else ""
        )
        exact = ""
        if self.options.estimator == "exact":
            exact = f"engine estimator exact (no sampling; {self.statistics_note()})"
        notes = "; ".join(x for x in (fields.pop("notes", ""), graphs, exact, self.load_note()) if x)
        row = BenchRow(
            workload=workload,
            machine=self.machine,
            device=self.device.type,
            precision=fields.pop("precision", self.options.precision),
            date=self.date,
            commit=self.commit,
            engine_s=engine_s,
            engine_repeats=fields.pop("engine_repeats", self.options.repeats),
            baseline=baseline,
            baseline_s=baseline_s,
            notes=notes,
            gemm_gflops=fields.pop("gemm_gflops") if "gemm_gflops" in fields else self.ceiling["gflops"],
            **fields,
        )
        if self.on_row is not None:
            self.on_row(row)
        return row


def _activation_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype the model's matrix products run in: int8 is weight-only (bf16 activations on
    CUDA, fp32 on CPU), bf16/fp16 run in their type, fp32 in fp32."""
    if precision == "int8":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
