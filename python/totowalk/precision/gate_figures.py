"""The quality gate's figures: how far one backtest run's forecasts and results sit from another's.

Per distinct next-step context, in units of the fp32 predictive standard deviation sigma_32
(the exact estimator's): the z-shift of the mean and of the backtest's aggregate (its trading
signal), whether the signal's sign flipped; over the run: the point-forecast MAE against realised
values and each strategy's mean return and Sharpe. ``compare_runs`` gives them for a precision
against fp32 and, with the same code, for fp32 against fp32 with another seed (the noise floor).

Runs that scored their forecasts (the exact ones) add the exact CRPS: each run's mean over the
forecasts whose next value is known, and the mean paired change ``d_i = CRPS_cand,i - CRPS_ref,i``
in units of its Newey-West standard error (``crps_z``). The contexts of one series are prefixes of
one another, so ``d`` is autocorrelated along the series: the variance is taken in time order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..scoring.significance import newey_west_standard_error

__all__ = ["STRATEGIES", "RunRecord", "compare_runs", "against_noise_floor", "crps_figures"]

STRATEGIES = (
    "simple_strategy",
    "all_signals_strategy",
    "buy_hold",
    "unprofit_shutdown",
    "entry_takeprofit",
    "highlow",
    "maxdiff",
    "maxdiffalwayson",
    "ci_guard",
)

# figures compared with the noise floor: (name in a compare_runs dict, taken as |value|)
FLOOR_FIGURES = ("z_mean_mean", "z_aggregate_mean", "flip_rate", "mae_change_pct")


@dataclass
class RunRecord:
    """One gate backtest: its result and, per distinct context in call order, what the engine gave."""

    backtest: object
    mean: np.ndarray  # the forecast mean (exact: the mixture's mean; sampled: the draws' mean)
    aggregate: np.ndarray  # the backtest's point forecast (its signal), e.g. trimmed_mean_10
    std: np.ndarray  # the predictive std (used as sigma only from an exact fp32 run)
    crps: np.ndarray | None = None  # exact CRPS against the series' next value (NaN: not known); scored runs only
    time_order: np.ndarray | None = None  # the contexts in time order, series after series (with crps)


def _mae(bt) -> float:
    f = bt.forecasts
    actual, predicted = f["actual"].to_numpy(np.float64), f["prediction"].to_numpy(np.float64)
    ok = np.isfinite(actual)
    return float(np.mean(np.abs(predicted[ok] - actual[ok])))


def _strategies(ref_bt, cand_bt) -> dict:
    rows = {}
    for name in STRATEGIES:
        cols = (f"{name}_return", f"{name}_sharpe")
        if not all(c in ref_bt.simulations for c in cols):
            continue
        row = {}
        for metric, col in zip(("return", "sharpe"), cols):
            ref = float(np.nanmean(ref_bt.simulations[col].to_numpy(np.float64)))
            cand = float(np.nanmean(cand_bt.simulations[col].to_numpy(np.float64)))
            row[f"mean_{metric}_ref"], row[f"mean_{metric}"], row[f"{metric}_change"] = ref, cand, cand - ref
        rows[name] = row
    return rows


def compare_runs(ref: RunRecord, cand: RunRecord, sigma: np.ndarray) -> dict:
    """Figures of ``cand`` against ``ref`` per context, in units of ``sigma`` (the fp32 predictive std)."""
    if not (ref.mean.shape == cand.mean.shape == ref.aggregate.shape == cand.aggregate.shape == sigma.shape):
        raise ValueError(f"runs cover different contexts: {ref.mean.shape}, {cand.mean.shape}, sigma {sigma.shape}")
    if not np.all(sigma > 0):
        raise ValueError("the fp32 predictive std must be > 0 for every context")
    z_mean = np.abs(cand.mean - ref.mean) / sigma
    z_agg = np.abs(cand.aggregate - ref.aggregate) / sigma
    flips = np.sign(cand.aggregate) != np.sign(ref.aggregate)
    mae_ref, mae = _mae(ref.backtest), _mae(cand.backtest)
    scored = crps_figures(ref, cand) if ref.crps is not None and cand.crps is not None else {}
    return {
        "contexts": int(sigma.size),
        "z_mean_mean": float(z_mean.mean()),
        "z_mean_max": float(z_mean.max()),
        "z_aggregate_mean": float(z_agg.mean()),
        "z_aggregate_max": float(z_agg.max()),
        "flips": int(flips.sum()),
        "flip_rate": float(flips.mean()),
        "mae_ref": mae_ref,
        "mae": mae,
        "mae_change_pct": 100.0 * (mae - mae_ref) / mae_ref if mae_ref > 0 else float("nan"),
        **scored,
        "strategies": _strategies(ref.backtest, cand.backtest),
    }


def crps_figures(ref: RunRecord, cand: RunRecord) -> dict:
    """Mean exact CRPS of ``ref`` (fp32) and ``cand`` (the reduced precision) over the forecasts
    whose next value is known, and the mean paired change with its Newey-West standard error and z."""
    if ref.crps.shape != cand.crps.shape or not np.array_equal(_time_order(ref), _time_order(cand)):
        raise ValueError(f"scored runs cover different contexts: {ref.crps.shape}, {cand.crps.shape}")
    order = _time_order(ref)
    ref_crps, cand_crps = ref.crps[order], cand.crps[order]
    known = np.isfinite(ref_crps) & np.isfinite(cand_crps)
    ref_crps, cand_crps = ref_crps[known], cand_crps[known]
    difference = cand_crps - ref_crps
    change, se, crps_ref = _mean(difference), newey_west_standard_error(difference), _mean(ref_crps)
    return {
        "crps_forecasts": int(known.sum()),
        "crps_fp32": crps_ref,
        "crps_reduced": _mean(cand_crps),
        "crps_change": change,
        "crps_change_pct": 100.0 * change / crps_ref if crps_ref > 0 else float("nan"),
        "crps_change_se": se,
        "crps_z": _z_score(change, se),
    }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _time_order(run: RunRecord) -> np.ndarray:
    return run.time_order if run.time_order is not None else np.arange(run.crps.size)


def _z_score(change: float, se: float) -> float:
    """change / se; an unchanged CRPS is z = 0, a constant nonzero change infinitely significant."""
    if change == 0.0:
        return 0.0
    if se > 0:
        return change / se
    return math.copysign(math.inf, change) if se == 0 else float("nan")  # NaN: under 2 scored forecasts


def against_noise_floor(deviation: dict, floor: dict, fraction: float = 0.25) -> dict:
    """Whether each |figure| of ``deviation`` is <= ``fraction`` x the same figure of the noise ``floor``.

    Strategies compare |mean-return change|; a strategy whose return the forecasts cannot move
    (floor 0, e.g. buy_hold) passes only with a change of 0.
    """
    figures = {name: abs(deviation[name]) <= fraction * abs(floor[name]) for name in FLOOR_FIGURES}
    strategies = {
        name: abs(row["return_change"]) <= fraction * abs(floor["strategies"][name]["return_change"])
        for name, row in deviation["strategies"].items()
        if name in floor["strategies"]
    }
    return {
        "fraction": fraction,
        "figures": figures,
        "strategies": strategies,
        "all_below": all(figures.values()) and all(strategies.values()),
    }
