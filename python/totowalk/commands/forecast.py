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


DEFAULT_AGGREGATES = ("mean", "trimmed_mean_10", "p10", "p90", "band")


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
        action="extend",  # --aggregate p95 --aggregate mean: both
        type=aggregate_name,
        default=None,
        help="aggregate names (mean, median, std, trimmed_mean_X, quantile_Q, pXX, band, expected; "
        f"repeatable; default {' '.join(DEFAULT_AGGREGATES)})",
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
        help="write the table here instead of printing it (.parquet: Parquet, needs totowalk[parquet]; anything "
        "else: CSV); changes as fractions (0.01 = +1 %%), with each step's target date and, for --transform pct, "
        "the price level the first location aggregate (mean, median, trimmed mean) implies",
    )
    p.set_defaults(func=_run)
    return p


LEVEL_KINDS = ("mean", "median", "trimmed_mean", "expected")  # location statistics a price level can follow


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
    args.column = columns[args.column.lower()]
    values = frame[args.column].to_numpy(dtype=np.float64)
    if args.rows:
        values = values[-args.rows :]
    if args.transform == "pct":
        from ..backtest.inputs.windows import percent_changes

        values = percent_changes(values)[1:]  # drop the pct_0 = 1 placeholder
    return values, frame


def target_dates(index, steps: int) -> pd.DatetimeIndex | None:
    """The dates of the next ``steps`` bars after a price index: its own spacing for bars shorter
    than a day, calendar days where the data trade on weekends (crypto), weekdays otherwise
    (exchange holidays are not known). None for an index without dates."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return None
    last = index[-1]
    spacing = pd.Series(index).diff().median()
    if spacing < pd.Timedelta(days=1):
        return pd.DatetimeIndex([last + spacing * (k + 1) for k in range(steps)])
    if (index.dayofweek >= 5).any():
        return pd.date_range(last + pd.Timedelta(days=1), periods=steps, freq="D")
    return pd.bdate_range(last + pd.offsets.BDay(1), periods=steps)


def forecast_table(result, args, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per step: the target date, each aggregate (changes as fractions for --transform
    pct) and the price level implied by the first location aggregate, compounded from the last price."""
    from ..aggregation import parse_aggregate

    steps = args.prediction_length
    table = pd.DataFrame({name: result.stats[name][0] for name in args.aggregate})
    table.index = pd.RangeIndex(1, steps + 1, name="step")
    dates = target_dates(frame.index, steps)
    if dates is not None:
        table.insert(0, "date", dates.strftime("%Y-%m-%d %H:%M" if (dates.normalize() != dates).any() else "%Y-%m-%d"))
    location = [name for name in args.aggregate if parse_aggregate(name, extended=True).kind in LEVEL_KINDS]
    if args.transform == "pct" and location:
        last = float(frame[args.column].iloc[-1])
        table[f"{args.column}_at_{location[0]}"] = last * np.cumprod(1.0 + table[location[0]].to_numpy(np.float64))
    return table


def _printed(table: pd.DataFrame, args) -> str:
    """The table for a terminal: changes in percent, at most 100 columns wide (wrapped in blocks)."""
    shown = table.copy()
    changes = list(args.aggregate) if args.transform == "pct" else []
    shown = shown.rename(columns={name: f"{name} %" for name in changes})
    for name in changes:
        shown[f"{name} %"] = 100.0 * shown[f"{name} %"].astype(np.float64)
    formats = {c: (lambda v: f"{v:.4f}") for c in shown.columns if c.endswith(" %")}
    formats.update({c: (lambda v: f"{v:.6g}") for c in shown.columns if c not in formats and c != "date"})
    return shown.to_string(formatters=formats, line_width=100)


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

    args.aggregate = list(dict.fromkeys(args.aggregate or DEFAULT_AGGREGATES))  # each once, in the order given

    values, frame = _load_series(args)
    if values.size == 0:
        raise UsageError("no values to forecast from (the data has too few rows)")
    if args.estimator == "exact" and args.prediction_length > 64:
        raise UsageError(
            "--estimator exact gives per-step statistics up to one patch (--prediction-length <= 64); "
            "use --estimator sampled for longer horizons"
        )
    model = _load_model(args)
    patch = getattr(getattr(model, "config", None), "patch_size", None)
    if patch and values.size < patch:
        print(
            f"WARNING: the context holds {values.size} values, fewer than one patch of the model ({patch}): "
            "it sees mostly padding and its forecast rests on very little history",
            file=sys.stderr,
        )
    engine = ForecastEngine(
        model, num_samples=args.samples, seed=args.seed, device=args.device, estimator=args.estimator
    )
    result = engine.forecast([values], prediction_length=args.prediction_length, aggregate=args.aggregate)
    table = forecast_table(result, args, frame)
    if args.output:
        write_table(table, args.output)
        print(f"wrote {len(table)} rows to {args.output}")
        return 0
    last = frame.index[-1]
    ending = f" ending {last.date() if isinstance(last, pd.Timestamp) and last == last.normalize() else last}"
    what = (
        f"changes of {args.column} in percent (files hold fractions: 0.01 = 1 %%); the last "
        f"{args.column} is {frame[args.column].iloc[-1]:.6g}"
        if args.transform == "pct"
        else f"{args.column} price levels (untransformed: the bundled model was trained on percent changes and "
        "forecasts levels near the context's mean; the default --transform pct forecasts changes)"
    ).replace("%%", "%")
    how = "exact statistics" if args.estimator == "exact" else f"{args.samples} samples, seed {args.seed}"
    print(f"context: {values.size} values{ending}; {what}; {how}")
    print(_printed(table, args))
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
