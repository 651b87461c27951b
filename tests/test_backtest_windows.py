"""Simulation windows, percent changes and the run-wide deduplicated forecast plan."""

import numpy as np
import pandas as pd
import pytest

from totowalk import PriceDataError
from totowalk.backtest.forecast.plan import ForecastPlan, SymbolSeries
from totowalk.backtest.inputs.frames import validate_price_frame
from totowalk.backtest.inputs.windows import percent_changes, window_layout


def _prices(n, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame({"Open": close * 0.999, "High": close * 1.01, "Low": close * 0.99, "Close": close})


def test_percent_changes_follow_the_legacy_rule():
    pct = percent_changes(np.array([2.0, 3.0, 0.0, 5.0, 4.0]))
    # pct_0 = 1; division by a zero previous price gives 0 (not inf)
    np.testing.assert_array_equal(pct, [1.0, 0.5, -1.0, 0.0, -0.2])


@pytest.mark.parametrize("profile,drop,first_target", [("legacy", 1, -7), ("clean", 0, -6)])
def test_window_layout_positions(profile, drop, first_target):
    lay = window_layout(50, 4, profile)
    np.testing.assert_array_equal(lay.window_rows, 50 - drop - np.arange(4))
    n = lay.window_rows[:, None]
    np.testing.assert_array_equal(lay.target_rows, n + first_target + np.arange(7))
    # contexts end one row before their target: no forecast sees its own outcome
    np.testing.assert_array_equal(lay.context_ends, lay.target_rows - 1)
    observed = lay.observed
    assert observed[:, :6].all()
    assert observed[:, 6].all() == (profile == "legacy")


def test_too_few_rows_names_symbol_and_rows():
    with pytest.raises(PriceDataError, match=r"symbol 'XYZ'.*has 12 rows.*at least 14"):
        window_layout(12, 5, "legacy", symbol="XYZ")
    window_layout(13, 5, "clean", symbol="XYZ")  # clean keeps the newest row: one fewer needed
    with pytest.raises(PriceDataError, match=r"--insufficient-history skip"):  # the way out is named
        window_layout(12, 5, "clean", symbol="XYZ")


@pytest.mark.parametrize("profile", ["legacy", "clean"])
def test_a_symbol_too_short_is_left_out_on_request_and_the_rest_run_as_alone(tmp_path, profile):
    from test_backtest_api import mean5, prices

    from totowalk import backtest

    data = {"AAA": prices(60, 1), "NEW": prices(40, 3).iloc[:11], "BBB": prices(75, 2)}
    with pytest.raises(PriceDataError, match=r"symbol 'NEW'.*has 11 rows"):
        backtest(data, num_simulations=5, forecaster=mean5, profile=profile)
    fee = {"NEW": 0.001, "BBB": 0.002}  # a setting may name the symbol left out
    skipping = dict(num_simulations=5, forecaster=mean5, profile=profile, fee=fee, insufficient_history="skip")
    run = backtest(data, **skipping, out_dir=tmp_path / "run")
    alone = backtest(
        {s: data[s] for s in ("AAA", "BBB")}, num_simulations=5, forecaster=mean5, profile=profile, fee={"BBB": 0.002}
    )
    pd.testing.assert_frame_equal(run.simulations, alone.simulations)
    pd.testing.assert_frame_equal(run.daily, alone.daily)
    assert run.settings["symbols"] == ["AAA", "BBB"] and run.settings["skipped"] == {"NEW": 11}
    assert "skipped" not in alone.settings  # a run that left nothing out keeps its settings (and fingerprint)
    needed = 13 if profile == "clean" else 14
    assert run.warnings[0] == (
        f"left out 1 symbol with too little history for 5 simulation(s) of the {profile} profile "
        f"(at least {needed} rows): NEW (11 rows)"
    )
    resumed = backtest(data, **skipping, out_dir=tmp_path / "run", resume=True)
    pd.testing.assert_frame_equal(resumed.simulations, run.simulations)


def test_every_symbol_too_short_is_an_error_even_when_skipping():
    from test_backtest_api import mean5, prices

    from totowalk import backtest
    from totowalk.errors import UsageError

    data = {"A": prices(10, 1), "B": prices(12, 2)}
    with pytest.raises(PriceDataError, match=r"every symbol has too little history.*A \(10 rows\), B \(12 rows\)"):
        backtest(data, num_simulations=5, forecaster=mean5, insufficient_history="skip")
    with pytest.raises(UsageError, match="insufficient_history must be one of"):
        backtest(data, num_simulations=5, forecaster=mean5, insufficient_history="drop")


def test_a_long_list_of_symbols_left_out_is_cut_short():
    from totowalk.backtest.inputs.windows import skipped_warning

    text = skipped_warning({f"S{i:03d}": 5 for i in range(25)}, 10, "clean")
    assert text.startswith("left out 25 symbols") and text.endswith("S009 (5 rows) and 15 more")


def test_nan_price_names_symbol_column_and_row():
    frame = _prices(30)
    frame.loc[17, "High"] = np.nan
    with pytest.raises(PriceDataError) as err:
        validate_price_frame(frame, "ABC")
    assert (err.value.symbol, err.value.column, err.value.row) == ("ABC", "High", 17)
    assert "row 17" in str(err.value) and "'ABC'" in str(err.value)


def test_plan_dedupes_to_k_plus_6_contexts_per_key_and_symbol():
    k = 10
    series = [
        SymbolSeries.build(
            s, validate_price_frame(_prices(200 + i, i), s), window_layout(200 + i, k, "legacy", symbol=s)
        )
        for i, s in enumerate(["A", "B"])
    ]
    plan = ForecastPlan(series)
    assert len(plan) == 2 * 4 * (k + 6)
    assert plan.num_slots == 2 * k * 4 * 7
    # every slot maps to a request of the same symbol, key and context length
    for row in range(2 * k):
        s_i = row // k
        lengths = series[s_i].layout.context_lengths[row % k]
        req = plan.slot_request[row]
        assert (plan.req_series[req] == s_i).all()
        np.testing.assert_array_equal(plan.req_key[req], np.arange(4)[:, None].repeat(7, 1))
        np.testing.assert_array_equal(plan.req_length[req], np.broadcast_to(lengths, (4, 7)))
    # requests are numbered in order of first appearance: series, then key, then (simulation, step)
    appearance = plan.slot_request.reshape(2, k, 4, 7).transpose(0, 2, 1, 3).reshape(-1)
    ids, first = np.unique(appearance, return_index=True)
    assert np.array_equal(ids, np.arange(len(plan))) and (np.diff(first) > 0).all()
    # a context is pct_1 .. pct_len of its key, in float32
    i = int(plan.slot_request[3, 2, 5])
    s = series[plan.req_series[i]]
    np.testing.assert_array_equal(plan.context(i), s.pct["High"][1 : plan.req_length[i] + 1].astype(np.float32))


def test_plan_batches_cover_every_request_once_in_series_key_order():
    lay = window_layout(140, 8, "clean")  # context lengths 126..140 straddle the 128 boundary
    plan = ForecastPlan([SymbolSeries.build("S", validate_price_frame(_prices(140), "S"), lay)])
    batches = plan.batches(5)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(len(plan)))
    assert all(len(b) <= 5 for b in batches)
    # series, then key: one series-key's prefixes stay together (prefix sharing)
    order = np.stack([plan.req_series[seen], plan.req_key[seen]], axis=1)
    assert [tuple(r) for r in order] == sorted(tuple(r) for r in order)
    todo = np.zeros(len(plan), dtype=bool)
    todo[[3, 7]] = True
    assert sorted(np.concatenate(plan.batches(5, todo)).tolist()) == [3, 7]


def test_plan_chunks_keep_series_keys_and_residue_chains_whole():
    lay = window_layout(700, 300, "legacy")  # ~306 context lengths per key
    plan = ForecastPlan([SymbolSeries.build(s, validate_price_frame(_prices(700), s), lay) for s in ("A", "B")])
    per_key = len(plan) // (2 * 4)
    for max_batch in (per_key + 5, 3 * per_key, 100, 1):
        chunks = plan.batches(max_batch, patch_size=64)
        seen = np.concatenate(chunks)
        assert sorted(seen.tolist()) == list(range(len(plan))) and all(len(c) <= max_batch for c in chunks)
        where = {int(r): c for c, chunk in enumerate(chunks) for r in chunk}
        for r in range(len(plan)):
            partners = (plan.req_series == plan.req_series[r]) & (plan.req_key == plan.req_key[r])
            if max_batch >= per_key:  # a whole series-key fits: it shares one chunk
                assert {where[int(q)] for q in np.flatnonzero(partners)} == {where[r]}
            elif max_batch >= 5:  # a residue chain (<= 5 members here) is never cut
                chain = partners & (plan.req_length % 64 == plan.req_length[r] % 64)
                assert {where[int(q)] for q in np.flatnonzero(chain)} == {where[r]}


@pytest.mark.parametrize("extra", ["close", " Close ", "Close"])
def test_two_columns_naming_one_price_are_refused_by_name(extra):
    frame = _prices(30)
    doubled = pd.concat([frame, (frame["Close"] * 2).rename(extra)], axis=1)  # "Close" twice, or in other case
    with pytest.raises(PriceDataError, match=r"columns 'Close', '.*' all name Close") as err:
        validate_price_frame(doubled, "ABC")
    assert (err.value.symbol, err.value.column) == ("ABC", "Close")


@pytest.mark.parametrize("volume", [np.arange(40.0), np.arange(40) * 1000, np.arange(40, dtype=np.uint32)])
def test_numeric_text_and_float_columns_validate_to_the_same_frame(volume):
    frame = _prices(40, 3).assign(Volume=volume, High=lambda f: np.ceil(f["High"]).astype(np.int64))
    mixed = frame.assign(Open=frame["Open"].map(repr), Note="x")  # text prices, a text column beside them
    fast, slow = validate_price_frame(frame, "A"), validate_price_frame(mixed, "A")
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert list(fast.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert (fast.dtypes == np.float64).all()
    for key in fast.columns:  # the values, not views of the caller's frame
        np.testing.assert_array_equal(fast[key].to_numpy(), frame[key].to_numpy(dtype=np.float64))
        assert not np.shares_memory(fast[key].to_numpy(), frame[key].to_numpy())


def test_the_first_bad_price_in_column_order_is_the_one_named():
    frame = _prices(30)
    frame.loc[20, "Open"], frame.loc[5, "Close"] = -1.0, np.inf
    with pytest.raises(PriceDataError) as err:
        validate_price_frame(frame, "ABC")
    assert (err.value.column, err.value.row) == ("Open", 20)  # Open is checked before Close
    assert "-1.0" in str(err.value)


def test_percent_changes_of_several_series_equal_each_alone():
    rng = np.random.default_rng(5)
    prices = rng.lognormal(0, 0.02, (4, 50)) * 100
    prices[1, 10], prices[2, 0] = 0.0, 0.0  # a zero previous price: change 0
    together = percent_changes(prices)
    for row, alone in zip(together, prices):
        np.testing.assert_array_equal(row, percent_changes(alone))
    assert percent_changes(np.empty((4, 0))).shape == (4, 0)


@pytest.mark.parametrize("how", ["newest first", "a repeated day"])
def test_a_frame_out_of_date_order_is_refused_by_row_and_date(how):
    from test_backtest_api import mean5, prices

    from totowalk import backtest

    frame = prices(60, 4)
    bad = frame.iloc[::-1] if how == "newest first" else pd.concat([frame.iloc[:30], frame.iloc[29:]])
    with pytest.raises(PriceDataError) as err:
        backtest({"A": bad}, num_simulations=3, forecaster=mean5)
    assert (err.value.symbol, err.value.column, err.value.row) == ("A", "Date", 1 if how == "newest first" else 30)
    assert ("not in increasing order" if how == "newest first" else "duplicate date") in str(err.value)
    assert "tw.load_prices(frame, on_invalid='drop')" in str(err.value)
    repaired = _repaired(bad)
    pd.testing.assert_frame_equal(
        backtest({"A": repaired}, num_simulations=3, forecaster=mean5).simulations,
        backtest({"A": frame}, num_simulations=3, forecaster=mean5).simulations,
    )


def _repaired(frame):
    import warnings

    from totowalk import load_prices

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the repair's count
        return load_prices(frame, symbol="A", on_invalid="drop")
