"""report.html rendered in headless Chromium. A small run: no JavaScript errors, every chart drew
its traces at a non-zero size, the screenshot is not blank, and the page's statistics are
summary.json's. A universe (more than MAX_FORECAST_CHARTS symbols): a script in the probed page
sorts, filters and pages the one per-symbol table and clicks a row, and records what it saw; the
rows' statistics are summary.json's, formatted as the page's Python formats them (exact ties, -0,
infinities and NaN included), and the clicked symbol's forecasts are drawn. Skips (saying why)
only when no Chromium binary is installed."""

import html
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import mean5, prices
from test_report_scale import ODD, STRATEGIES, fabricated_run, universe_run

from totowalk.backtest import backtest
from totowalk.backtest.report.files import write_outputs
from totowalk.backtest.report.html import REPORT, write_html_report
from totowalk.backtest.report.page_tables import _COLUMNS, _fmt
from totowalk.backtest.report.page_universe import UNIVERSE_PAGE
from totowalk.backtest.stats.daily import PORTFOLIO
from totowalk.cli import main

BROWSERS = ("chromium-headless-shell", "chrome-headless-shell", "chromium", "chromium-browser", "google-chrome")
BROWSER = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium binary (.ci/run installs chromium-headless-shell)")

# records uncaught errors and console.error calls, then writes them into the page for --dump-dom
PROBE_HEAD = """<script>window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message)));
const __consoleError = console.error;
console.error = (...a) => { window.__errors.push(a.map(String).join(' ')); __consoleError(...a); };
</script>"""
PROBE_TAIL = """<script>setTimeout(() => { const d = document.createElement('pre'); d.id = 'js-errors';
d.textContent = JSON.stringify(window.__errors); document.body.appendChild(d); }, 2000);</script>"""


def _chromium(*args, url):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=15000",
        "--enable-logging=stderr",
        "--v=0",
    ]
    done = subprocess.run([BROWSER, *flags, *args, url], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _probed_dom(out, script: str = ""):
    """The DOM of ``out``'s report.html after its scripts, ``script`` (appended to the body) and the error probe ran."""
    probe = out / "probed.html"
    page = (out / REPORT).read_text()
    tail = script + PROBE_TAIL + "</body>"
    probe.write_text(page.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", tail, 1))
    return _chromium("--dump-dom", url=probe.as_uri())


def _assert_no_javascript_errors(dom):
    found = re.search(r'<pre id="js-errors">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, "the page's scripts did not run to the end"
    assert json.loads(html.unescape(found.group(1))) == []
    assert "Uncaught" not in dom.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    data = {"AAA": prices(90, 3), "BBB": prices(90, 4)}
    result = backtest(data, num_simulations=12, forecaster=mean5, profile="clean")
    write_outputs(result, out)
    return out, json.loads((out / "summary.json").read_text()), _probed_dom(out)


def test_the_report_renders_without_javascript_errors(run):
    _assert_no_javascript_errors(run[2])


def test_every_chart_drew_its_traces_at_a_non_zero_size(run):
    out, summary, dom = run
    pieces = re.split(r'<div class="chart-box" data-chart="', dom.stdout)[1:]
    names = [p.split('"', 1)[0] for p in pieces]
    assert names == ["equity", "drawdown", "forecast-0", "forecast-1", "distribution"]
    strategies = len(summary["statistics"][PORTFOLIO])
    expected = {
        "equity": strategies,
        "drawdown": strategies,
        "forecast-0": 4,
        "forecast-1": 4,
        "distribution": strategies,
    }
    for name, piece in zip(names, pieces):
        sizes = re.findall(r'<svg class="main-svg"[^>]*?width="([\d.]+)" height="([\d.]+)"', piece)
        assert sizes and all(float(w) > 0 and float(h) > 0 for w, h in sizes), name
        assert len(re.findall(r'class="trace[ "]', piece)) >= expected[name], name


def test_the_screenshot_is_not_blank(run, tmp_path):
    import matplotlib.image

    out, _, _ = run
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,2400", url=(out / REPORT).as_uri())
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    not_white = (pixels < 0.95).any(axis=2).mean()
    assert not_white > 0.03  # text, tables and lines, not an empty page
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50  # colour lines


def _statistic_cells(dom, summary) -> set:
    """Check every statistic cell of the DOM against summary.json: its data-value exactly, its text as _fmt
    formats it (Sharpe with its interval) for the statistics the universe table shows; the (symbol,
    strategy, statistic) triples seen."""
    cells = re.findall(
        r'<td data-symbol="([^"]*)" data-strategy="([^"]*)" data-stat="([^"]*)" '
        r'data-value="([^"]*)">([^<]*)</td>',
        dom.stdout,
    )
    seen = set()
    for symbol, strategy, stat, value, text in cells:
        symbol, value, text = html.unescape(symbol), json.loads(html.unescape(value)), html.unescape(text)
        expected = summary["statistics"][symbol][strategy][stat]
        assert value == expected or (math.isnan(value) and math.isnan(expected)), (symbol, strategy, stat)
        if stat == "sharpe":
            lo, hi = (summary["statistics"][symbol][strategy][k] for k in ("sharpe_low", "sharpe_high"))
            assert text == f"{_fmt(expected, 'num')} [{_fmt(lo, 'num')}, {_fmt(hi, 'num')}]"
        elif stat in UNIVERSE_FORMATS:  # the universe table's cells, formatted by its script
            assert text == _fmt(expected, UNIVERSE_FORMATS[stat]), (symbol, strategy, stat, value)
        seen.add((symbol, strategy, stat))
    return seen


UNIVERSE_FORMATS = {"total_return": "pct", "max_drawdown": "pct", "win_rate": "pct", "days": "int"}


def test_page_statistics_equal_summary_json(run):
    _, summary, dom = run
    seen = _statistic_cells(dom, summary)
    for strategy, stats in summary["statistics"][PORTFOLIO].items():  # the whole portfolio table is there
        assert {
            (PORTFOLIO, strategy, s)
            for s in ("total_return", "sharpe", "max_drawdown", "deflated_sharpe", "turnover", "exposure")
        } <= seen
    assert {s for s, _, _ in seen} == {PORTFOLIO, "AAA", "BBB"}


def test_report_command_rebuilds_the_same_page_offline(run, capsys):
    out, _, _ = run
    before = (out / REPORT).read_bytes()
    (out / REPORT).unlink()
    assert main(["report", str(out)]) == 0
    assert (out / REPORT).read_bytes() == before
    # nothing is loaded from elsewhere: no script, style or image refers to a file or URL
    assert re.search(rb"<(script|link|img|iframe)\b[^>]*\b(src|href)=", before) is None


# -- a universe: the one per-symbol table ------------------------------------------------------

# sorts, filters, pages and clicks the universe table, then records what it saw into the DOM
UNIVERSE_PROBE = """<script>window.addEventListener('load', () => setTimeout(() => {
const rows = () => [...document.querySelectorAll('#universe tbody tr')];
const names = (r) => [r.cells[0].textContent, r.cells[1].textContent];
const head = (stat) => document.querySelector(`#universe th[data-sort="${stat}"]`);
const set = (id, value, event) => { const e = document.getElementById(id); e.value = value; e.dispatchEvent(new Event(event)); };
const chart = document.getElementById('universe-forecast');
const seen = { rows: rows().length, count: document.getElementById('universe-count').textContent,
  first_title: chart.layout.title.text, first_traces: chart.data.length };
head('sharpe').click(); seen.sharpe_high = names(rows()[0]);
head('sharpe').click(); seen.sharpe_low = names(rows()[0]);
head('symbol').click(); seen.by_symbol = rows().slice(0, 10).map(names);
set('universe-filter', 'S01', 'input'); seen.filtered = rows().map(names);
set('universe-strategy', 'buy_hold', 'change'); seen.picked = rows().map(names);
set('universe-filter', '', 'input'); seen.buy_hold = rows().length;
set('universe-strategy', '', 'change'); document.getElementById('universe-more').click(); seen.more = rows().length;
rows().find((r) => r.dataset.symbol === 'S005').click();
setTimeout(() => {
  seen.figure = { title: chart.layout.title.text, traces: chart.data.length, x: chart.data[2].x,
    forecast: chart.data[2].y, realised: chart.data[3].y, drawn: chart.querySelectorAll('.scatterlayer .trace').length,
    size: [chart.clientWidth, chart.clientHeight] };
  seen.selected = [...document.querySelectorAll('#universe tr.selected')].map((r) => r.dataset.symbol);
  const odd = rows()[9];  // sorted by symbol: "007"'s nine rows, then the odd name's
  odd.click();
  setTimeout(() => {
    seen.odd = [odd.dataset.symbol, chart.querySelector('.gtitle').textContent];
    const out = document.createElement('pre'); out.id = 'probe'; out.textContent = JSON.stringify(seen);
    document.body.appendChild(out);
  }, 300);
}, 300);
}, 200));</script>"""


def _probe_record(dom) -> dict:
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, "the probe did not finish"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    out = tmp_path_factory.mktemp("universe")
    summary = universe_run(out)
    return out, summary, _probed_dom(out, UNIVERSE_PROBE)


def _rows(summary) -> list:
    """(symbol, strategy, statistics) of the table's rows in the run's order."""
    return [(s, k, v) for s, per in summary["statistics"].items() if s != PORTFOLIO for k, v in per.items()]


def test_the_universe_page_renders_without_javascript_errors(universe):
    _assert_no_javascript_errors(universe[2])


def test_the_universe_table_sorts_filters_and_pages(universe):
    _, summary, dom = universe
    seen = _probe_record(dom)
    rows = _rows(summary)
    assert len(rows) == 40 * 9 and seen["rows"] == UNIVERSE_PAGE
    assert seen["count"] == f"360 rows, the first {UNIVERSE_PAGE} shown"
    sharpe = [(s, k) for s, k, v in rows if not math.isnan(v["sharpe"])]
    value = {(s, k): v["sharpe"] for s, k, v in rows}
    assert seen["sharpe_high"] == list(max(sharpe, key=value.get))  # the first of equals, as max picks it
    assert seen["sharpe_low"] == list(min(sharpe, key=value.get))
    by_symbol = sorted(rows, key=lambda row: row[0])  # stable: a symbol's strategies in the run's order
    assert seen["by_symbol"] == [[s, k] for s, k, _ in by_symbol[:10]]
    assert seen["by_symbol"][0][0] == "007" and seen["by_symbol"][9][0] == "<b>&\"Q'"
    assert seen["filtered"] == [[s, k] for s, k, _ in by_symbol if "s01" in s.lower()]
    assert len(seen["filtered"]) == 10 * 9
    assert seen["picked"] == [[f"S01{i}", "buy_hold"] for i in range(10)]
    assert seen["buy_hold"] == 40 and seen["more"] == 2 * UNIVERSE_PAGE


def test_the_universe_rows_hold_summary_jsons_statistics(universe):
    _, summary, dom = universe
    seen = _statistic_cells(dom, summary)
    assert len(seen) == 2 * UNIVERSE_PAGE * 5 + len(_COLUMNS) * 9  # the rows shown, and the portfolio table
    assert {s for s, _, _ in seen} >= {"007", "<b>&\"Q'", "S005", PORTFOLIO}


def test_a_clicked_row_draws_its_symbols_forecasts(universe):
    out, _, dom = universe
    seen = _probe_record(dom)
    assert seen["first_title"] == "007: one-step Close forecast vs realised change (%)" and seen["first_traces"] == 4
    figure = seen["figure"]
    assert figure["title"] == "S005: one-step Close forecast vs realised change (%)"
    assert figure["traces"] == 4 and figure["drawn"] == 4 and min(figure["size"]) > 0
    assert seen["selected"] == ["S005"] * 9
    assert seen["odd"] == [ODD, f"{ODD}: one-step Close forecast vs realised change (%)"]  # shown as it is named
    saved = pd.read_csv(out / "forecasts.csv", dtype={"symbol": str})
    mine = saved[(saved["symbol"] == "S005") & (saved["key"] == "Close")].drop_duplicates("context_end")
    mine = mine[mine["actual"].notna()].sort_values("context_end")
    assert figure["x"] == list(mine["target_date"])
    tolerance = 1e-4 * np.abs(100 * mine["actual"]).max()  # 4-5 significant digits of the largest value
    np.testing.assert_allclose(figure["forecast"], 100 * mine["prediction"], rtol=0, atol=tolerance)
    np.testing.assert_allclose(figure["realised"], 100 * mine["actual"], rtol=0, atol=tolerance)


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    """A fabricated universe whose first symbol's statistics are the values hard to format alike in Python
    and JavaScript: exact ties (Python rounds them to even, toFixed away from zero), -0.0, infinities, NaN."""
    out = tmp_path_factory.mktemp("awkward")
    summary = fabricated_run(out, symbols=20, simulations=60)
    edges = [
        dict(sharpe=0.0625, total_return=0.03125, max_drawdown=-0.00005, win_rate=1 / 32),  # ties: 0.062, 3.12 %
        dict(sharpe=-0.0625, total_return=-0.0, max_drawdown=-0.03125, win_rate=0.0),
        dict(sharpe=2.5, sharpe_low=-0.0, sharpe_high=math.inf, total_return=math.inf, max_drawdown=-math.inf),
        dict(sharpe=math.nan, sharpe_low=math.nan, sharpe_high=math.nan, total_return=math.nan, win_rate=0.5),
        dict(sharpe=-0.0001, total_return=1e-7, max_drawdown=-0.00125, win_rate=0.00125, days=29.0),  # -0.000
    ]
    for strategy, edge in zip(STRATEGIES, edges):
        summary["statistics"]["U0000"][strategy].update(edge)
    (out / "summary.json").write_text(json.dumps(summary))
    write_html_report(out)
    return out, summary, _probed_dom(out)


def test_awkward_values_are_formatted_as_python_formats_them(awkward):
    _, summary, dom = awkward
    _assert_no_javascript_errors(dom)
    seen = _statistic_cells(dom, summary)
    assert {(s, k) for s, k, _ in seen if s == "U0000"} == {("U0000", k) for k in summary["statistics"]["U0000"]}
    rows = re.findall(
        r'<tr data-symbol="([^"]*)" data-index="\d+"(?: class="([^"]*)")?><td class="name">[^<]*</td>'
        r'<td class="name">([^<]*)</td>',
        dom.stdout,
    )
    assert len(rows) == UNIVERSE_PAGE
    assert {(s, k) for s, classes, k in rows if "short" in classes.split()} == {("U0000", "ci_guard")}  # 29 days
