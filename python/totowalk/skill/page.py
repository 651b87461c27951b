"""page: one self-contained, offline HTML page of a forecast-skill evaluation.

Built from the evaluation runner's two tables: ``evaluation`` (one row per model, symbol, key and
horizon, with its scores and its tests against the baselines) and ``scores`` (the per-day long table).
The page holds the settings, a plain-words verdict per model and series, the full evaluation table,
and per series a PIT histogram, a reliability diagram and the CRPS over time (plotly, JavaScript
inlined once, no CDN). It reuses the backtest report's style and chart frame.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from ..backtest.report.html import _STYLE, MAX_FORECAST_CHARTS
from ..backtest.report.page_charts import _PALETTE, _figure_html
from ..backtest.stats.calibration import CALIBRATION_LEVEL
from .baselines import BASELINES

__all__ = [
    "BASELINES",
    "RELIABILITY_LEVELS",
    "evaluation_page",
    "format_p",
    "format_value",
    "observed_coverage",
    "rolling_crps",
    "verdict",
]

BASELINE_NAMES = {"random_walk": "the random walk", "garch_t": "GARCH-t", "ets": "ETS"}
RELIABILITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # nominal central-interval coverage
PIT_BINS = 20
ROLLING_DAYS = 60
EVIDENCE_LEVEL = 0.05  # a DM or binomial p at or above this is no evidence either way
MISSING = "n/a"

_TABLE_COLUMNS = (  # (column, heading, format)
    ("model", "model", "text"),
    ("symbol", "symbol", "text"),
    ("key", "key", "text"),
    ("horizon", "horizon", "int"),
    ("days", "days", "int"),
    ("crps", "CRPS", "sig5"),
    ("crps_skill", "CRPS skill vs RW", "signed_pct"),
    ("log_score", "log score", "num"),
    ("mae", "MAE", "sig5"),
    ("mase", "MASE", "num"),
    ("coverage_50", "50 % cover", "pct"),
    ("coverage_80", "80 % cover", "pct"),
    ("coverage_95", "95 % cover", "pct"),
    ("pit_ks", "PIT KS", "num"),
    ("pit_ks_p", "PIT KS p", "p"),
    ("hit_rate", "hit rate", "pct"),
    ("hit_rate_p", "hit rate p", "p"),
) + tuple(
    column
    for baseline in BASELINES
    for column in ((f"dm_{baseline}", f"DM vs {baseline}", "num"), (f"dm_{baseline}_p", "DM p", "p"))
)

_PAGE_STYLE = """
td.text { text-align: left; } table.evaluation td { white-space: nowrap; } tr.baseline td { color: #666; }
p.verdict { max-width: 1100px; margin: 6px 0; } div.wide { overflow-x: auto; }
"""

SCORES_NOTE = (
    "CRPS (continuous ranked probability score) compares the whole predictive distribution with the realised "
    "value, in the units of the returns: lower is better, and the skill is 1 − CRPS / CRPS of the random walk. "
    "The PIT (the predictive CDF at the realised value) is uniform on [0, 1] when the forecasts are calibrated: "
    "a flat histogram, a reliability curve on the diagonal, a large KS p-value. "
    "The Diebold–Mariano statistic tests the mean daily CRPS difference, model minus baseline, with a HAC "
    "(autocorrelation-robust) variance: negative means the model is better."
)


# -- numbers as text ---------------------------------------------------------------------------


def _number(value) -> float | None:
    """``value`` as a float, None when it is missing or NaN (the tables hold NaN for 'not computed')."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def format_p(p) -> str:
    p = _number(p)
    if p is None:
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_value(value, kind: str) -> str:
    """One table cell's text; NaN and missing values read "n/a"."""
    if kind == "text":
        return MISSING if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
    number = _number(value)
    if number is None:
        return MISSING
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if kind == "p":
        return format_p(number)
    if kind == "int":
        return f"{number:,.0f}"
    if kind == "sig5":
        return f"{number:.5g}"
    if kind == "pct":
        return f"{100 * number:.1f} %"
    if kind == "signed_pct":
        return f"{100 * number:+.1f} %"
    return f"{number:.3f}"


def _p_clause(p) -> str:
    text = format_p(p)
    return f"p {text.replace('<', '< ')}" if text.startswith("<") else f"p = {text}"


# -- the verdict sentence ----------------------------------------------------------------------


def _comparison(row, baseline: str, baseline_crps) -> str:
    """'1.3 % better than the random walk (DM p = 0.040)' for one baseline."""
    name = BASELINE_NAMES.get(baseline, baseline)
    crps, reference = _number(row.get("crps")), _number(baseline_crps)
    if crps is None or reference is None or reference <= 0:
        return f"no CRPS comparison with {name} ({MISSING})"
    change = 1.0 - crps / reference
    if change > 0:
        words = f"{100 * change:.1f} % better than {name}"
    elif change < 0:
        words = f"{-100 * change:.1f} % worse than {name}"
    else:
        words = f"as good as {name}"
    p = _number(row.get(f"dm_{baseline}_p"))
    evidence = ": no evidence of a difference" if p is not None and p >= EVIDENCE_LEVEL else ""
    return f"{words} (DM {_p_clause(p)}{evidence})"


def _calibration(row) -> str:
    p = _number(row.get("pit_ks_p"))
    coverage = format_value(row.get("coverage_80"), "pct")
    words = ""
    if p is not None:  # KS rejects uniform PIT at 1 % => miscalibrated; otherwise the test finds it calibrated
        words = (
            " (miscalibrated at the 1 % level)"
            if p < CALIBRATION_LEVEL
            else " (no evidence of miscalibration at the 1 % level)"
        )
    return f"calibration: 80 % intervals covered {coverage} of days, PIT KS {_p_clause(p)}{words}"


def _direction(row) -> str:
    hit, p = _number(row.get("hit_rate")), _number(row.get("hit_rate_p"))
    words = ""
    if p is not None and p >= EVIDENCE_LEVEL:
        words = ": no evidence of direction skill"
    elif p is not None and hit is not None and hit != 0.5:
        words = ": better than chance" if hit > 0.5 else ": worse than chance"
    return f"direction right on {format_value(hit, 'pct')} of days (binomial {_p_clause(p)}{words})"


def verdict(row, baseline_rows: pd.DataFrame) -> str:
    """One plain-words sentence on a model's evaluation row.

    ``row``: the model's row of the evaluation table (a Series or a dict); ``baseline_rows``: the rows of
    the same symbol, key and horizon to compare it with (their ``model`` and ``crps``), usually the
    baselines'. "better"/"worse" follow the CRPS, "(mis)calibrated" the PIT KS p at 1 %, and a DM or
    binomial p at or above 5 % reads "no evidence".
    """
    head = (
        f"{row.get('model')} on {row.get('symbol')} {row.get('key')}, horizon {format_value(row.get('horizon'), 'int')}, "
        f"{format_value(row.get('days'), 'int')} days"
    )
    comparisons = [_comparison(row, model, crps) for model, crps in _baselines_of(row, baseline_rows)]
    forecast = f"CRPS {_significant(row.get('crps'), 3)}" + (
        ", " + ", ".join(comparisons) if comparisons else ", no baseline to compare with"
    )
    return f"{head}: {forecast}; {_calibration(row)}; {_direction(row)}."


def _baselines_of(row, baseline_rows: pd.DataFrame | None) -> list[tuple[str, object]]:
    """(baseline, its CRPS) for every row but the model's own, the known baselines first in their order."""
    if baseline_rows is None or not len(baseline_rows):
        return []
    pairs = [
        (str(m), c) for m, c in zip(baseline_rows["model"], baseline_rows["crps"]) if str(m) != str(row.get("model"))
    ]
    rank = {b: i for i, b in enumerate(BASELINES)}
    return sorted(pairs, key=lambda pair: rank.get(pair[0], len(rank)))


def _significant(value, digits: int) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:.{digits}g}"


# -- figures -----------------------------------------------------------------------------------


def _finite(values) -> np.ndarray:
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    return array[np.isfinite(array)]


def observed_coverage(pit, levels=RELIABILITY_LEVELS) -> np.ndarray:
    """Per nominal level c, the fraction of days whose PIT lies in the central interval
    [(1 - c) / 2, 1 - (1 - c) / 2]: equal to c when the forecasts are calibrated. NaN PITs are left out;
    with none left, all NaN."""
    pit = _finite(pit)
    levels = np.asarray(levels, dtype=np.float64)
    if not pit.size:
        return np.full(levels.shape, np.nan)
    low = (1.0 - levels) / 2.0
    inside = (pit[None, :] >= low[:, None]) & (pit[None, :] <= 1.0 - low[:, None])
    return inside.mean(axis=1)


def _pit_figure(series: pd.DataFrame, colours: dict, title: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    centres = (np.arange(PIT_BINS) + 0.5) / PIT_BINS
    for model, colour in colours.items():
        pit = _finite(series.loc[series["model"] == model, "pit"])
        if pit.size:
            density, _ = np.histogram(pit, bins=PIT_BINS, range=(0.0, 1.0), density=True)
            fig.add_trace(go.Bar(x=centres, y=density, name=html.escape(model), marker_color=colour))
    fig.add_hline(y=1.0, line_dash="dash", line_color="#555", annotation_text="uniform")
    fig.update_layout(
        title=f"{title}: PIT histogram ({PIT_BINS} bins)", xaxis_title="PIT", yaxis_title="density", barmode="group"
    )
    return fig


def _reliability_figure(series: pd.DataFrame, colours: dict, title: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line=dict(dash="dash", color="#888")))
    for model, colour in colours.items():
        observed = observed_coverage(series.loc[series["model"] == model, "pit"])
        if np.isfinite(observed).any():
            fig.add_trace(
                go.Scatter(
                    x=list(RELIABILITY_LEVELS),
                    y=observed,
                    mode="lines+markers",
                    name=html.escape(model),
                    line=dict(color=colour),
                )
            )
    fig.update_layout(
        title=f"{title}: reliability of the central intervals",
        xaxis_title="nominal coverage",
        yaxis_title="observed fraction of days inside",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
    )
    return fig


def rolling_crps(series: pd.DataFrame, model: str, days: int = ROLLING_DAYS) -> pd.Series:
    """The model's mean CRPS over each run of ``days`` scored days, indexed by the run's last date."""
    mine = series[series["model"] == model]
    crps = pd.Series(pd.to_numeric(mine["crps"], errors="coerce").to_numpy(), index=pd.to_datetime(mine["date"]))
    return crps.dropna().sort_index().rolling(days).mean().dropna()


def _crps_figure(series: pd.DataFrame, colours: dict, title: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    for model, colour in colours.items():
        mean = rolling_crps(series, model)
        if len(mean):
            fig.add_trace(
                go.Scatter(
                    x=mean.index, y=mean.to_numpy(), mode="lines", name=html.escape(model), line=dict(color=colour)
                )
            )
    fig.update_layout(title=f"{title}: CRPS, rolling {ROLLING_DAYS}-day mean", yaxis_title="CRPS")
    return fig


# -- page --------------------------------------------------------------------------------------

_SERIES = ("symbol", "key", "horizon")  # one verdict and one set of figures per series


def _series_groups(frame: pd.DataFrame):
    """(series title, rows) per (symbol, key, horizon), in the order the table has them."""
    columns = [c for c in _SERIES if c in frame]
    for values, rows in frame.groupby(columns, sort=False, dropna=False):
        named = dict(zip(columns, values))
        title = f"{named.get('symbol')} {named.get('key')}"
        if "horizon" in named:
            title += f", horizon {format_value(named['horizon'], 'int')}"
        yield title, rows


def _model_order(settings: dict, *frames: pd.DataFrame) -> list[str]:
    """The settings' models first (their order), then any other model the tables hold."""
    order = [str(m) for m in settings.get("models") or []]
    for frame in frames:
        order += [str(m) for m in pd.unique(frame["model"].astype(str)) if str(m) not in order]
    return order


def _setting_text(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_setting_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Index)):
        return ", ".join(_setting_text(v) for v in value)
    if value is None or isinstance(value, float) and math.isnan(value):
        return MISSING
    return str(value)


def _settings_block(settings: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_setting_text(v))}</td></tr>" for k, v in settings.items()
    )
    return f'<table class="settings">{rows}</table>'


def _verdicts(evaluation: pd.DataFrame, models) -> list[str]:
    parts = []
    for _, rows in _series_groups(evaluation):
        rows = rows.assign(model=rows["model"].astype(str))
        baselines = rows[rows["model"].isin(BASELINES)]
        for model in models:
            if model in BASELINES:
                continue
            for _, row in rows[rows["model"] == model].iterrows():
                parts.append(f'<p class="verdict">{html.escape(verdict(row, baselines))}</p>')
    return parts


def _cell(value, column: str, kind: str) -> str:
    number = _number(value) if kind != "text" else None
    exact = f' data-value="{number!r}"' if number is not None and math.isfinite(number) else ""
    css = ' class="text"' if kind == "text" else ""
    return f'<td{css} data-column="{column}"{exact}>{html.escape(format_value(value, kind))}</td>'


def _evaluation_table(evaluation: pd.DataFrame) -> str:
    columns = [c for c in _TABLE_COLUMNS if c[0] in evaluation]
    head = "".join(f"<th>{html.escape(heading)}</th>" for _, heading, _ in columns)
    rows = []
    for _, row in evaluation.iterrows():
        css = ' class="baseline"' if str(row.get("model")) in BASELINES else ""
        cells = "".join(_cell(row[column], column, kind) for column, _, kind in columns)
        rows.append(f"<tr{css}>{cells}</tr>")
    return f'<div class="wide"><table class="evaluation"><tr>{head}</tr>{"".join(rows)}</table></div>'


def _figures(scores: pd.DataFrame, models) -> list[str]:
    if not len(scores):
        return ['<p class="note">No per-day scores: no figures.</p>']
    palette = _PALETTE * (1 + len(models) // len(_PALETTE))
    colour_of = dict(zip(models, palette))  # one colour per model in every figure
    parts = []
    groups = list(_series_groups(scores))
    for i, (title, series) in enumerate(groups[:MAX_FORECAST_CHARTS]):  # a universe: the rest in the files
        series = series.assign(model=series["model"].astype(str))
        colours = {m: colour_of[m] for m in models if (series["model"] == m).any()}
        escaped = html.escape(title)  # plotly reads its text as HTML-like markup
        parts.append(f"<h3>{escaped}</h3>")
        parts.append(_figure_html(_pit_figure(series, colours, escaped), f"pit-{i}"))
        parts.append(_figure_html(_reliability_figure(series, colours, escaped), f"reliability-{i}"))
        parts.append(_figure_html(_crps_figure(series, colours, escaped), f"crps-{i}"))
    if len(groups) > MAX_FORECAST_CHARTS:
        parts.append(
            f'<p class="note">{len(groups) - MAX_FORECAST_CHARTS} more series are in evaluation.csv and scores.csv.</p>'
        )
    return parts


def evaluation_page(evaluation: pd.DataFrame, scores: pd.DataFrame, settings: dict) -> str:
    """The page's HTML text: a complete document, plotly's JavaScript inlined once."""
    from plotly.offline import get_plotlyjs

    models = _model_order(settings, evaluation, scores)
    parts = ["<h1>totowalk forecast evaluation</h1>", _settings_block(settings), "<h2>Verdicts</h2>"]
    parts += _verdicts(evaluation, models) or ['<p class="note">No model besides the baselines.</p>']
    parts += ["<h2>Evaluation</h2>", _evaluation_table(evaluation)]
    parts += ["<h2>Calibration and CRPS over time</h2>", *_figures(scores, models)]
    parts += ["<h2>About the scores</h2>", f'<p class="note">{html.escape(SCORES_NOTE)}</p>']
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>totowalk forecast evaluation</title>"
        f'<style>{_STYLE}{_PAGE_STYLE}</style><script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body>{''.join(parts)}</body></html>\n"
    )
