"""Resolve a run's cost and asset-class settings, with every default stated (never silent).

Defaults (LEGACY_SEMANTICS §1.3, §1.4):

* fee: 0.0005 per unit of position change for stocks, 0.0015 for crypto;
* trading days per year: 252 stocks, 365 crypto;
* spread (bid/ask ratio ask/bid): **1.0** in both profiles, i.e. no bid/ask cost — what the
  classic run used when quotes were synthesised. The classic run's silent ``fetch_spread``
  fallback of 1.05 is available only on request as ``spread="legacy-fallback"``; its module
  default 1.0008711461252937 as ``spread="legacy-module-default"``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

STOCK_FEE = 0.0005
CRYPTO_FEE = 0.0015
STOCK_DAYS = 252
CRYPTO_DAYS = 365
DEFAULT_SPREAD = 1.0
NAMED_SPREADS = {
    "legacy-fallback": 1.05,  # fetch_spread with no cached quote (§1.4, defect 5)
    "legacy-module-default": 1.0008711461252937,  # the module-level SPREAD constant
}


@dataclass
class RunSettings:
    """Everything about a run that changes its numbers (fingerprinted for resume).

    Attributes
    ----------
    profile : "legacy" or "clean"
    num_simulations : K
    symbols : list of symbols in run order
    crypto : {symbol: bool}
    fee : {symbol: float} fee per unit position change
    trading_days : {symbol: int} bars a year, the annualising factor (days a year for daily bars)
    spread : bid/ask ratio (>= 1)
    spread_note : how the spread was chosen, printed with every report
    aggregate : sample aggregation spec of the point forecast
    keys : price keys forecast
    forecaster : description of the forecaster (model, samples, seed)
    fill_model : how the clean profile books a limit-order round trip the bar cannot settle
        ("expected", "adverse" or "optimistic", backtest/profiles/clean/fills.py); None in the legacy
        profile (its own kernel, §6.5)
    kronos : Kronos' description (backtest/forecast/kronos.py) when it fills its column; None when not run
    bars_per_year : the annualising factor the caller gave for bars shorter than a day; None for daily bars
    skipped : {symbol: rows} of the symbols left out for too little history (``insufficient_history="skip"``);
        None when none was
    """

    profile: str
    num_simulations: int
    symbols: list
    crypto: dict
    fee: dict
    trading_days: dict
    spread: float
    spread_note: str
    aggregate: str
    keys: list
    forecaster: dict = field(default_factory=dict)
    fill_model: str | None = None
    kronos: dict | None = None
    bars_per_year: float | None = None
    skipped: dict | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        for name in (
            "fill_model",
            "kronos",
            "bars_per_year",
            "skipped",
        ):  # unset: earlier runs keep their settings (and fingerprints)
            if out[name] is None:
                del out[name]
        return out


def resolve_spread(spread) -> tuple[float, str]:
    """``(ratio, note)`` for a user's spread setting (None, a number, or a named legacy value)."""
    if spread is None:
        return DEFAULT_SPREAD, (
            f"spread {DEFAULT_SPREAD} (default: no bid/ask cost, as the classic "
            "run with synthesised quotes; set spread= / --spread to charge one)"
        )
    if isinstance(spread, str):
        name = spread.strip().lower()
        if name in NAMED_SPREADS:
            return NAMED_SPREADS[name], f"spread {NAMED_SPREADS[name]} ({name})"
        try:
            spread = float(name)
        except ValueError:
            raise ValueError(
                f"spread must be a bid/ask ratio >= 1 or one of {sorted(NAMED_SPREADS)}, got {spread!r}"
            ) from None
    value = float(spread)
    if not value >= 1.0 or value != value or value == float("inf"):
        raise ValueError(f"spread is a bid/ask ratio ask/bid and must be finite and >= 1, got {spread!r}")
    return value, f"spread {value} (given)"


def check_simulations(num_simulations) -> int:
    """``num_simulations`` as a whole number >= 1 (250.0 is 250; 5.5, "5" and True are refused)."""
    number = isinstance(num_simulations, (int, float, np.integer, np.floating)) and not isinstance(
        num_simulations, bool
    )
    if not (number and float(num_simulations).is_integer() and num_simulations >= 1):
        raise ValueError(f"num_simulations must be a whole number >= 1, got {num_simulations!r}")
    return int(num_simulations)


def resolve_crypto(is_crypto, symbols) -> dict:
    """``is_crypto`` may be a bool (all symbols) or a collection of the crypto symbols."""
    if isinstance(is_crypto, bool):
        return {s: is_crypto for s in symbols}
    chosen = set(is_crypto or ())
    unknown = chosen - set(symbols)
    if unknown:
        raise ValueError(
            f"is_crypto (--crypto) names symbol(s) {sorted(unknown)} that are not in the run {list(symbols)}"
        )
    return {s: s in chosen for s in symbols}


def resolve_fees(fee, crypto: dict) -> dict:
    """One fee per symbol: ``fee`` if given (number or {symbol: number}), else the asset default."""
    if isinstance(fee, dict):
        unknown = [s for s in fee if s not in crypto]
        if unknown:
            raise ValueError(f"fee names symbol(s) {unknown} that are not in the run {list(crypto)}")
    out = {}
    for s, is_c in crypto.items():
        value = fee.get(s) if isinstance(fee, dict) else fee
        if value is None:
            value = CRYPTO_FEE if is_c else STOCK_FEE
        value = float(value)
        if not (0.0 <= value < 1.0):
            raise ValueError(f"fee for symbol {s!r} must be in [0, 1), got {value!r}")
        out[s] = value
    return out


MAX_UNIT_COST = 0.5  # a day that reverses a position changes 2 units: its cost must stay below 100 %


def check_costs(fees: dict, spread: float) -> None:
    """Refuse costs that could take a day's loss beyond -100 % of the unit traded.

    A unit of position change costs ``fee + (spread - 1) / 2`` and a day can change two units (a
    reversal, or a round trip's entry and exit), so that cost must stay below 0.5.
    """
    for symbol, fee in fees.items():
        cost = fee + (spread - 1.0) / 2.0
        if not cost < MAX_UNIT_COST:
            raise ValueError(
                f"fee {fee!r} plus half the spread (ratio {spread!r}) costs {cost:.6g} per unit of position change "
                f"for symbol {symbol!r}: a day that trades two units would lose more than it holds; fee + "
                f"(spread - 1) / 2 must stay below {MAX_UNIT_COST}"
            )


INTRADAY = pd.Timedelta(hours=20)  # a median spacing below this is not a daily bar


def _median_spacing_below(index: pd.DatetimeIndex, limit: pd.Timedelta) -> bool:
    """Whether the median spacing of ``index`` may be under ``limit``: a cheap filter (numpy's
    median of the steps in the index's own unit, without pandas' per-call cost) that says no only
    when the median is clearly not under it; yes leaves the decision to pandas' median. An index
    with NaT says yes."""
    if index.hasnans:
        return True
    steps = np.sort(np.diff(index.asi8))  # a sort: np.median's partition is slow on equal steps
    middle = len(steps) // 2
    median = float(steps[middle]) if len(steps) % 2 else (float(steps[middle - 1]) + float(steps[middle])) / 2.0
    return median < limit / pd.Timedelta(1, unit=index.unit) + 1.0  # one unit of slack for rounding


def is_intraday(index) -> bool:
    """Whether ``index`` holds bars shorter than a day (a median spacing under 20 hours)."""
    if not (isinstance(index, pd.DatetimeIndex) and len(index) > 2 and _median_spacing_below(index, INTRADAY)):
        return False
    return pd.Series(index).diff().median() < INTRADAY


def resolve_periods(frames: dict, crypto: dict, bars_per_year=None) -> dict:
    """Bars a year per symbol, the annualising factor of every rate and Sharpe: 365 crypto, 252 other
    daily bars; for bars shorter than a day (median spacing under 20 hours) only ``bars_per_year``,
    since sqrt(252) would annualise an hourly Sharpe as a daily one."""
    if bars_per_year is not None:
        value = float(bars_per_year)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"bars_per_year must be a finite number > 0, got {bars_per_year!r}")
        return {s: value for s in frames}
    out = {}
    for symbol, frame in frames.items():
        if is_intraday(frame.index):
            spacing = pd.Series(frame.index).diff().median()
            raise ValueError(
                f"symbol {symbol!r} has a bar every {spacing} (median spacing): annualising with "
                f"{CRYPTO_DAYS if crypto[symbol] else STOCK_DAYS} days a year would treat each bar as a day; "
                "give the bars a year (--bars-per-year N on the command line, bars_per_year= in Python; "
                "e.g. 1,638 for hourly bars of 6.5-hour sessions)"
            )
        out[symbol] = CRYPTO_DAYS if crypto[symbol] else STOCK_DAYS
    return out
