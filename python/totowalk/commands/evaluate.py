"""``totowalk evaluate``: is a forecast worth trading? The model against classical baselines on the
same held-out days: exact CRPS, calibration, direction and significance (totowalk.skill)."""

from __future__ import annotations

import json
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UsageError
from ..options import add_progress_option, positive_int, progress_wanted, seed
from .backtest import KRONOS_PREFIX, add_data_options, add_model_options, load_data, model_from_args

__all__ = ["register"]

KEYS = ("Close", "High", "Low", "Open")
PRINTED = ("model", "symbol", "key", "horizon", "days", "crps", "crps_skill", "coverage_80", "pit_ks_p", "hit_rate")
MOST_VERDICTS = 12  # sentences printed; a universe's are in evaluation.html
MAX_HORIZON = 64  # the exact mixture covers one patch of steps


def register(subparsers):
    from ..skill.baselines import BASELINES

    p = subparsers.add_parser(
        "evaluate",
        help="score the model's one-step forecasts against baselines on held-out days (CRPS, calibration, DM test)",
    )
    add_data_options(p, simulations=False)
    # repeatable: --keys Close --keys High scores both (each option below adds to what came before)
    p.add_argument(
        "--keys", nargs="+", action="extend", choices=KEYS, default=None, help="price keys to score (default Close)"
    )
    p.add_argument(
        "--days",
        type=positive_int,
        help="score the last DAYS returns of each series (default: every day with --min-history before it)",
    )
    p.add_argument("--min-history", type=positive_int, default=250, help="returns a day needs before it (default 250)")
    p.add_argument(
        "--horizons",
        nargs="+",
        action="extend",
        type=positive_int,
        default=None,
        help=f"steps ahead to score, each day forecast h steps before it (default 1; at most {MAX_HORIZON})",
    )
    p.add_argument(
        "--baselines",
        nargs="*",
        action="extend",
        choices=BASELINES,
        default=None,
        help="baselines to fit walk-forward (default: all that are installed of random_walk, garch_t (arch) and "
        "ets (statsforecast); the last two need totowalk[baselines])",
    )
    add_model_options(p)
    p.add_argument("--seed", type=seed, default=0, help="seed of random weights (random:PRESET)")
    p.add_argument(
        "--insufficient-history",
        choices=("raise", "skip"),
        default="raise",
        help="a symbol with too few returns for --min-history: stop with an error naming it (default), or "
        "skip it (named in a warning and in evaluation.json) and score the others",
    )
    p.add_argument("--out", metavar="DIR", default="evaluation", help="output folder (default ./evaluation)")
    p.add_argument("--resume", action="store_true", help="keep the parts already scored in --out")
    add_progress_option(p)
    p.set_defaults(func=_run)
    return p


def _run(args) -> int:
    from ..backtest.forecast.folder_lock import run_folder_lock

    with run_folder_lock(args.out):  # its scored parts: one command at a time
        return _evaluate_command(args)


def _evaluate_command(args) -> int:
    from tqdm.auto import tqdm

    from ..backtest.inputs.settings import is_intraday
    from ..backtest.report.csv_text import csv_text
    from ..engine.forecast_engine import ForecastEngine
    from ..provenance import git_commit
    from ..skill.baselines import BASELINES, NEEDS, installed_baselines
    from ..skill.evaluate import engine_scores, evaluate
    from ..skill.page import evaluation_page

    args.keys = list(dict.fromkeys(args.keys or ["Close"]))
    args.horizons = list(dict.fromkeys(args.horizons or [1]))
    if args.baselines is not None:
        args.baselines = list(dict.fromkeys(args.baselines))
    if max(args.horizons) > MAX_HORIZON:
        raise UsageError(f"--horizons: at most {MAX_HORIZON} (the exact predictive mixture covers one patch)")
    if args.baselines is None:  # every baseline this install can fit; the others named, not an error
        args.baselines = list(installed_baselines())
        missing = [f"{b} (needs {NEEDS[b]})" for b in BASELINES if b not in args.baselines]
        if missing:
            print(f"note: skipping {', '.join(missing)}: pip install 'totowalk[baselines]' to compare with them")
    if "random_walk" not in args.baselines:
        raise UsageError("--baselines must include random_walk: CRPS skill is stated against it")
    out = Path(args.out)
    journal = out / "parts"
    if out.exists() and any(journal.glob("*.csv")) and not args.resume:
        raise UsageError(f"{out} already holds scored parts: add --resume to keep them, or choose another --out")
    frames = load_data(args)
    intraday = [s for s, f in frames.items() if is_intraday(f.index)]
    if intraday:  # the tables' "days" column and the verdicts count bars
        named = ", ".join(intraday[:5]) + (f" and {len(intraday) - 5:,} more" if len(intraday) > 5 else "")
        print(
            f'note: {named} {"has" if len(intraday) == 1 else "have"} bars shorter than a day: a "day" below is one bar'
        )
    label = args.model
    if args.model.startswith(KRONOS_PREFIX):  # sampled paths: the CRPS of their empirical distribution
        from ..backtest.forecast.kronos import as_kronos
        from ..skill.evaluate import kronos_scores

        model_scores = kronos_scores(as_kronos(args.model[len(KRONOS_PREFIX) :]))
    else:
        resolved = model_from_args(args)
        for note in resolved.notes:
            print(f"WARNING: {note}", file=sys.stderr)
        model_scores = engine_scores(ForecastEngine(resolved.model, device=args.device, estimator="exact"))
    total = len(frames) * len(args.keys) * len(set(args.horizons)) * (1 + len(args.baselines))
    bar = tqdm(total=total, desc="evaluate", unit="part", disable=not progress_wanted(args), leave=False)
    try:
        result = evaluate(
            frames,
            model_scores,
            model_label=label,
            keys=tuple(args.keys),
            days=args.days,
            min_history=args.min_history,
            baselines=tuple(args.baselines),
            journal=journal,
            progress=lambda _: bar.update(1),
            horizons=tuple(args.horizons),
            insufficient_history=args.insufficient_history,
        )
    except ValueError as err:
        raise UsageError(str(err)) from err
    finally:
        bar.close()
    skipped = result.settings.get("skipped", {})
    if skipped:
        listed = ", ".join(f"{s} ({n} returns)" for s, n in list(skipped.items())[:10])
        more = f" and {len(skipped) - 10:,} more" if len(skipped) > 10 else ""
        print(f"WARNING: left out {len(skipped):,} symbol(s) with too little history: {listed}{more}")
    settings = {
        "models": [label, *args.baselines],
        "data": args.data or args.dataset,
        "symbols": [s for s in frames if s not in skipped],
        **({"skipped": skipped} if skipped else {}),
        "keys": list(args.keys),
        "days": int(result.scores.groupby(["symbol", "key", "model"]).size().max()),
        "min_history": args.min_history,
        "precision": args.precision,
        "horizons": sorted(set(args.horizons)),
        "commit": git_commit(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.csv").write_bytes(csv_text(result.summary, header=True))  # pandas' bytes, faster
    (out / "scores.csv").write_bytes(csv_text(result.scores, header=True))
    body = {"settings": settings, "evaluation": json.loads(result.summary.to_json(orient="records"))}
    (out / "evaluation.json").write_text(json.dumps(body, indent=2) + "\n")
    (out / "evaluation.html").write_text(evaluation_page(result.summary, result.scores, settings))
    _print(result.summary, label)
    print(f"wrote evaluation.csv, evaluation.json, scores.csv, evaluation.html to {out}")
    return 0


def _print(summary, label: str) -> None:
    from ..skill.page import format_p, format_value, verdict

    shown = summary[list(PRINTED)].copy()
    shown["crps"] = shown["crps"].map(lambda v: format_value(v, "sig5"))
    for column in ("crps_skill", "coverage_80", "hit_rate"):
        shown[column] = shown[column].map(lambda v: format_value(v, "pct"))
    shown["pit_ks_p"] = shown["pit_ks_p"].map(format_p)
    print(shown.to_string(index=False, line_width=100))
    groups = list(summary.groupby(["symbol", "key", "horizon"], sort=False))
    for _, group in groups[:MOST_VERDICTS]:
        baselines = group[group["model"] != label]
        for _, row in group[group["model"] == label].iterrows():
            print(textwrap.fill(verdict(row, baselines), width=100))
    if len(groups) > MOST_VERDICTS:
        print(f"... {len(groups) - MOST_VERDICTS} more series: every verdict is in evaluation.html")
