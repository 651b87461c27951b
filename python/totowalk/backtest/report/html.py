"""report.html: one self-contained, offline page of a run folder, built from its saved files only
(summary.json, daily_returns.csv, simulations and forecasts tables), so ``totowalk report RUN_DIR``
rebuilds exactly what the run wrote.

Contents: the run's settings (a long symbol list shortened to its count, first and last names; a
per-symbol setting such as the fee on one line when every symbol shares it, else its values' counts
and a collapsed table of which symbols hold which) and warnings, interactive plotly charts
(JavaScript inlined, no CDN) of the daily series' equity curves (linear / log) and drawdowns, the
statistics table with the Sharpe intervals, a per-symbol breakdown, the calibration of the forecasts
(exact PIT and CRPS, when the forecaster gives its predictive distribution), forecast vs realised with
the predictive band, and the distribution of per-simulation returns. Every statistic cell carries its
exact value in ``data-value`` (the number summary.json holds).

The per-symbol part has two layouts:

- up to MAX_FORECAST_CHARTS symbols: a statistics table per symbol and a pre-drawn forecast-vs-realised
  chart per symbol, all visible at once;
- more (a universe): one table, a row per symbol and strategy (Sharpe with its interval, total return,
  max drawdown, win rate, days), sorted by clicking a heading and filtered by a symbol substring and a
  strategy, shown UNIVERSE_PAGE rows at a time; clicking a row draws that symbol's forecast-vs-realised
  chart (Close key) in the one figure below it, the first symbol's at load. A few lines of inline
  JavaScript (no library but plotly) build the rows from embedded data: per statistic one base64 array
  of the exact float64 values (int16 or int32 where all are whole numbers, as days), so each cell's
  ``data-value`` is summary.json's number as in the other tables; and per symbol its latest distinct
  forecasts as 16-bit integers times a per-symbol scale (4-5 significant digits of its largest value),
  its dates as runs of one shared date list. FIGURE_POINTS bounds those forecasts over all symbols
  together (the latest FIGURE_POINTS / symbols of each, at least MIN_FIGURE_POINTS): the exact
  statistics of 5,000 symbols x 9 strategies take 3 MB and plotly 4.8 MB, so 5,000 symbols x 250
  simulations get each symbol's latest 32 forecasts in a page of 9.4 MB. Every forecast stays in the
  forecasts table. A distribution of more than RAW_BOX_POINTS simulations is drawn from its
  quartiles, without its outliers' points.

Reading the tables: only the columns the page draws, a chunk at a time, keeping only the rows it
draws (the portfolio's daily rows; the Close forecasts, each distinct one once), so a universe's
tables are never whole in memory.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import UsageError
from ..stats.daily import BOUNDS, PORTFOLIO
from ..stats.table import MIN_INTERVAL_DAYS
from .text import best_strategy_verdict, calibration_blocks, calibration_verdict, format_p

__all__ = ["INCOMPLETE", "REPORT", "write_html_report", "render_report"]

REPORT = "report.html"
INCOMPLETE = "OUTPUTS_INCOMPLETE"  # kept in a folder whose outputs were interrupted while being written
MAX_FORECAST_CHARTS = 12  # up to this many symbols, a table and a pre-drawn forecast chart each; more: a universe
UNIVERSE_PAGE = 100  # rows of the universe table shown at a time ("show more" adds as many)
FIGURE_POINTS = 160_000  # forecasts embedded for the universe's figure, all symbols together (8 characters each)
MIN_FIGURE_POINTS = 30  # ... but at least this many of each symbol's latest
RAW_BOX_POINTS = 20_000  # a box of more per-simulation returns is drawn from its quartiles, not its points
FORECAST_KEY = "Close"  # the key the forecast charts draw
SETTINGS_SYMBOLS = 12  # a longer symbol list shows its count, first few and last names

_COLUMNS = (  # (statistic, heading, format)
    ("days", "days", "int"),
    ("total_return", "total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("annual_volatility", "ann. vol", "pct"),
    ("sharpe", "Sharpe [95% CI]", "sharpe"),
    ("sortino", "Sortino", "num"),
    ("max_drawdown", "max DD", "pct"),
    ("max_drawdown_days", "DD days", "int"),
    ("calmar", "Calmar", "num"),
    ("win_rate", "win rate", "pct"),
    ("profit_factor", "profit factor", "num"),
    ("avg_win", "avg win", "pct"),
    ("avg_loss", "avg loss", "pct"),
    ("exposure", "exposure", "pct"),
    ("turnover", "turnover/day", "num"),
    ("position_changes", "pos. changes", "int"),
    ("probabilistic_sharpe", "PSR", "num"),
    ("deflated_sharpe", "DSR", "num"),
)
_BREAKDOWN = ("days", "total_return", "sharpe", "max_drawdown", "win_rate", "exposure", "deflated_sharpe")
_UNIVERSE_COLUMNS = (  # the universe table's statistics: (statistic, heading, format)
    ("sharpe", "Sharpe [95% CI]", "sharpe"),
    ("total_return", "total return", "pct"),
    ("max_drawdown", "max DD", "pct"),
    ("win_rate", "win rate", "pct"),
    ("days", "days", "int"),
)
_UNIVERSE_VALUES = tuple(s for s, _, _ in _UNIVERSE_COLUMNS) + ("sharpe_low", "sharpe_high")

# the columns the page reads from each table
_DAILY_COLUMNS = ("date", "symbol", "strategy", "return", *(f"return_{b}" for b in BOUNDS))
_FORECAST_COLUMNS = ("symbol", "key", "context_end", "target_date", "prediction", "band", "actual")
_CHUNK_ROWS = 1_000_000  # rows of a table read at a time: a universe's tables are filtered as they are read


def _read_table(folder: Path, stem: str, columns, reduce=None) -> pd.DataFrame | None:
    """``folder/stem.csv`` (or .parquet): of ``columns`` those it has, a chunk at a time, each chunk and then
    their union passed through ``reduce`` (frame -> the rows the page draws), so a universe's table is never
    whole in memory; None when there is neither file (or no rows in a Parquet one). Symbols are read as text
    ("007" stays "007")."""
    reduce = reduce or (lambda frame: frame)
    csv, parquet = folder / f"{stem}.csv", folder / f"{stem}.parquet"
    if csv.is_file():
        chunks = pd.read_csv(csv, usecols=lambda c: c in columns, dtype={"symbol": str}, chunksize=_CHUNK_ROWS)
    elif parquet.is_file():
        chunks = _parquet_chunks(parquet, columns)
    else:
        return None
    parts = [reduce(chunk) for chunk in chunks]
    return reduce(pd.concat(parts, ignore_index=True)) if parts else None


def _parquet_chunks(path: Path, columns):
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    present = [c for c in file.schema_arrow.names if c in columns]
    for batch in file.iter_batches(batch_size=_CHUNK_ROWS, columns=present):
        frame = batch.to_pandas()
        if "symbol" in frame:
            frame["symbol"] = frame["symbol"].astype(str)
        yield frame


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
    summary = json.loads(summary_path.read_text())
    daily_path = folder / "daily_returns.csv"
    if not daily_path.is_file():
        raise FileNotFoundError(f"{daily_path} not found (runs written before the daily series have none; re-run)")
    daily = _read_table(folder, "daily_returns", _DAILY_COLUMNS, reduce=lambda t: t[t["symbol"] == PORTFOLIO])
    returns = {f"{strategy}_return" for strategy in summary.get("statistics", {}).get(PORTFOLIO, {})}
    forecasts = _read_table(folder, "forecasts", _FORECAST_COLUMNS, reduce=_distinct_forecasts)
    page = render_report(summary, daily, _read_table(folder, "simulations", returns), forecasts)
    path = folder / REPORT
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


# -- formatting -------------------------------------------------------------------------------


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if kind == "pct":
        return f"{100 * value:.2f} %"
    if kind == "int":
        return f"{value:.0f}"
    return f"{value:.3f}"


def _cell(symbol: str, strategy: str, stat: str, stats: dict, kind: str) -> str:
    value = stats.get(stat)
    attrs = (
        f'data-symbol="{html.escape(symbol)}" data-strategy="{html.escape(strategy)}" data-stat="{stat}" '
        f'data-value="{json.dumps(value)}"'
    )
    text = _fmt(value, "num" if kind == "sharpe" else kind)
    if kind == "sharpe":
        text += f" [{_fmt(stats.get('sharpe_low'), 'num')}, {_fmt(stats.get('sharpe_high'), 'num')}]"
    return f"<td {attrs}>{html.escape(text)}</td>"


def _stats_table(symbol: str, per_strategy: dict, columns) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in columns)
    rows = []
    for strategy, stats in per_strategy.items():
        cells = "".join(_cell(symbol, strategy, stat, stats, kind) for stat, _, kind in columns)
        rows.append(f"<tr><th>{html.escape(strategy)}</th>{cells}</tr>")
    short = any(0 < (stats.get("days") or 0) < MIN_INTERVAL_DAYS for stats in per_strategy.values())
    kind = "stats short" if short else "stats"  # too few days: the annualised columns are greyed (CSS)
    return f'<table class="{kind}"><tr><th>strategy</th>{head}</tr>{"".join(rows)}</table>'


def _settings_block(summary: dict) -> str:
    s = summary.get("settings", {})
    fc = s.get("forecaster", {})
    model = summary.get("model", {})
    versions = summary.get("versions", {})
    symbols = [str(x) for x in s.get("symbols") or [k for k in summary.get("statistics", {}) if k != PORTFOLIO]]
    per_symbol = _per_symbol_settings(s, symbols)
    items = [
        ("profile", summary.get("profile")),
        ("model", model.get("spec") or fc.get("model") or fc.get("function")),
        ("precision", model.get("precision") or fc.get("precision")),
        ("estimator", model.get("estimator") or fc.get("estimator")),
        (
            "samples",
            "exact (no samples)"
            if fc.get("estimator") == "exact"
            else model.get("num_samples") or fc.get("num_samples"),
        ),
        ("seed", model.get("seed") if model else fc.get("seed")),
        ("aggregate", s.get("aggregate")),
        ("symbols", _symbol_summary(symbols)),
        ("simulations per symbol", s.get("num_simulations")),
        *((name.replace("_", " "), _setting_summary(values)) for name, values in per_symbol.items()),
        ("spread", s.get("spread_note")),
        ("fill model", s.get("fill_model")),
        ("commit", versions.get("commit")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if k != "commit")),
    ]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items if v not in (None, "")
    )
    return f'<table class="settings">{rows}</table>' + _differing_settings_table(per_symbol)


def _symbol_summary(symbols: list) -> str:
    """All names of a short list; of a long one its count, first few and last ("500 symbols: A, B, … Z")."""
    if len(symbols) <= SETTINGS_SYMBOLS:
        return ", ".join(symbols)
    return f"{len(symbols):,} symbols: {', '.join(symbols[:6])}, … {symbols[-1]}"


def _per_symbol_settings(settings: dict, symbols: list) -> dict:
    """{setting: {symbol: value}} of the settings held per symbol (fee, crypto, trading_days, ...)."""
    names = set(symbols)
    return {
        name: {str(k): v for k, v in value.items()}
        for name, value in settings.items()
        if isinstance(value, dict) and value and {str(k) for k in value} == names
    }


def _setting_summary(values: dict) -> str:
    """One line: the value every symbol shares, else how many symbols hold each value (the table below)."""
    counts = Counter(json.dumps(v) for v in values.values())
    if len(counts) == 1:
        return _setting_text(next(iter(values.values()))) + (" (every symbol)" if len(values) > 1 else "")
    if len(counts) > 6:
        return f"{len(counts):,} different values, per symbol below"
    shown = ", ".join(f"{_setting_text(json.loads(v))} ({n:,} symbols)" for v, n in counts.items())
    return shown + ", per symbol below"


def _setting_text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _differing_settings_table(per_symbol: dict) -> str:
    """Collapsed: the per-symbol settings that differ, a row per combination of their values with the symbols
    holding it; empty when every symbol shares each setting."""
    differing = {name: values for name, values in per_symbol.items() if len(set(map(json.dumps, values.values()))) > 1}
    if not differing:
        return ""
    groups: dict = {}
    for symbol in next(iter(differing.values())):
        combination = tuple(json.dumps(values[symbol]) for values in differing.values())
        groups.setdefault(combination, []).append(symbol)
    head = "".join(f"<th>{html.escape(name.replace('_', ' '))}</th>" for name in differing)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_setting_text(json.loads(v)))}</td>" for v in combination)
        + f"<td>{len(names):,}: {html.escape(', '.join(names))}</td></tr>"
        for combination, names in groups.items()
    )
    return (
        f"<details><summary>per-symbol settings ({html.escape(', '.join(differing))} differ)</summary>"
        f'<table class="settings"><tr>{head}<th>symbols</th></tr>{rows}</table></details>'
    )


# -- charts -----------------------------------------------------------------------------------

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def _shade(color: str) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.18)"


def _styled(fig):
    """The layout every chart of the page shares."""
    return fig.update_layout(margin=dict(l=60, r=20, t=50, b=40), height=420, template="plotly_white")


def _figure_html(fig, div_id: str) -> str:
    body = _styled(fig).to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False, "responsive": True}
    )
    return f'<div class="chart-box" data-chart="{div_id}">{body}</div>'


def _portfolio_wide(daily: pd.DataFrame, portfolio: str, field: str = "return") -> pd.DataFrame:
    mine = daily[daily["symbol"] == portfolio]
    order = list(pd.unique(mine["strategy"]))
    return mine.pivot(index="date", columns="strategy", values=field).sort_index()[order].fillna(0.0)


def _equity_and_drawdown(returns: pd.DataFrame, bounds: dict | None = None) -> tuple:
    """Equity and drawdown figures; ``bounds`` ({bound: wide returns}) shades each strategy's fill
    bracket, the equity of the same orders booked by the adverse and the optimistic bound."""
    import plotly.graph_objects as go

    equity, drawdown = go.Figure(), go.Figure()
    x = list(returns.index)
    colors = _PALETTE * (1 + len(returns.columns) // len(_PALETTE))
    for name, color in zip(returns.columns, colors):
        growth = np.cumprod(1.0 + returns[name].to_numpy())
        peak = np.maximum.accumulate(np.maximum(growth, 1.0))
        label = name.replace("_strategy", "")
        low, high = (np.cumprod(1.0 + bounds[b][name].to_numpy()) if bounds else growth for b in BOUNDS)
        if bounds and not np.array_equal(low, high):
            equity.add_trace(
                go.Scatter(
                    x=x, y=high, mode="lines", line=dict(width=0), legendgroup=label, showlegend=False, hoverinfo="skip"
                )
            )
            equity.add_trace(
                go.Scatter(
                    x=x,
                    y=low,
                    mode="lines",
                    line=dict(width=0),
                    fill="tonexty",
                    fillcolor=_shade(color),
                    legendgroup=label,
                    name=f"{label}: fill bracket (adverse to optimistic)",
                    hoverinfo="skip",
                )
            )
        equity.add_trace(go.Scatter(x=x, y=growth, mode="lines", name=label, legendgroup=label, line=dict(color=color)))
        drawdown.add_trace(
            go.Scatter(x=x, y=100.0 * (growth / peak - 1.0), mode="lines", name=label, line=dict(color=color))
        )
    equity.update_layout(
        title="equity of 1 unit, daily walk-forward series (each simulation's final day)",
        yaxis_title="equity",
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                x=1.0,
                xanchor="right",
                y=1.2,
                buttons=[
                    dict(label="linear", method="relayout", args=[{"yaxis.type": "linear"}]),
                    dict(label="log", method="relayout", args=[{"yaxis.type": "log"}]),
                ],
            )
        ],
    )
    drawdown.update_layout(title="drawdown from the running peak", yaxis_title="drawdown (%)")
    return equity, drawdown


def _distinct_forecasts(forecasts: pd.DataFrame, key: str = FORECAST_KEY) -> pd.DataFrame:
    """Each symbol's distinct one-step ``key`` forecasts with a known outcome (the table repeats a forecast in
    every (simulation, step) row that uses it; the first is kept), symbols as text."""
    f = forecasts[forecasts["key"] == key]
    f = f.assign(symbol=f["symbol"].astype(str)).drop_duplicates(["symbol", "context_end"])
    return f[f["target_date"].notna() & f["actual"].notna()]


def _forecast_chart(symbol, x, prediction, half_band, actual, key: str = FORECAST_KEY):
    """Forecast vs realised (values in percent): the band's two edges, the forecast and the outcomes."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=x, y=prediction + half_band, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip")
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=prediction - half_band,
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor="rgba(31,119,180,0.2)",
            name="band (p60 − p40 width, centred)",
        )
    )
    fig.add_trace(go.Scatter(x=x, y=prediction, mode="lines+markers", name="forecast", marker=dict(size=4)))
    fig.add_trace(go.Scatter(x=x, y=actual, mode="markers", name="realised", marker=dict(size=5, symbol="x")))
    name = str(symbol).replace("&", "&amp;").replace("<", "&lt;")  # plotly reads tags in text
    fig.update_layout(
        title=f"{name}: one-step {key} forecast vs realised change (%)", yaxis_title="change from previous close (%)"
    )
    return fig


def _forecast_figure(distinct: pd.DataFrame, symbol):
    """One symbol's chart from :func:`_distinct_forecasts`, in context order."""
    f = distinct[distinct["symbol"] == str(symbol)].sort_values("context_end")
    return _forecast_chart(symbol, list(f["target_date"].astype(str)), *_percent(f))


def _percent(f: pd.DataFrame) -> tuple:
    """(forecast, half the band, outcome) in percent."""
    band = f["band"] if "band" in f else pd.Series(0.0, index=f.index)
    return tuple(
        scale * pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
        for scale, column in ((100.0, f["prediction"]), (50.0, band), (100.0, f["actual"]))
    )


def _calibration_section(calibration: dict) -> list:
    """Heading, the per-key table and the verdict sentence of summary.json's calibration block."""
    parts = ["<h2>Calibration of the forecasts</h2>"]
    if not calibration.get("available"):
        return parts + [f'<p class="note">Not available: {html.escape(str(calibration.get("reason")))}.</p>']
    overall = calibration["overall"]
    parts.append(
        f'<p class="verdict">{html.escape(calibration_verdict(calibration))}.</p><p class="note">Exact PIT and CRPS '
        f"of the predicted mixture of each of {overall['forecasts']:,} distinct forecasts with a known outcome "
        f"({overall['days']:,} days), each counted once though consecutive simulations share them; an interval's "
        "coverage is the share of outcomes inside it, with the exact binomial p against its nominal rate.</p>"
    )
    return parts + [_calibration_table(calibration)]


_CALIBRATION_COLUMNS = (  # (field, heading, format)
    ("forecasts", "forecasts", "int"),
    ("days", "days", "int"),
    ("mean_crps", "mean CRPS", "crps"),
    ("coverage_50", "50 % covered (p)", "coverage"),
    ("coverage_80", "80 % covered (p)", "coverage"),
    ("coverage_95", "95 % covered (p)", "coverage"),
    ("pit_ks", "PIT KS (p)", "ks"),
)


def _calibration_table(calibration: dict) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in _CALIBRATION_COLUMNS)
    rows = []
    for name, block in calibration_blocks(calibration).items():
        cells = "".join(_calibration_cell(name, block, field, kind) for field, _, kind in _CALIBRATION_COLUMNS)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f'<table class="calibration"><tr><th>key</th>{head}</tr>{"".join(rows)}</table>'


def _calibration_cell(name: str, block: dict, field: str, kind: str) -> str:
    value = block.get(field)
    if kind == "int":
        text = f"{value:,}"
    elif kind == "crps":
        text = f"{value:.6f}"
    elif kind == "coverage":
        text = f"{100 * value:.1f} % ({format_p(block.get(f'{field}_p'))})"
    else:
        text = f"{value:.3f} ({format_p(block.get('pit_ks_p'))})"
    attrs = f'data-key="{html.escape(name)}" data-stat="{field}" data-value="{json.dumps(value)}"'
    return f"<td {attrs}>{html.escape(text)}</td>"


def _distribution_figure(simulations: pd.DataFrame, strategies) -> object:
    import plotly.graph_objects as go

    fig = go.Figure()
    for strategy in strategies:
        column = f"{strategy}_return"
        if column in simulations:
            values = 100.0 * pd.to_numeric(simulations[column], errors="coerce").to_numpy()
            fig.add_trace(_box(values[np.isfinite(values)], strategy.replace("_strategy", "")))
    fig.update_layout(
        title="per-simulation total return over its window (%), all symbols",
        yaxis_title="window return (%)",
        showlegend=False,
    )
    return fig


def _box(values: np.ndarray, name: str):
    """A box of the values; of very many, drawn from its quartiles and 1.5-IQR whiskers as plotly would draw
    it from the points, without the outliers (a universe's points would be most of the page)."""
    import plotly.graph_objects as go

    if len(values) <= RAW_BOX_POINTS:
        return go.Box(y=values, name=name, boxpoints="outliers")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    reach = 1.5 * (q3 - q1)
    low, high = values[values >= q1 - reach].min(), values[values <= q3 + reach].max()
    return go.Box(
        x=[name],
        name=name,
        q1=[q1],
        median=[median],
        q3=[q3],
        lowerfence=[low],
        upperfence=[high],
        mean=[values.mean()],
    )


# -- the universe table ---------------------------------------------------------------------


def _universe_section(stats: dict, symbols: list, strategies: list, distinct: pd.DataFrame | None) -> list:
    """The per-symbol part of a run of many symbols: one sortable, filterable table and the figure of the
    symbol last clicked, drawn by the inline script from the embedded data."""
    data = {
        "symbols": symbols,
        "strategies": strategies,
        "page": UNIVERSE_PAGE,
        "min_days": MIN_INTERVAL_DAYS,
        "table": [[stat, kind] for stat, _, kind in _UNIVERSE_COLUMNS],
        **_table_data(stats, symbols, strategies),
    }
    drawn = distinct is not None and len(distinct) > 0
    parts = [
        "<h2>Per symbol</h2>",
        f'<p class="note">{len(symbols):,} symbols x {len(strategies)} strategies, a row each: click a heading to '
        "sort (again to reverse), type part of a symbol or pick a strategy to filter"
        + (", click a row to draw that symbol's forecasts below" if drawn else "")
        + f". Sharpe [95% CI] as in the portfolio table, greyed under {MIN_INTERVAL_DAYS} days.</p>",
        _universe_controls(strategies),
        _universe_table(),
    ]
    if drawn:
        figures, note = _figure_data(distinct, symbols)
        data.update(figures)
        data["figure"] = json.loads(_styled(_forecast_chart("{symbol}", [], *(np.zeros(0),) * 3)).to_json())
        parts.append(
            '<div class="chart-box" data-chart="forecast"><div id="universe-forecast"></div></div>'
            f'<p class="note">{FORECAST_KEY} key, each distinct one-step forecast by its target date; the band is '
            "the width between the 40th and 60th percentiles of the predictive distribution, drawn centred on the "
            f"forecast. {note}</p>"
        )
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    parts.append(
        f'<script type="application/json" id="universe-data">{text}</script><script>{_UNIVERSE_SCRIPT}</script>'
    )
    return parts


def _universe_controls(strategies: list) -> str:
    options = "".join(f'<option value="{html.escape(s)}">{html.escape(s)}</option>' for s in strategies)
    return (
        '<div class="controls"><label>symbol contains <input id="universe-filter" type="search"></label> '
        f'<label>strategy <select id="universe-strategy"><option value="">all</option>{options}</select></label> '
        '<span id="universe-count"></span></div>'
    )


def _universe_table() -> str:
    head = "".join(f'<th data-sort="{stat}">{html.escape(h)}</th>' for stat, h, _ in _UNIVERSE_COLUMNS)
    return (
        '<div class="table-box"><table class="stats universe" id="universe"><thead><tr>'
        f'<th data-sort="symbol">symbol</th><th data-sort="strategy">strategy</th>{head}</tr></thead>'
        '<tbody></tbody></table></div><div><button id="universe-more" type="button">show more</button></div>'
    )


def _table_data(stats: dict, symbols: list, strategies: list) -> dict:
    """The table's exact values: per statistic one array over the rows (symbol-major, strategy-minor), and
    the rows summary.json does not hold (a strategy without a series for a symbol)."""
    grid = np.full((len(_UNIVERSE_VALUES), len(symbols) * len(strategies)), np.nan)
    missing = []
    for i, symbol in enumerate(symbols):
        for j, strategy in enumerate(strategies):
            row = stats[symbol].get(strategy)
            if row is None:
                missing.append(i * len(strategies) + j)
            else:
                grid[:, i * len(strategies) + j] = [row.get(stat) for stat in _UNIVERSE_VALUES]
    return {"columns": {stat: _packed(values) for stat, values in zip(_UNIVERSE_VALUES, grid)}, "missing": missing}


def _packed(values: np.ndarray) -> list:
    """[type, base64 of the little-endian array]: the smallest of int16 and int32 that holds every value when
    all are whole numbers (days), else float64: bit for bit the numbers summary.json holds."""
    whole = bool(np.isfinite(values).all() and (values == np.round(values)).all())
    dtype = next((t for t in ("<i2", "<i4") if whole and (np.abs(values) < np.iinfo(t).max).all()), "<f8")
    return [dtype[1:], base64.b64encode(values.astype(dtype).tobytes()).decode("ascii")]


def _figure_data(distinct: pd.DataFrame, symbols: list) -> tuple:
    """Each symbol's latest distinct forecasts for the figure, compact, and the sentence that says how many:
    the dates once ("dates"), and per symbol [scale, runs, values] ("figures", null without forecasts):
    runs are (first index, count) pairs of consecutive dates, values base64 little-endian int16 triples
    (forecast, half band, outcome) that times scale give percent; -32768 marks a missing value."""
    latest = max(MIN_FIGURE_POINTS, FIGURE_POINTS // max(1, len(symbols)))
    owner = pd.Index(symbols).get_indexer(distinct["symbol"])
    f = distinct.assign(owner=owner)[owner >= 0].sort_values(["owner", "context_end"], kind="stable")
    kept = f.groupby("owner", sort=False).tail(latest)
    figures: list = [None] * len(symbols)
    data = {"dates": [], "figures": figures}
    if not len(kept):
        return data, _figure_note(latest, False)
    owner = kept["owner"].to_numpy()
    codes, dates = pd.factorize(kept["target_date"].astype(str), sort=True)
    starts = np.flatnonzero(np.r_[True, np.diff(owner) != 0])
    scales, quantised = _quantised(np.column_stack(_percent(kept)), starts)
    ends = np.r_[starts[1:], len(owner)]
    for start, end, scale, runs in zip(starts, ends, scales, _date_runs(owner, codes, starts)):
        figures[owner[start]] = [scale, runs, base64.b64encode(quantised[start:end].tobytes()).decode("ascii")]
    data["dates"] = list(dates)
    return data, _figure_note(latest, len(f) > len(kept))


def _quantised(values: np.ndarray, starts: np.ndarray) -> tuple:
    """Per symbol (its rows from each of ``starts``) a scale of 4 significant digits putting its largest
    |value| near 32,000, and every value as an int16 count of its symbol's scale; -32768 where missing."""
    finite = np.isfinite(values)
    peaks = np.maximum.reduceat(np.where(finite, np.abs(values), 0.0).max(axis=1), starts)
    scales = [float(f"{peak / 32000:.4g}") if peak > 0 else 1.0 for peak in peaks]  # |count| <= ~32,016
    per_row = np.repeat(scales, np.diff(np.r_[starts, len(values)]))[:, None]
    counts = np.rint(np.where(finite, values, 0.0) / per_row)
    return scales, np.where(finite, counts, -32768).astype("<i2")


def _date_runs(owner: np.ndarray, codes: np.ndarray, starts: np.ndarray) -> list:
    """Per symbol, flat (first, count) pairs of its runs of consecutive date codes."""
    first = np.flatnonzero(np.r_[True, (np.diff(owner) != 0) | (np.diff(codes) != 1)])
    pairs = np.column_stack([codes[first], np.diff(np.r_[first, len(codes)])])
    bounds = np.searchsorted(first, np.r_[starts, len(codes)])  # a symbol's first row starts a run
    return [pairs[a:b].ravel().tolist() for a, b in zip(bounds[:-1], bounds[1:])]


def _figure_note(latest: int, cut: bool) -> str:
    if not cut:
        return "Every symbol's forecasts are drawn."
    return (
        f"Each symbol's latest {latest:,} forecasts are drawn, to keep the page small; all of them are in the "
        "forecasts table."
    )


# the universe table: rows built from the embedded data (statistics exact in data-value as in the other
# tables, formatted as _fmt formats them), sorted, filtered, shown a page at a time; a row's click draws
# its symbol's forecasts
_UNIVERSE_SCRIPT = r"""(() => {
const D = JSON.parse(document.getElementById('universe-data').textContent);
const bytes = (b64) => {  // typed arrays read them in the machine's order, little-endian as written
  const s = atob(b64), u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u.buffer;
};
const col = {};
const arrays = { i2: Int16Array, i4: Int32Array, f8: Float64Array };
for (const [stat, [type, b64]] of Object.entries(D.columns)) col[stat] = new arrays[type](bytes(b64));
const S = D.strategies.length, lower = D.symbols.map((s) => s.toLowerCase()), skip = new Set(D.missing), all = [];
for (let r = 0; r < D.symbols.length * S; r++) if (!skip.has(r)) all.push(r);
const $ = (id) => document.getElementById(id);
const table = $('universe'), body = table.tBodies[0], filter = $('universe-filter'), pick = $('universe-strategy');
let rows = all, key = null, desc = false, shown = D.page, selected = -1;
const symbolOf = (r) => Math.floor(r / S);
// Python's f'{x:.{n}f}': toFixed rounds the exact binary value too, but an exact tie away from zero, not to even
function fixed(x, n) {
  const s = (Object.is(x, -0) ? '-' : '') + x.toFixed(n), digits = x.toFixed(n + 40);  // 40 more: exact here
  if (!/^50*$/.test(digits.slice(-40)) || !/[13579]$/.test(s)) return s;
  return digits.slice(0, n ? -40 : -41);  // the tie cut toward zero: the even neighbour
}
function text(v, kind) {
  if (Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  return kind === 'pct' ? fixed(100 * v, 2) + ' %' : fixed(v, kind === 'int' ? 0 : 3);
}
const exact = (v) => (Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');
function addRow(r) {
  const tr = body.insertRow(), i = symbolOf(r);
  tr.dataset.symbol = D.symbols[i];
  tr.dataset.index = i;
  tr.classList.toggle('short', col.days[r] < D.min_days);
  tr.classList.toggle('selected', i === selected);
  for (const name of [D.symbols[i], D.strategies[r % S]]) Object.assign(tr.insertCell(), { className: 'name', textContent: name });
  for (const [stat, kind] of D.table) {
    const td = tr.insertCell(), v = col[stat][r];
    td.setAttribute('data-symbol', D.symbols[i]);
    td.setAttribute('data-strategy', D.strategies[r % S]);
    td.setAttribute('data-stat', stat);
    td.setAttribute('data-value', exact(v));
    td.textContent = kind === 'sharpe' ? `${text(v, 'num')} [${text(col.sharpe_low[r], 'num')}, ${text(col.sharpe_high[r], 'num')}]` : text(v, kind);
  }
}
function render() {
  body.replaceChildren();
  rows.slice(0, shown).forEach(addRow);
  $('universe-count').textContent = `${rows.length.toLocaleString('en')} rows` + (rows.length > shown ? `, the first ${shown.toLocaleString('en')} shown` : '');
  $('universe-more').hidden = rows.length <= shown;
}
const value = (r) => (key === 'symbol' ? D.symbols[symbolOf(r)] : key === 'strategy' ? D.strategies[r % S] : col[key][r]);
function compare(a, b) {  // rows without a value last, either way
  const x = value(a), y = value(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) - Number.isNaN(y);
  return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
}
function update() {
  const part = filter.value.trim().toLowerCase(), strategy = pick.value;
  rows = all.filter((r) => (!strategy || D.strategies[r % S] === strategy) && lower[symbolOf(r)].includes(part));
  if (key) rows.sort(compare);  // stable: ties keep the run's order
  shown = D.page;
  render();
}
table.tHead.addEventListener('click', (e) => {
  const th = e.target.closest('th[data-sort]');
  if (!th) return;
  desc = th.dataset.sort === key ? !desc : !['symbol', 'strategy'].includes(th.dataset.sort);  // numbers: highest first
  key = th.dataset.sort;
  for (const h of table.tHead.rows[0].cells) h.classList.toggle('sorted', h === th);
  th.classList.toggle('desc', desc);
  update();
});
filter.addEventListener('input', update);
pick.addEventListener('change', update);
$('universe-more').addEventListener('click', () => { shown += D.page; render(); });
function draw(i) {
  if (!D.figure) return;
  selected = i;
  for (const tr of body.rows) tr.classList.toggle('selected', +tr.dataset.index === i);
  const x = [], y = [[], [], [], []], f = D.figures[i];
  if (f) {
    const [scale, runs, b64] = f, q = new Int16Array(bytes(b64)), num = (v) => (v === -32768 ? NaN : v * scale);
    for (let k = 0; k < runs.length; k += 2) for (let d = runs[k]; d < runs[k] + runs[k + 1]; d++) x.push(D.dates[d]);
    const round = (v) => (Number.isFinite(v) ? +v.toPrecision(5) : null);
    for (let k = 0; k < x.length; k++) {
      const p = num(q[3 * k]), h = num(q[3 * k + 1]);
      [p + h, p - h, p, num(q[3 * k + 2])].forEach((v, t) => y[t].push(round(v)));
    }
  }
  const layout = structuredClone(D.figure.layout);
  const name = D.symbols[i].replace(/&/g, '&amp;').replace(/</g, '&lt;');  // plotly reads tags in text
  layout.title.text = layout.title.text.split('{symbol}').join(name);
  Plotly.react('universe-forecast', D.figure.data.map((t, k) => ({ ...t, x, y: y[k] })), layout, { displaylogo: false, responsive: true });
}
body.addEventListener('click', (e) => { const tr = e.target.closest('tr'); if (tr) draw(+tr.dataset.index); });
update();
draw(0);
})();"""

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

_UNIVERSE_STYLE = """
details { margin: 4px 0 8px; font-size: 13px; } summary { cursor: pointer; color: #555; }
.controls { font-size: 13px; margin: 8px 0; } .controls label { margin-right: 12px; }
.table-box { max-height: 70vh; overflow: auto; display: inline-block; border: 1px solid #ddd; }
table.universe { margin: 0; } table.universe th { position: sticky; top: 0; cursor: pointer; user-select: none; }
table.universe th.sorted::after { content: " ▲"; } table.universe th.sorted.desc::after { content: " ▼"; }
table.universe td.name, table.universe th[data-sort="symbol"], table.universe th[data-sort="strategy"] { text-align: left; }
table.universe tbody tr { cursor: pointer; }
table.universe tbody tr:hover td { background: #f3f7fd; } table.universe tr.selected td { background: #dde8fb; }
table.universe tr.short td[data-stat="sharpe"] { color: #aaa; }
#universe-more { margin: 6px 0; }
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
