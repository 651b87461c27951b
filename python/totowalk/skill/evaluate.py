"""Walk-forward forecast skill: the model and classical baselines scored on the same held-out days.

For every symbol and price key the series is the key's one-step fractional change ``r``. Each
held-out day ``t`` is forecast at each horizon ``h`` from ``r[:t - h + 1]`` only (h = 1: the days
before it; h = 5: the change on day t as seen five days earlier), by the model (its exact predictive mixture:
CRPS, log score and PIT without sampling error) and by every baseline of :mod:`.baselines`
(fitted on the same past only). The per-day scores land in one long table; the summary table has
one row per (model, symbol, key, horizon) with

* ``crps`` (mean; lower is better, in return units) and ``crps_skill = 1 - crps / crps(random walk)``,
* ``log_score`` (mean ``-log f(y)``; NaN for an empirical distribution, which has no density),
* ``mae`` of the point forecast (the predictive mean) and ``mase``: that MAE over the in-sample MAE
  of the zero-change forecast (the mean ``|r|`` before the first held-out day),
* ``coverage_50/80/95``: the fraction of days inside the central interval, ``pit_ks`` /
  ``pit_ks_p``: the Kolmogorov-Smirnov test of the PIT values against uniform,
* ``hit_rate`` / ``hit_rate_p``: how often the point forecast has the sign of the change (days
  where either is zero left out), with an exact binomial test against a coin,
* ``dm_<baseline>`` / ``dm_<baseline>_p``: the Diebold-Mariano test of the model's CRPS against each
  baseline's (HAC variance with at least h - 1 lags, Harvey-Leybourne-Newbold correction for the
  horizon; negative means the model scores better).

Every horizon scores the same held-out days (those with ``min_history + h_max - 1`` returns before
them), so horizons compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..file_names import file_safe
from ..scoring.proper import COVERAGE_LEVELS, covered, sample_crps, sample_pit, student_t_scores
from ..scoring.significance import binomial_test, diebold_mariano, ks_uniform
from .baselines import BASELINES, Predictive, forecast_baseline

__all__ = ["Evaluation", "SUMMARY_COLUMNS", "SCORE_COLUMNS", "evaluate", "held_out_targets", "summarize"]

REFERENCE = "random_walk"  # CRPS skill is stated against it
SCORE_COLUMNS = ("date", "symbol", "key", "horizon", "model", "actual", "point", "crps", "log_score", "pit")
SUMMARY_COLUMNS = (
    "model",
    "symbol",
    "key",
    "horizon",
    "days",
    "crps",
    "crps_skill",
    "log_score",
    "mae",
    "mase",
    *(f"coverage_{round(100 * c)}" for c in COVERAGE_LEVELS),
    "pit_ks",
    "pit_ks_p",
    "hit_rate",
    "hit_rate_p",
)


@dataclass
class Evaluation:
    """``summary``: one row per (model, symbol, key, horizon); ``scores``: one row per day and model."""

    summary: pd.DataFrame
    scores: pd.DataFrame
    settings: dict = field(default_factory=dict)


def held_out_targets(length: int, days: int | None, min_history: int) -> np.ndarray:
    """Indices t of the returns forecast from ``r[:t]``: the last ``days`` of those with at least
    ``min_history`` returns before them (all of them when ``days`` is None)."""
    first = max(min_history, 0 if days is None else length - days)
    return np.arange(first, length, dtype=np.int64)


def evaluate(
    frames: dict,
    model_scores,
    *,
    model_label: str,
    keys=("Close",),
    days: int | None = None,
    min_history: int = 250,
    baselines=BASELINES,
    journal: Path | None = None,
    progress=None,
    horizons=(1,),
    insufficient_history: str = "raise",
) -> Evaluation:
    """Score ``model_scores`` and ``baselines`` on every (symbol, key) of ``frames``.

    Parameters
    ----------
    frames : {symbol: price frame}
    model_scores : callable
        ``model_scores(returns, targets, horizon, frame=..., key=...) -> dict`` with ``point``,
        ``crps``, ``log_score``, ``pit`` arrays (one per target), each forecast from
        ``returns[:t - horizon + 1]`` only (``frame``: the symbol's prices, for models that read
        every column; ``returns`` are ``frame[key]``'s changes, ``returns[t]`` the change into row t + 1).
    horizons : the steps ahead to score (each at most the model's exact reach, one patch)
    journal : Path, optional
        A folder holding each finished (symbol, key, model) part; parts found there are read back
        instead of being computed again (``--resume``).
    progress : callable, optional
        ``progress(label)`` after each part.
    insufficient_history : a symbol with too few returns to hold two days out: "raise" (default)
        stops before any scoring with an error naming it; "skip" leaves it out (``settings["skipped"]``:
        ``{symbol: returns}``) and scores the others
    """
    horizons = sorted({int(h) for h in horizons})
    if not horizons or horizons[0] < 1:
        raise ValueError(f"horizons must be positive integers, got {horizons}")
    if insufficient_history not in ("raise", "skip"):
        raise ValueError(f"insufficient_history must be 'raise' or 'skip', got {insufficient_history!r}")
    needed = min_history + horizons[-1] - 1  # returns before the first held-out day
    short = {s: len(f) - 1 for s, f in frames.items() if held_out_targets(len(f) - 1, days, needed).size < 2}
    if short and (insufficient_history == "raise" or len(short) == len(frames)):
        symbol, returns = next(iter(short.items()))
        every = "every symbol is too short; " if len(short) > 1 and insufficient_history == "skip" else ""
        raise ValueError(
            f"{every}symbol {symbol!r} has {returns} returns: fewer than --min-history "
            f"{min_history} + {horizons[-1] - 1 + 2} to hold out at horizon {horizons[-1]}"
            + ("" if every else "; lower --min-history or leave such symbols out (--insufficient-history skip)")
        )
    frames = {s: f for s, f in frames.items() if s not in short}
    parts = []
    for symbol, frame in frames.items():
        for key, horizon in ((k, h) for k in keys for h in horizons):
            if key not in frame.columns:
                raise ValueError(f"symbol {symbol!r} has no column {key!r}; available: {', '.join(frame.columns)}")
            prices = frame[key].to_numpy(np.float64)
            returns = prices[1:] / prices[:-1] - 1.0
            dates = frame.index[1:]
            targets = held_out_targets(len(returns), days, needed)
            for model in (model_label, *baselines):
                part = _read_part(journal, symbol, key, model, horizon)
                if part is None:
                    if model == model_label:
                        found = model_scores(returns, targets, horizon, frame=frame, key=key)
                    else:
                        predictive = forecast_baseline(model, returns, targets, horizon=horizon)
                        found = baseline_scores(predictive, returns[targets])
                        if model == REFERENCE:  # zero change by definition: it calls no direction
                            found["point"] = np.zeros(targets.size)
                    part = _score_table(found, symbol, key, model, dates[targets], returns[targets], horizon)
                    _write_part(journal, symbol, key, model, part, horizon)
                part.attrs["scale"] = float(np.mean(np.abs(returns[: targets[0]])))
                parts.append(part)
                if progress is not None:
                    progress(f"{symbol} {key} {model} h{horizon}")
    scores = pd.concat(parts, ignore_index=True)
    scales = {(p["symbol"].iloc[0], p["key"].iloc[0]): p.attrs["scale"] for p in parts}
    settings = {"skipped": short} if short else {}
    return Evaluation(summarize(scores, scales, model_label, baselines), scores, settings)


def baseline_scores(predictive: Predictive, actual: np.ndarray) -> dict:
    """CRPS, log score, PIT and point forecast of a baseline's predictive distributions."""
    if predictive.samples is not None:
        draws = predictive.samples
        return {
            "point": draws.mean(1),
            "crps": sample_crps(draws, actual),
            "log_score": np.full(actual.shape, np.nan),  # an empirical distribution has no density
            "pit": sample_pit(draws, actual),
        }
    return {"point": predictive.loc, **student_t_scores(predictive.loc, predictive.scale, predictive.df, actual)}


def _score_table(found: dict, symbol, key, model, dates, actual, horizon: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": np.asarray(dates),
            "symbol": symbol,
            "key": key,
            "horizon": horizon,
            "model": model,
            "actual": actual,
            **{name: np.asarray(found[name], dtype=np.float64) for name in ("point", "crps", "log_score", "pit")},
        }
    )[list(SCORE_COLUMNS)]


def _part_path(journal: Path, symbol, key, model, horizon: int) -> Path:
    stem = f"{symbol}__{key}__{model}" + (f"__h{horizon}" if horizon != 1 else "")
    return Path(journal) / f"{file_safe(stem)}.csv"


def _read_part(journal, symbol, key, model, horizon: int) -> pd.DataFrame | None:
    if journal is None or not _part_path(journal, symbol, key, model, horizon).is_file():
        return None
    part = pd.read_csv(
        _part_path(journal, symbol, key, model, horizon),
        parse_dates=["date"],
        keep_default_na=False,
        na_values=["", "NaN", "nan"],
    )
    part["symbol"], part["key"], part["model"] = str(symbol), str(key), str(model)
    return part[list(SCORE_COLUMNS)]


def _write_part(journal, symbol, key, model, part: pd.DataFrame, horizon: int) -> None:
    if journal is None:
        return
    path = _part_path(journal, symbol, key, model, horizon)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".partial")
    part.to_csv(temporary, index=False, float_format="%.17g")
    temporary.replace(path)  # a part is there whole or not at all


def summarize(scores: pd.DataFrame, scales: dict, model_label: str, baselines) -> pd.DataFrame:
    """The summary table of a per-day score table (see the module docstring)."""
    rows = []
    for (symbol, key, horizon), group in scores.groupby(["symbol", "key", "horizon"], sort=False):
        by_model = {m: g.sort_values("date") for m, g in group.groupby("model", sort=False)}
        reference = by_model.get(REFERENCE)
        for model, days in by_model.items():
            row = {"model": model, "symbol": symbol, "key": key, "horizon": int(horizon), "days": len(days)}
            row.update(_accuracy(days, scales.get((symbol, key), np.nan), reference))
            row.update(_calibration(days))
            row.update(_direction(days))
            for baseline in baselines:
                other = by_model.get(baseline)
                test = None
                if model == model_label and other is not None:
                    test = diebold_mariano(days["crps"].to_numpy(), other["crps"].to_numpy(), horizon=int(horizon))
                row[f"dm_{baseline}"] = test.statistic if test else np.nan
                row[f"dm_{baseline}_p"] = test.p_value if test else np.nan
            rows.append(row)
    columns = list(SUMMARY_COLUMNS) + [f"dm_{b}{s}" for b in baselines for s in ("", "_p")]
    return pd.DataFrame(rows, columns=columns)


def _accuracy(days: pd.DataFrame, scale: float, reference: pd.DataFrame | None) -> dict:
    error = (days["point"] - days["actual"]).abs()
    crps = float(days["crps"].mean())
    skill = 1.0 - crps / float(reference["crps"].mean()) if reference is not None else np.nan
    return {
        "crps": crps,
        "crps_skill": skill,
        "log_score": float(days["log_score"].mean()) if days["log_score"].notna().all() else np.nan,
        "mae": float(error.mean()),
        "mase": float(error.mean() / scale) if scale > 0 else np.nan,
    }


def _calibration(days: pd.DataFrame) -> dict:
    pit = days["pit"].to_numpy(np.float64)
    test = ks_uniform(pit)
    out = {f"coverage_{round(100 * c)}": float(covered(pit, c).mean()) for c in COVERAGE_LEVELS}
    out.update({"pit_ks": test.statistic, "pit_ks_p": test.p_value})
    return out


def _direction(days: pd.DataFrame) -> dict:
    point, actual = days["point"].to_numpy(), days["actual"].to_numpy()
    called = (point != 0) & (actual != 0)
    hits = int((np.sign(point[called]) == np.sign(actual[called])).sum())
    trials = int(called.sum())
    return {
        "hit_rate": hits / trials if trials else np.nan,
        "hit_rate_p": binomial_test(hits, trials, 0.5) if trials else np.nan,
    }


def engine_scores(engine, *, progress=None):
    """``model_scores`` of :func:`evaluate` for a :class:`~totowalk.engine.ForecastEngine`: every
    held-out day forecast walk-forward from the returns before it, scored on its exact mixture."""

    def scores(returns: np.ndarray, targets: np.ndarray, horizon: int = 1, **_) -> dict:
        ends = targets - (horizon - 1)  # the context of target t ends h - 1 days before it
        result = engine.forecast_walk_forward(
            [returns], [ends], prediction_length=horizon, aggregate=("mean",), estimator="exact"
        )
        actual = np.full((targets.size, horizon), np.nan)  # only the last step is scored
        actual[:, -1] = returns[targets]
        found = result.scores(actual)
        return {
            "point": result["mean"][:, -1].astype(np.float64),
            **{name: found[name][:, -1] for name in ("crps", "log_score", "pit")},
        }

    return scores


def kronos_scores(engine):
    """``model_scores`` of :func:`evaluate` for a :class:`~totowalk.kronos.KronosEngine`: each
    held-out day forecast from the candles before its context end (every column: Kronos reads the
    whole bar), the key's change taken from each sampled path, scored as the empirical distribution
    of those paths (its exact CRPS; no density, so no log score). The point forecast is the paths'
    mean change. One Kronos forecast per (symbol, context end, horizon) serves every key."""
    from ..kronos.engine import FEATURES
    from ..kronos.frames import kronos_input_from_frame, path_step_returns

    cache = {}  # one symbol's forecasts at a time: its keys share them, other symbols never do

    def paths(frame, end: int, horizon: int) -> tuple:
        """Sampled rows (S, horizon, 6) after ``frame.iloc[:end]`` and the last context row, cached."""
        if cache and next(iter(cache))[0] != id(frame):
            cache.clear()
        key = (id(frame), end, horizon)
        if key not in cache:
            item = kronos_input_from_frame(frame.iloc[:end], lookback=engine.max_context, pred_len=horizon)
            cache[key] = (engine.forecast([item], pred_len=horizon, return_paths=True).paths[0], item.x[-1])
        return cache[key]

    def scores(returns: np.ndarray, targets: np.ndarray, horizon: int = 1, *, frame, key: str, **_) -> dict:
        column = FEATURES.index(key.lower())
        draws = []
        for t in targets.tolist():
            # returns[t] is the change into row t + 1; its context ends h - 1 rows before row t
            sampled, last = paths(frame, t + 1 - (horizon - 1), horizon)
            level = sampled[:, :, column]
            draws.append(path_step_returns(level[:, -1], level[:, -2] if horizon > 1 else last[column]))
        return baseline_scores(Predictive(samples=np.asarray(draws, dtype=np.float64)), returns[targets])

    return scores
