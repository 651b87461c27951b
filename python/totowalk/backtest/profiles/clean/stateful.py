"""Strategies whose decision depends on their own past trades, run as one continuous path.

A clean simulation is a six-day window, and the headline is each window's final day (the daily
walk-forward series). A rule with state, such as unprofit_shutdown (flat for a day after a wrong
forecast), restarted in every window would reach its final day with a state no continuous trader
could have: under a sign-flipped oracle it is wrong every day it trades, so each window holds
[-1, 0, -1, 0, -1, 0] and the final day is always flat, and the headline would show 0 where the
rule really loses. Here the rule runs once over each symbol's final days in date order (each
day's forecast and outcome are those its simulation traded) and those days replace the final-day
fields; the window columns keep the six-day figures.

Simulation k's final day is the row k before the newest, so a symbol's K simulations are K
consecutive days: the path's day t - 1 is the final day of the next older simulation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...forecast.arrays import WalkForwardArrays
from ...inputs.windows import EVAL_DAYS
from .strategies import shutdown_positions, signal_direction

__all__ = ["STATEFUL", "carry_state"]

STATEFUL = ("unprofit_shutdown",)


def carry_state(simulations: pd.DataFrame, arrays: WalkForwardArrays, settings) -> pd.DataFrame:
    """``simulations`` with unprofit_shutdown's ``_finalday``, ``_finalday_turnover`` and
    ``_finalday_position`` from one continuous path per symbol (rows in ``arrays``' run order)."""
    if not (
        np.array_equal(simulations["symbol"].to_numpy(dtype=object), arrays.symbol.astype(object))
        and np.array_equal(simulations["simulation"].to_numpy(), arrays.simulation)
    ):
        raise ValueError("carry_state: rows and walk-forward arrays are not in the same run order")
    codes, symbols = pd.factorize(arrays.symbol)
    counts = np.bincount(codes)
    if len(set(counts.tolist())) != 1:
        raise ValueError("carry_state: every symbol needs the same number of simulations")
    # (symbols, days): each symbol's rows from its oldest final day to its newest
    days = np.lexsort((-arrays.simulation, codes)).reshape(len(symbols), counts[0])
    cp = arrays.predictions["Close"][:, EVAL_DAYS - 1].astype(np.float64)[days]
    ca = arrays.actuals["Close"][:, EVAL_DAYS - 1].astype(np.float64)[days]
    crypto = np.array([bool(settings.crypto[s]) for s in symbols])[:, None]
    unit_cost = np.array([settings.fee[s] + (settings.spread - 1.0) / 2.0 for s in symbols])[:, None]
    positions = shutdown_positions(signal_direction(cp, crypto), cp, ca)
    changes = np.abs(np.diff(positions, axis=1, prepend=0.0))
    returns = positions * ca - changes * unit_cost
    out = simulations.copy(deep=False)
    for field, values in (("finalday", returns), ("finalday_turnover", changes), ("finalday_position", positions)):
        column = np.empty(len(out))
        column[days.ravel()] = values.ravel()
        out[f"unprofit_shutdown_{field}"] = column
    return out
