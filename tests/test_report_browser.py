"""report.html of a small run rendered in headless Chromium: no JavaScript errors, every chart drew
its traces at a non-zero size, the screenshot is not blank, and the page's statistics are
summary.json's. Skips (saying why) only when no Chromium binary is installed."""

import html
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.report.files import write_outputs
from totowalk.backtest.report.html import REPORT, _fmt
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


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    data = {"AAA": prices(90, 3), "BBB": prices(90, 4)}
    result = backtest(data, num_simulations=12, forecaster=mean5, profile="clean")
    write_outputs(result, out)
    probe = out / "probed.html"
    page = (out / REPORT).read_text()
    probe.write_text(page.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "</body>", 1))
    dom = _chromium("--dump-dom", url=probe.as_uri())
    return out, json.loads((out / "summary.json").read_text()), dom


def test_the_report_renders_without_javascript_errors(run):
    _, _, dom = run
    found = re.search(r'<pre id="js-errors">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, "the page's scripts did not run to the end"
    assert json.loads(html.unescape(found.group(1))) == []
    assert "Uncaught" not in dom.stderr


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


def test_page_statistics_equal_summary_json(run):
    _, summary, dom = run
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
        seen.add((symbol, strategy, stat))
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
