"""report.html: one self-contained, offline page of a run folder, built from its saved files only
(summary.json, daily_returns.csv, simulations and forecasts tables), so ``totowalk report RUN_DIR``
rebuilds exactly what the run wrote.

Contents: the run's settings and warnings, interactive plotly charts (JavaScript inlined, no CDN)
of the daily series' equity curves (linear / log) and drawdowns, the statistics table with the
Sharpe intervals, a per-symbol breakdown, the calibration of the forecasts (exact PIT and CRPS, when
the forecaster gives its predictive distribution), forecast vs realised with the predictive band,
and the distribution of per-simulation returns. Every statistic cell carries its exact value in
``data-value`` (the number summary.json holds).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import UsageError
from ..stats.daily import BOUNDS
from ..stats.table import MIN_INTERVAL_DAYS
from .text import best_strategy_verdict, calibration_blocks, calibration_verdict, format_p

__all__ = ["INCOMPLETE", "REPORT", "write_html_report", "render_report"]

REPORT = "report.html"
INCOMPLETE = "OUTPUTS_INCOMPLETE"  # kept in a folder whose outputs were interrupted while being written
MAX_FORECAST_CHARTS = 12  # forecast-vs-realised charts (one per symbol); more are listed, not drawn

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


def _read_table(folder: Path, stem: str) -> pd.DataFrame | None:
    if (folder / f"{stem}.csv").is_file():
        return pd.read_csv(folder / f"{stem}.csv")
    if (folder / f"{stem}.parquet").is_file():
        return pd.read_parquet(folder / f"{stem}.parquet")
    return None


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
    daily = pd.read_csv(daily_path)
    page = render_report(summary, daily, _read_table(folder, "simulations"), _read_table(folder, "forecasts"))
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
        ("symbols", ", ".join(map(str, s.get("symbols", [])))),
        ("simulations per symbol", s.get("num_simulations")),
        ("fees", ", ".join(f"{k} {v}" for k, v in (s.get("fee") or {}).items())),
        ("spread", s.get("spread_note")),
        ("fill model", s.get("fill_model")),
        ("commit", versions.get("commit")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if k != "commit")),
    ]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items if v not in (None, "")
    )
    return f'<table class="settings">{rows}</table>'


# -- charts -----------------------------------------------------------------------------------

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def _shade(color: str) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.18)"


def _figure_html(fig, div_id: str) -> str:
    fig.update_layout(margin=dict(l=60, r=20, t=50, b=40), height=420, template="plotly_white")
    body = fig.to_html(
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


def _forecast_figure(forecasts: pd.DataFrame, symbol, key: str = "Close"):
    import plotly.graph_objects as go

    f = forecasts[(forecasts["symbol"].astype(str) == str(symbol)) & (forecasts["key"] == key)]
    f = f.drop_duplicates("context_end").sort_values("context_end")
    f = f[f["target_date"].notna() & f["actual"].notna()]
    x = list(f["target_date"].astype(str))
    pred = 100.0 * f["prediction"].astype(np.float64).to_numpy()
    half = 50.0 * f["band"].astype(np.float64).to_numpy()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=pred + half, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=x,
            y=pred - half,
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor="rgba(31,119,180,0.2)",
            name="band (p60 − p40 width, centred)",
        )
    )
    fig.add_trace(go.Scatter(x=x, y=pred, mode="lines+markers", name="forecast", marker=dict(size=4)))
    fig.add_trace(
        go.Scatter(
            x=x, y=100.0 * f["actual"].to_numpy(), mode="markers", name="realised", marker=dict(size=5, symbol="x")
        )
    )
    fig.update_layout(
        title=f"{symbol}: one-step {key} forecast vs realised change (%)", yaxis_title="change from previous close (%)"
    )
    return fig


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
            fig.add_trace(go.Box(y=values, name=strategy.replace("_strategy", ""), boxpoints="outliers"))
    fig.update_layout(
        title="per-simulation total return over its window (%), all symbols",
        yaxis_title="window return (%)",
        showlegend=False,
    )
    return fig


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


def render_report(
    summary: dict, daily: pd.DataFrame, simulations: pd.DataFrame | None, forecasts: pd.DataFrame | None
) -> str:
    """The page's HTML text."""
    from plotly.offline import get_plotlyjs

    from ..stats.daily import PORTFOLIO

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
        f"once; with several symbols the equal-weight portfolio ({len(symbols)} symbols). Zoom by "
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

    parts.append("<h2>Per symbol</h2>")
    columns = [c for c in _COLUMNS if c[0] in _BREAKDOWN]
    for symbol in symbols:
        parts.append(f"<h3>{html.escape(symbol)}</h3>" + _stats_table(symbol, stats[symbol], columns))

    if "calibration" in summary:  # runs written before the calibration block have none
        parts += _calibration_section(summary["calibration"])

    if forecasts is not None and len(forecasts):
        parts.append("<h2>Forecast vs realised</h2>")
        parts.append(
            '<p class="note">Close key, each distinct one-step forecast by its target date; the band is '
            "the width between the 40th and 60th percentiles of the predictive distribution (the "
            "run's estimator), drawn centred on the forecast.</p>"
        )
        for i, symbol in enumerate(symbols[:MAX_FORECAST_CHARTS]):
            parts.append(_figure_html(_forecast_figure(forecasts, symbol), f"forecast-{i}"))
        if len(symbols) > MAX_FORECAST_CHARTS:
            parts.append(
                f'<p class="note">{len(symbols) - MAX_FORECAST_CHARTS} more symbols are in '
                "forecasts.csv and forecast_vs_actual_*.png.</p>"
            )
    if simulations is not None and len(simulations):
        parts.append("<h2>Per-simulation returns</h2>")
        parts.append(
            '<p class="note">Each simulation\'s total over its evaluated window (six overlapping days; '
            "consecutive windows share five), so these are not independent draws.</p>"
        )
        parts.append(_figure_html(_distribution_figure(simulations, list(portfolio)), "distribution"))

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>totowalk backtest report</title>"
        f'<style>{_STYLE}</style><script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body>{''.join(parts)}</body></html>\n"
    )
