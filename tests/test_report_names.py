"""The report names the best strategy as its strategy table does, in both profiles (issue 21, 11)."""

import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest
from totowalk.backtest.report.text import format_report, strategy_name, strategy_table


@pytest.mark.parametrize("profile", ["legacy", "clean"])
def test_best_strategy_is_named_as_in_the_strategy_table(profile):
    result = backtest(
        {"AAA": prices(90, 5), "BBB": prices(90, 6)}, num_simulations=4, forecaster=mean5, profile=profile
    )
    table = set(strategy_table(result).index)
    # the clean profile names its out-of-sample choice whether or not it is distinguishable from chance
    column = "best_strategy" if profile == "legacy" else "best_strategy_selected"
    labels = result.summary[column].dropna()
    assert len(labels) == 3
    for label in labels:
        assert strategy_name(label) in table, (label, table)
    line = next(x for x in format_report(result).splitlines() if x.startswith("best strategy"))
    named = (
        f"(all) {strategy_name(labels['(all)'])}"
        if profile == "legacy"
        else f"({strategy_name(labels['(all)'])} selected"
    )
    assert named in line


def test_every_label_of_both_profiles_maps_to_a_table_name():
    assert [strategy_name(x) for x in ("simple", "all_signals", "takeprofit", "maxdiff")] == [
        "simple",
        "all_signals",
        "entry_takeprofit",
        "maxdiff",
    ]
    assert [strategy_name(x) for x in ("simple_strategy", "all_signals_strategy", "entry_takeprofit")] == [
        "simple",
        "all_signals",
        "entry_takeprofit",
    ]
