"""The run's PNG plots: the daily walk-forward equity curves and forecast vs actual per symbol."""

from __future__ import annotations

import functools
import multiprocessing
import signal
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...devices import host_cores
from ...file_names import file_safe
from ..stats.daily import PORTFOLIO, wide
from .text import daily_of, symbol_list

__all__ = ["forecast_plot_name", "plot_forecast_rows", "plot_results"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _default_style(draw):
    """Draw in matplotlib's default style, whatever this process has set (a notebook's style, a
    library that restyles on import, a matplotlibrc): a run's PNGs are the same bytes wherever they
    are drawn (report/background.py draws some in another process)."""

    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        _pyplot()
        import matplotlib.style

        with matplotlib.style.context("default"):
            return draw(*args, **kwargs)

    return drawn


@_default_style
def plot_results(
    result, out_dir, most: int | None = None, progress: bool = False, processes: int | str = "auto"
) -> list[Path]:
    """cumulative_returns.png (per strategy, the equity curve of the daily walk-forward series:
    each simulation's final day compounded in date order, each day once; with several symbols
    the equal-weight portfolio, as the title says) and one forecast_vs_actual_<symbol>.png for each
    of the first ``most`` symbols (None: every symbol; per key, the distinct one-step forecasts and
    their outcomes by target date; report.html draws any symbol's). Values are plotted in percent.

    ``processes``: the forecast PNGs are drawn by this many processes forked from this one ("auto":
    one a core, at most 8; 1: here), while this one draws cumulative_returns.png. The same bytes
    either way: the same code draws each PNG from the same rows."""
    out = Path(out_dir)
    paths = []
    symbols = list(result.settings["symbols"])
    drawn = symbols if most is None else symbols[:most]
    targets = [(symbol, out / forecast_plot_name(symbol)) for symbol in drawn]
    forked = _ForkedDrawing.start(result, targets, processes)  # drawing while this process draws the next
    try:
        paths.append(_plot_cumulative(result, out, symbols))
    except BaseException:
        if forked is not None:
            forked.close()
        raise
    from tqdm.auto import tqdm

    with tqdm(
        total=len(drawn), disable=not progress or len(drawn) < 2, leave=False, desc="plots", unit="symbol"
    ) as bar:
        _draw_forecasts(result, targets, forked, bar)
    return paths + [path for _, path in targets]


def _plot_cumulative(result, out: Path, symbols: list) -> Path:
    plt = _pyplot()
    import matplotlib.dates

    daily = daily_of(result)
    fig, ax = plt.subplots(figsize=(9, 5))
    if len(daily):
        returns = wide(daily, PORTFOLIO).fillna(0.0)  # a strategy missing on a date holds cash
        for name in returns.columns:
            ax.plot(
                returns.index,
                100.0 * (np.cumprod(1.0 + returns[name].to_numpy()) - 1.0),
                label=name.replace("_strategy", ""),
            )
        if isinstance(returns.index, pd.DatetimeIndex):
            locator = matplotlib.dates.AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
    ax.set_xlabel("date (each simulation's final day)")
    ax.set_ylabel("cumulative return (%)")
    pooled = (
        f"equal-weight portfolio, mean over {len(symbols)} symbols ({symbol_list(symbols)})"
        if len(symbols) > 1
        else f"symbol {symbols[0]}"
    )
    ax.set_title(f"daily walk-forward equity per strategy, {pooled}, {result.profile} profile", fontsize=10)
    if ax.lines:  # symbols sharing no day have no portfolio to draw
        ax.legend(fontsize=7, ncol=2)
    path = out / "cumulative_returns.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


PLOT_PROCESSES_MAX = 8
PLOT_TIMEOUT_S = 120.0  # a PNG takes about 0.3 s: a drawing process silent this long is stuck


def _draw_forecasts(result, targets: list, forked, bar) -> None:
    """Each target's PNG: the forked processes' (``forked``, None: none), then here whatever they
    did not draw (after a warning if they failed to answer)."""
    done = forked.finish(bar) if forked is not None else set()
    for symbol, path in targets:
        if symbol not in done:
            _draw_forecast(result, symbol, path)
            bar.update(1)


def _draw_forecast(result, symbol, path: Path) -> None:
    plot_forecast_rows(_symbol_forecasts(result, symbol), symbol, result.profile, path)


def _leave_interrupts_to_the_run() -> None:
    """A drawing process ignores Ctrl-C: the run's process takes it, and stops the drawing ones."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_INHERITED: list = []  # (result, targets) of the drawing under way: what forked processes inherit


def _draw_inherited(index: int):
    result, targets = _INHERITED[0]
    symbol, path = targets[index]
    _draw_forecast(result, symbol, path)
    return symbol


class _ForkedDrawing:
    """Processes forked from this one, drawing forecast PNGs from the result they inherit (no
    start-up, no copy of the rows). Forking is Linux's (elsewhere, or with one core: None)."""

    @classmethod
    def start(cls, result, targets: list, processes):
        count = min(PLOT_PROCESSES_MAX, host_cores()) if processes == "auto" else int(processes)
        count = min(count, len(targets))
        if count < 2 or not sys.platform.startswith("linux"):
            return None
        _INHERITED[:] = [(result, targets)]
        try:
            pool = multiprocessing.get_context("fork").Pool(count, initializer=_leave_interrupts_to_the_run)
        finally:
            _INHERITED.clear()  # the children hold their copy; this process keeps no reference
        return cls(pool, len(targets))

    def __init__(self, pool, count: int):
        self.pool = pool
        self.answers = pool.imap_unordered(_draw_inherited, range(count))
        self.count = count

    def finish(self, bar) -> set:
        """The symbols drawn; waits for each at most PLOT_TIMEOUT_S, then gives up on the rest."""
        done = set()
        try:
            for _ in range(self.count):
                done.add(self.answers.next(timeout=PLOT_TIMEOUT_S))
                bar.update(1)
        except multiprocessing.TimeoutError:
            warnings.warn(
                f"the processes drawing forecast PNGs answered nothing for {PLOT_TIMEOUT_S:g} s; the "
                f"{self.count - len(done)} left are drawn in this process",
                RuntimeWarning,
                stacklevel=4,
            )
        finally:
            self.close()
        return done

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def forecast_plot_name(symbol) -> str:
    """The file name of ``symbol``'s forecast_vs_actual plot."""
    return f"forecast_vs_actual_{file_safe(symbol)}.png"


def _symbol_forecasts(result, symbol) -> pd.DataFrame:
    """One symbol's forecast rows: from its chunk's part alone where the result keeps parts."""
    tables = getattr(result, "tables", None)
    if tables is not None:
        return tables.symbol_rows("forecasts", symbol)
    f = result.forecasts
    return f[f["symbol"] == symbol]


@_default_style
def plot_forecast_rows(mine: pd.DataFrame, symbol, profile: str, path: Path) -> None:
    """``symbol``'s forecast_vs_actual plot, from its rows of the forecasts table, as a PNG at
    ``path`` (whatever its suffix)."""
    plt = _pyplot()
    import matplotlib.dates

    keys = list(dict.fromkeys(mine["key"]))
    dates = mine["target_date"].dropna()
    dated = bool(len(dates)) and isinstance(dates.iloc[0], pd.Timestamp)
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 2.4 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        part = mine[mine["key"] == key].drop_duplicates("context_end").sort_values("context_end")
        part = part[part["target_date"].notna()]  # a forecast past the data has no outcome to show
        target = pd.to_datetime(part["target_date"]) if dated else part["context_end"] + 1
        ax.plot(target, 100.0 * part["prediction"].astype(np.float64), marker="o", ms=3, label="forecast")
        ax.plot(target, 100.0 * part["actual"], marker="x", ms=3, label="actual")
        ax.set_ylabel(f"{key}: change\nfrom previous day (%)", fontsize=8)
        ax.legend(fontsize=7)
    if dated:  # short tick labels that do not run into each other
        locator = matplotlib.dates.AutoDateLocator()
        axes[-1, 0].xaxis.set_major_locator(locator)
        axes[-1, 0].xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
    axes[-1, 0].set_xlabel("target date" if dated else "target row")
    fig.suptitle(f"one-step forecast vs actual, {symbol} ({profile} profile)")
    fig.savefig(path, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
