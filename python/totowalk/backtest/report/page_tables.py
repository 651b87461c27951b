"""report.html's statistics tables: a row per strategy, a cell per statistic that shows it formatted and
carries its exact value in ``data-value`` (the number summary.json holds)."""

from __future__ import annotations

import html
import json
import math

from ..stats.table import MIN_INTERVAL_DAYS

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
