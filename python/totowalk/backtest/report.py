"""Human-readable tables, result files and plots of a :class:`BacktestResult`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from .store import json_default
from .windows import EVAL_DAYS


def strategy_table(result) -> pd.DataFrame:
    """Per strategy (every ``*_sharpe`` column with a matching ``*_return``): mean total return
    and mean Sharpe over all (symbol, simulation) rows, plus the mean per symbol when several.

    Returns
    -------
    DataFrame indexed by strategy with columns ``mean_return``, ``mean_sharpe``
    """
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
    return out


def mae_by_key(result) -> pd.Series:
    """Mean |prediction − actual| per key over the evaluated steps (0…5) of every simulation."""
    f = result.forecasts
    f = f[(f["step"] < EVAL_DAYS) & f["actual"].notna()]
    err = (f["actual"] - f["prediction"].astype(np.float64)).abs()
    order = list(dict.fromkeys(result.forecasts["key"]))
    return err.groupby(f["key"]).mean().reindex(order).rename("mae")


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
    lines += [f"WARNING: {w}" for w in result.warnings]
    table = strategy_table(result)
    lines += ["", table.to_string(float_format=lambda v: f"{v: .6f}")]
    mae = mae_by_key(result)
    lines += ["", "MAE per key: " + ", ".join(f"{k} {v:.6f}" for k, v in mae.items())]
    summary = result.summary
    if "best_strategy" in summary.columns:
        best = summary["best_strategy"].dropna()
        rule = ("legacy rule: highest mean total return among simple, all_signals, takeprofit, highlow, ci_guard, "
                "maxdiff, with the legacy tie order" if result.profile == "legacy"
                else "clean rule: highest mean total return among all strategies")
        lines.append(f"best strategy ({rule}): " + ", ".join(f"{k} {v}" for k, v in best.items()))
    return "\n".join(lines)


def _describe_forecaster(fc: dict) -> str:
    if fc.get("kind") == "engine":
        return (f"engine, model {fc.get('model')}, {fc.get('num_samples')} samples, seed "
                f"{fc.get('seed')}, aggregate {fc.get('aggregate')}")
    return f"function {fc.get('function')}, aggregate {fc.get('aggregate')}"


def write_outputs(result, out_dir, extra: dict | None = None) -> list[Path]:
    """Write simulations.csv, forecasts.csv, summary.json and PNG plots into ``out_dir``.

    ``extra`` is merged into summary.json (e.g. the model resolution and its warning).
    Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sims = result.simulations.copy()
    for col in sims.columns:  # list-valued fields (daily profit values) as JSON text
        if sims[col].map(lambda v: isinstance(v, (list, np.ndarray))).any():
            sims[col] = sims[col].map(lambda v: json.dumps(v, default=json_default))
    paths = [out / "simulations.csv", out / "forecasts.csv", out / "summary.json"]
    sims.to_csv(paths[0], index=False)
    result.forecasts.to_csv(paths[1], index=False)
    body = {
        "profile": result.profile,
        "settings": result.settings,
        "warnings": list(result.warnings),
        "versions": _versions(),
        "strategy_table": strategy_table(result).to_dict(orient="index"),
        "mae_by_key": mae_by_key(result).to_dict(),
        "summary": {str(k): v for k, v in result.summary.to_dict(orient="index").items()},
        **(extra or {}),
    }
    _write_json(paths[2], body)
    paths += plot_results(result, out)
    return paths


def _write_json(path: Path, body: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2, default=json_default, allow_nan=True))
    os.replace(tmp, path)


def _versions() -> dict:
    import matplotlib
    import torch

    return {"totowalk": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "matplotlib": matplotlib.__version__}


def plot_results(result, out_dir) -> list[Path]:
    """cumulative_returns.png (per strategy, compounding each simulation's total return from the
    oldest window to the newest, averaged over symbols) and forecast_vs_actual.png (per key,
    the first symbol's distinct forecasts and their outcomes by target date)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    paths = []
    sims = result.simulations
    table = strategy_table(result)
    fig, ax = plt.subplots(figsize=(9, 5))
    for name in table.index:
        col = f"{name}_return" if f"{name}_return" in sims else f"{name}_strategy_return"
        per_sim = pd.to_numeric(sims[col]).groupby(sims["simulation"]).mean().sort_index(ascending=False)
        ax.plot(np.arange(len(per_sim)), np.cumprod(1.0 + per_sim.to_numpy()) - 1.0, label=name)
    ax.set_xlabel("simulation window (oldest → newest)")
    ax.set_ylabel("cumulative return")
    ax.set_title(f"cumulative return per strategy ({result.profile} profile)")
    ax.legend(fontsize=7, ncol=2)
    paths.append(out / "cumulative_returns.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)

    f = result.forecasts
    first = f[f["symbol"] == f["symbol"].iloc[0]]
    keys = list(dict.fromkeys(first["key"]))
    dated = isinstance(result.forecasts["target_date"].dropna().iloc[0], pd.Timestamp) \
        if result.forecasts["target_date"].notna().any() else False
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 2.4 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        part = first[first["key"] == key].drop_duplicates("context_end").sort_values("context_end")
        part = part[part["target_date"].notna()]  # a forecast past the data has no outcome to show
        target = pd.to_datetime(part["target_date"]) if dated else part["context_end"] + 1
        ax.plot(target, part["prediction"], marker="o", ms=3, label="forecast")
        ax.plot(target, part["actual"], marker="x", ms=3, label="actual")
        ax.set_ylabel(f"{key} % change")
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("target date" if dated else "target row")
    fig.suptitle(f"forecast vs actual, {first['symbol'].iloc[0]} ({result.profile} profile)")
    paths.append(out / "forecast_vs_actual.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


__all__ = ["format_report", "mae_by_key", "plot_results", "strategy_table", "write_outputs"]
