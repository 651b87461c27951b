"""Named workloads -> the functions that measure them."""

from __future__ import annotations

import dataclasses

from .micro import bench_micro
from .session import BenchSession
from .walkforward import bench_walkforward
from .workloads import WORKLOADS, WorkloadSpec, w1_frames, w2_frames

CPU_W2_SLICE = (2, 10)  # (series, simulations) run on a CPU unless asked otherwise


def _spec_and_label(session: BenchSession, name: str) -> tuple[WorkloadSpec, str]:
    """The workload, with the preset replaced when ``--preset`` asks (the label then names it)."""
    spec = WORKLOADS[name]
    preset = session.options.preset
    if preset is None or preset == spec.preset:
        return spec, name
    return dataclasses.replace(spec, preset=preset), f"{name} [{preset}]"


def run_w1(session: BenchSession, name: str = "W1") -> list:
    spec, label = _spec_and_label(session, name)
    session.log(f"== {label}: {spec.description}; preset {spec.preset}, device {session.device}")
    return bench_walkforward(session, spec, w1_frames(), spec.num_simulations, label)


def run_w2(session: BenchSession) -> list:
    spec, label = _spec_and_label(session, "W2")
    all_frames = w2_frames()
    opts = session.options
    default_series, default_sims = (
        (len(all_frames), spec.num_simulations) if session.device.type == "cuda" else CPU_W2_SLICE
    )
    series = opts.w2_series or default_series
    sims = opts.w2_simulations or default_sims
    if not 1 <= series <= len(all_frames) or not 1 <= sims <= spec.num_simulations:
        raise ValueError(
            f"W2 slice {series} series x {sims} simulations is outside 1..{len(all_frames)} x 1..{spec.num_simulations}"
        )
    frames = dict(list(all_frames.items())[:series])
    whole = series == len(all_frames) and sims == spec.num_simulations
    slice_note = (
        ""
        if whole
        else (f"slice: first {series} of {len(all_frames)} series x {sims} of {spec.num_simulations} simulations")
    )
    full_contexts = len(all_frames) * 4 * (spec.num_simulations + 6)
    session.log(
        f"== {label}: {spec.description}; {slice_note or 'whole workload'}; preset {spec.preset}, "
        f"device {session.device}; series = 1,460-row windows of the bundled symbols (see w2_frames)"
    )
    return bench_walkforward(session, spec, frames, sims, label, slice_note, full_contexts)


def run_micro(session: BenchSession) -> list:
    session.log("== micro: sampling + reduction, packing, int8 matmul (when present)")
    return bench_micro(session)


SUITES = {
    "W1": run_w1,
    "W1-small": lambda session: run_w1(session, "W1-small"),
    "W2": run_w2,
    "micro": run_micro,
}


def run_benchmarks(names, session: BenchSession) -> list:
    """Rows of the named workloads, in order (``all``: every workload)."""
    if "all" in names:
        names = list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; known: {sorted(SUITES)} or 'all'")
    rows = []
    for name in names:
        session.measure_ceiling()  # in the same run, right before the workload it is compared with
        rows.extend(SUITES[name](session))
    return rows
