"""One symbol's bars checked and repaired on their own: the reference path.

Every error, repair and warning of load_prices is worded here: the whole-panel path (panel.py)
hands each symbol with something to report or repair to :func:`validate_one`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .columns import OPTIONAL_COLUMNS, PRICE_COLUMNS
from .dates import exchange_dates, unparseable_date
from .errors import PriceDataError, fmt_date, warn_repair

_REPAIR_HINT = "on_invalid='drop' or 'ffill' (--on-invalid on the command line)"


def validate_each(raw, keys, sym_col, wanted, adjust, on_invalid, min_rows) -> dict:
    """``{symbol: frame}``, every symbol cut out of the panel and validated on its own."""
    frames = {}
    for s in wanted:
        part = raw[keys == s].drop(columns=[sym_col]).reset_index(drop=True)
        frames[s] = validate_one(part, s, adjust, on_invalid, min_rows)
    return frames


def validate_one(raw, symbol, adjust, on_invalid, min_rows) -> pd.DataFrame:
    """One symbol's rows (input order, no symbol column) as load_prices returns them, or a
    PriceDataError about the first problem (``on_invalid="raise"``) or one a repair cannot mend."""
    frame = raw.reset_index(drop=True)
    dates = exchange_dates(frame["Date"])
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise PriceDataError(unparseable_date(frame["Date"], i), symbol=symbol, column="Date", row=i)
    cols = [c for c in PRICE_COLUMNS + OPTIONAL_COLUMNS if c in frame.columns]
    out = pd.DataFrame({c: _to_numeric(frame, c, symbol, dates) for c in cols})
    out.index = pd.DatetimeIndex(dates, name="Date")

    repairs = {}
    if on_invalid == "raise":
        check_date_order(out.index, symbol)
    else:  # a repair puts the rows in date order and keeps the first of each date
        out, repairs = _order_dates(out)

    out, repairs["volume"] = _blank_bad_volume(out, symbol)
    bad = _bad_cells(out)
    repairs["rows"] = 0
    if bad.any(axis=None):
        if on_invalid == "raise":
            _raise_first(out, bad, symbol)
        rows = bad.any(axis=1).to_numpy()
        if on_invalid == "drop":
            out = out.loc[~rows]
        else:  # ffill: a bad first row has nothing to fill from
            if rows[0]:
                _raise_first(
                    out.iloc[:1],
                    bad.iloc[:1],
                    symbol,
                    hint=" (cannot forward-fill row 0)",
                    fix="fix the data or pass on_invalid='drop' (--on-invalid drop)",
                )
            out = out.mask(bad).ffill()
            still = _bad_cells(out)
            if still.any(axis=None):
                _raise_first(
                    out,
                    still,
                    symbol,
                    hint=" (still invalid after forward-fill)",
                    fix="fix the data or pass on_invalid='drop' (--on-invalid drop)",
                )
        repairs["rows"] = int(rows.sum())
    if on_invalid != "raise":
        repairs["method"] = on_invalid
        _warn_repairs(symbol, repairs)
    elif not repairs["volume"]:
        repairs = {}

    if len(out) < min_rows:
        raise PriceDataError(f"has {len(out)} rows; at least {min_rows} are needed", symbol=symbol)

    adjustments = []
    if adjust == "adj_close":
        if "Adj Close" not in out.columns:
            raise PriceDataError("adjust='adj_close' needs an 'Adj Close' column", symbol=symbol, column="Adj Close")
        factor = out["Adj Close"] / out["Close"]
        ratio = factor / factor.shift(1)
        changed = np.flatnonzero((ratio - 1.0).abs().to_numpy() > 1e-6)
        adjustments = [(out.index[i], float(ratio.iloc[i])) for i in changed]
        for c in PRICE_COLUMNS:
            out[c] = out[c] * factor

    out.attrs["symbol"] = symbol
    out.attrs["repairs"] = repairs
    out.attrs["adjustments"] = adjustments
    return out


def _to_numeric(frame, column, symbol, dates):
    values = frame[column]
    if values.dtype == np.float64:  # numbers already: taken as they are (pandas 2 re-reads their text 1 ulp off)
        return values.copy()
    as_text = values.astype(str).str.strip()
    numeric = pd.to_numeric(as_text.replace({"": "nan"}), errors="coerce")
    text_nan = as_text.str.lower().isin(["nan", "", "na", "n/a", "null", "none", "inf", "-inf"])
    bad = numeric.isna() & ~text_nan & values.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PriceDataError(
            f"non-numeric value {values.iloc[i]!r}",
            symbol=symbol,
            column=column,
            row=i,
            date=dates.iloc[i],
        )
    return numeric.astype(float)


def _bad_cells(out: pd.DataFrame) -> pd.DataFrame:
    """True where a price cell is NaN/inf/non-positive or breaks the OHLC envelope."""
    prices = out[list(PRICE_COLUMNS)]
    arr = prices.to_numpy()
    bad = pd.DataFrame(~np.isfinite(arr) | (arr <= 0), index=out.index, columns=prices.columns)
    with np.errstate(invalid="ignore"):
        hi = out["High"] < np.maximum(out["Open"], out["Close"])
        lo = out["Low"] > np.minimum(out["Open"], out["Close"])
    bad["High"] |= hi.to_numpy()
    bad["Low"] |= lo.to_numpy()
    if "Adj Close" in out.columns:
        v = out["Adj Close"].to_numpy()
        bad["Adj Close"] = ~np.isfinite(v) | (v <= 0)
    return bad


def check_date_order(index: pd.DatetimeIndex, symbol, repair: str = _REPAIR_HINT) -> None:
    """Raise at the first row (in input order) that repeats a date or goes back in time; ``repair``
    names the way to mend it (load_prices' option, or for a frame sorting it)."""
    if index.is_monotonic_increasing and index.is_unique:  # cached by pandas: the common case costs nothing
        return
    dup = np.flatnonzero(index.duplicated())
    back = np.flatnonzero(np.diff(index.asi8) < 0) + 1
    if dup.size and (not back.size or dup[0] <= back[0]):
        i = int(dup[0])
        raise PriceDataError(
            f"duplicate date; fix the data or pass {repair}", symbol=symbol, column="Date", row=i, date=index[i]
        )
    if back.size:
        i = int(back[0])
        raise PriceDataError(
            f"dates are not in increasing order (follows {fmt_date(index[i - 1])}); sort the input by date or pass {repair}",
            symbol=symbol,
            column="Date",
            row=i,
            date=index[i],
        )


def _order_dates(out: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Keep the first row of each date (input order), then sort by date; counts the rows
    dropped as repeats and the rows that were out of order (dated before a row above them)."""
    dup = out.index.duplicated(keep="first")
    out = out.loc[~dup]
    stamps = out.index.asi8
    late = stamps[1:] < np.maximum.accumulate(stamps)[:-1]
    out = out.iloc[np.argsort(stamps, kind="stable")]
    return out, {"sorted": int(late.sum()), "duplicates": int(dup.sum())}


def _blank_bad_volume(out: pd.DataFrame, symbol) -> tuple[pd.DataFrame, int]:
    """Volume is optional and feeds no forecast: a NaN, infinite or negative one becomes NaN
    (the dollar-volume field skips it) with a warning, instead of rejecting the prices."""
    if "Volume" not in out.columns:
        return out, 0
    v = out["Volume"].to_numpy()
    bad = ~np.isfinite(v) | (v < 0)
    count = int(bad.sum())
    if count:
        out = out.copy()
        out.loc[bad, "Volume"] = np.nan
        first = int(np.flatnonzero(bad)[0])
        warn_repair(
            f"{_label(symbol)}column 'Volume': {count} missing, infinite or negative value(s) (first at row "
            f"{first} ({fmt_date(out.index[first])})) left empty; Volume only feeds the dollar-volume "
            "field, which skips them"
        )
    return out, count


def _label(symbol) -> str:
    return f"symbol {symbol!r}: " if symbol is not None else ""


def _warn_repairs(symbol, repairs: dict) -> None:
    done = []
    if repairs.get("sorted"):
        done.append(f"sorted {repairs['sorted']} row(s) into date order")
    if repairs.get("duplicates"):
        done.append(f"dropped {repairs['duplicates']} row(s) repeating an earlier date")
    if repairs.get("rows"):
        verb = "dropped" if repairs["method"] == "drop" else "forward-filled"
        done.append(f"{verb} {repairs['rows']} row(s) with invalid prices")
    if done:
        warn_repair(f"{_label(symbol)}on_invalid={repairs['method']!r}: " + "; ".join(done))


def _raise_first(out, bad, symbol, hint="", fix=None):
    rows, cols = np.nonzero(bad.to_numpy())
    # In the first bad row, a missing or non-positive price comes first: it is the cause, and an
    # envelope complaint about it ("Low 97.86 is above min(Open, Close) = -5.0") would hide it.
    values = out[list(bad.columns)].to_numpy()[rows, cols]
    envelope_only = np.isfinite(values) & (values > 0)
    order = np.lexsort((cols, envelope_only, rows))
    r, c = int(rows[order[0]]), bad.columns[cols[order[0]]]
    value = out[c].iloc[r]
    if not np.isfinite(value):
        what = f"{value} value"
    elif c == "High" and value > 0 and value < max(out["Open"].iloc[r], out["Close"].iloc[r]):
        what = f"High {value} is below max(Open, Close) = {max(out['Open'].iloc[r], out['Close'].iloc[r])}"
    elif c == "Low" and value > 0 and value > min(out["Open"].iloc[r], out["Close"].iloc[r]):
        what = f"Low {value} is above min(Open, Close) = {min(out['Open'].iloc[r], out['Close'].iloc[r])}"
    else:
        what = f"non-positive value {value}"
    raise PriceDataError(
        f"{what}{hint}; {fix or 'fix the data or pass ' + _REPAIR_HINT}",
        symbol=symbol,
        column=c,
        row=r,
        date=out.index[r],
    )
