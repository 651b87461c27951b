"""The summary's per-symbol means equal pandas' own ``DataFrame.mean`` of each symbol's rows (§9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oracles import metrics as metrics_oracle
from totowalk.backtest.profiles.summary import OVERALL, summarize


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "symbol": rng.choice(["B", "A", "C"], size=rows),
            "simulation": np.arange(rows),
            "simple_strategy_return": rng.normal(0, 0.01, rows),
            "simple_strategy_sharpe": rng.normal(0, 1, rows) * 1e3 + 1e-3,  # magnitudes where order matters
            "maxdiff_sharpe": np.where(rng.random(rows) < 0.3, np.nan, rng.normal(size=rows)),
            "highlow_sharpe": np.full(rows, np.nan),
            "trades": rng.integers(0, 9, rows),
            "note": "text",
        }
    )
    frame.loc[frame["symbol"] == "C", "maxdiff_sharpe"] = np.nan  # a symbol with none
    return frame


def test_means_and_walk_forward_stats_equal_pandas_per_symbol_bit_for_bit():
    frame = _frame(9000, 3)  # the overall group exceeds numpy's 8192-element buffer
    summary = summarize(frame)
    assert list(summary.index) == list(dict.fromkeys(frame["symbol"])) + [OVERALL]  # first appearance, then all
    for label, part in list(frame.groupby("symbol", sort=False)) + [(OVERALL, frame)]:
        expected = part.drop(columns=["symbol", "simulation"]).select_dtypes(include=[np.number]).mean()
        for column, value in expected.items():
            got = summary.loc[label, column]
            assert (np.isnan(value) and np.isnan(got)) or got == value, (label, column, got, value)
        for name, value in metrics_oracle.walk_forward_stats(part).items():
            got = summary.loc[label, name]
            assert (np.isnan(value) and np.isnan(got)) or got == value, (label, name, got, value)
        assert summary.loc[label, "num_simulations"] == len(part)


def test_one_symbol_summary_repeats_its_row_as_the_overall_row():
    frame = _frame(50, 4)
    frame["symbol"] = "A"
    summary = summarize(frame)
    assert list(summary.index) == ["A", OVERALL]
    pd.testing.assert_series_equal(summary.loc["A"], summary.loc[OVERALL], check_names=False)


def test_means_taken_a_block_of_columns_at_a_time_equal_the_whole_array_bit_for_bit(monkeypatch):
    from totowalk.backtest.profiles import summary

    rng = np.random.default_rng(3)
    values = rng.normal(size=(9, 1001)) * 10.0 ** rng.uniform(-6, 6, size=(9, 1))
    values[rng.random(values.shape) < 0.05] = np.nan
    values[4] = np.nan  # a column with none
    whole = summary._nan_means(values)
    monkeypatch.setattr(summary, "_BLOCK_VALUES", 2000)  # two rows a step, the last alone
    np.testing.assert_array_equal(summary._nan_means(values), whole)
    frame = pd.DataFrame(values.T)
    np.testing.assert_array_equal(whole, frame.mean().to_numpy())  # pandas' own nanmean


def test_overall_rows_wait_on_disk_and_come_back_bit_for_bit(tmp_path):
    # the chunks' numeric rows go to an unnamed file in the given folder (nothing left there) and
    # come back as the (columns, rows) array the summary's means read, in the order added
    from totowalk.backtest.profiles.summary import OverallRows, numeric_columns

    frame = _frame(900, 5)
    kept = OverallRows(tmp_path)
    for part in np.array_split(np.arange(len(frame)), [100, 101, 640]):  # one chunk of a single row
        kept.add(*numeric_columns(frame.iloc[part]))
    assert list(tmp_path.iterdir()) == []
    columns, values = numeric_columns(frame)
    assert kept.columns == columns and kept.filled == len(frame)
    assert kept.shape == values.shape
    np.testing.assert_array_equal(kept[:], values)
    np.testing.assert_array_equal(kept[1:4], values[1:4])  # a run of columns, every row of each
    np.testing.assert_array_equal(kept[-1], values[-1])
    with pytest.raises(IndexError):
        kept[len(columns)]
    with pytest.raises(IndexError, match="contiguous"):
        kept[::2]
    whole = kept.frame()
    pd.testing.assert_frame_equal(whole, frame[columns].astype(np.float64), check_column_type=False)
    assert list(kept.frame(("trades",)).columns) == ["trades"]
    with pytest.raises(RuntimeError, match="after their values were read"):
        kept.add(*numeric_columns(frame.iloc[:5]))
    other = OverallRows(tmp_path)
    other.add(*numeric_columns(frame.iloc[:5]))
    with pytest.raises(ValueError, match="result columns differ between chunks"):
        other.add(*numeric_columns(frame.iloc[5:10].drop(columns=["trades"])))
