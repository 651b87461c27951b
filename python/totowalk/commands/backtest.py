"""``totowalk backtest``: walk-forward backtest of bundled or file data, with resumable results."""

from __future__ import annotations

import argparse
import gc
import sys
import time

from ..backtest.forecast.tables import DEFAULT_CHUNK_CONTEXTS
from ..backtest.inputs.windows import INSUFFICIENT_HISTORY
from ..backtest.profiles.clean.fills import FILL_MODELS
from ..backtest.report.background import BackgroundOutputs
from ..backtest.report.html import MAX_FORECAST_CHARTS
from ..backtest.run import SCORES_BACKENDS
from ..devices import SPARE_CORES
from ..engine.sampling import ESTIMATORS
from ..errors import UsageError
from ..kernels.mixture_exact import STATISTICS_BACKENDS, BackendUnavailable
from ..loading import ResolvedModel, resolve_model
from ..memory import release_free_memory
from ..model.resolve import DEFAULT_MODEL
from ..options import (
    add_progress_option,
    aggregate_name,
    fee_rate,
    iso_date,
    positive_float,
    positive_int,
    progress_wanted,
    seed,
    spread_ratio,
    symbol_names,
    worker_count_or_auto,
)

KRONOS_PREFIX = "kronos:"  # --model kronos:DIR: Kronos forecasts every key

__all__ = [
    "register",
    "DEFAULT_SAMPLES",
    "default_estimator",
    "add_data_options",
    "add_model_options",
    "add_profile_options",
    "load_data",
    "model_from_args",
]

DEFAULT_SAMPLES = 256  # the classic loop drew 3072; 256 keeps CLI runs quick (stated in the report)
BUNDLED_DATASET = "us-stocks-daily"  # totowalk.datasets: daily US stocks 2000-2013


def register(subparsers):
    p = subparsers.add_parser("backtest", help="walk-forward backtest of Toto forecasts")
    add_data_options(p)
    add_model_options(p)
    p.add_argument(
        "--samples",
        type=positive_int,
        default=None,
        help=f"Monte Carlo samples per forecast of the sampled estimator (default {DEFAULT_SAMPLES}; the classic "
        "loop used 3072); the exact estimator draws none",
    )
    p.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default=None,
        help="exact: every aggregate is the population value of the predicted distribution (no "
        "draws, no seed dependence); sampled: from --samples seeded Monte Carlo draws as the "
        "classic loop did (default: exact for --profile clean, sampled for legacy)",
    )
    add_profile_options(p)
    p.add_argument(
        "--crypto",
        action="append",
        nargs="?",
        const="*",
        metavar="SYMBOL",
        help="treat SYMBOL (or, without a value, every symbol) as crypto: 365 days, fee 0.0015, no shorts",
    )
    p.add_argument("--fee", type=fee_rate, help="fee per unit position change (default 0.0005 stock, 0.0015 crypto)")
    p.add_argument(
        "--spread", type=spread_ratio, help="bid/ask ratio (default 1.0 = no spread cost; 'legacy-fallback' = 1.05)"
    )
    p.add_argument(
        "--fills",
        choices=FILL_MODELS,
        default=None,
        help="clean profile: how a limit-order round trip the daily bar cannot settle is booked: expected "
        "(default: the expectation over the bar's intrabar paths), adverse or optimistic (its bounds, "
        "reported beside the headline in every clean run; docs/FILLS.md)",
    )
    p.add_argument(
        "--no-calibration",
        action="store_true",
        help="skip scoring each forecast exactly against its outcome (the report's calibration block; "
        "about 0.1-0.3 ms a forecast on a host core)",
    )
    p.add_argument(
        "--scores-backend",
        choices=SCORES_BACKENDS,
        default="auto",
        help="where those scores run: auto (default; the host's compiled loop, beside the forecast) or "
        "triton (one kernel on the --device GPU)",
    )
    p.add_argument(
        "--statistics-backend",
        choices=STATISTICS_BACKENDS,
        default="auto",
        help="where the exact estimator's statistics run: auto (default; the host's compiled loop) or triton "
        "(one kernel on the --device GPU, no host round trip)",
    )
    p.add_argument(
        "--host-workers",
        type=worker_count_or_auto,
        default="auto",
        metavar="N|auto",
        help="evaluate each chunk's strategies and tables in N worker processes, a group of symbols each "
        f"(0: in this process; auto, the default: half the host's cores, at most 8, for a run of several "
        f"chunks on a host of {SPARE_CORES} or more cores, else 0); for a many-core host beside a GPU, "
        "where that work would otherwise wait on one core. Results do not depend on it",
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--batch",
        type=positive_int,
        default=None,
        help="most contexts per engine call; completed calls are saved for --resume (default 1024, 32768 on CUDA)",
    )
    p.add_argument(
        "--chunk-contexts",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"forecast and evaluate the symbols a chunk of about N distinct contexts at a time (default "
        f"{DEFAULT_CHUNK_CONTEXTS:,}); with --out each chunk's rows go to the folder at once, so memory stays "
        "bounded at any number of symbols; results do not depend on it",
    )
    p.add_argument("--out", metavar="DIR", help="write simulations.csv, forecasts.csv, summary.json and plots here")
    p.add_argument(
        "--tables",
        choices=("auto", "csv", "parquet"),
        default="auto",
        help="format of simulations/forecasts in --out: auto (default) is CSV for a few symbols and Parquet "
        "from a million forecast rows on (parquet needs totowalk[parquet])",
    )
    p.add_argument(
        "--plot-symbols",
        type=_plot_count,
        default=MAX_FORECAST_CHARTS,
        metavar="N|all",
        help=f"draw forecast_vs_actual_<symbol>.png for the first N symbols (default {MAX_FORECAST_CHARTS}; "
        "'all' for every symbol, 0 for none; report.html draws any symbol's)",
    )
    p.add_argument(
        "--outputs-process",
        choices=("auto", "on", "off"),
        default="auto",
        help="write the tables and forecast plots in a separate process while the run computes its later "
        f"chunks (auto, the default: for a run of several chunks on a host of {SPARE_CORES} or more cores); "
        "the files are the same either way",
    )
    p.add_argument("--resume", action="store_true", help="continue the interrupted run stored in --out")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run the forecasts on Ray workers: alone, a local Ray; 'auto' or host:port joins a "
        "cluster started with `ray start` (needs pip install 'totowalk[ray]')",
    )
    p.add_argument("--workers", type=positive_int, help="Ray workers (default: one per CPU, or per GPU on CUDA)")
    p.add_argument(
        "--kronos",
        metavar="DIR",
        help="legacy profile: a Kronos checkpoint folder (model/ and tokenizer/ "
        "subfolders, or the model alone) or hub id in the local cache; fills kronos_expected_move_pct "
        "with the classic parameters",
    )
    p.add_argument(
        "--kronos-tokenizer",
        metavar="DIR",
        help="the Kronos tokenizer folder or hub id (default: "
        "--kronos DIR/tokenizer, else NeoQuasar/Kronos-Tokenizer-base from the local cache)",
    )
    add_progress_option(p)
    p.set_defaults(func=_run)
    return p


# The option groups below are shared with other commands over the same runs (e.g. `totowalk samples`).
def add_data_options(p, simulations: bool = True):
    """--data/--dataset, --symbol, --start/--end, --on-invalid, --adjust (read by load_data) and, unless
    ``simulations`` is False, --sims."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--data", metavar="PATH", help="CSV/Parquet of daily OHLC bars (Ticker column for several symbols)"
    )
    src.add_argument(
        "--dataset",
        metavar="NAME",
        help=f"bundled data: {BUNDLED_DATASET!r} (pick symbols with --symbol) or one bundled symbol",
    )
    p.add_argument(
        "--symbol",
        "--symbols",
        dest="symbol",
        action="extend",
        type=symbol_names,
        metavar="SYMBOL[,SYMBOL...]",
        help="symbols to run, separated by commas (repeatable; default: all in the data)",
    )
    p.add_argument("--start", type=iso_date, help="first date to keep (YYYY-MM-DD)")
    p.add_argument("--end", type=iso_date, help="last date to keep (YYYY-MM-DD)")
    p.add_argument(
        "--on-invalid",
        choices=("raise", "drop", "ffill"),
        default="raise",
        help="bad rows (NaN, non-positive, broken OHLC envelope, duplicate or unsorted dates): "
        "stop with an error naming them (default), drop them, or forward-fill them; "
        "repairs are counted in a warning",
    )
    p.add_argument(
        "--adjust",
        choices=("none", "adj_close"),
        default=None,
        help="rescale OHLC by Adj Close / Close (splits and dividends); default: adj_close for "
        "--dataset, none for --data",
    )
    if simulations:
        p.add_argument("--sims", type=positive_int, default=10, help="simulations per symbol (default 10)")
        p.add_argument(
            "--bars-per-year",
            type=positive_float,
            default=None,
            help="annualising factor for bars shorter than a day (e.g. 1638 for hourly bars of 6.5-hour "
            "sessions); daily bars use 252 (365 crypto) and intraday bars are refused without it",
        )
        p.add_argument(
            "--insufficient-history",
            choices=INSUFFICIENT_HISTORY,
            default="raise",
            help="a symbol with too few rows for --sims: stop with an error naming it (default), or skip it "
            "(named in a warning and in the run's settings) and run the others",
        )


def add_model_options(p):
    """--model, --allow-random-weights, --device and --precision (read by model_from_args)."""
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"preset with shipped weights (default {DEFAULT_MODEL}, bundled), checkpoint directory, "
        ".safetensors file, hub id, or random:PRESET with --allow-random-weights; backtest "
        "also takes kronos:DIR (Kronos forecasts every key)",
    )
    p.add_argument("--allow-random-weights", action="store_true", help="allow --model random:PRESET")
    p.add_argument("--device", help="cpu or cuda (default: cpu, or the model's)")
    p.add_argument("--precision", default="fp32", help="fp32 (default), bf16, fp16 or int8 where supported")


def add_profile_options(p):
    """--aggregate (the point forecast the strategies trade on) and --profile."""
    p.add_argument(
        "--aggregate",
        type=aggregate_name,
        default="trimmed_mean_10",
        help="point-forecast aggregation (default trimmed_mean_10)",
    )
    p.add_argument(
        "--profile",
        choices=("clean", "legacy"),
        default="clean",
        help="clean (default): the classic strategies with their defects fixed, walk-forward fits, expected "
        "fills; legacy: the classic loop reproduced bit for bit, defects included (in-sample MaxDiff "
        "offsets), to compare with its numbers",
    )


def model_from_args(args):
    """The ResolvedModel of --model/--device/--precision/--allow-random-weights (random weights seeded by --seed)."""
    try:
        return resolve_model(
            args.model, args.device, args.precision, args.allow_random_weights, seed=getattr(args, "seed", 0)
        )
    except ValueError as err:  # an unusable --model / --precision combination
        raise UsageError(str(err)) from err


def load_data(args):
    """``{symbol: frame}`` from ``--data`` or ``--dataset``, filtered by --symbol/--start/--end."""
    from ..data import datasets, load_prices

    symbols = args.symbol
    on_invalid = getattr(args, "on_invalid", "raise")
    adjust = getattr(args, "adjust", None)
    if args.start is not None and args.end is not None and args.start > args.end:
        raise UsageError(f"--start {_day(args.start)} is after --end {_day(args.end)}: no day lies between them")
    if args.data:
        adjust = None if adjust in (None, "none") else adjust
        loaded = load_prices(args.data, symbol=symbols, adjust=adjust, on_invalid=on_invalid)
        frames = loaded if isinstance(loaded, dict) else {loaded.attrs.get("symbol") or "series": loaded}
    else:
        name = args.dataset
        if name == BUNDLED_DATASET:
            wanted = symbols or datasets.list()
        elif name in datasets.list():
            if symbols and symbols != [name]:
                raise UsageError(f"--dataset {name} is one symbol; it cannot supply --symbol {symbols}")
            wanted = [name]
        else:
            raise UsageError(
                f"unknown --dataset {name!r}; use {BUNDLED_DATASET!r} or one of {', '.join(datasets.list())}"
            )
        adjust = "adj_close" if adjust is None else (None if adjust == "none" else adjust)
        frames = {s: datasets.load(s, adjust=adjust, on_invalid=on_invalid) for s in wanted}
    out = {}
    for sym, whole in frames.items():
        frame = whole
        if args.start is not None:
            frame = frame.loc[frame.index >= args.start]
        if args.end is not None:
            frame = frame.loc[frame.index <= args.end]
        if frame.empty:
            spans = f"; its data spans {_day(whole.index[0])} to {_day(whole.index[-1])}" if len(whole) else ""
            raise UsageError(
                f"symbol {sym!r} has no rows between --start {_day(args.start)} and --end {_day(args.end)}{spans}"
            )
        out[sym] = frame
    return out


def _day(value) -> str:
    return "(none)" if value is None else value.strftime("%Y-%m-%d")


def _crypto(args, symbols):
    if not args.crypto:
        return False
    if "*" in args.crypto:
        return True
    return [s for s in args.crypto]


def default_estimator(profile: str) -> str:
    """The clean profile's numbers should not depend on a seed; legacy keeps the classic sampling."""
    return "exact" if profile == "clean" else "sampled"


def _run(args) -> int:
    if not args.out:
        return _backtest_command(args)
    from ..backtest.forecast.folder_lock import run_folder_lock

    with run_folder_lock(args.out):  # from before the model loads: a second command is refused at once
        return _backtest_command(args)


def _backtest_command(args) -> int:
    from ..backtest.forecast.kronos import as_kronos
    from ..backtest.report.files import table_format, write_outputs
    from ..backtest.report.text import format_report, timings_line, written_line
    from ..backtest.run import backtest
    from ..engine import ForecastEngine

    if args.resume and not args.out:
        raise UsageError("--resume needs --out DIR (the folder of the interrupted run)")
    started = time.perf_counter()
    frames = load_data(args)
    loaded = time.perf_counter() - started
    kronos_model = args.model.startswith(KRONOS_PREFIX)
    if kronos_model:  # Kronos forecasts every key (backtest/forecast/kronos_forecaster.py)
        if args.kronos:
            raise UsageError("--model kronos:DIR already runs Kronos; drop --kronos")
        if args.ray:
            raise UsageError("--ray runs Toto forecasts; it does not apply to --model kronos:DIR")
        if args.statistics_backend != "auto":
            raise UsageError("--statistics-backend applies to Toto's exact estimator; Kronos forecasts from its draws")
        spec = args.model[len(KRONOS_PREFIX) :]
        resolved = ResolvedModel(None, args.model, False)
        engine, estimator = None, None
    else:
        resolved = model_from_args(args)
        estimator = args.estimator or default_estimator(args.profile)
        if estimator == "exact" and args.samples is not None:
            print(
                f"WARNING: --samples {args.samples} is ignored: the exact estimator draws no samples", file=sys.stderr
            )
        if estimator != "exact" and args.statistics_backend != "auto":
            raise UsageError(
                "--statistics-backend applies to the exact estimator (--estimator exact; the clean profile's default)"
            )
        try:
            engine = ForecastEngine(
                resolved.model,
                num_samples=args.samples or DEFAULT_SAMPLES,
                seed=args.seed,
                device=args.device,
                estimator=estimator,
                statistics_backend=args.statistics_backend,
            )
        except BackendUnavailable as err:  # not on this --device, or not built
            raise UsageError(f"--statistics-backend {args.statistics_backend}: {err}") from err
    executor = "local"
    if args.workers and not args.ray:
        raise UsageError("--workers needs --ray")
    if args.ray:
        from ..backtest.forecast.ray_executor import RayExecutor

        on_gpu = str(args.device or "").startswith("cuda")
        executor = RayExecutor(
            address=None if args.ray == "local" else args.ray,
            num_workers=args.workers,
            gpus_per_worker=1 if on_gpu else 0,
        )
    kronos = None
    if kronos_model:
        try:
            kronos = as_kronos(spec, args.kronos_tokenizer, device=args.device, precision=args.precision)
        except ValueError as err:  # an --precision Kronos does not run
            raise UsageError(f"--model {args.model}: {err}") from err
    if args.kronos_tokenizer and not (args.kronos or kronos_model):
        raise UsageError("--kronos-tokenizer needs --kronos DIR or --model kronos:DIR")
    if args.kronos:
        if args.profile != "legacy":
            raise UsageError("--kronos fills the legacy profile's kronos_expected_move_pct; use --profile legacy")
        kronos = as_kronos(args.kronos, args.kronos_tokenizer, device=args.device)
    if args.fills is not None and args.profile != "clean":
        raise UsageError("--fills applies to --profile clean; the legacy profile fills as the classic loop")
    progress = progress_wanted(args)
    background = None
    if args.out:
        background = BackgroundOutputs(args.out, args.tables, args.plot_symbols, when=args.outputs_process)
    try:
        # setting mistakes come back as UsageError; a failure while computing keeps its traceback
        result = backtest(
            frames,
            num_simulations=args.sims,
            engine=engine,
            profile=args.profile,
            is_crypto=_crypto(args, list(frames)),
            fee=args.fee,
            spread=args.spread,
            aggregate=args.aggregate,
            max_batch=args.batch,
            contexts_per_chunk=args.chunk_contexts,
            out_dir=args.out,
            resume=args.resume,
            progress=progress,
            model_name=resolved.spec,
            on_part=background and background.part_saved,
            kronos=kronos,
            executor=executor,
            fill_model=args.fills,
            bars_per_year=args.bars_per_year,
            insufficient_history=args.insufficient_history,
            calibration=not args.no_calibration,
            scores_backend=args.scores_backend,
            host_workers=args.host_workers,
        )
        result.warnings[:0] = resolved.notes
        result.timings = {"load": loaded, **result.timings}
        # the model's weights (0.6 GB for Toto-base) are not needed to write the outputs: let them go
        # first, so a universe's tables and report are written beside the results alone
        resolved.model = engine = kronos = executor = None
        gc.collect()
        release_free_memory()
        print(format_report(result))
        if args.out:
            forecaster = result.settings.get("forecaster", {})
            extra = {
                "model": {
                    "spec": resolved.spec,
                    "random_weights": resolved.random_weights,
                    "warning": resolved.warning,
                    "weights_file": resolved.weights_file,
                    "weights_sha256": forecaster.get("weights_sha256"),
                    "precision": forecaster.get("precision", args.precision),
                    "precision_detail": forecaster.get("precision_detail"),
                    "requested_precision": args.precision,
                    "estimator": forecaster.get("estimator"),
                    "num_samples": None if forecaster.get("estimator") == "exact" else args.samples or DEFAULT_SAMPLES,
                    "seed": args.seed,
                }
            }
            if result.workers:
                extra["workers"] = result.workers
            if result.host_workers:
                extra["host_workers"] = result.host_workers
            _, why = table_format(result, args.tables)
            print(f"tables: {why}")
            paths = write_outputs(
                result,
                args.out,
                extra=extra,
                tables=args.tables,
                plot_symbols=args.plot_symbols,
                progress=progress,
                background=background,
            )
            print(written_line(paths, args.out))
        print(timings_line(result.timings, time.perf_counter() - started))  # the outputs' phases too
        return 0
    finally:
        if background is not None:
            background.close()  # stopped, where the run was interrupted; its partial files gone


def _plot_count(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count of symbols or 'all', got {text!r}")
    return value
