"""``totowalk samples``: how many Monte Carlo samples a backtest needs, measured against the exact estimator."""

from __future__ import annotations

import argparse
import sys

from ..options import add_progress_option, positive_int, progress_wanted, seed
from ..quality.samples import DEFAULT_GRID, DEFAULT_SEEDS
from .backtest import add_data_options, add_model_options, add_profile_options, load_data, model_from_args

__all__ = ["register", "sample_grid"]


def sample_grid(text: str) -> list:
    """Comma-separated sample counts, each >= 2 (a band needs two draws): ``32,64,128``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"expected sample counts >= 2, got {text!r}")
    return values


def register(subparsers):
    p = subparsers.add_parser(
        "samples", help="sample-count study: sampled vs exact estimator over a grid of S and seeds"
    )
    add_data_options(p)
    add_model_options(p)
    add_profile_options(p)
    p.add_argument(
        "--grid",
        type=sample_grid,
        default=list(DEFAULT_GRID),
        help="sample counts S, comma-separated (default " + ",".join(map(str, DEFAULT_GRID)) + ")",
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=DEFAULT_SEEDS,
        help=f"seeds per S (default {DEFAULT_SEEDS}): --seed, --seed + 1, ...",
    )
    p.add_argument("--seed", type=seed, default=0, help="first seed (also seeds random weights; default 0)")
    p.add_argument("--out", metavar="DIR", help="write samples.csv, samples.json and samples.png here (overwritten)")
    add_progress_option(p)
    p.set_defaults(func=_run)
    return p


def _run(args) -> int:
    from ..engine import ForecastEngine
    from ..quality.samples import sample_study
    from ..quality.samples_report import format_study, write_study

    frames = load_data(args)
    resolved = model_from_args(args)
    for note in resolved.notes:
        print(f"WARNING: {note}", file=sys.stderr)
    engine = ForecastEngine(resolved.model, device=args.device, estimator="exact")
    study = sample_study(
        frames,
        engine,
        grid=args.grid,
        seeds=range(args.seed, args.seed + args.seeds),
        num_simulations=args.sims,
        profile=args.profile,
        aggregate=args.aggregate,
        progress=progress_wanted(args),
        insufficient_history=args.insufficient_history,
        bars_per_year=args.bars_per_year,
    )
    study.settings.update(model=resolved.spec, precision=args.precision)
    for warning in study.settings.get("warnings", []):
        print(f"WARNING: {warning}")
    print(format_study(study))
    if args.out:
        extra = {
            "model": {
                "spec": resolved.spec,
                "random_weights": resolved.random_weights,
                "warning": resolved.warning,
                "precision": args.precision,
            }
        }
        paths = write_study(study, args.out, extra=extra)
        print("wrote " + ", ".join(p.name for p in paths) + f" to {args.out}")
    return 0
