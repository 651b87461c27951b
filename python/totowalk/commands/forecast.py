"""``totowalk forecast``: forecast the next steps of one price column and print or save the aggregates."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ..engine.sampling import ESTIMATORS
from ..errors import UsageError
from ..loading import resolve_model
from ..model.resolve import DEFAULT_MODEL
from ..options import aggregate_name, positive_int, seed

__all__ = ["register"]


def register(subparsers):
    p = subparsers.add_parser("forecast", help="forecast the next steps of a CSV or bundled series")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        "--csv",
        dest="data",
        metavar="PATH",
        help="CSV/Parquet of daily OHLC bars (Date, Open, High, Low, Close[, Ticker])",
    )
    source.add_argument("--dataset", metavar="SYMBOL", help="a bundled symbol (see `totowalk info`)")
    p.add_argument("--symbol", help="symbol to pick from a multi-symbol CSV")
    p.add_argument("--column", default="Close", help="price column to forecast (default Close)")
    p.add_argument(
        "--transform",
        choices=("pct", "none"),
        default="pct",
        help="forecast percent changes as the classic backtest does (default) or raw values",
    )
    p.add_argument("--rows", type=positive_int, help="use only the last ROWS rows as context")
    p.add_argument(
        "--on-invalid",
        choices=("raise", "drop", "ffill"),
        default="raise",
        help="bad rows: stop with an error naming them (default), drop or forward-fill them",
    )
    p.add_argument(
        "--adjust",
        choices=("none", "adj_close"),
        default=None,
        help="rescale OHLC by Adj Close / Close; default: adj_close for --dataset, none for --data",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"preset with shipped weights (default {DEFAULT_MODEL}), checkpoint directory, .safetensors "
        "file, hub id, or random:PRESET with --allow-random-weights",
    )
    p.add_argument("--allow-random-weights", action="store_true", help="allow --model random:PRESET")
    p.add_argument("--precision", default="fp32", help="fp32 (default), bf16, fp16 or int8")
    p.add_argument("--prediction-length", type=positive_int, default=1)
    p.add_argument(
        "--samples",
        "--num-samples",
        dest="samples",
        type=positive_int,
        default=256,
        help="Monte Carlo samples per step (default 256)",
    )
    p.add_argument(
        "--aggregate",
        nargs="+",
        type=aggregate_name,
        default=["mean", "trimmed_mean_10", "p10", "p90", "band"],
        help="aggregate names (mean, median, std, trimmed_mean_X, quantile_Q, pXX, band, expected)",
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default="sampled",
        help="sampled (default): from --samples seeded draws; exact: population values of the predicted "
        "distribution (horizons up to one patch)",
    )
    p.add_argument("--device", help="cpu or cuda (default: the model's)")
    p.add_argument(
        "--output",
        help="write the table here instead of printing it (.parquet: Parquet, "
        "needs totowalk[parquet]; anything else: CSV)",
    )
    p.set_defaults(func=_run)
    return p


def _load_series(args) -> tuple:
    from ..data import datasets, load_prices

    on_invalid = getattr(args, "on_invalid", "raise")
    if args.dataset:
        adjust = None if args.adjust == "none" else "adj_close"
        frame = datasets.load(args.dataset, adjust=adjust, on_invalid=on_invalid)
    else:
        adjust = None if args.adjust in (None, "none") else args.adjust
        frame = load_prices(args.data, symbol=args.symbol, adjust=adjust, on_invalid=on_invalid)
    if isinstance(frame, dict):
        raise UsageError(f"--data {args.data} holds several symbols ({', '.join(frame)}); pick one with --symbol")
    columns = {c.lower(): c for c in frame.columns}
    if args.column.lower() not in columns:
        raise UsageError(f"--column {args.column!r} is not in the data; available: {', '.join(frame.columns)}")
    values = frame[columns[args.column.lower()]].to_numpy(dtype=np.float64)
    if args.rows:
        values = values[-args.rows :]
    if args.transform == "pct":
        from ..backtest.inputs.windows import percent_changes

        values = percent_changes(values)[1:]  # drop the pct_0 = 1 placeholder
    return values, frame


def _load_model(args):
    try:
        resolved = resolve_model(args.model, args.device, args.precision, args.allow_random_weights, seed=args.seed)
    except ValueError as err:  # an unusable --model / --precision combination
        if type(err) is not ValueError:
            raise
        raise UsageError(str(err)) from err
    for note in resolved.notes:
        print(f"WARNING: {note}", file=sys.stderr)
    return resolved.model


def _run(args) -> int:
    from ..engine.forecast_engine import ForecastEngine

    values, _ = _load_series(args)
    if values.size == 0:
        raise UsageError("no values to forecast from (the data has too few rows)")
    if args.estimator == "exact" and args.prediction_length > 64:
        raise UsageError(
            "--estimator exact gives per-step statistics up to one patch (--prediction-length <= 64); "
            "use --estimator sampled for longer horizons"
        )
    engine = ForecastEngine(
        _load_model(args), num_samples=args.samples, seed=args.seed, device=args.device, estimator=args.estimator
    )
    result = engine.forecast([values], prediction_length=args.prediction_length, aggregate=args.aggregate)
    table = pd.DataFrame({name: result.stats[name][0] for name in args.aggregate})
    table.index = pd.RangeIndex(1, args.prediction_length + 1, name="step")
    if args.output:
        write_table(table, args.output)
        print(f"wrote {len(table)} rows to {args.output}")
    else:
        what = (
            "percent changes"
            if args.transform == "pct"
            else "price levels (untransformed: the bundled "
            "model was trained on percent changes and forecasts levels near the context's mean; the default "
            "--transform pct forecasts changes)"
        )
        how = "exact statistics" if args.estimator == "exact" else f"{args.samples} samples, seed {args.seed}"
        print(f"context: {values.size} values of {args.column}, {what}; {how}")
        print(table.to_string(float_format=lambda x: f"{x:.6g}"))
    return 0


def write_table(table: pd.DataFrame, path) -> None:
    """CSV, or Parquet for a .parquet / .pq path (the optional totowalk[parquet] extra)."""
    from ..data.prices import is_parquet
    from ..errors import require_extra

    if is_parquet(path):
        require_extra("pyarrow", "parquet", f"writing the Parquet file {path}")
        table.to_parquet(path, engine="pyarrow")
    else:
        table.to_csv(path)
