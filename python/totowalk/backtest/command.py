"""``totowalk backtest``: walk-forward backtest of bundled or file data, with resumable results."""

from __future__ import annotations

import sys

from ..model.resolve import DEFAULT_MODEL, resolve_model

__all__ = ["register", "DEFAULT_SAMPLES"]

DEFAULT_SAMPLES = 256  # the classic loop drew 3072; 256 keeps CLI runs quick (stated in the report)
BUNDLED_DATASET = "us-stocks-daily"  # totowalk.datasets: daily US stocks 2000-2013


def register(subparsers):
    p = subparsers.add_parser("backtest", help="walk-forward backtest of Toto forecasts")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="PATH", help="CSV/Parquet of daily OHLC bars (Ticker column for several symbols)")
    src.add_argument("--dataset", metavar="NAME",
                     help=f"bundled data: {BUNDLED_DATASET!r} (pick symbols with --symbol) or one bundled symbol")
    p.add_argument("--symbol", action="append", help="symbol to run (repeatable; default: all in the data)")
    p.add_argument("--start", help="first date to keep (YYYY-MM-DD)")
    p.add_argument("--end", help="last date to keep (YYYY-MM-DD)")
    p.add_argument("--sims", type=int, default=10, help="simulations per symbol (default 10)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"preset with shipped weights (default {DEFAULT_MODEL}, bundled), checkpoint directory, "
                        ".safetensors file, hub id, or random:PRESET with --allow-random-weights")
    p.add_argument("--allow-random-weights", action="store_true", help="allow --model random:PRESET")
    p.add_argument("--device", help="cpu or cuda (default: cpu, or the model's)")
    p.add_argument("--precision", default="fp32", help="fp32 (default), bf16, fp16 or int8 where supported")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"Monte Carlo samples per forecast (default {DEFAULT_SAMPLES}; the classic loop used 3072)")
    p.add_argument("--aggregate", default="trimmed_mean_10", help="point-forecast aggregation (default trimmed_mean_10)")
    p.add_argument("--profile", choices=("legacy", "clean"), default="legacy")
    p.add_argument("--crypto", action="append", nargs="?", const="*", metavar="SYMBOL",
                   help="treat SYMBOL (or, without a value, every symbol) as crypto: 365 days, fee 0.0015, no shorts")
    p.add_argument("--fee", type=float, help="fee per unit position change (default 0.0005 stock, 0.0015 crypto)")
    p.add_argument("--spread", help="bid/ask ratio (default 1.0 = no spread cost; 'legacy-fallback' = 1.05)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=None,
                   help="most contexts per engine call; completed calls are saved for --resume "
                        "(default 1024, 8192 on CUDA)")
    p.add_argument("--out", metavar="DIR", help="write simulations.csv, forecasts.csv, summary.json and plots here")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run stored in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_run)
    return p


def load_data(args):
    """``{symbol: frame}`` from ``--data`` or ``--dataset``, filtered by --symbol/--start/--end."""
    from ..data import datasets, load_prices

    symbols = args.symbol
    if args.data:
        loaded = load_prices(args.data, symbol=symbols)
        frames = loaded if isinstance(loaded, dict) else {loaded.attrs.get("symbol") or "series": loaded}
    else:
        name = args.dataset
        if name == BUNDLED_DATASET:
            wanted = symbols or datasets.list()
        elif name in datasets.list():
            if symbols and symbols != [name]:
                raise ValueError(f"--dataset {name} is one symbol; it cannot supply --symbol {symbols}")
            wanted = [name]
        else:
            raise ValueError(f"unknown --dataset {name!r}; use {BUNDLED_DATASET!r} or one of "
                             f"{', '.join(datasets.list())}")
        frames = {s: datasets.load(s) for s in wanted}
    out = {}
    for sym, frame in frames.items():
        if args.start:
            frame = frame.loc[frame.index >= args.start]
        if args.end:
            frame = frame.loc[frame.index <= args.end]
        out[sym] = frame
    return out


def _crypto(args, symbols):
    if not args.crypto:
        return False
    if "*" in args.crypto:
        return True
    return [s for s in args.crypto]


def _run(args) -> int:
    from ..engine import ForecastEngine
    from .api import backtest
    from .report import format_report, write_outputs
    from .store import RunStoreError

    if args.resume and not args.out:
        raise SystemExit("--resume needs --out DIR (the folder of the interrupted run)")
    try:
        frames = load_data(args)
        resolved = resolve_model(args.model, args.device, args.precision, args.allow_random_weights,
                                 seed=args.seed)
    except ValueError as err:  # PriceDataError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    engine = ForecastEngine(resolved.model, num_samples=args.samples, seed=args.seed, device=args.device)
    try:
        result = backtest(
            frames, num_simulations=args.sims, engine=engine, profile=args.profile,
            is_crypto=_crypto(args, list(frames)), fee=args.fee, spread=args.spread,
            aggregate=args.aggregate, max_batch=args.batch, out_dir=args.out, resume=args.resume,
            progress=not args.no_progress, model_name=resolved.spec,
        )
    except (ValueError, RunStoreError) as err:  # bad data or settings, or an unusable --out
        print(f"error: {err}", file=sys.stderr)
        return 2
    if resolved.warning:
        result.warnings.insert(0, resolved.warning)
    print(format_report(result))
    if args.out:
        extra = {"model": {"spec": resolved.spec, "random_weights": resolved.random_weights,
                           "warning": resolved.warning, "precision": args.precision,
                           "num_samples": args.samples, "seed": args.seed}}
        paths = write_outputs(result, args.out, extra=extra)
        print("wrote " + ", ".join(p.name for p in paths) + f" to {args.out}")
    return 0
