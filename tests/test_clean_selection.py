"""The clean best strategy survives multiple testing: chosen on the first half of the daily series,
reported on the second, named only when its deflated Sharpe reaches 0.95."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _driftless import driftless_bars, noise_forecaster
from test_backtest_api import prices
from test_backtest_clean import oracle_all_keys

import totowalk as tw
from totowalk.backtest.profiles.clean.headline import series_stats
from totowalk.backtest.profiles.clean.selection import DISTINGUISHABLE, select_best
from totowalk.backtest.report.text import format_report


def test_the_choice_sees_only_the_first_half():
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2020-01-01", periods=40)
    returns = pd.DataFrame(rng.normal(0, 0.01, (40, 3)), index=days, columns=["buy_hold", "highlow", "maxdiff"])
    returns.iloc[:20, 1] += 0.01  # highlow wins the first half
    chosen = select_best(list(returns.columns), returns.to_numpy().T, series_stats, 252.0)
    assert chosen["best_strategy_selected"] == "highlow"
    later = returns.copy()
    later.iloc[20:, 2] += 0.05  # maxdiff wins the second half by far: the choice does not move
    again = select_best(list(later.columns), later.to_numpy().T, series_stats, 252.0)
    assert again["best_strategy_selected"] == "highlow"
    holdout = returns["highlow"].to_numpy()[20:]
    assert again["best_strategy_holdout_return"] == pytest.approx(np.prod(1 + holdout) - 1, rel=1e-12)
    assert again["best_strategy_holdout_sharpe"] == pytest.approx(
        holdout.mean() / holdout.std(ddof=1) * np.sqrt(252), rel=1e-12
    )
    short = select_best(list(returns.columns), returns.to_numpy()[:3].T, series_stats, 252.0)
    assert short["best_strategy_selected"] is None and not short["best_strategy_distinguishable"]


def test_noise_is_not_named_on_a_driftless_random_walk():
    data = {s: driftless_bars(330, seed) for s, seed in (("A", 1), ("B", 2))}
    result = tw.backtest(data, num_simulations=300, profile="clean", fee=0.0, forecaster=noise_forecaster)
    summary = result.summary
    assert summary["best_strategy_selected"].notna().all()  # something always wins the first half
    assert summary["best_strategy"].isna().all()  # ...and nothing is distinguishable from chance
    assert (summary["best_strategy_deflated_sharpe"] < DISTINGUISHABLE).all()
    assert (summary["best_strategy_trials"] == 7568).all()  # 7 strategies + 1,000 + 6,561 grid points
    # the DSR is the statistics table's for the same series
    overall = summary.loc["(all)"]
    table = result.statistics.loc[("(all)", overall["best_strategy_selected"])]
    assert overall["best_strategy_deflated_sharpe"] == pytest.approx(table["deflated_sharpe"], rel=1e-12, abs=1e-15)
    assert "no strategy is distinguishable from chance" in format_report(result)


def test_a_real_edge_is_named():
    frame = prices(330, 44)
    result = tw.backtest({"S": frame}, num_simulations=300, profile="clean", fee=0.0, forecaster=oracle_all_keys(frame))
    row = result.summary.loc["S"]
    assert row["best_strategy_distinguishable"] and row["best_strategy_deflated_sharpe"] >= DISTINGUISHABLE
    assert row["best_strategy"] == row["best_strategy_selected"]
    assert row["best_strategy_holdout_return"] > 0
    line = next(x for x in format_report(result).splitlines() if x.startswith("best strategy"))
    assert "distinguishable" not in line and "deflated Sharpe" in line


def test_a_verdict_on_a_series_without_variation_words_what_is_undefined():
    from totowalk.backtest.report.text import best_strategy_verdict

    row = {
        "best_strategy_selected": "ci_guard",
        "best_strategy_selection_days": 50,
        "best_strategy_holdout_days": 50,
        "best_strategy_holdout_return": 0.0,
        "best_strategy_holdout_sharpe": float("nan"),
        "best_strategy_deflated_sharpe": float("nan"),
        "best_strategy_trials": 7568,
        "best_strategy_distinguishable": False,
    }
    text = best_strategy_verdict(row)
    assert "nan" not in text and "Sharpe undefined (no variation)" in text
    assert text.startswith("no strategy is distinguishable from chance")
