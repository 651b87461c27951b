"""report.html's settings block: the run's settings, a long symbol list shortened to its count, first and
last names; a per-symbol setting such as the fee on one line when every symbol shares it, else its values'
counts and a collapsed table of which symbols hold which."""

from __future__ import annotations

import html
import json
from collections import Counter

from ..stats.daily import PORTFOLIO

SETTINGS_SYMBOLS = 12  # a longer symbol list shows its count, first few and last names


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
        *((_setting_label(name, s), _setting_summary(values)) for name, values in per_symbol.items()),
        ("spread", s.get("spread_note")),
        ("fill model", s.get("fill_model")),
        ("commit", versions.get("commit")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if k != "commit")),
    ]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items if v not in (None, "")
    )
    return f'<table class="settings">{rows}</table>' + _differing_settings_table(per_symbol)


def _setting_label(name: str, settings: dict) -> str:
    """A per-symbol setting's row heading; the year's length of bars shorter than a day counts bars."""
    if name == "trading_days" and settings.get("bars_per_year"):
        return 'bars a year (a "day" in this report is one bar)'
    return name.replace("_", " ")


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
