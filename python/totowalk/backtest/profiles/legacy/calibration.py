"""Per-simulation quantities that feed the legacy strategies (LEGACY_SEMANTICS.md §2.1, §4).

* :func:`legacy_percent_change` - ``pre_process_data``'s percent change of one price column;
* :func:`actual_close_returns` - the six returns ``r_j`` the close-signal strategies are applied to;
* :func:`calibrate_signal` - least-squares slope / intercept of ``r`` on the close forecasts;
  :func:`calibrate_signals` - the same for every simulation at once, bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np

from ...inputs.windows import percent_changes

__all__ = ["legacy_percent_change", "actual_close_returns", "calibrate_signal", "calibrate_signals"]


# pre_process_data's rule is the pipeline's (one implementation, golden-tested under this name).
legacy_percent_change = percent_changes


def actual_close_returns(closes) -> np.ndarray:
    """``r_j = C_{N-6+j} / C_{N-7+j} - 1`` for j = 0..5 from the last 7 closes (§4).

    Parameters
    ----------
    closes : array_like, shape (N,) or (S, N)
        Close prices of a simulation window (or of S windows of equal length), N >= 7.

    Returns
    -------
    numpy.ndarray, shape (6,) or (S, 6), float64
    """
    c = np.asarray(closes, dtype=np.float64)
    if c.shape[-1] < 7:
        raise ValueError(f"actual_close_returns: need at least 7 closes, got {c.shape[-1]}")
    last7 = c[..., -7:]
    return last7[..., 1:] / last7[..., :-1] - 1.0  # ratio minus one, as pandas pct_change


def calibrate_signal(predictions, actual_returns) -> tuple[float, float]:
    """Least-squares line ``r ~ slope * prediction + intercept`` over the first ``min`` entries.

    Returns ``(1.0, 0.0)`` with fewer than two points (§4). Where np.polyfit fails - every forecast
    exactly 0, a zero column it cannot scale - the minimum-norm least-squares line instead:
    slope 0, intercept the mean return (the classic code stopped the run there).
    """
    pred = np.asarray(predictions).reshape(-1)
    actual = np.asarray(actual_returns, dtype=np.float64).reshape(-1)
    n = min(pred.size, actual.size)
    if n <= 1:
        return 1.0, 0.0
    if not np.any(pred[:n] != 0):
        return 0.0, float(np.mean(actual[:n]))
    with warnings.catch_warnings():
        # constant predictions are rank deficient; lstsq still returns the minimum-norm line
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        slope, intercept = np.polyfit(pred[:n], actual[:n], 1)
    return float(slope), float(intercept)


def calibrate_signals(predictions, actual_returns) -> tuple[np.ndarray, np.ndarray]:
    """:func:`calibrate_signal` for every row of ``(S, n)`` arrays: ``(slopes, intercepts)``, (S,) each.

    The same numbers bit for bit: np.polyfit's own steps (its dtypes, column scaling and rcond),
    with numpy's least-squares kernel (LAPACK gelsd, one problem at a time) applied to the whole
    stack instead of one polyfit call per simulation, whose Python overhead dominated.
    Falls back to the per-row loop where that kernel is not reachable or refuses the input (a
    non-finite value: the loop then does what np.polyfit does).
    """
    pred = np.asarray(predictions)
    actual = np.asarray(actual_returns, dtype=np.float64)
    rows = pred.shape[0]
    n = min(pred.shape[1], actual.shape[1])
    if n <= 1:
        return np.ones(rows), np.zeros(rows)
    pred, actual = pred[:, :n], actual[:, :n]
    zero = ~np.any(pred != 0, axis=1)  # np.polyfit fails on these: see calibrate_signal
    slopes, intercepts = np.zeros(rows), np.mean(actual, axis=1)
    fit = ~zero
    try:
        slopes[fit], intercepts[fit] = _polyfit_lines(pred[fit], actual[fit])
    except (AttributeError, TypeError, FloatingPointError, np.linalg.LinAlgError):
        fits = np.array([calibrate_signal(pred[i], actual[i]) for i in range(rows)]).reshape(-1, 2)
        return fits[:, 0], fits[:, 1]
    return slopes, intercepts


def _polyfit_lines(pred: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.polyfit(pred[i], actual[i], 1) for every row i, step for step."""
    from numpy.linalg import _umath_linalg  # the gufunc behind np.linalg.lstsq (it loops over stacks)

    x = pred + 0.0  # polyfit's dtype rules: float32 forecasts stay float32 here...
    y = actual + 0.0
    n = x.shape[1]
    rcond = n * np.finfo(x.dtype).eps  # ...and set rcond
    lhs = np.empty(x.shape + (2,), dtype=np.promote_types(x.dtype, int))  # vander(x, 2): [x, 1]
    lhs[..., 0] = x
    lhs[..., 1] = 1
    squares = lhs * lhs
    total = squares[:, 0, :].copy()  # column norms, summed over the points in order
    for i in range(1, n):
        total = total + squares[:, i, :]
    scale = np.sqrt(total)
    lhs /= scale[:, None, :]  # no zero column: all-zero forecasts are answered before this
    with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
        solution, _, _, _ = _umath_linalg.lstsq(lhs, y[:, :, None], rcond, signature="ddd->ddid")
    lines = solution[:, :, 0] / scale
    return lines[:, 0], lines[:, 1]
