"""Simulation windows, percent-change preprocessing and walk-forward target alignment.

A backtest of ``K`` simulations evaluates ``K`` windows of one price series; each window asks for
7 one-step forecasts per price key (LEGACY_SEMANTICS §1.2, §2). Everything here is positional:
rows are 0-based positions in the symbol's frame.

Both profiles share one rule: forecast ``j`` of a window targets the percent change into row
``t_j`` and its context is ``pct_1 … pct_{t_j − 1}`` (all returns observed before row ``t_j``).
They differ only in where the window ends and which targets are reported:

* ``legacy``: window ``k`` is rows ``[0, T − k − 1)`` (the newest row is dropped even for k = 0);
  targets ``t_j = N − 7 + j``, all inside the window, the 7th one already observed.
* ``clean``: window ``k`` is rows ``[0, T − k)``; targets ``t_j = N − 6 + j``; the 7th target is the
  row after the window (a real next-step forecast, its actual hidden from the window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...data import PriceDataError

PRICE_KEYS = ("Close", "Low", "High", "Open")  # the classic loop's key order (§2)
STEPS = 7  # walk-forward forecasts per key and window
EVAL_DAYS = 6  # forecasts whose outcome is evaluated by the strategies
MIN_WINDOW_ROWS = 9  # the classic loop fails below this (LEGACY_SEMANTICS §12)
PROFILES = ("legacy", "clean")

# (rows dropped from the end for simulation 0, target of step 0 relative to the window length N)
_LAYOUT = {"legacy": (1, -7), "clean": (0, -6)}


def percent_changes(prices: np.ndarray) -> np.ndarray:
    """LEGACY_SEMANTICS §2.1: ``pct_0 = 1``, ``pct_i = (P_i − P_{i−1}) / P_{i−1}``, 0 where undefined.

    Parameters
    ----------
    prices : (..., T) float array: one series, or several along the last axis

    Returns
    -------
    (..., T) float64 array
    """
    p = np.asarray(prices, dtype=np.float64)
    out = np.empty_like(p)
    if p.shape[-1] == 0:
        return out
    out[..., 0] = 1.0
    prev = p[..., :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(prev != 0.0, (p[..., 1:] - prev) / prev, 0.0)
    change[~np.isfinite(change)] = 0.0
    out[..., 1:] = change
    return out


def close_returns(close: np.ndarray) -> np.ndarray:
    """Ratio-minus-one returns ``C_i / C_{i−1} − 1`` (pandas ``pct_change``), ``NaN`` at row 0.

    This is the form the classic loop uses for the actual close returns of the signal
    strategies (§4); it can differ from :func:`percent_changes` in the last ulp.
    """
    c = np.asarray(close, dtype=np.float64)
    out = np.full_like(c, np.nan)
    out[1:] = c[1:] / c[:-1] - 1.0
    return out


@dataclass(frozen=True)
class WindowLayout:
    """Positions of the simulation windows of one symbol.

    Attributes
    ----------
    profile : "legacy" or "clean"
    num_rows : T, rows of the symbol's frame
    window_rows : (K,) int, N_k = rows of window k (simulation 0 = the most recent window)
    target_rows : (K, 7) int, row whose percent change forecast j of window k targets
    """

    profile: str
    num_rows: int
    window_rows: np.ndarray
    target_rows: np.ndarray

    @property
    def num_simulations(self) -> int:
        return int(self.window_rows.shape[0])

    @property
    def context_lengths(self) -> np.ndarray:
        """(K, 7) int: forecast j of window k uses ``pct_1 … pct_ℓ``, ℓ = target row − 1."""
        return self.target_rows - 1

    @property
    def context_ends(self) -> np.ndarray:
        """(K, 7) int: the last price row a context depends on (equals its length)."""
        return self.target_rows - 1

    @property
    def observed(self) -> np.ndarray:
        """(K, 7) bool: the target row lies inside the window (its actual is known to it)."""
        return self.target_rows < self.window_rows[:, None]


def rows_needed(num_simulations: int, profile: str) -> int:
    """The fewest rows a symbol needs for ``num_simulations`` simulations of ``profile``."""
    drop, _ = _LAYOUT[profile]
    return int(num_simulations) - 1 + drop + MIN_WINDOW_ROWS


def window_layout(num_rows: int, num_simulations: int, profile: str, symbol=None) -> WindowLayout:
    """Windows of ``num_simulations`` simulations over a series of ``num_rows`` rows.

    Raises
    ------
    PriceDataError
        If the oldest window would have fewer than 9 rows (the classic loop's precondition).
    """
    if profile not in _LAYOUT:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if int(num_simulations) < 1:
        raise ValueError(f"num_simulations must be >= 1, got {num_simulations!r}")
    drop, first_target = _LAYOUT[profile]
    k = np.arange(int(num_simulations))
    window_rows = num_rows - drop - k
    if window_rows[-1] < MIN_WINDOW_ROWS:
        raise PriceDataError(
            f"has {num_rows} rows; {num_simulations} simulation(s) of the {profile} profile need at "
            f"least {rows_needed(num_simulations, profile)} (every window needs >= {MIN_WINDOW_ROWS} rows; "
            f"simulation {int(num_simulations) - 1} would end at row {int(window_rows[-1]) - 1}); "
            "ask for fewer simulations, give more history, or leave such symbols out "
            "(--insufficient-history skip on the command line, insufficient_history='skip' in Python)",
            symbol=symbol,
        )
    target_rows = window_rows[:, None] + first_target + np.arange(STEPS)[None, :]
    return WindowLayout(profile, int(num_rows), window_rows, target_rows)


INSUFFICIENT_HISTORY = ("raise", "skip")  # backtest(insufficient_history=): a symbol too short for the run


def leave_out_short(frames: dict, num_simulations: int, profile: str) -> tuple[dict, dict | None]:
    """``(frames, skipped)``: the frames with enough rows for ``num_simulations`` simulations, and
    ``{symbol: rows}`` of those left out (None when none was). When every symbol is too short, an
    error names them: a run of nothing is no run."""
    needed = rows_needed(num_simulations, profile)
    skipped = {s: len(f) for s, f in frames.items() if len(f) < needed}
    if len(skipped) == len(frames):
        raise PriceDataError(
            f"every symbol has too little history for {num_simulations} simulation(s) of the {profile} profile "
            f"(at least {needed} rows): {_listed(skipped)}; ask for fewer simulations or give more history",
            symbol=next(iter(skipped)),
        )
    if not skipped:
        return frames, None
    return {s: f for s, f in frames.items() if s not in skipped}, skipped


def skipped_warning(skipped: dict, num_simulations: int, profile: str, shown: int = 10) -> str:
    """One line naming the symbols left out for too little history (the first ``shown`` of them)."""
    count = f"{len(skipped):,} symbol{'s' if len(skipped) != 1 else ''}"
    return (
        f"left out {count} with too little history for {num_simulations} simulation(s) of the {profile} "
        f"profile (at least {rows_needed(num_simulations, profile)} rows): {_listed(skipped, shown)}"
    )


def _listed(skipped: dict, shown: int = 10) -> str:
    """``A (12 rows), B (3 rows)``: the first ``shown`` symbols, then how many more."""
    listed = ", ".join(f"{s} ({rows} rows)" for s, rows in list(skipped.items())[:shown])
    return listed + (f" and {len(skipped) - shown:,} more" if len(skipped) > shown else "")
