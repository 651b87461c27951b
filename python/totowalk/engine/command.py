"""``totowalk forecast``: forecast the next steps of one price column and print or save the aggregates."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ..model.resolve import DEFAULT_MODEL, resolve_model

__all__ = ["register"]


def register(subparsers):
    p = subparsers.add_parser("forecast", help="forecast the next steps of a CSV or bundled series")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", "--csv", dest="data", metavar="PATH",
                        help="CSV/Parquet of daily OHLC bars (Date, Open, High, Low, Close[, Ticker])")
    source.add_argument("--dataset", metavar="SYMBOL", help="a bundled symbol (see `totowalk info`)")
    p.add_argument("--symbol", help="symbol to pick from a multi-symbol CSV")
    p.add_argument("--column", default="Close", help="price column to forecast (default Close)")
    p.add_argument("--transform", choices=("pct", "none"), default="pct",
                   help="forecast percent changes as the classic backtest does (default) or raw values")
    p.add_argument("--rows", type=int, help="use only the last ROWS rows as context")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"preset with shipped weights (default {DEFAULT_MODEL}), checkpoint directory, .safetensors "
                        "file, hub id, or random:PRESET with --allow-random-weights")
    p.add_argument("--allow-random-weights", action="store_true", help="allow --model random:PRESET")
    p.add_argument("--precision", default="fp32", help="fp32 (default), bf16, fp16 or int8")
    p.add_argument("--prediction-length", type=int, default=1)
    p.add_argument("--samples", "--num-samples", dest="samples", type=int, default=256,
                   help="Monte Carlo samples per step (default 256)")
    p.add_argument("--aggregate", nargs="+", default=["mean", "trimmed_mean_10", "p10", "p90", "band"],
                   help="aggregate names (mean, median, std, trimmed_mean_X, quantile_Q, pXX, band, expected)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: the model's)")
    p.add_argument("--output", help="write the table as CSV here instead of printing it")
    p.set_defaults(func=_run)
    return p


def _load_series(args) -> tuple:
    from ..data import datasets, load_prices

    frame = datasets.load(args.dataset) if args.dataset else load_prices(args.data, symbol=args.symbol)
    columns = {c.lower(): c for c in frame.columns}
    if args.column.lower() not in columns:
        raise SystemExit(f"--column {args.column!r} not in the data; available: {', '.join(frame.columns)}")
    values = frame[columns[args.column.lower()]].to_numpy(dtype=np.float64)
    if args.rows:
        values = values[-args.rows :]
    if args.transform == "pct":
        from ..backtest.windows import percent_changes

        values = percent_changes(values)[1:]  # drop the pct_0 = 1 placeholder
    return values, frame


def _load_model(args):
    resolved = resolve_model(args.model, args.device, args.precision, args.allow_random_weights, seed=args.seed)
    if resolved.warning:
        print(f"WARNING: {resolved.warning}", file=sys.stderr)
    return resolved.model


def _run(args) -> int:
    from .forecast_engine import ForecastEngine

    values, _ = _load_series(args)
    if values.size == 0:
        raise SystemExit("no values to forecast from")
    engine = ForecastEngine(_load_model(args), num_samples=args.samples, seed=args.seed, device=args.device)
    result = engine.forecast([values], prediction_length=args.prediction_length, aggregate=args.aggregate)
    table = pd.DataFrame({name: result.stats[name][0] for name in args.aggregate})
    table.index = pd.RangeIndex(1, args.prediction_length + 1, name="step")
    if args.output:
        table.to_csv(args.output)
        print(f"wrote {len(table)} rows to {args.output}")
    else:
        print(f"context: {values.size} values of {args.column} ({args.transform}); {args.samples} samples")
        print(table.to_string(float_format=lambda x: f"{x:.6g}"))
    return 0
