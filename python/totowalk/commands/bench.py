"""``totowalk bench``: run named workloads, print ready-to-paste RESULTS.md rows or JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..backtest.run import SCORES_BACKENDS
from ..benchmarks.report import markdown_table, to_json
from ..benchmarks.session import BenchOptions, BenchSession
from ..benchmarks.suites import SUITES, run_benchmarks
from ..errors import UsageError
from ..kernels.mixture_exact import STATISTICS_BACKENDS, BackendUnavailable, resolved_backend
from ..options import positive_int, worker_count

EPILOG = (
    "Workloads: W1 (the classic run, base preset), W1-small (CI smoke, toto-tiny), W2 (24 series x "
    "250 simulations; a 2 x 10 slice on CPU), micro (sampling, packing, int8), all. Baselines that "
    "are slow are timed on a stated number of calls and extrapolated; the rows say so."
)


def register(subparsers):
    p = subparsers.add_parser(
        "bench", help="benchmark the engine against the classic loop and toto-ts", description=__doc__, epilog=EPILOG
    )
    add_arguments(p)
    p.set_defaults(func=_run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "workloads",
        nargs="*",
        default=["W1"],
        metavar="WORKLOAD",
        help=f"one or more of {', '.join(SUITES)}, all (default: W1)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--preset",
        default=None,
        help="run the model workloads on this preset instead of their own (e.g. toto-tiny for a quick check)",
    )
    p.add_argument("--precision", default="fp32", help="model precision (default fp32)")
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="timed repeats after one warm-up; the median is reported"
    )
    p.add_argument(
        "--reference-calls", type=positive_int, default=2, help="reference_forecast calls timed per workload"
    )
    p.add_argument(
        "--official",
        default="auto",
        help="toto-ts baseline: auto (in-process, or a toto-ts venv when one is found), off, or a python path",
    )
    p.add_argument("--official-calls", type=positive_int, default=2, help="toto-ts forecaster calls timed per workload")
    p.add_argument(
        "--w2-series", type=positive_int, default=None, help="W2 slice: series (default all on CUDA, 2 on CPU)"
    )
    p.add_argument(
        "--w2-simulations",
        type=positive_int,
        default=None,
        help="W2 slice: simulations per series (default 250 on CUDA, 10 on CPU)",
    )
    p.add_argument(
        "--strategy-loop-sims",
        type=positive_int,
        default=10,
        help="(series, simulation) pairs timed in the per-simulation strategy baseline",
    )
    p.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay the engine's forward as a CUDA graph per bucket shape (CUDA only)",
    )
    p.add_argument(
        "--estimator",
        choices=("sampled", "exact"),
        default="sampled",
        help="engine estimator for the W workloads: sampled (default, the classic draws) or exact",
    )
    p.add_argument(
        "--statistics-backend",
        choices=STATISTICS_BACKENDS,
        default="auto",
        help="where exact engines' statistics run (the clean rows; --estimator exact): auto (the host's compiled "
        "loop) or triton (one kernel on the card)",
    )
    p.add_argument(
        "--scores-backend",
        choices=SCORES_BACKENDS,
        default="auto",
        help="where the clean backtests' exact scores run: auto (the host's compiled loop) or triton (one kernel on "
        "the card)",
    )
    p.add_argument(
        "--host-workers",
        type=worker_count,
        default=0,
        metavar="N",
        help="evaluate the whole backtests' strategies in N worker processes (0: in this process)",
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of the markdown table")
    p.add_argument("--json-out", default=None, metavar="FILE", help="also write the rows as JSON to FILE")
    p.add_argument("--markdown-out", default=None, metavar="FILE", help="also write the markdown table to FILE")


def options_from_args(args) -> BenchOptions:
    for name in ("repeats", "reference_calls", "official_calls", "strategy_loop_sims"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return BenchOptions(
        device=args.device,
        precision=args.precision,
        repeats=args.repeats,
        reference_calls=args.reference_calls,
        official=args.official,
        official_calls=args.official_calls,
        w2_series=args.w2_series,
        w2_simulations=args.w2_simulations,
        strategy_loop_sims=args.strategy_loop_sims,
        preset=args.preset,
        cuda_graphs=args.cuda_graphs,
        estimator=args.estimator,
        statistics_backend=args.statistics_backend,
        scores_backend=args.scores_backend,
        host_workers=args.host_workers,
    )


def _run(args) -> int:
    unknown = [w for w in args.workloads if w not in SUITES and w != "all"]
    if unknown:
        raise UsageError(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}, all")
    session = BenchSession(options_from_args(args), log=lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        resolved_backend(args.statistics_backend, session.device)
    except BackendUnavailable as err:
        raise UsageError(f"--statistics-backend {args.statistics_backend}: {err}") from err
    names = list(SUITES) if "all" in args.workloads else args.workloads
    meta = {
        "machine": session.machine,
        "device": session.device.type,
        "commit": session.commit,
        "date": session.date,
        "gemm_ceilings": session.ceilings,
        "workloads": names,
    }
    made = []

    def save(row) -> None:  # each row as soon as it exists: a run stopped by a time limit keeps them
        made.append(row)
        _write_outputs(args, made, meta)

    session.on_row = save
    rows = []
    for name in names:
        rows.extend(run_benchmarks([name], session))
    _write_outputs(args, rows, meta)  # the finished run, in the workloads' own row order
    print(to_json(rows, meta) if args.json else markdown_table(rows))
    return 0


def _write_outputs(args, rows: list, meta: dict) -> None:
    if args.json_out:
        Path(args.json_out).write_text(to_json(rows, meta) + "\n")
    if args.markdown_out:
        Path(args.markdown_out).write_text(markdown_table(rows) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="totowalk bench", description=__doc__, epilog=EPILOG)
    add_arguments(parser)
    return _run(parser.parse_args(argv))
