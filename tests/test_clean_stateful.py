"""A strategy that depends on its own past runs as one continuous path over the daily series.

unprofit_shutdown stays flat for a day after a wrong forecast. Restarted in every six-day window,
a sign-flipped oracle (wrong every day) holds [-1, 0, -1, 0, -1, 0] and its final day is always
flat: the headline would read 0 while the rule, run continuously, loses every other day.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_backtest_api import mean5, prices
from test_backtest_clean import oracle_all_keys

from totowalk.backtest import backtest
from totowalk.backtest.inputs.windows import EVAL_DAYS

SIMULATIONS = 40


def _run(frame, forecaster, **kwargs):
    return backtest(
        {"S": frame}, num_simulations=SIMULATIONS, forecaster=forecaster, profile="clean", fee=0.0005, **kwargs
    )


def _series(result, strategy="unprofit_shutdown"):
    daily = result.daily
    return daily[(daily["symbol"] == "S") & (daily["strategy"] == strategy)]


def _hand_loop(result, fee: float) -> tuple[np.ndarray, np.ndarray]:
    """The rule written out day by day over the final-day forecasts of the forecast table."""
    f = result.forecasts
    last = f[(f["key"] == "Close") & (f["step"] == EVAL_DAYS - 1)].sort_values("simulation", ascending=False)
    cp = last["prediction"].to_numpy(np.float64)
    ca = last["actual"].to_numpy(np.float64)
    returns, positions, held = [], [], 0.0
    for t in range(len(cp)):
        stop = t > 0 and held != 0 and not (np.sign(ca[t - 1]) * np.sign(cp[t - 1]) > 0)
        position = 0.0 if stop else float(np.sign(cp[t]))
        returns.append(position * ca[t] - abs(position - held) * fee)
        positions.append(position)
        held = position
    return np.array(returns), np.array(positions)


def test_the_continuous_path_equals_a_hand_written_loop():
    frame = prices(120, 41)
    result = _run(frame, mean5)
    expected, positions = _hand_loop(result, fee=0.0005)
    series = _series(result)
    np.testing.assert_allclose(series["return"].to_numpy(), expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(series["in_market"].to_numpy(), (positions != 0).astype(float))
    assert (positions == 0).any() and (positions != 0).any()  # the stop really acted
    # the headline is that path; the six-day window columns are unchanged
    rows = result.simulations
    window_final = np.array([d[-1] for d in rows["unprofit_shutdown_daily_returns"]])
    assert not np.allclose(window_final, rows["unprofit_shutdown_finalday"])
    assert result.summary.loc["S", "unprofit_shutdown_avg_daily_return"] == pytest.approx(expected.mean(), rel=1e-12)


def test_a_sign_flipped_oracle_loses_and_the_oracle_wins():
    frame = prices(120, 42)
    oracle = oracle_all_keys(frame)
    won = _series(_run(frame, oracle))
    lost_result = _run(frame, lambda contexts: -oracle(contexts))
    lost = _series(lost_result)
    assert won["return"].mean() > 0 and (won["return"] >= -0.001).all()
    # wrong every day it trades: it trades every other day, and loses on each
    assert lost["return"].mean() < 0
    held = lost["in_market"].to_numpy() != 0
    assert 0.3 < held.mean() < 0.7 and (lost["return"].to_numpy()[held] < 0).all()
    # restarted per window, the final day would have been flat every time
    windows = np.array(lost_result.simulations["unprofit_shutdown_positions"].tolist())
    assert (windows[:, -1] == 0).all()


def test_resume_recomputes_the_path_from_stored_rows(tmp_path):
    frame = prices(100, 43)
    whole = _run(frame, mean5)
    _run(frame, mean5, out_dir=tmp_path)
    resumed = _run(frame, mean5, out_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(
        resumed.simulations["unprofit_shutdown_finalday"], whole.simulations["unprofit_shutdown_finalday"]
    )
