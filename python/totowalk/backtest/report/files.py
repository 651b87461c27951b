"""A run folder's result files: the tables, summary.json, daily_returns.csv, the plots and report.html."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import require_extra
from ...provenance import versions
from ..forecast.store import json_default
from ..stats.daily import DAILY_COLUMNS
from ..stats.table import statistics_settings
from .plots import plot_results
from .text import daily_of, daily_statistics, mae_by_key, strategy_table

__all__ = ["DAILY_RETURNS", "statistics_json", "write_outputs"]

DAILY_RETURNS = "daily_returns.csv"


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
    paths = [out / f"simulations.{tables}", out / f"forecasts.{tables}", out / "summary.json", out / DAILY_RETURNS]
    forecasts = result.forecasts
    if tables == "csv":
        sims.to_csv(paths[0], index=False)
        forecasts.to_csv(paths[1], index=False)
    else:  # object columns of mixed types (dates or None) do not convert: store them as text
        sims.astype({c: str for c in sims.columns if sims[c].dtype == object}).to_parquet(paths[0], index=False)
        forecasts.to_parquet(paths[1], index=False)
    daily = daily_of(result)
    daily[list(DAILY_COLUMNS)].to_csv(paths[3], index=False)
    stats = daily_statistics(result)
    body = {
        "profile": result.profile,
        "settings": result.settings,
        "warnings": list(result.warnings),
        "versions": versions(),
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
    """{symbol: {strategy: {statistic: value}}} of a :func:`..stats.table.performance_table`."""
    out: dict = {}
    for (symbol, strategy), row in stats.iterrows():
        out.setdefault(str(symbol), {})[strategy] = {k: float(v) for k, v in row.items()}
    return out


def _write_json(path: Path, body: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2, default=json_default, allow_nan=True))
    os.replace(tmp, path)
