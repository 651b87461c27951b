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
from .html import INCOMPLETE, write_html_report  # plotly itself is imported only when a report is drawn
from .plots import plot_results
from .text import calibration_of, daily_of, daily_statistics, mae_by_key, strategy_table

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
    marker = out / INCOMPLETE  # while the outputs are written: a folder that keeps it was interrupted
    marker.write_text(
        "totowalk is writing this run's outputs; a folder that keeps this file was interrupted while writing "
        "them: re-run the same command with --resume to finish\n"
    )
    sims = result.simulations.copy()
    for col in sims.columns:  # list-valued fields (daily profit values) as JSON text
        if sims[col].map(lambda v: isinstance(v, (list, np.ndarray))).any():
            sims[col] = sims[col].map(lambda v: json.dumps(v, default=json_default))
    paths = [out / f"simulations.{tables}", out / f"forecasts.{tables}", out / "summary.json", out / DAILY_RETURNS]
    forecasts = result.forecasts
    if tables == "csv":
        _atomic(paths[0], lambda p: sims.to_csv(p, index=False))
        _atomic(paths[1], lambda p: forecasts.to_csv(p, index=False))
    else:  # object columns of mixed types (dates or None) do not convert: store them as text
        text = sims.astype({c: str for c in sims.columns if sims[c].dtype == object})
        _atomic(paths[0], lambda p: text.to_parquet(p, index=False))
        _atomic(paths[1], lambda p: forecasts.to_parquet(p, index=False))
    daily = daily_of(result)
    _atomic(paths[3], lambda p: daily[list(DAILY_COLUMNS)].to_csv(p, index=False))
    stats = daily_statistics(result)
    body = {
        "profile": result.profile,
        "settings": result.settings,
        "warnings": list(result.warnings),
        "versions": versions(),
        "strategy_table": strategy_table(result).to_dict(orient="index"),
        "mae_by_key": mae_by_key(result).to_dict(),
        "calibration": calibration_of(result),
        "summary": {str(k): v for k, v in result.summary.to_dict(orient="index").items()},
        "statistics": statistics_json(stats),
        "statistics_settings": statistics_settings(list(pd.unique(daily["strategy"])) if len(daily) else []),
        **(extra or {}),
    }
    _write_json(paths[2], body)
    paths += plot_results(result, out)
    paths.append(write_html_report(out, complete=False))
    marker.unlink()  # last: every output is in place
    return paths


def _atomic(path: Path, write) -> None:
    """``write(temporary path)``, then move the file into place: a reader never sees half a table."""
    tmp = path.with_name(path.name + ".partial")
    write(tmp)
    os.replace(tmp, path)


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
