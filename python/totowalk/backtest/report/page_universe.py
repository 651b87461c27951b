"""The per-symbol part of report.html for a universe (more than MAX_FORECAST_CHARTS symbols): one table, a
row per symbol and strategy (Sharpe with its interval, total return, max drawdown, win rate, days), sorted
by clicking a heading and filtered by a symbol substring and a strategy, shown UNIVERSE_PAGE rows at a
time; clicking a row draws that symbol's forecast-vs-realised chart (Close key) in the one figure below it,
the first symbol's at load. A few lines of inline JavaScript (no library but plotly) build the rows from
the data page_universe_data.py embeds."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd

from ..stats.table import MIN_INTERVAL_DAYS
from .page_charts import FORECAST_KEY, _forecast_chart, _styled
from .page_universe_data import _UNIVERSE_COLUMNS, _figure_data, _table_data

UNIVERSE_PAGE = 100  # rows of the universe table shown at a time ("show more" adds as many)


def _universe_section(stats: dict, symbols: list, strategies: list, distinct: pd.DataFrame | None) -> list:
    """The per-symbol part of a run of many symbols: one sortable, filterable table and the figure of the
    symbol last clicked, drawn by the inline script from the embedded data."""
    data = {
        "symbols": symbols,
        "strategies": strategies,
        "page": UNIVERSE_PAGE,
        "min_days": MIN_INTERVAL_DAYS,
        "table": [[stat, kind] for stat, _, kind in _UNIVERSE_COLUMNS],
        **_table_data(stats, symbols, strategies),
    }
    drawn = distinct is not None and len(distinct) > 0
    parts = [
        "<h2>Per symbol</h2>",
        f'<p class="note">{len(symbols):,} symbols x {len(strategies)} strategies, a row each: click a heading to '
        "sort (again to reverse), type part of a symbol or pick a strategy to filter"
        + (", click a row to draw that symbol's forecasts below" if drawn else "")
        + f". Sharpe [95% CI] as in the portfolio table, greyed under {MIN_INTERVAL_DAYS} days.</p>",
        _universe_controls(strategies),
        _universe_table(),
    ]
    if drawn:
        figures, note = _figure_data(distinct, symbols)
        data.update(figures)
        data["figure"] = json.loads(_styled(_forecast_chart("{symbol}", [], *(np.zeros(0),) * 3)).to_json())
        parts.append(
            '<div class="chart-box" data-chart="forecast"><div id="universe-forecast"></div></div>'
            f'<p class="note">{FORECAST_KEY} key, each distinct one-step forecast by its target date; the band is '
            "the width between the 40th and 60th percentiles of the predictive distribution, drawn centred on the "
            f"forecast. {note}</p>"
        )
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    parts.append(
        f'<script type="application/json" id="universe-data">{text}</script><script>{_UNIVERSE_SCRIPT}</script>'
    )
    return parts


def _universe_controls(strategies: list) -> str:
    options = "".join(f'<option value="{html.escape(s)}">{html.escape(s)}</option>' for s in strategies)
    return (
        '<div class="controls"><label>symbol contains <input id="universe-filter" type="search"></label> '
        f'<label>strategy <select id="universe-strategy"><option value="">all</option>{options}</select></label> '
        '<span id="universe-count"></span></div>'
    )


def _universe_table() -> str:
    head = "".join(f'<th data-sort="{stat}">{html.escape(h)}</th>' for stat, h, _ in _UNIVERSE_COLUMNS)
    return (
        '<div class="table-box"><table class="stats universe" id="universe"><thead><tr>'
        f'<th data-sort="symbol">symbol</th><th data-sort="strategy">strategy</th>{head}</tr></thead>'
        '<tbody></tbody></table></div><div><button id="universe-more" type="button">show more</button></div>'
    )


# the universe table: rows built from the embedded data (statistics exact in data-value as in the other
# tables, formatted as page_tables._fmt formats them), sorted, filtered, shown a page at a time; a row's click draws
# its symbol's forecasts
_UNIVERSE_SCRIPT = r"""(() => {
const D = JSON.parse(document.getElementById('universe-data').textContent);
const bytes = (b64) => {  // typed arrays read them in the machine's order, little-endian as written
  const s = atob(b64), u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u.buffer;
};
const col = {};
const arrays = { i2: Int16Array, i4: Int32Array, f8: Float64Array };
for (const [stat, [type, b64]] of Object.entries(D.columns)) col[stat] = new arrays[type](bytes(b64));
const S = D.strategies.length, lower = D.symbols.map((s) => s.toLowerCase()), skip = new Set(D.missing), all = [];
for (let r = 0; r < D.symbols.length * S; r++) if (!skip.has(r)) all.push(r);
const $ = (id) => document.getElementById(id);
const table = $('universe'), body = table.tBodies[0], filter = $('universe-filter'), pick = $('universe-strategy');
let rows = all, key = null, desc = false, shown = D.page, selected = -1;
const symbolOf = (r) => Math.floor(r / S);
// Python's f'{x:.{n}f}': toFixed rounds the exact binary value too, but an exact tie away from zero, not to even
function fixed(x, n) {
  const s = (Object.is(x, -0) ? '-' : '') + x.toFixed(n), digits = x.toFixed(n + 40);  // 40 more: exact here
  if (!/^50*$/.test(digits.slice(-40)) || !/[13579]$/.test(s)) return s;
  return digits.slice(0, n ? -40 : -41);  // the tie cut toward zero: the even neighbour
}
function text(v, kind) {
  if (Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  return kind === 'pct' ? fixed(100 * v, 2) + ' %' : fixed(v, kind === 'int' ? 0 : 3);
}
const exact = (v) => (Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');
function addRow(r) {
  const tr = body.insertRow(), i = symbolOf(r);
  tr.dataset.symbol = D.symbols[i];
  tr.dataset.index = i;
  tr.classList.toggle('short', col.days[r] < D.min_days);
  tr.classList.toggle('selected', i === selected);
  for (const name of [D.symbols[i], D.strategies[r % S]]) Object.assign(tr.insertCell(), { className: 'name', textContent: name });
  for (const [stat, kind] of D.table) {
    const td = tr.insertCell(), v = col[stat][r];
    td.setAttribute('data-symbol', D.symbols[i]);
    td.setAttribute('data-strategy', D.strategies[r % S]);
    td.setAttribute('data-stat', stat);
    td.setAttribute('data-value', exact(v));
    td.textContent = kind === 'sharpe' ? `${text(v, 'num')} [${text(col.sharpe_low[r], 'num')}, ${text(col.sharpe_high[r], 'num')}]` : text(v, kind);
  }
}
function render() {
  body.replaceChildren();
  rows.slice(0, shown).forEach(addRow);
  $('universe-count').textContent = `${rows.length.toLocaleString('en')} rows` + (rows.length > shown ? `, the first ${shown.toLocaleString('en')} shown` : '');
  $('universe-more').hidden = rows.length <= shown;
}
const value = (r) => (key === 'symbol' ? D.symbols[symbolOf(r)] : key === 'strategy' ? D.strategies[r % S] : col[key][r]);
function compare(a, b) {  // rows without a value last, either way
  const x = value(a), y = value(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) - Number.isNaN(y);
  return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
}
function update() {
  const part = filter.value.trim().toLowerCase(), strategy = pick.value;
  rows = all.filter((r) => (!strategy || D.strategies[r % S] === strategy) && lower[symbolOf(r)].includes(part));
  if (key) rows.sort(compare);  // stable: ties keep the run's order
  shown = D.page;
  render();
}
table.tHead.addEventListener('click', (e) => {
  const th = e.target.closest('th[data-sort]');
  if (!th) return;
  desc = th.dataset.sort === key ? !desc : !['symbol', 'strategy'].includes(th.dataset.sort);  // numbers: highest first
  key = th.dataset.sort;
  for (const h of table.tHead.rows[0].cells) h.classList.toggle('sorted', h === th);
  th.classList.toggle('desc', desc);
  update();
});
filter.addEventListener('input', update);
pick.addEventListener('change', update);
$('universe-more').addEventListener('click', () => { shown += D.page; render(); });
function draw(i) {
  if (!D.figure) return;
  selected = i;
  for (const tr of body.rows) tr.classList.toggle('selected', +tr.dataset.index === i);
  const x = [], y = [[], [], [], []], f = D.figures[i];
  if (f) {
    const [scale, runs, b64] = f, q = new Int16Array(bytes(b64)), num = (v) => (v === -32768 ? NaN : v * scale);
    for (let k = 0; k < runs.length; k += 2) for (let d = runs[k]; d < runs[k] + runs[k + 1]; d++) x.push(D.dates[d]);
    const round = (v) => (Number.isFinite(v) ? +v.toPrecision(5) : null);
    for (let k = 0; k < x.length; k++) {
      const p = num(q[3 * k]), h = num(q[3 * k + 1]);
      [p + h, p - h, p, num(q[3 * k + 2])].forEach((v, t) => y[t].push(round(v)));
    }
  }
  const layout = structuredClone(D.figure.layout);
  const name = D.symbols[i].replace(/&/g, '&amp;').replace(/</g, '&lt;');  // plotly reads tags in text
  layout.title.text = layout.title.text.split('{symbol}').join(name);
  Plotly.react('universe-forecast', D.figure.data.map((t, k) => ({ ...t, x, y: y[k] })), layout, { displaylogo: false, responsive: true });
}
body.addEventListener('click', (e) => { const tr = e.target.closest('tr'); if (tr) draw(+tr.dataset.index); });
update();
draw(0);
})();"""

_UNIVERSE_STYLE = """
details { margin: 4px 0 8px; font-size: 13px; } summary { cursor: pointer; color: #555; }
.controls { font-size: 13px; margin: 8px 0; } .controls label { margin-right: 12px; }
.table-box { max-height: 70vh; overflow: auto; display: inline-block; border: 1px solid #ddd; }
table.universe { margin: 0; } table.universe th { position: sticky; top: 0; cursor: pointer; user-select: none; }
table.universe th.sorted::after { content: " ▲"; } table.universe th.sorted.desc::after { content: " ▼"; }
table.universe td.name, table.universe th[data-sort="symbol"], table.universe th[data-sort="strategy"] { text-align: left; }
table.universe tbody tr { cursor: pointer; }
table.universe tbody tr:hover td { background: #f3f7fd; } table.universe tr.selected td { background: #dde8fb; }
table.universe tr.short td[data-stat="sharpe"] { color: #aaa; }
#universe-more { margin: 6px 0; }
"""
