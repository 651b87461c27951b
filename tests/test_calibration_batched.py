"""calibrate_signals (all simulations at once) equals np.polyfit row by row, bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from totowalk.backtest.profiles.legacy import calibration as strategies_inputs
from totowalk.backtest.profiles.legacy.calibration import calibrate_signal, calibrate_signals


def _rows(seed: int, rows: int, n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pred = rng.normal(0.0, 0.01, (rows, n)).astype(dtype)
    actual = 0.4 * pred.astype(np.float64) + rng.normal(0.0, 0.01, (rows, n))
    pred[1, 1:] = 0.0  # one non-zero forecast
    pred[2] = pred[2, 0]  # constant forecasts: two equal columns after scaling (rank 1)
    pred[3, ::2] = 0.0
    actual[4] = 0.0
    pred[5] *= 1e-30  # tiny, and huge: scaling is what keeps these solvable
    pred[6] *= 1e20 if dtype == np.float64 else 1e30
    return pred, actual


@pytest.mark.parametrize("n", [2, 6, 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_calibration_equals_polyfit_per_row_bitwise(n, dtype):
    pred, actual = _rows(n, 40, n, dtype)
    slopes, intercepts = calibrate_signals(pred, actual)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        want = np.array([np.polyfit(pred[i], actual[i], 1) for i in range(len(pred))])
    np.testing.assert_array_equal(slopes.view(np.uint64), want[:, 0].view(np.uint64))
    np.testing.assert_array_equal(intercepts.view(np.uint64), want[:, 1].view(np.uint64))


def test_batched_calibration_uses_the_first_min_columns_and_the_one_point_rule():
    pred, actual = _rows(0, 8, 7, np.float32)
    slopes, intercepts = calibrate_signals(pred, actual[:, :6])
    want = np.array([calibrate_signal(pred[i], actual[i, :6]) for i in range(8)])
    np.testing.assert_array_equal(np.c_[slopes, intercepts], want)
    ones, zeros = calibrate_signals(pred[:, :1], actual[:, :1])
    assert (ones == 1.0).all() and (zeros == 0.0).all()


def test_all_zero_forecasts_get_the_minimum_norm_line_and_odd_rows_match_the_loop():
    pred, actual = _rows(1, 8, 6, np.float64)
    pred[5] = 0.0  # np.polyfit cannot scale a zero column; the minimum-norm line is slope 0, mean
    actual[3, 2] = np.nan  # a NaN return: np.polyfit gives a NaN line, and so does the batch
    slopes, intercepts = calibrate_signals(pred, actual)
    want = np.array([calibrate_signal(pred[i], actual[i]) for i in range(len(pred))])
    np.testing.assert_array_equal(np.c_[slopes, intercepts], want)
    assert slopes[5] == 0.0 and intercepts[5] == np.mean(actual[5])
    assert np.isnan(slopes[3])
    line = np.linalg.lstsq(np.c_[pred[5], np.ones(6)], actual[5], rcond=None)[0]
    np.testing.assert_allclose([slopes[5], intercepts[5]], line, rtol=1e-12, atol=1e-18)


def test_without_the_batched_kernel_the_loop_gives_the_same_numbers(monkeypatch):
    clean_pred, clean_actual = _rows(2, 8, 6, np.float64)
    fast = calibrate_signals(clean_pred, clean_actual)
    monkeypatch.setattr(strategies_inputs, "_polyfit_lines", lambda *a: (_ for _ in ()).throw(AttributeError()))
    slow = calibrate_signals(clean_pred, clean_actual)
    np.testing.assert_array_equal(np.c_[fast[0], fast[1]], np.c_[slow[0], slow[1]])
