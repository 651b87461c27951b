"""Per-simulation quantities that feed the legacy strategies (LEGACY_SEMANTICS.md §2.1, §4).

* :func:`legacy_percent_change` - ``pre_process_data``'s percent change of one price column;
* :func:`actual_close_returns` - the six returns ``r_j`` the close-signal strategies are applied to;
* :func:`calibrate_signal` - least-squares slope / intercept of ``r`` on the close forecasts.
"""

from __future__ import annotations

import warnings

import numpy as np

from .windows import percent_changes

__all__ = ["legacy_percent_change", "actual_close_returns", "calibrate_signal"]


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

    Returns ``(1.0, 0.0)`` with fewer than two points (§4).
    """
    pred = np.asarray(predictions).reshape(-1)
    actual = np.asarray(actual_returns, dtype=np.float64).reshape(-1)
    n = min(pred.size, actual.size)
    if n <= 1:
        return 1.0, 0.0
    with warnings.catch_warnings():
        # constant predictions are rank deficient; lstsq still returns the minimum-norm line
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        slope, intercept = np.polyfit(pred[:n], actual[:n], 1)
    return float(slope), float(intercept)

