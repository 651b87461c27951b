"""report.html's plotly charts and the frame they share: the equity curves and drawdowns of the daily
series, forecast vs realised with the predictive band, and the distribution of per-simulation returns.
plotly is imported only when a chart is drawn, so importing the package does not load it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats.daily import BOUNDS

RAW_BOX_POINTS = 20_000  # a box of more per-simulation returns is drawn from its quartiles, not its points
FORECAST_KEY = "Close"  # the key the forecast charts draw

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
