"""From a price frame to Kronos' input, as the classic loop builds it (KRONOS_SEMANTICS.md §3),
and from Kronos' mean forecast to the backtest's step returns (§5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import PriceDataError
from .engine import FEATURES, KronosInput

__all__ = ["kronos_input_from_frame", "kronos_step_returns", "time_features"]

PRICE_FEATURES = ("open", "high", "low", "close")


def time_features(stamps: pd.DatetimeIndex) -> np.ndarray:
    """(N, 5) float32: minute, hour, weekday, day, month."""
    return np.stack([stamps.minute, stamps.hour, stamps.day_of_week, stamps.day, stamps.month], axis=1).astype(
        np.float32
    )


def _timestamps(frame: pd.DataFrame, now=None) -> pd.Series:
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    for name in ("date", "timestamp"):
        if name in by_lower:
            raw = frame[by_lower[name]]
            break
    else:
        if isinstance(frame.index, pd.DatetimeIndex):
            raw = frame.index.to_series(index=frame.index)
        else:  # no dates at all: daily stamps ending today
            end = pd.Timestamp(now) if now is not None else pd.Timestamp.now().normalize()
            return pd.Series(pd.date_range(end=end, periods=len(frame), freq="D"), index=frame.index)
    stamps = pd.to_datetime(pd.Series(np.asarray(raw), index=frame.index), errors="coerce", utc=True)
    return stamps.dt.tz_localize(None)


def kronos_input_from_frame(
    frame: pd.DataFrame, *, lookback: int = 232, pred_len: int = 7, symbol=None, now=None
) -> KronosInput:
    """The predictor's input for one simulation's frame (all its rows, the newest included).

    Rows without a valid timestamp are dropped, duplicate timestamps keep the last row, the last
    ``lookback`` rows are kept. Features: open, high, low, close (a missing one copies close),
    volume (0 when absent), amount (volume x close when absent), float32, infinities as gaps, gaps
    filled forward then backward. Future stamps continue at the history's median spacing (one day
    if that is not positive).

    Raises PriceDataError naming symbol, column and row: no close column, a column with no finite
    value, fewer than two rows.
    """
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    if "close" not in by_lower:
        raise PriceDataError(
            f"Kronos needs a close column; found {[str(c) for c in frame.columns]}", symbol=symbol, column="Close"
        )
    stamps = _timestamps(frame, now)
    keep = stamps.notna().to_numpy()
    data = frame.loc[keep]
    stamps = pd.DatetimeIndex(stamps[keep])
    last_of_each = ~stamps.duplicated(keep="last")
    data, stamps = data.loc[last_of_each], stamps[last_of_each]
    data, stamps = data.iloc[-lookback:], stamps[-lookback:]
    if len(data) < 2:
        raise PriceDataError(
            f"Kronos needs at least 2 rows with valid timestamps, got {len(data)}", symbol=symbol, row=len(data)
        )

    def column(name: str) -> pd.Series:
        values = pd.to_numeric(data[by_lower[name]], errors="coerce").astype(np.float64)
        return values.replace([np.inf, -np.inf], np.nan).ffill().bfill()

    close = column("close")
    features = {name: column(name) if name in by_lower else close for name in PRICE_FEATURES}
    features["volume"] = column("volume") if "volume" in by_lower else pd.Series(0.0, index=data.index)
    features["amount"] = column("amount") if "amount" in by_lower else features["volume"] * features["close"]
    x = np.stack([features[name].to_numpy() for name in FEATURES], axis=1).astype(np.float32)
    x = pd.DataFrame(np.where(np.isfinite(x), x, np.nan)).ffill().bfill().to_numpy(np.float32)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x).all(axis=0))[0][0])
        raise PriceDataError(
            "has no finite value in Kronos' window", symbol=symbol, column=by_lower.get(FEATURES[bad], FEATURES[bad])
        )
    spacing = pd.Series(stamps).diff().median()
    if pd.isna(spacing) or spacing <= pd.Timedelta(0):
        spacing = pd.Timedelta(days=1)
    future = pd.DatetimeIndex([stamps[-1] + spacing * (i + 1) for i in range(pred_len)])
    return KronosInput(x=x, x_stamp=time_features(stamps), y_stamp=time_features(future))


def kronos_step_returns(forecast: np.ndarray, last: float) -> np.ndarray:
    """Step returns of one key's forecast (pred_len,): r_1 against ``last`` (the window's last value,
    as float32), r_i against the previous forecast; 0 where that previous value is 0."""
    values = np.asarray(forecast, dtype=np.float64)
    previous = np.concatenate([[float(np.float32(last))], values[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(previous != 0, (values - previous) / np.where(previous != 0, previous, 1.0), 0.0)


def path_step_returns(values: np.ndarray, previous) -> np.ndarray:
    """Each sampled path's change from ``previous`` (a number, or one per path) to ``values`` (one
    per path), in float64 as :func:`kronos_step_returns` takes it (the previous value as float32);
    0 where the previous value is 0."""
    values = np.asarray(values, dtype=np.float64)
    before = np.broadcast_to(np.asarray(previous, dtype=np.float32).astype(np.float64), values.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before != 0, (values - before) / np.where(before != 0, before, 1.0), 0.0)
