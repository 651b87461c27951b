"""Kronos as the forecaster of every price key (``tw.backtest(prices, kronos=...)`` with no Toto
engine; CLI ``--model kronos:DIR``), KRONOS_SEMANTICS §5.

* legacy: as the classic loop when Kronos is a symbol's selected model: one 7-step forecast from
  each simulation's whole frame, whose step returns r_1..r_7 stand in for the seven walk-forward
  one-step predictions of each key. They forecast the 7 rows *after* the frame but are compared
  with the frame's last 7 rows: the classic defect, reproduced and warned about.
* clean: walk-forward one-step forecasts like Toto's: for every step, Kronos sees the rows up to
  that step's context end only and forecasts the next row; each distinct context end is forecast
  once.
"""

from __future__ import annotations

import numpy as np

from ...kronos.engine import FEATURES
from ...kronos.frames import kronos_input_from_frame, kronos_step_returns
from .kronos import KRONOS_STEPS

__all__ = ["KRONOS_MISALIGNED_WARNING", "kronos_predictions"]

KRONOS_MISALIGNED_WARNING = (
    "legacy profile with Kronos as the forecaster: each key's seven predictions are the step returns of one "
    "7-step Kronos forecast of the rows after the frame, compared with the frame's last 7 rows (the classic "
    "loop's misalignment, KRONOS_SEMANTICS §5); use --profile clean for walk-forward one-step Kronos forecasts"
)


def _column(key: str) -> int:
    return FEATURES.index(key.lower())


def kronos_predictions(series: list, arrays, keys, engine, profile: str, bar=None) -> dict:
    """``{key: (R, 7) float32}`` predictions of every row of ``arrays`` (run order)."""
    out = {key: np.zeros((arrays.num_rows, KRONOS_STEPS), np.float32) for key in keys}
    row = 0
    for s in series:
        k_count = s.layout.num_simulations
        if profile == "legacy":
            for k, n in enumerate(s.layout.window_rows):
                item = kronos_input_from_frame(s.frame.iloc[: int(n)], lookback=engine.max_context,
                                               pred_len=KRONOS_STEPS, symbol=s.symbol)
                mean = engine.forecast([item], pred_len=KRONOS_STEPS).mean[0]
                for key in keys:
                    c = _column(key)
                    out[key][row + k] = kronos_step_returns(mean[:, c], item.x[-1, c])
                if bar is not None:
                    bar.update(1)
        else:
            ends = s.layout.context_ends  # (K, 7): the last row each step's context may use
            for end in np.unique(ends):
                item = kronos_input_from_frame(s.frame.iloc[: int(end) + 1], lookback=engine.max_context,
                                               pred_len=1, symbol=s.symbol)
                mean = engine.forecast([item], pred_len=1).mean[0]
                where = ends == end
                for key in keys:
                    c = _column(key)
                    out[key][row:row + k_count][where] = kronos_step_returns(mean[:, c], item.x[-1, c])[0]
                if bar is not None:
                    bar.update(int(where.sum()))
        row += k_count
    return out
