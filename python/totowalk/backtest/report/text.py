"""A :class:`BacktestResult` as text: the printed report and the tables it is made of."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from ..forecast.kronos import KRONOS_NOT_RUN
from ..profiles.clean.selection import DISTINGUISHABLE
from ..profiles.legacy.metrics import BEST_STRATEGY_COLUMNS
from ..profiles.profile import STRATEGY_PREFIXES
from ..stats import forecast_error
from ..stats.bootstrap import CONFIDENCE
from ..stats.calibration import CALIBRATION_LEVEL, calibration_summary
from ..stats.daily import PORTFOLIO, daily_table
from ..stats.table import MIN_INTERVAL_DAYS, days_per_year_of, performance_table

CLEAN_CONVENTIONS = (
    "fill model: {fill_model} (a limit fills when the bar trades through it, at the limit or at the open "
    "on a gap; a round trip the bar cannot settle, its entry during the bar and its exit not reached by the "
    "close, is booked {how}; the adverse and optimistic bounds of the same orders are reported beside it, "
    "docs/FILLS.md); capital: one unit per strategy, MaxDiffAlwaysOn per unit of gross capital (two legs); "
    "headline figures: the daily walk-forward series (each simulation's final day, each day once)"
)
FILL_MODEL_BOOKING = {
    "expected": "as the expectation over the bar's intrabar paths (a driftless Brownian bridge through its "
    "open, high, low and close)",
    "adverse": "as if the exit never filled (the lower bound)",
    "optimistic": "as if the exit filled whenever the bar traded through it (the upper bound)",
}

TERMINAL_WIDTH = 100  # the printed strategy table fits; every column is in summary.json and the CSVs


def strategy_table(result) -> pd.DataFrame:
    """Per strategy (every ``*_sharpe`` column with a matching ``*_return``): mean total return
    and mean Sharpe over all (symbol, simulation) rows, plus the mean per symbol when several.

    Returns
    -------
    DataFrame indexed by strategy with columns ``mean_return``, ``mean_sharpe``; in the clean
    profile instead the overall daily walk-forward series' ``return``, ``sharpe``,
    ``avg_daily_return``, ``turnover`` (profiles/clean/headline.py) and the window means beside them
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
    order = [p.replace("_strategy", "") for p in STRATEGY_PREFIXES]  # one order in every table
    out = out.reindex([n for n in order if n in out.index] + [n for n in out.index if n not in order])
    out.index.name = "strategy"
    return _with_daily_statistics(out, result, legacy=True)


def daily_statistics(result) -> pd.DataFrame:
    """The result's daily-series statistics, computed from its rows when it carries none."""
    if getattr(result, "statistics", None) is not None:
        return result.statistics
    return performance_table(daily_of(result), days_per_year_of(result.settings))


def daily_of(result) -> pd.DataFrame:
    return (
        result.daily
        if getattr(result, "daily", None) is not None
        else daily_table(result.simulations, STRATEGY_PREFIXES)
    )


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
    for prefix in STRATEGY_PREFIXES:
        if f"{prefix}_return" not in overall:
            continue
        rows[prefix.replace("_strategy", "")] = {
            **{
                stat: float(overall[f"{prefix}_{stat}"])
                for stat in ("return", "sharpe", "avg_daily_return", "turnover")
            },
            # the fill bracket: the same orders booked by the adverse and optimistic bounds
            **{
                f"return_{bound}": float(overall.get(f"{prefix}_return_{bound}", overall[f"{prefix}_return"]))
                for bound in ("adverse", "optimistic")
            },
            "window_mean_return": float(overall[f"window_mean_{prefix}_return"]),
            "window_mean_sharpe": float(overall[f"window_mean_{prefix}_sharpe"]),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "strategy"
    return out


def mae_by_key(result) -> pd.Series:
    """Mean |prediction − actual| per key over the evaluated steps (0…5) of every simulation: the
    result's own (``BacktestResult.mae``), else computed from its forecasts table."""
    if getattr(result, "mae", None) is not None:
        return result.mae
    forecasts = result.forecasts
    return forecast_error.mae_by_key(forecast_error.absolute_errors(forecasts), dict.fromkeys(forecasts["key"]))


def calibration_of(result) -> dict:
    """The result's calibration block, computed from its forecasts table when it carries none."""
    if getattr(result, "calibration", None) is not None:
        return result.calibration
    return calibration_summary(result.forecasts, result.settings.get("forecaster"))


CALIBRATION_ROWS = "  {:<10}{:>9}{:>11}  {:<17}{:<17}{:<17}{}"  # key, forecasts, CRPS, 50/80/95 %, PIT KS


def scored_as(calibration: dict) -> str:
    """How the forecasts were scored: the exact mixture, or Kronos' sampled paths."""
    if calibration.get("estimator") == "sampled paths":
        return (
            f"PIT and CRPS of the empirical distribution of {calibration.get('paths')} sampled paths "
            f"at seed {calibration.get('seed')}"
        )
    return "exact PIT and CRPS of the predicted mixture"


def calibration_lines(calibration: dict) -> list:
    """The calibration block as printed: what was scored, one row per key and all keys, the verdict."""
    if not calibration.get("available"):
        return [f"calibration: not available: {calibration.get('reason')}"]
    overall = calibration["overall"]
    head = (
        f"calibration ({scored_as(calibration)}): {overall['forecasts']:,} distinct forecasts "
        f"with known outcomes on {overall['days']:,} days, each counted once though consecutive simulations "
        "share them; covered: share of outcomes inside the central interval (exact binomial p)"
    )
    lines = textwrap.wrap(head, TERMINAL_WIDTH, subsequent_indent="  ")
    lines.append(
        CALIBRATION_ROWS.format("key", "forecasts", "mean CRPS", "50 % (p)", "80 % (p)", "95 % (p)", "PIT KS (p)")
    )
    for name, block in calibration_blocks(calibration).items():
        lines.append(_calibration_row(name, block))
    lines += textwrap.wrap(calibration_verdict(calibration), TERMINAL_WIDTH, subsequent_indent="  ")
    return lines


def calibration_blocks(calibration: dict) -> dict:
    """{name: block}: each key's, then "all keys" (pooled)."""
    return {**calibration["keys"], "all keys": calibration["overall"]}


def _calibration_row(name: str, block: dict) -> str:
    cells = [f"{100 * block[f'coverage_{n}']:.1f} % ({format_p(block[f'coverage_{n}_p'])})" for n in (50, 80, 95)]
    ks = f"{block['pit_ks']:.3f} ({format_p(block['pit_ks_p'])})"
    return CALIBRATION_ROWS.format(name, f"{block['forecasts']:,}", f"{block['mean_crps']:.6f}", *cells, ks)


def calibration_verdict(calibration: dict) -> str:
    """One sentence: which keys the PIT KS test calls miscalibrated at the block's level."""
    level = calibration.get("level", CALIBRATION_LEVEL)
    blocks = calibration_blocks(calibration)
    bad = [name for name, block in blocks.items() if block["pit_ks_p"] < level]
    fine = [name for name in blocks if name not in bad]
    parts = [f"{_joined(bad)} miscalibrated at the {100 * level:g} % level"] if bad else []
    parts += [f"no evidence of miscalibration at the {100 * level:g} % level for {_joined(fine)}"] if fine else []
    return "PIT KS: " + "; ".join(parts)


def _joined(names: list) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def format_p(p) -> str:
    """A p-value in three decimals, "<0.001" below that, "n/a" when undefined."""
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _describe_kronos(info: dict) -> str:
    return (
        f"{info.get('spec') or 'in-memory model'} ({info['parameters']:,} parameters), {info['sample_count']} paths, "
        f"T {info['temperature']}, top_k {info['top_k']}, top_p {info['top_p']}, window {info['max_context']}, "
        f"seed {info['seed']}{', ' + info['precision'] if info.get('precision') else ''}: fills "
        "kronos_expected_move_pct (Close r_7 of each simulation's frame)"
    )


def format_report(result) -> str:
    """Text report: profile, forecaster, costs, warnings, strategy table, MAE per key, calibration, best."""
    s = result.settings
    fc = s.get("forecaster", {})
    lines = [
        f"profile: {result.profile}",
        f"forecaster: {_describe_forecaster(fc)}",
        f"symbols: {_symbols_line(s['symbols'])}; simulations per symbol: {s['num_simulations']}",
        "fees: " + per_symbol_values(s["fee"]),
        s["spread_note"],
    ]
    if s.get("bars_per_year"):
        lines.append(
            f"annualised with {s['bars_per_year']:g} bars a year (given for bars shorter than a day; "
            'a "day" below is one bar)'
        )
    if s.get("fill_model"):
        model = s["fill_model"]
        lines.append(CLEAN_CONVENTIONS.format(fill_model=model, how=FILL_MODEL_BOOKING.get(model, "?")))
    if result.profile == "legacy":
        lines.append("kronos: " + (KRONOS_NOT_RUN if not s.get("kronos") else _describe_kronos(s["kronos"])))
    lines += [f"WARNING: {w}" for w in result.warnings]
    table = _printed_table(strategy_table(result), result.profile)
    lines += ["", table.to_string(line_width=TERMINAL_WIDTH)]
    lines.append(
        f"daily series: each simulation's final day, equal-weight over symbols, {_days(result)}; Sharpe with its "
        f"{_confidence(result)} stationary-bootstrap interval (mean block {_blocks(result)}, sized to each "
        f"series' autocorrelation); deflated Sharpe over {_trials(result)} trials (the strategies and the "
        "MaxDiff/AlwaysOn offset grids)"
    )
    mae = mae_by_key(result)
    lines += ["", "MAE per key: " + ", ".join(f"{k} {v:.6f}" for k, v in mae.items())]
    lines += calibration_lines(calibration_of(result))
    summary = result.summary
    if "best_strategy_selected" in summary.columns:
        lines += best_strategy_lines(summary)
    elif "best_strategy" in summary.columns:
        best = summary["best_strategy"].dropna()
        rule = (
            "legacy rule: highest mean total return among simple, all_signals, entry_takeprofit, highlow, "
            "ci_guard, maxdiff, with the legacy tie order"
        )
        lines.append(f"best strategy ({rule}): " + ", ".join(f"{k} {strategy_name(v)}" for k, v in best.items()))
    return "\n".join(lines)


def best_strategy_verdict(row) -> str:
    """One group's out-of-sample choice and whether it is distinguishable from chance, in words."""
    selected = row.get("best_strategy_selected")
    first, last = int(row.get("best_strategy_selection_days", 0)), int(row.get("best_strategy_holdout_days", 0))
    if selected is None or (isinstance(selected, float) and np.isnan(selected)):
        return f"no strategy selected ({first + last} days: each half needs at least 2)"
    name = strategy_name(selected)
    evidence = (
        f"selected on the first {first} days; on the last {last} days return "
        f"{100 * row['best_strategy_holdout_return']:+.2f} %, Sharpe {_sharpe(row['best_strategy_holdout_sharpe'])}; "
        f"deflated Sharpe {_dsr(row['best_strategy_deflated_sharpe'])} over {int(row['best_strategy_trials']):,} trials"
    )
    if row.get("best_strategy_distinguishable"):
        return f"{name} ({evidence})"
    return f"no strategy is distinguishable from chance ({name} {evidence}, below {DISTINGUISHABLE})"


def _sharpe(value) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "undefined (no variation)"


def _dsr(value) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "undefined (a series without variation)"


def best_strategy_lines(summary: pd.DataFrame, most: int = 6) -> list:
    """The clean best-strategy verdict: the portfolio's in full, then at most ``most`` symbols'."""
    lines = []
    if PORTFOLIO in summary.index:
        lines.append(f"best strategy, {PORTFOLIO}: {best_strategy_verdict(summary.loc[PORTFOLIO])}")
    symbols = [s for s in summary.index if s != PORTFOLIO]
    if len(symbols) > 1:
        named = [
            f"{s} {strategy_name(summary.loc[s, 'best_strategy'])}"
            for s in symbols
            if isinstance(summary.loc[s, "best_strategy"], str)
        ]
        shown = ", ".join(named[:most]) + (f", … {len(named) - most} more" if len(named) > most else "")
        lines.append(
            f"per symbol: {len(named)} of {len(symbols)} symbols have a strategy distinguishable from chance"
            + (f" ({shown})" if named else "")
        )
    return lines


def _sharpe_text(sharpe, low, high) -> str:
    """``S [low, high]``; an undefined Sharpe (a constant series) and a missing interval (too few days)
    are said, not printed as 0 or nan."""
    if not np.isfinite(sharpe):
        return "undefined (constant)"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{sharpe:.2f} [no interval]"
    return f"{sharpe:.2f} [{low:.2f}, {high:.2f}]"


def _printed_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The strategy table as printed: a few columns, returns in percent, the daily series' Sharpe
    and its interval as one column "S [low, high]"; the full table is in the output files."""
    sharpe = "daily_sharpe" if "daily_sharpe" in table else "sharpe"
    out = pd.DataFrame(index=table.index)

    def percent(column):
        return [f"{100 * v:.2f}" if np.isfinite(v) else "n/a" for v in table[column]]

    def number(column, digits):
        return [f"{v:.{digits}f}" if np.isfinite(v) else "n/a" for v in table[column]]

    if profile == "clean":
        out["return %"] = percent("return")
        out["adverse %"] = percent("return_adverse")
        out["optim. %"] = percent("return_optimistic")
        out["turnover"] = number("turnover", 2)
    else:
        out["mean return %"] = percent("mean_return")
        out["mean Sharpe"] = number("mean_sharpe", 2)
    if "sharpe_low" in table and sharpe in table:
        out["Sharpe [95% CI]"] = [
            _sharpe_text(s, lo, hi) for s, lo, hi in zip(table[sharpe], table["sharpe_low"], table["sharpe_high"])
        ]
    if "max_drawdown" in table:
        out["max DD %"] = percent("max_drawdown")
    if "deflated_sharpe" in table:
        out["DSR"] = number("deflated_sharpe", 3)
    return out


def _confidence(result) -> str:
    return f"{100 * CONFIDENCE:.0f} %"


def _days(result) -> str:
    stats = daily_statistics(result)
    if not len(stats):
        return "no days"
    low, high = int(stats["days"].min()), int(stats["days"].max())
    few = (
        f" (too short to judge: under {MIN_INTERVAL_DAYS} days, no Sharpe intervals, and the annualised figures "
        "rest on too few days to mean much)"
        if low < MIN_INTERVAL_DAYS
        else ""
    )
    return (f"{high:,} days" if low == high else f"{low:,} to {high:,} days") + few


def _blocks(result) -> str:
    stats = daily_statistics(result)
    if not len(stats) or "bootstrap_block" not in stats:
        return "n/a"
    low, high = int(stats["bootstrap_block"].min()), int(stats["bootstrap_block"].max())
    return f"{low} day{'s' if low != 1 else ''}" if low == high else f"{low} to {high} days"


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


PHASE_ORDER = (
    "load",
    "prepare",
    "forecast",
    "scores",
    "kronos",
    "strategies",
    "tables",
    "write_tables",
    "plots",
    "report",
)


def timings_line(timings: dict, total: float | None = None) -> str:
    """One line of seconds per phase, the whole run's, and how many times its forecast that is."""
    phases = [p for p in PHASE_ORDER if p in timings] + [p for p in timings if p not in PHASE_ORDER and p != "total"]
    text = ", ".join(f"{p} {timings[p]:.1f}" for p in phases)
    whole = total if total is not None else timings.get("total")
    line = f"seconds: {text}"
    if whole is not None:
        line += f"; whole run {whole:.1f}"
        if timings.get("forecast"):
            line += f" ({whole / timings['forecast']:.2f}x the forecast)"
    return line


def written_line(paths, folder) -> str:
    """Where the files are, in a line: the tables and report by name, the plots counted."""
    names = [p.name for p in paths]
    plots = [n for n in names if n.endswith(".png")]
    named = [n for n in names if not n.endswith(".png")]
    return f"wrote {', '.join(named)} and {len(plots)} PNG plot{'s' if len(plots) != 1 else ''} to {folder}"


def symbol_list(symbols, most: int = 6) -> str:
    shown = ", ".join(map(str, symbols[:most]))
    return shown + (f", … {len(symbols) - most} more" if len(symbols) > most else "")


def _symbols_line(symbols) -> str:
    """Every symbol of a handful; of a universe, the count, the first few and the last."""
    if len(symbols) <= 12:
        return ", ".join(map(str, symbols))
    return f"{len(symbols):,} ({', '.join(map(str, symbols[:5]))}, … {symbols[-1]})"


def per_symbol_values(values: dict) -> str:
    """A per-symbol setting in a line: one value when every symbol has it, else each distinct value
    with the count (and, for a few, the names) of its symbols."""
    groups: dict = {}
    for symbol, value in values.items():
        groups.setdefault(value, []).append(symbol)
    if len(groups) == 1:
        (value,) = groups
        return f"{value} (every symbol)" if len(values) > 1 else f"{next(iter(values))} {value}"
    if len(values) <= 12:
        return ", ".join(f"{k} {v}" for k, v in values.items())
    return "; ".join(f"{value} for {len(names):,} symbols ({symbol_list(names, 3)})" for value, names in groups.items())


__all__ = [
    "best_strategy_lines",
    "best_strategy_verdict",
    "calibration_blocks",
    "calibration_lines",
    "calibration_of",
    "calibration_verdict",
    "daily_of",
    "daily_statistics",
    "format_report",
    "mae_by_key",
    "per_symbol_values",
    "timings_line",
    "written_line",
    "strategy_name",
    "strategy_table",
    "symbol_list",
]
