"""report.html of a universe (issue 33, item 4): past MAX_FORECAST_CHARTS symbols the per-symbol part is
one table built from embedded data that holds summary.json's exact statistics and each symbol's
distinct forecasts, the settings summarise, and a run of 5,000 symbols x 250 simulations makes a page
under 10 MB. The page's behaviour in a browser: tests/test_report_browser.py."""

import base64
import html
import json
import re

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.profiles.profile import STRATEGY_PREFIXES
from totowalk.backtest.report import files
from totowalk.backtest.report.html import MAX_FORECAST_CHARTS, REPORT, write_html_report
from totowalk.backtest.report.page_settings import _settings_block
from totowalk.backtest.report.page_tables import _COLUMNS
from totowalk.backtest.report.page_universe_data import FIGURE_POINTS, MIN_FIGURE_POINTS
from totowalk.backtest.stats.daily import PORTFOLIO

ODD = "<b>&\"Q'"  # a symbol the page must escape
NUMERIC = "007"  # a symbol a CSV reader would take for the number 7
STRATEGIES = STRATEGY_PREFIXES  # the clean profile's


def universe_run(out, symbols: int = 40, simulations: int = 12):
    """A real run of ``symbols`` symbols (two with awkward names) by a cheap function forecaster, its outputs
    written as the CLI writes them, without the PNG plots (slow, and the page does not read them)."""
    names = [NUMERIC, ODD] + [f"S{i:03d}" for i in range(symbols - 2)]
    data = {name: prices(90, seed) for seed, name in enumerate(names)}
    result = backtest(data, num_simulations=simulations, forecaster=mean5, profile="clean")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "plot_results", lambda *args, **kwargs: [])
        files.write_outputs(result, out, tables="csv")
    return json.loads((out / "summary.json").read_text())


def embedded_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="universe-data">(.*?)</script>', page, flags=re.S)
    assert found, "no universe table data in the page"
    return json.loads(found.group(1))


def decoded_columns(data: dict) -> dict:
    kinds = {"i2": "<i2", "i4": "<i4", "f8": "<f8"}
    return {stat: np.frombuffer(base64.b64decode(b64), kinds[kind]) for stat, (kind, b64) in data["columns"].items()}


def decoded_figure(data: dict, index: int) -> tuple:
    """(dates, forecast, half band, outcome) of symbol ``index`` as the page's script decodes them."""
    scale, runs, b64 = data["figures"][index]
    dates = [data["dates"][d] for first, count in zip(runs[::2], runs[1::2]) for d in range(first, first + count)]
    values = np.frombuffer(base64.b64decode(b64), "<i2").reshape(-1, 3).astype(float)
    values[values == -32768] = np.nan
    return (dates, *(values * scale).T)


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    out = tmp_path_factory.mktemp("universe")
    summary = universe_run(out)
    return out, summary, (out / REPORT).read_text()


def test_a_universe_gets_one_table_instead_of_a_section_per_symbol(universe):
    _, summary, page = universe
    symbols = [s for s in summary["statistics"] if s != PORTFOLIO]
    assert len(symbols) == 40 > MAX_FORECAST_CHARTS
    assert "<h3>" not in page and 'data-chart="forecast-0"' not in page  # no per-symbol sections or charts
    assert '<table class="stats universe" id="universe">' in page and 'data-chart="forecast"' in page
    data = embedded_data(page)
    assert data["symbols"] == symbols and data["strategies"] == list(summary["statistics"][PORTFOLIO])
    # escaped wherever the page shows a name, and no raw tag from one anywhere
    assert ODD not in page and html.escape(ODD) in page


def test_the_universe_page_is_offline_and_rebuilt_byte_for_byte(universe):
    out, _, page = universe
    assert re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", page) is None  # nothing fetched
    assert write_html_report(out).read_text() == page


def test_the_table_data_are_summary_jsons_numbers_bit_for_bit(universe):
    _, summary, page = universe
    data = embedded_data(page)
    columns = decoded_columns(data)
    assert data["columns"]["days"][0] == "i2" and data["columns"]["sharpe"][0] == "f8"
    assert data["missing"] == []
    rows = 0
    for i, symbol in enumerate(data["symbols"]):
        for j, strategy in enumerate(data["strategies"]):
            expected = summary["statistics"][symbol][strategy]
            row = i * len(data["strategies"]) + j
            for stat, values in columns.items():
                got, want = values[row], expected[stat]
                assert got == want or (np.isnan(got) and np.isnan(want)), (symbol, strategy, stat)
            rows += 1
    assert rows == 40 * len(STRATEGIES)


def test_each_symbols_figure_holds_its_distinct_close_forecasts(universe):
    out, summary, page = universe
    data = embedded_data(page)
    saved = pd.read_csv(out / "forecasts.csv", dtype={"symbol": str})
    close = saved[saved["key"] == "Close"].drop_duplicates(["symbol", "context_end"])
    close = close[close["target_date"].notna() & close["actual"].notna()]
    assert NUMERIC in set(close["symbol"])  # read as text: "007", not 7
    for index, symbol in enumerate(data["symbols"]):
        mine = close[close["symbol"] == symbol].sort_values("context_end")
        dates, forecast, half, outcome = decoded_figure(data, index)
        assert dates == list(mine["target_date"]) and len(dates) == 12 + 5, symbol  # K + 5 outcomes, each once
        scale = data["figures"][index][0]
        for got, want in (
            (forecast, 100 * mine["prediction"]),
            (half, 50 * mine["band"]),
            (outcome, 100 * mine["actual"]),
        ):
            np.testing.assert_allclose(got, want.to_numpy(float), rtol=0, atol=scale / 2 * 1.0001, err_msg=symbol)
        peak = np.nanmax(np.abs(np.r_[forecast, half, outcome]))
        assert peak / scale > 30_000  # the int16s use their range: 4-5 significant digits of the largest value
    assert "Every symbol's forecasts are drawn" in page


def test_the_settings_summarise_a_long_symbol_list_and_uniform_fees(universe):
    _, summary, page = universe
    block = _settings_block(summary)
    assert "40 symbols: 007, &lt;b&gt;&amp;&quot;Q&#x27;, S000, S001, S002, S003, … S037" in block
    assert "<th>fee</th><td>0.0005 (every symbol)</td>" in block
    assert "<th>crypto</th><td>false (every symbol)</td>" in block
    assert "<th>trading days</th><td>252 (every symbol)</td>" in block
    assert "<details>" not in block and "S010, S011" not in block
    assert block in page


def test_settings_that_differ_show_their_counts_and_a_collapsed_table():
    symbols = [f"U{i:04d}" for i in range(500)]
    crypto = {s: i >= 495 for i, s in enumerate(symbols)}
    settings = {
        "symbols": symbols,
        "fee": {s: 0.001 if crypto[s] else 0.0005 for s in symbols},
        "crypto": crypto,
        "trading_days": {s: 365 if crypto[s] else 252 for s in symbols},
        "num_simulations": 250,
    }
    block = _settings_block({"settings": settings})
    assert "500 symbols: U0000, U0001, U0002, U0003, U0004, U0005, … U0499" in block
    assert "<th>fee</th><td>0.0005 (495 symbols), 0.001 (5 symbols), per symbol below</td>" in block
    assert "<th>crypto</th><td>false (495 symbols), true (5 symbols), per symbol below</td>" in block
    details = block[block.index("<details>") :]
    assert "fee, crypto, trading_days differ" in details
    assert "<td>0.001</td><td>true</td><td>365</td><td>5: U0495, U0496, U0497, U0498, U0499</td>" in details
    assert "<td>0.0005</td><td>false</td><td>252</td><td>495: U0000, U0001," in details
    assert details.count("<tr>") == 3  # a heading and one row per combination of values, not one per symbol
    uniform = _settings_block({"settings": {**settings, "fee": dict.fromkeys(symbols, 0.0005)}})
    assert (
        "<th>fee</th><td>0.0005 (every symbol)</td>" in uniform and "<th>fee</th>" not in uniform.split("<details>")[1]
    )


# -- 5,000 symbols x 250 simulations ----------------------------------------------------------

SYMBOLS, SIMULATIONS, DAYS_PAST = 5_000, 250, 5  # a symbol has SIMULATIONS + DAYS_PAST distinct forecasts


def fabricated_run(out, symbols: int = SYMBOLS, simulations: int = SIMULATIONS):
    """The saved files of a clean run of ``symbols`` x ``simulations`` as write_outputs lays them out,
    filled with random numbers at full precision (no backtest): summary.json with every strategy's
    statistics, the portfolio's daily rows, and Parquet simulations and forecasts tables (each distinct Close
    forecast once, and a second key, which the page does not draw)."""
    rng = np.random.default_rng(0)
    names = [f"U{i:04d}" for i in range(symbols)]
    days = simulations + DAYS_PAST
    dates = pd.bdate_range("2022-01-03", periods=days).strftime("%Y-%m-%d")
    stats = {name: {s: _random_statistics(rng, simulations) for s in STRATEGIES} for name in [*names, PORTFOLIO]}
    settings = {
        "profile": "clean",
        "num_simulations": simulations,
        "symbols": names,
        "crypto": dict.fromkeys(names, False),
        "fee": dict.fromkeys(names, 0.0005),
        "trading_days": dict.fromkeys(names, 252),
        "spread": 1.0,
        "spread_note": "spread 1.0",
        "aggregate": "mean",
        "keys": ["Close", "High"],
        "forecaster": {"kind": "function", "function": "fabricated"},
        "fill_model": "expected",
    }
    summary = {"profile": "clean", "settings": settings, "warnings": [], "versions": {}, "statistics": stats}
    (out / "summary.json").write_text(json.dumps(summary))
    portfolio = pd.DataFrame(
        {
            "date": np.repeat(dates[-simulations:], len(STRATEGIES)),
            "symbol": PORTFOLIO,
            "strategy": np.tile(STRATEGIES, simulations),
            "return": rng.normal(0, 0.01, simulations * len(STRATEGIES)),
            "turnover": 0.5,
            "in_market": 1.0,
        }
    )
    portfolio["return_adverse"] = portfolio["return_optimistic"] = portfolio["return"]
    portfolio.to_csv(out / "daily_returns.csv", index=False)
    rows = symbols * simulations
    sims = {"symbol": np.repeat(names, simulations), "simulation": np.tile(np.arange(simulations), symbols)}
    sims.update({f"{s}_return": rng.normal(0, 0.03, rows) for s in STRATEGIES})
    sims["buy_hold_daily_returns"] = "[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]"  # a column the page does not read
    pd.DataFrame(sims).to_parquet(out / "simulations.parquet", index=False)
    contexts = np.tile(np.arange(days), symbols)
    forecasts = pd.DataFrame(
        {
            "symbol": np.repeat(names, days),
            "simulation": np.minimum(contexts, simulations - 1),
            "key": "Close",
            "step": 0,
            "context_end": 100 + contexts,
            "target_date": np.tile(dates, symbols),
            "prediction": rng.normal(0, 0.004, symbols * days).astype(np.float32),
            "band": np.abs(rng.normal(0.01, 0.003, symbols * days)).astype(np.float32),
            "actual": rng.standard_t(4, symbols * days) * 0.015,
            "pit": rng.uniform(size=symbols * days),
            "crps": rng.uniform(size=symbols * days),
        }
    )
    pd.concat([forecasts, forecasts.assign(key="High")]).to_parquet(out / "forecasts.parquet", index=False)
    return summary


def _random_statistics(rng, days: int) -> dict:
    """Every statistic the page shows, at full precision."""
    values = {stat: rng.normal(0, 1) for stat, _, _ in _COLUMNS}
    values.update(sharpe_low=values["sharpe"] - rng.uniform(0.5, 2), sharpe_high=values["sharpe"] + rng.uniform(0.5, 2))
    values.update(max_drawdown=-rng.uniform(0, 0.5), win_rate=rng.integers(0, days) / days, days=float(days))
    return {k: float(v) for k, v in values.items()}


def test_a_page_of_5000_symbols_and_250_simulations_stays_under_10_mb(tmp_path):
    summary = fabricated_run(tmp_path)
    page = write_html_report(tmp_path).read_text()
    assert len(page.encode()) < 10_000_000
    data = embedded_data(page)
    assert len(data["symbols"]) == SYMBOLS and decoded_columns(data)["sharpe"].size == SYMBOLS * len(STRATEGIES)
    latest = max(MIN_FIGURE_POINTS, FIGURE_POINTS // SYMBOLS)
    assert latest < SIMULATIONS + DAYS_PAST and f"latest {latest:,} forecasts are drawn" in page
    last = decoded_figure(data, SYMBOLS - 1)
    assert len(last[0]) == latest and last[0][-1] == data["dates"][-1]  # the latest ones
    assert summary["statistics"]["U0000"][STRATEGIES[0]]["sharpe"] == decoded_columns(data)["sharpe"][0]
    assert "5,000 symbols: U0000, U0001, U0002, U0003, U0004, U0005, … U4999" in page
    assert page.count("U2500") == 1  # in the embedded list only: no per-symbol section, settings list or fee list


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_the_portfolio_rows_read_chunk_by_chunk_are_those_of_the_whole_table(tmp_path, monkeypatch, kind):
    # the page keeps only the portfolio's daily rows: a Parquet chunk is filtered before it becomes a
    # frame, a CSV chunk after; both give the rows of the whole table, in its order, as text symbols
    from totowalk.backtest.report import html as page

    rng = np.random.default_rng(5)
    rows = 5_000
    table = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=rows, freq="h"),
            "symbol": rng.choice([NUMERIC, "A", PORTFOLIO], size=rows),
            "strategy": rng.choice(list(STRATEGIES), size=rows),
            "return": rng.normal(size=rows),
            "turnover": rng.uniform(size=rows),  # a column the page does not read
            "return_adverse": rng.normal(size=rows),
            "return_optimistic": rng.normal(size=rows),
        }
    )
    if kind == "csv":
        table.to_csv(tmp_path / "daily_returns.csv", index=False)
    else:
        table.to_parquet(tmp_path / "daily_returns.parquet", index=False, row_group_size=1_500)
    monkeypatch.setattr(page, "_CHUNK_ROWS", 700)  # chunks that cross row groups, some without the portfolio
    got = page._read_table(tmp_path, "daily_returns", page._DAILY_COLUMNS, symbol=PORTFOLIO)
    expected = table.loc[table["symbol"] == PORTFOLIO, list(page._DAILY_COLUMNS)].reset_index(drop=True)
    if kind == "csv":
        expected["date"] = expected["date"].astype(str)  # the page reads a CSV's dates as text
    pd.testing.assert_frame_equal(got, expected)
    assert page._read_table(tmp_path, "daily_returns", page._DAILY_COLUMNS, symbol="none")["symbol"].size == 0
