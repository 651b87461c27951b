"""report.html: one self-contained, offline page of a run folder, built from its saved files only
(summary.json, daily_returns.csv, simulations and forecasts tables), so ``totowalk report RUN_DIR``
rebuilds exactly what the run wrote. This module reads the folder and lays out the page; each part is
drawn by its own module:

- page_settings.py: the run's settings (and then its warnings, here);
- page_charts.py: interactive plotly charts (JavaScript inlined, no CDN) of the daily series' equity
  curves (linear / log) and drawdowns, forecast vs realised with the predictive band, and the
  distribution of per-simulation returns (a box of more than RAW_BOX_POINTS drawn from its quartiles);
- page_tables.py: the statistics table with the Sharpe intervals and the per-symbol breakdown, every
  statistic cell carrying its exact value in ``data-value`` (the number summary.json holds);
- page_calibration.py: the calibration of the forecasts (exact PIT and CRPS, when the forecaster gives
  its predictive distribution).

The per-symbol part has two layouts: up to MAX_FORECAST_CHARTS symbols, a statistics table and a
pre-drawn forecast-vs-realised chart per symbol, all visible at once; more (a universe), one sortable,
filterable table with one figure that draws the symbol clicked (page_universe.py, from the data
page_universe_data.py embeds).

Reading the tables: only the columns the page draws, a chunk at a time, keeping only the rows it
draws (the portfolio's daily rows; the Close forecasts, each distinct one once), so a universe's
tables are never whole in memory.
"""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path

import pandas as pd

from ...errors import UsageError
from ...memory import release_free_memory
from ..stats.daily import BOUNDS, PORTFOLIO
from ..stats.table import MIN_INTERVAL_DAYS
from .page_calibration import _calibration_section
from .page_charts import (
    FORECAST_KEY,
    RAW_BOX_POINTS,
    _distinct_forecasts,
    _distribution_figure,
    _equity_and_drawdown,
    _figure_html,
    _forecast_figure,
    _portfolio_wide,
)
from .page_settings import _settings_block
from .page_tables import _BREAKDOWN, _COLUMNS, _stats_table
from .page_universe import _UNIVERSE_STYLE, _universe_section
from .text import best_strategy_verdict

__all__ = ["INCOMPLETE", "REPORT", "write_html_report", "render_report"]

REPORT = "report.html"
INCOMPLETE = "OUTPUTS_INCOMPLETE"  # kept in a folder whose outputs were interrupted while being written
MAX_FORECAST_CHARTS = 12  # up to this many symbols, a table and a pre-drawn forecast chart each; more: a universe

# the columns the page reads from each table
_DAILY_COLUMNS = ("date", "symbol", "strategy", "return", *(f"return_{b}" for b in BOUNDS))
_FORECAST_COLUMNS = ("symbol", "key", "context_end", "target_date", "prediction", "band", "actual")
_CHUNK_ROWS = 262_144  # rows of a table read at a time: a universe's tables are filtered as they are read


def _read_table(folder: Path, stem: str, columns, reduce=None, symbol=None) -> pd.DataFrame | None:
    """``folder/stem.csv`` (or .parquet): of ``columns`` those it has, a chunk at a time, each chunk and then
    their union passed through ``reduce`` (frame -> the rows the page draws), so a universe's table is never
    whole in memory; None when there is neither file (or no rows in a Parquet one). Symbols are read as text
    ("007" stays "007"). ``symbol``: only that symbol's rows are kept (a Parquet chunk's before it becomes a
    frame: the other rows' text is never made)."""
    reduce = reduce or (lambda frame: frame)
    csv, parquet = folder / f"{stem}.csv", folder / f"{stem}.parquet"
    if csv.is_file():
        chunks = pd.read_csv(csv, usecols=lambda c: c in columns, dtype={"symbol": str}, chunksize=_CHUNK_ROWS)
        if symbol is not None:
            chunks = (chunk[chunk["symbol"] == symbol] for chunk in chunks)
    elif parquet.is_file():
        chunks = _parquet_chunks(parquet, columns, symbol)
    else:
        return None
    parts = [reduce(chunk) for chunk in chunks]
    return reduce(pd.concat(parts, ignore_index=True)) if parts else None


def _parquet_chunks(path: Path, columns, symbol=None):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # not pre-buffered: a pre-buffered file holds each row group's column chunks (a million rows) for
    # as long as the file is open, 180 MB of a 5,000-symbol daily table's
    file = pq.ParquetFile(path, pre_buffer=False)
    present = [c for c in file.schema_arrow.names if c in columns]
    try:
        for batch in file.iter_batches(batch_size=_CHUNK_ROWS, columns=present):
            if symbol is not None:
                batch = batch.filter(pc.equal(batch.column("symbol"), symbol))
            frame = batch.to_pandas()
            del batch
            if "symbol" in frame:
                frame["symbol"] = frame["symbol"].astype(str)
            yield frame
            release_free_memory()  # each batch's buffers, else the pool keeps the largest working set read
    finally:
        file.close()
        del file
        release_free_memory()  # and the reader's own


def write_html_report(folder, complete: bool = True) -> Path:
    """Write ``folder/report.html`` from the run's saved files; returns its path. ``complete``: refuse a
    folder whose outputs were interrupted while being written (``write_outputs`` itself passes False)."""
    folder = Path(folder)
    if complete and (folder / INCOMPLETE).is_file():
        raise UsageError(
            f"{folder} holds a run interrupted while its outputs were written: re-run the backtest with the same "
            "options and --resume to finish it, then its report is written too"
        )
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path} not found: not a finished totowalk run folder")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(
            f"{summary_path} is damaged ({type(err).__name__}: {err}); re-run the backtest into a new folder"
        ) from None
    for stem, lost in (("simulations", "the distribution of returns"), ("forecasts", "the forecast charts")):
        if not any((folder / f"{stem}.{fmt}").is_file() for fmt in ("csv", "parquet")):
            warnings.warn(f"{folder} has no {stem}.csv or {stem}.parquet: the report goes without {lost}", stacklevel=2)
    daily_path = folder / "daily_returns.csv"
    if not daily_path.is_file() and not daily_path.with_suffix(".parquet").is_file():
        raise FileNotFoundError(f"{daily_path} not found (runs written before the daily series have none; re-run)")
    daily = _read_table(folder, "daily_returns", _DAILY_COLUMNS, symbol=PORTFOLIO)
    returns = {f"{strategy}_return" for strategy in summary.get("statistics", {}).get(PORTFOLIO, {})}
    forecasts = _read_table(folder, "forecasts", _FORECAST_COLUMNS, reduce=_distinct_forecasts)
    page = render_report(summary, daily, _read_table(folder, "simulations", returns), forecasts)
    path = folder / REPORT
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


# -- page -------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f5f5f5; } table.settings th, table.settings td { text-align: left; }
.warning { background: #fff3cd; border: 1px solid #e0b100; padding: 6px 10px; margin: 4px 0; }
.note { color: #555; font-size: 13px; max-width: 1100px; }
table.short td[data-stat="cagr"], table.short td[data-stat="annual_volatility"], table.short td[data-stat="sharpe"],
table.short td[data-stat="sortino"], table.short td[data-stat="calmar"] { color: #aaa; }
.chart-box { min-height: 420px; }
"""


def _strategies_of(stats: dict, symbols: list) -> list:
    """The strategies of the symbols' statistics, in the order they first appear."""
    return list(dict.fromkeys(strategy for symbol in symbols for strategy in stats[symbol]))


def render_report(
    summary: dict, daily: pd.DataFrame, simulations: pd.DataFrame | None, forecasts: pd.DataFrame | None
) -> str:
    """The page's HTML text."""
    from plotly.offline import get_plotlyjs

    stats = summary.get("statistics", {})
    how = summary.get("statistics_settings", {})
    portfolio = stats.get(PORTFOLIO, {})
    symbols = [s for s in stats if s != PORTFOLIO]
    parts = [
        f"<h1>totowalk backtest report — {html.escape(str(summary.get('profile')))} profile</h1>",
        _settings_block(summary),
    ]
    parts += [f'<div class="warning">WARNING: {html.escape(w)}</div>' for w in summary.get("warnings", [])]

    parts.append("<h2>Equity and drawdowns</h2>")
    parts.append(
        f'<p class="note">The daily walk-forward series: each simulation\'s final day, each trading day '
        f"once; with several symbols the equal-weight portfolio ({len(symbols):,} symbols). Zoom by "
        f"dragging, double-click to reset; the buttons switch the equity axis to log scale.</p>"
    )
    charts = []
    if len(daily):
        bounds = None
        if all(f"return_{b}" in daily for b in BOUNDS) and daily["return_adverse"].notna().any():
            bounds = {b: _portfolio_wide(daily, PORTFOLIO, f"return_{b}") for b in BOUNDS}
        equity, drawdown = _equity_and_drawdown(_portfolio_wide(daily, PORTFOLIO), bounds)
        charts += [_figure_html(equity, "equity"), _figure_html(drawdown, "drawdown")]
    parts += charts

    parts.append("<h2>Statistics (portfolio)</h2>")
    parts.append(
        f'<p class="note">{html.escape(how.get("sharpe", ""))}. Interval: '
        f"{html.escape(str(how.get('bootstrap', '')))}, seed {how.get('seed')}. PSR: probability that "
        f"the true Sharpe exceeds 0; DSR: that it exceeds the best of {how.get('trials', '?')} trials by "
        f"luck ({html.escape(str(how.get('trials_note', '')))}).</p>"
    )
    days = min((s.get("days", 0) for s in portfolio.values()), default=0)
    if days and days < MIN_INTERVAL_DAYS:
        parts.append(
            f'<div class="warning">This run rests on {days:.0f} days, fewer than {MIN_INTERVAL_DAYS}: too short to judge. '
            "The annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar) are greyed and no Sharpe intervals "
            "are given.</div>"
        )
    parts.append(_stats_table(PORTFOLIO, portfolio, _COLUMNS))
    overall = summary.get("summary", {}).get(PORTFOLIO, {})
    if "best_strategy_selected" in overall:
        parts.append("<h2>Best strategy</h2>")
        parts.append(
            f'<p class="verdict">{html.escape(best_strategy_verdict(overall))}</p><p class="note">Chosen on the '
            "first half of the daily series (highest total return), reported on the second half, which the "
            "choice never saw; named only when its deflated Sharpe reaches 0.95.</p>"
        )

    distinct = _distinct_forecasts(forecasts) if forecasts is not None and len(forecasts) else None
    if len(symbols) > MAX_FORECAST_CHARTS:
        parts += _universe_section(stats, symbols, _strategies_of(stats, symbols), distinct)
    else:
        parts.append("<h2>Per symbol</h2>")
        columns = [c for c in _COLUMNS if c[0] in _BREAKDOWN]
        for symbol in symbols:
            parts.append(f"<h3>{html.escape(symbol)}</h3>" + _stats_table(symbol, stats[symbol], columns))

    if "calibration" in summary:  # runs written before the calibration block have none
        parts += _calibration_section(summary["calibration"])

    if distinct is not None and len(symbols) <= MAX_FORECAST_CHARTS:
        parts.append("<h2>Forecast vs realised</h2>")
        parts.append(
            f'<p class="note">{FORECAST_KEY} key, each distinct one-step forecast by its target date; the band is '
            "the width between the 40th and 60th percentiles of the predictive distribution (the "
            "run's estimator), drawn centred on the forecast.</p>"
        )
        for i, symbol in enumerate(symbols):
            parts.append(_figure_html(_forecast_figure(distinct, symbol), f"forecast-{i}"))
    if simulations is not None and len(simulations):
        parts.append("<h2>Per-simulation returns</h2>")
        many = f" Boxes of over {RAW_BOX_POINTS:,} are drawn from their quartiles, without outliers." * (
            len(simulations) > RAW_BOX_POINTS
        )
        parts.append(
            '<p class="note">Each simulation\'s total over its evaluated window (six overlapping days; '
            f"consecutive windows share five), so these are not independent draws.{many}</p>"
        )
        parts.append(_figure_html(_distribution_figure(simulations, list(portfolio)), "distribution"))

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>totowalk backtest report</title>"
        f'<style>{_STYLE}{_UNIVERSE_STYLE}</style><script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body>{''.join(parts)}</body></html>\n"
    )
