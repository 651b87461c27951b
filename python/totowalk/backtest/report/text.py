"""Human-readable tables, result files and plots of a :class:`BacktestResult`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..._version import __version__
from ...errors import require_extra
from ..profiles.clean.strategies import CLEAN_STRATEGY_PREFIXES
from ..forecast.kronos import KRONOS_NOT_RUN
from ..stats.daily import PORTFOLIO, daily_table, wide
from ..stats.bootstrap import CONFIDENCE
from ..stats.table import days_per_year_of, performance_table, statistics_settings
from ..profiles.legacy.metrics import BEST_STRATEGY_COLUMNS
from ..forecast.store import json_default
from ..inputs.windows import EVAL_DAYS

DAILY_RETURNS = "daily_returns.csv"


CLEAN_CONVENTIONS = (
    "fill model: {fill_model} (limit orders fill when the bar trades through them, at the limit or the "
    "open on a gap; with both limits of a round trip inside a bar the adverse order is booked unless "
    "'optimistic'); capital: one unit per strategy, MaxDiffAlwaysOn per unit of gross capital (two legs); "
    "headline figures: the daily walk-forward series (each simulation's final day, each day once)"
)


def strategy_table(result) -> pd.DataFrame:
    """Per strategy (every ``*_sharpe`` column with a matching ``*_return``): mean total return
    and mean Sharpe over all (symbol, simulation) rows, plus the mean per symbol when several.

    Returns
    -------
    DataFrame indexed by strategy with columns ``mean_return``, ``mean_sharpe``; in the clean
    profile instead the overall daily walk-forward series' ``return``, ``sharpe``,
    ``avg_daily_return``, ``turnover`` (clean_summary.py) and the window means beside them
    """
    if result.profile == "clean" and "daily_series_days" in result.summary:
        return _with_daily_statistics(_clean_strategy_table(result.summary.loc["(all)"]), result, legacy=False)
    sims = result.simulations
    rows = {}
    for col in sims.columns:
        if not col.endswith("_sharpe"):
            continue
        name = col[: -len("_sharpe")]
        ret = f"{name}_return"
        if ret not in sims.columns:
            continue
        rows[name.replace("_strategy", "")] = {
            "mean_return": float(pd.to_numeric(sims[ret]).mean()),
            "mean_sharpe": float(pd.to_numeric(sims[col]).mean()),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "strategy"
    return _with_daily_statistics(out, result, legacy=True)


def daily_statistics(result) -> pd.DataFrame:
    """The result's daily-series statistics, computed from its rows when it carries none."""
    if getattr(result, "statistics", None) is not None:
        return result.statistics
    return performance_table(daily_of(result), days_per_year_of(result.settings))


def daily_of(result) -> pd.DataFrame:
    return result.daily if getattr(result, "daily", None) is not None else daily_table(result.simulations)


def _with_daily_statistics(table: pd.DataFrame, result, legacy: bool) -> pd.DataFrame:
    """Beside each strategy: the portfolio daily series' Sharpe interval, max drawdown and deflated
    Sharpe (and, in legacy, its Sharpe, which the window means are not)."""
    stats = daily_statistics(result)
    if stats.empty or PORTFOLIO not in stats.index.get_level_values(0):
        return table
    overall = stats.loc[PORTFOLIO].rename(index=lambda p: p.replace("_strategy", ""))
    columns = (["sharpe"] if legacy else []) + ["sharpe_low", "sharpe_high", "max_drawdown", "deflated_sharpe"]
    extra = overall[columns].rename(columns={"sharpe": "daily_sharpe"})
    return table.join(extra, how="left")


def _clean_strategy_table(overall: pd.Series) -> pd.DataFrame:
    rows = {}
    for prefix in CLEAN_STRATEGY_PREFIXES:
        if f"{prefix}_return" not in overall:
            continue
        rows[prefix.replace("_strategy", "")] = {
            **{stat: float(overall[f"{prefix}_{stat}"]) for stat in ("return", "sharpe", "avg_daily_return", "turnover")},
            "window_mean_return": float(overall[f"window_mean_{prefix}_return"]),
            "window_mean_sharpe": float(overall[f"window_mean_{prefix}_sharpe"]),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "strategy"
    return out


def mae_by_key(result) -> pd.Series:
    """Mean |prediction − actual| per key over the evaluated steps (0…5) of every simulation."""
    f = result.forecasts
    f = f[(f["step"] < EVAL_DAYS) & f["actual"].notna()]
    err = (f["actual"] - f["prediction"].astype(np.float64)).abs()
    order = list(dict.fromkeys(result.forecasts["key"]))
    return err.groupby(f["key"]).mean().reindex(order).rename("mae")


def _describe_kronos(info: dict) -> str:
    return (f"{info.get('spec') or 'in-memory model'} ({info['parameters']:,} parameters), {info['sample_count']} paths, "
            f"T {info['temperature']}, top_k {info['top_k']}, top_p {info['top_p']}, window {info['max_context']}, "
            f"seed {info['seed']}: fills kronos_expected_move_pct (Close r_7 of each simulation's frame)")


def format_report(result) -> str:
    """Text report: profile, forecaster, costs, warnings, strategy table, MAE per key, best."""
    s = result.settings
    fc = s.get("forecaster", {})
    lines = [
        f"profile: {result.profile}",
        f"forecaster: {_describe_forecaster(fc)}",
        f"symbols: {', '.join(s['symbols'])}; simulations per symbol: {s['num_simulations']}",
        "fees: " + ", ".join(f"{k} {v}" for k, v in s["fee"].items()),
        s["spread_note"],
    ]
    if s.get("fill_model"):
        lines.append(CLEAN_CONVENTIONS.format(fill_model=s["fill_model"]))
    if result.profile == "legacy":
        lines.append("kronos: " + (KRONOS_NOT_RUN if not s.get("kronos") else _describe_kronos(s["kronos"])))
    lines += [f"WARNING: {w}" for w in result.warnings]
    table = _printed_table(strategy_table(result), result.profile)
    lines += ["", table.to_string(float_format=lambda v: f"{v: .6f}")]
    lines.append(f"daily series: each simulation's final day, equal-weight over symbols; Sharpe with its "
                 f"{_confidence(result)} stationary-bootstrap interval; deflated Sharpe over "
                 f"{_trials(result)} trials (the strategies and the MaxDiff/AlwaysOn offset grids)")
    mae = mae_by_key(result)
    lines += ["", "MAE per key: " + ", ".join(f"{k} {v:.6f}" for k, v in mae.items())]
    summary = result.summary
    if "best_strategy" in summary.columns:
        best = summary["best_strategy"].dropna()
        rule = ("legacy rule: highest mean total return among simple, all_signals, entry_takeprofit, highlow, "
                "ci_guard, maxdiff, with the legacy tie order" if result.profile == "legacy"
                else "clean rule: highest total return of the daily walk-forward series among all strategies")
        lines.append(f"best strategy ({rule}): "
                     + ", ".join(f"{k} {strategy_name(v)}" for k, v in best.items()))
    return "\n".join(lines)


def _printed_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The Sharpe of the daily series and its interval as one column "S [low, high]"."""
    sharpe = "daily_sharpe" if "daily_sharpe" in table else "sharpe"
    if "sharpe_low" not in table or sharpe not in table:
        return table
    out = table.drop(columns=[sharpe, "sharpe_low", "sharpe_high"])
    text = [f"{s:.2f} [{lo:.2f}, {hi:.2f}]" for s, lo, hi in zip(table[sharpe], table["sharpe_low"], table["sharpe_high"])]
    out.insert(out.columns.get_loc("max_drawdown"), "daily_sharpe [95% CI]", text)
    return out


def _confidence(result) -> str:
    return f"{100 * CONFIDENCE:.0f} %"


def _trials(result) -> str:
    stats = daily_statistics(result)
    return f"{int(stats['trials'].max()):,}" if len(stats) else "0"


def strategy_name(label: str) -> str:
    """A best-strategy label of either profile as the strategy table names it: the legacy labels
    (kept as the classic result writes them) and the clean prefixes read the same in a report."""
    column = BEST_STRATEGY_COLUMNS.get(label, f"{label}_return")
    return column[: -len("_return")].replace("_strategy", "")


def _describe_forecaster(fc: dict) -> str:
    if fc.get("kind") == "engine":
        if fc.get("estimator") == "exact":
            how = "exact statistics of the predicted distribution (no sampling; seed-independent)"
        else:
            how = f"sampled estimator, {fc.get('num_samples')} samples, seed {fc.get('seed')}"
        return f"engine, model {fc.get('model')}, {how}, aggregate {fc.get('aggregate')}"
    if fc.get("kind") == "kronos":
        return "Kronos, every key: " + _describe_kronos(fc).split(":")[0]
    return f"function {fc.get('function')}, aggregate {fc.get('aggregate')}"


def write_outputs(result, out_dir, extra: dict | None = None, tables: str = "csv") -> list[Path]:
    """Write simulations and forecasts tables, summary.json and PNG plots into ``out_dir``.

    ``tables`` is "csv" (simulations.csv, forecasts.csv) or "parquet" (the same names with
    .parquet; needs the totowalk[parquet] extra). ``extra`` is merged into summary.json (e.g.
    the model resolution and its warning). Returns the written paths.
    """
    if tables not in ("csv", "parquet"):
        raise ValueError(f"tables must be 'csv' or 'parquet', got {tables!r}")
    if tables == "parquet":
        require_extra("pyarrow", "parquet", "writing Parquet tables")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sims = result.simulations.copy()
    for col in sims.columns:  # list-valued fields (daily profit values) as JSON text
        if sims[col].map(lambda v: isinstance(v, (list, np.ndarray))).any():
            sims[col] = sims[col].map(lambda v: json.dumps(v, default=json_default))
    paths = [out / f"simulations.{tables}", out / f"forecasts.{tables}", out / "summary.json",
             out / DAILY_RETURNS]
    forecasts = result.forecasts
    if tables == "csv":
        sims.to_csv(paths[0], index=False)
        forecasts.to_csv(paths[1], index=False)
    else:  # object columns of mixed types (dates or None) do not convert: store them as text
        sims.astype({c: str for c in sims.columns if sims[c].dtype == object}).to_parquet(paths[0], index=False)
        forecasts.to_parquet(paths[1], index=False)
    daily = daily_of(result)
    daily[["date", "symbol", "strategy", "return", "turnover", "in_market"]].to_csv(paths[3], index=False)
    stats = daily_statistics(result)
    body = {
        "profile": result.profile,
        "settings": result.settings,
        "warnings": list(result.warnings),
        "versions": _versions(),
        "strategy_table": strategy_table(result).to_dict(orient="index"),
        "mae_by_key": mae_by_key(result).to_dict(),
        "summary": {str(k): v for k, v in result.summary.to_dict(orient="index").items()},
        "statistics": statistics_json(stats),
        "statistics_settings": statistics_settings(list(pd.unique(daily["strategy"])) if len(daily) else []),
        **(extra or {}),
    }
    _write_json(paths[2], body)
    paths += plot_results(result, out)
    from .html import write_html_report  # plotly is imported only when a report is written

    paths.append(write_html_report(out))
    return paths


def statistics_json(stats: pd.DataFrame) -> dict:
    """{symbol: {strategy: {statistic: value}}} of a :func:`.performance.performance_table`."""
    out: dict = {}
    for (symbol, strategy), row in stats.iterrows():
        out.setdefault(str(symbol), {})[strategy] = {k: float(v) for k, v in row.items()}
    return out


def _write_json(path: Path, body: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2, default=json_default, allow_nan=True))
    os.replace(tmp, path)


def _versions() -> dict:
    import matplotlib
    import torch

    from ...provenance import git_commit

    return {"totowalk": __version__, "commit": git_commit(), "torch": torch.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "matplotlib": matplotlib.__version__}


def plot_results(result, out_dir) -> list[Path]:
    """cumulative_returns.png (per strategy, the equity curve of the daily walk-forward series:
    each simulation's final day compounded in date order, each day once; with several symbols
    the equal-weight portfolio, as the title says) and one forecast_vs_actual_<symbol>.png per
    symbol (per key, the distinct one-step forecasts and their outcomes by target date). Values
    are plotted in percent."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.dates
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    paths = []
    sims = result.simulations
    symbols = list(dict.fromkeys(sims["symbol"]))
    daily = daily_of(result)
    fig, ax = plt.subplots(figsize=(9, 5))
    if len(daily):
        returns = wide(daily, PORTFOLIO).fillna(0.0)  # a strategy missing on a date holds cash
        for name in returns.columns:
            ax.plot(returns.index, 100.0 * (np.cumprod(1.0 + returns[name].to_numpy()) - 1.0),
                    label=name.replace("_strategy", ""))
        if isinstance(returns.index, pd.DatetimeIndex):
            locator = matplotlib.dates.AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
    ax.set_xlabel("date (each simulation's final day)")
    ax.set_ylabel("cumulative return (%)")
    pooled = (f"equal-weight portfolio, mean over {len(symbols)} symbols ({_symbol_list(symbols)})"
              if len(symbols) > 1 else f"symbol {symbols[0]}")
    ax.set_title(f"daily walk-forward equity per strategy, {pooled}, {result.profile} profile", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    paths.append(out / "cumulative_returns.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)

    for symbol in symbols:
        paths.append(out / f"forecast_vs_actual_{_file_safe(symbol)}.png")
        _plot_forecasts(result, symbol, paths[-1], plt)
    return paths


def _plot_forecasts(result, symbol, path: Path, plt) -> None:
    import matplotlib
    f = result.forecasts
    mine = f[f["symbol"] == symbol]
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
    fig.suptitle(f"one-step forecast vs actual, {symbol} ({result.profile} profile)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _symbol_list(symbols, most: int = 6) -> str:
    shown = ", ".join(map(str, symbols[:most]))
    return shown + (f", … {len(symbols) - most} more" if len(symbols) > most else "")


def _file_safe(symbol) -> str:
    """A symbol as part of a file name (BRK/B -> BRK_B)."""
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in str(symbol)) or "series"


__all__ = ["DAILY_RETURNS", "daily_statistics", "format_report", "mae_by_key", "plot_results", "statistics_json",
           "strategy_table", "write_outputs"]
