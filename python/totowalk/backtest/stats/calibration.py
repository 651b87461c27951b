"""Was the run's signal calibrated? Its forecasts' exact PIT and CRPS, summarised per key and overall.

The forecasts table carries, for every forecast the engine's exact estimator made and whose outcome
lies inside the data, the PIT ``F(y)`` and CRPS of its predicted mixture (``pit``, ``crps``).
Consecutive simulations share forecasts (one context, forecast once, appears in the rows of every
window that asks for it), so each distinct (symbol, key, context_end) forecast counts once here.

Per key and for all keys together: how many forecasts (and target days) were scored, their mean
CRPS, how often the central 50/80/95 % intervals covered the outcome with an exact binomial p-value
against the nominal rate, and a Kolmogorov-Smirnov test of the PIT values against uniform (a
calibrated forecast gives uniform PITs). The tests take the forecasts as independent; the keys of
one day are not independent of each other, so the pooled line is the coarser guide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...scoring.proper import COVERAGE_LEVELS, covered
from ...scoring.significance import coverage_test, ks_uniform, log_factorials

__all__ = ["ALL_KEYS", "CALIBRATION_LEVEL", "calibration_summary", "distinct_scored", "unavailable_reason"]

ALL_KEYS = "(all)"
CALIBRATION_LEVEL = 0.01  # a PIT KS p below this calls the forecasts miscalibrated
DISTINCT = ["symbol", "key", "context_end"]  # one forecast: a symbol's key from one context


def distinct_scored(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Each distinct (symbol, key, context_end) forecast with a PIT, once (the first row that holds it)."""
    if "pit" not in forecasts:
        return forecasts.iloc[:0]
    return forecasts[forecasts["pit"].notna()].drop_duplicates(DISTINCT)


NOT_COMPUTED = "not computed (calibration=False / --no-calibration)"


def unavailable_reason(forecaster: dict | None, computed: bool = True) -> str:
    """Why a run without scores has none, from its forecaster's description (settings["forecaster"])
    and whether scoring was asked for."""
    forecaster = forecaster or {}
    if not computed:
        return NOT_COMPUTED
    if forecaster.get("kind") == "engine" and forecaster.get("estimator") != "exact":
        return "the sampled estimator gives no predictive distribution"
    if forecaster.get("kind") == "engine":
        return "no forecast was scored against a known outcome"
    if forecaster.get("kind") == "kronos":  # the legacy profile's 7-step forecasts stand in for one-step ones
        return "Kronos' forecasts are scored in the clean profile (its walk-forward one-step forecasts)"
    return "the forecaster gives no predictive distribution"


def calibration_summary(
    forecasts: pd.DataFrame, forecaster: dict | None = None, computed: bool = True, distinct: bool = False
) -> dict:
    """The calibration block of a run (summary.json's ``calibration``); ``computed`` False: the run
    was asked not to score its forecasts. ``distinct``: ``forecasts`` are already
    :func:`distinct_scored` rows (only ``key``, ``pit``, ``crps`` and ``target_date`` or
    ``context_end`` are read), as a run keeps them chunk by chunk.

    Returns
    -------
    dict
        ``available`` (bool); when False, ``reason``; when True, ``estimator`` ("exact", or for
        Kronos "sampled paths" with their count ``paths`` and ``seed``),
        ``level`` (the KS level of the verdict), ``keys`` {key: block} and ``overall`` (all keys
        pooled), each block as :func:`calibration_block`.
    """
    scored = forecasts if distinct and "pit" in forecasts else distinct_scored(forecasts)
    if scored.empty or not computed:
        return {"available": False, "reason": unavailable_reason(forecaster, computed)}
    keys = list(pd.unique(scored["key"]))  # in order of appearance, without a Python loop over the rows
    factorials = log_factorials(len(scored))  # once for every block's tests: the overall count is the largest
    forecaster = forecaster or {}
    kronos = forecaster.get("kind") == "kronos"  # its sampled paths' empirical distribution
    return {
        "available": True,
        "estimator": "sampled paths" if kronos else "exact",
        **({"paths": forecaster.get("sample_count"), "seed": forecaster.get("seed")} if kronos else {}),
        "level": CALIBRATION_LEVEL,
        "keys": {key: calibration_block(scored[scored["key"] == key], factorials) for key in keys},
        "overall": calibration_block(scored, factorials),
    }


def calibration_block(scored: pd.DataFrame, factorials: np.ndarray | None = None) -> dict:
    """Counts, mean CRPS, interval coverage with exact binomial p-values, and the PIT KS test of
    distinct scored forecasts (rows of :func:`distinct_scored`). ``factorials``: log factorials of
    at least ``len(scored)`` (:func:`...scoring.significance.log_factorials`), shared by the tests."""
    pit = scored["pit"].to_numpy(np.float64)
    ks = ks_uniform(pit, factorials)
    block = {
        "forecasts": int(len(scored)),
        "days": _days(scored),
        "mean_crps": float(scored["crps"].to_numpy(np.float64).mean()),
    }
    for level in COVERAGE_LEVELS:
        hits = covered(pit, level)
        block[f"coverage_{round(100 * level)}"] = float(hits.mean())
        block[f"coverage_{round(100 * level)}_p"] = coverage_test(hits, level, factorials)
    block.update(pit_ks=float(ks.statistic), pit_ks_p=float(ks.p_value))
    block["miscalibrated"] = bool(ks.p_value < CALIBRATION_LEVEL)
    return block


def _days(scored: pd.DataFrame) -> int:
    """Distinct target days (dates across symbols; positions where the table has no dates)."""
    if "target_date" in scored:
        return int(scored["target_date"].nunique())
    return int(scored["context_end"].nunique())
