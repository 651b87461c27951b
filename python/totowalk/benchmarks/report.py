"""Benchmark rows: one function builds a row, others print it as markdown or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

TABLE_COLUMNS = (
    "workload",
    "machine",
    "precision",
    "date",
    "commit",
    "engine s",
    "baseline",
    "baseline s",
    "ratio",
    "unique contexts",
    "contexts/s",
    "GFLOP/s (% of GEMM)",
    "notes",
)


@dataclass
class BenchRow:
    """One measured comparison: the engine against one baseline on one workload.

    Attributes
    ----------
    workload : e.g. ``W1 forecast``, ``W1 backtest``, ``micro sampling``
    machine, device, precision, date, commit : where and what ran
    engine_s : median engine wall time over ``engine_repeats`` timed runs after a warm-up
    baseline : which baseline (``reference_forecast``, ``toto-ts 0.2.0``, ...)
    baseline_s : baseline wall time for the same work; ``baseline_extrapolated`` says whether it
        was scaled up from fewer timed calls (``baseline_detail`` says from what)
    unique_contexts : distinct contexts forecast (0 where not applicable)
    engine_gflops, gemm_gflops : achieved forward GFLOP/s of the engine and the matrix-multiply
        ceiling measured in the same run (0 where not applicable)
    baseline_gflops : achieved GFLOP/s of the baseline, counting every forward it executes
    notes : free text, e.g. how the baseline was extrapolated and machine load
    extra : any further numbers (JSON only)
    """

    workload: str
    machine: str
    device: str
    precision: str
    date: str
    commit: str
    engine_s: float
    engine_repeats: int
    baseline: str
    baseline_s: float
    baseline_extrapolated: bool = False
    baseline_detail: str = ""
    unique_contexts: int = 0
    engine_gflops: float = 0.0
    gemm_gflops: float = 0.0
    baseline_gflops: float = 0.0
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Baseline time over engine time (> 1: the engine is faster)."""
        return self.baseline_s / self.engine_s if self.engine_s > 0 else float("nan")

    @property
    def contexts_per_s(self) -> float:
        return self.unique_contexts / self.engine_s if self.unique_contexts and self.engine_s > 0 else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["contexts_per_s"] = self.contexts_per_s
        return out


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def markdown_header() -> str:
    """Header and separator lines of the results table."""
    return "| " + " | ".join(TABLE_COLUMNS) + " |\n|" + "---|" * len(TABLE_COLUMNS)


def markdown_row(row: BenchRow) -> str:
    """One ready-to-paste line of bench/RESULTS.md."""
    baseline_s = _seconds(row.baseline_s) + (" (extrap.)" if row.baseline_extrapolated else "")
    gflops = ""
    if row.engine_gflops:
        share = f" ({100 * row.engine_gflops / row.gemm_gflops:.0f}%)" if row.gemm_gflops else ""
        gflops = f"{row.engine_gflops:.1f}{share}"
    notes = "; ".join(x for x in (row.baseline_detail, row.notes) if x)
    cells = (
        row.workload,
        row.machine,
        row.precision,
        row.date,
        row.commit,
        _seconds(row.engine_s),
        row.baseline,
        baseline_s,
        f"{row.ratio:.1f}x",
        str(row.unique_contexts or ""),
        f"{row.contexts_per_s:.1f}" if row.contexts_per_s else "",
        gflops,
        notes,
    )
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def markdown_table(rows) -> str:
    return "\n".join([markdown_header(), *(markdown_row(r) for r in rows)])


def to_json(rows, meta: dict | None = None) -> str:
    """``{"meta": {...}, "rows": [...]}`` with every row's fields, ratio and contexts/s."""
    return json.dumps({"meta": meta or {}, "rows": [r.to_dict() for r in rows]}, indent=2, default=str)
