"""report.html's calibration section: summary.json's calibration block (exact PIT and CRPS, when the
forecaster gives its predictive distribution; of the sampled paths for Kronos) as a verdict sentence
and a table of its blocks."""

from __future__ import annotations

import html
import json

from .text import calibration_blocks, calibration_verdict, format_p, scored_as


def _calibration_section(calibration: dict) -> list:
    """Heading, the per-key table and the verdict sentence of summary.json's calibration block."""
    parts = ["<h2>Calibration of the forecasts</h2>"]
    if not calibration.get("available"):
        return parts + [f'<p class="note">Not available: {html.escape(str(calibration.get("reason")))}.</p>']
    overall = calibration["overall"]
    parts.append(
        f'<p class="verdict">{html.escape(calibration_verdict(calibration))}.</p><p class="note">'
        f"{html.escape(_first_upper(scored_as(calibration)))}"
        f" of each of {overall['forecasts']:,} distinct forecasts with a known outcome "
        f"({overall['days']:,} days), each counted once though consecutive simulations share them; an interval's "
        "coverage is the share of outcomes inside it, with the exact binomial p against its nominal rate.</p>"
    )
    return parts + [_calibration_table(calibration)]


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


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
