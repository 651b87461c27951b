"""A run folder at any size: tables in the format that fits (CSV for a few symbols, Parquet for a
universe, as asked), the resume journal gone once the outputs are written, a few PNGs, a bounded
terminal, phase timings, and an interruption in any phase finished by --resume with byte-identical
tables."""

import json

import numpy as np
import pandas as pd
import pytest

from totowalk.backtest import backtest
from totowalk.backtest.forecast.store import FORECASTS, MANIFEST, PARTS, RunStore, json_default
from totowalk.backtest.report import csv_text, files
from totowalk.backtest.report.files import LARGE_TABLE_ROWS, table_format
from totowalk.cli import main
from totowalk.engine import ForecastEngine
from totowalk.loading import resolve_model

RANDOM = ["--model", "random:toto-tiny", "--allow-random-weights"]
DATA = ["--dataset", "us-stocks-daily", "--symbol", "IBM", "--symbol", "AAPL", "--symbol", "MSFT"]
RUN = ["backtest", *DATA, "--end", "2001-06-30", "--sims", "4", "--no-progress", *RANDOM]
TABLES = ("simulations.csv", "forecasts.csv", "daily_returns.csv")


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    assert main([*RUN, "--out", str(out)]) == 0
    return out


def test_a_finished_folder_keeps_its_tables_and_drops_the_journal(finished):
    names = {p.name for p in finished.iterdir()}
    assert {*TABLES, "summary.json", "report.html", MANIFEST} <= names
    assert FORECASTS not in names and PARTS not in names  # compacted: the tables hold it all
    summary = json.loads((finished / "summary.json").read_text())
    timings = summary["timings"]
    for phase in ("load", "prepare", "forecast", "strategies", "tables", "write_tables", "plots", "report", "total"):
        assert timings[phase] >= 0.0, phase
    assert summary["outputs"] == {"tables": "csv", "forecast_plots": 3}


def test_a_script_writes_the_commands_files_with_one_call(tmp_path, finished):
    import totowalk as tw
    from totowalk.data import datasets

    frames = {s: datasets.load(s).loc[:"2001-06-30"] for s in ("IBM", "AAPL", "MSFT")}
    engine = ForecastEngine(resolve_model("random:toto-tiny", allow_random=True).model, estimator="exact")
    bt = tw.backtest(frames, num_simulations=4, engine=engine, out_dir=tmp_path / "run")
    paths = tw.write_outputs(bt, tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {*TABLES, "summary.json", "report.html", MANIFEST} <= names and set(p.name for p in paths) <= names
    assert FORECASTS not in names and PARTS not in names  # compacted as the command's
    for table in TABLES:  # the command's tables, byte for byte
        assert (tmp_path / "run" / table).read_bytes() == (finished / table).read_bytes(), table


def test_the_terminal_says_where_the_time_went_and_where_the_files_are(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out), "--plot-symbols", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    wrote = [line for line in printed if line.startswith("wrote ")]
    assert wrote == [
        f"wrote simulations.csv, forecasts.csv, summary.json, daily_returns.csv, report.html and 2 PNG plots to {out}"
    ]
    assert len(list(out.glob("forecast_vs_actual_*.png"))) == 1
    seconds = [line for line in printed if line.startswith("seconds: ")]
    assert len(seconds) == 1 and "forecast " in seconds[0] and "x the forecast)" in seconds[0]
    timings = json.loads((out / "summary.json").read_text())["timings"]
    for phase in ("load", "forecast", "write_tables", "plots", "report"):  # summary.json's seconds, as written
        assert f"{phase} {timings[phase]:.1f}" in seconds[0], phase
    assert any(line.startswith("tables: csv (") for line in printed)


def _crash_in(monkeypatch, phase):
    """Make the named phase fail once (the first time it is reached)."""
    if phase == "forecast":
        real, calls = ForecastEngine.forecast_walk_forward, []

        def failing(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise Interrupt(phase)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(ForecastEngine, "forecast_walk_forward", failing)
    elif phase == "strategies":
        real_save = RunStore.save_part

        def failing_save(self, index, symbols, tables):
            if index == 1:
                raise Interrupt(phase)
            real_save(self, index, symbols, tables)

        monkeypatch.setattr(RunStore, "save_part", failing_save)
    else:
        target = {"tables": "write_table", "plots": "plot_results", "report": "write_html_report"}[phase]

        def failing_output(*args, **kwargs):
            raise Interrupt(phase)

        monkeypatch.setattr(files, target, failing_output)


@pytest.mark.parametrize("phase", ["forecast", "strategies", "tables", "plots", "report"])
def test_an_interruption_in_any_phase_is_finished_by_resume_with_identical_tables(
    tmp_path, monkeypatch, finished, phase
):
    out = tmp_path / "run"
    # a chunk per symbol, so a crash leaves some chunks done
    argv = [*RUN, "--out", str(out), "--chunk-contexts", "1"]
    with monkeypatch.context() as patch:
        _crash_in(patch, phase)
        with pytest.raises(Interrupt):
            main(argv)
    assert (out / MANIFEST).is_file()
    assert main([*argv, "--resume"]) == 0
    for name in TABLES:
        assert (out / name).read_bytes() == (finished / name).read_bytes(), name
    assert not (out / PARTS).exists() and not (out / FORECASTS).exists()


def test_parquet_tables_hold_the_csv_tables_values(tmp_path, finished):
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out), "--tables", "parquet"]) == 0
    assert not list(out.glob("*.csv"))  # the daily table too
    for name in ("simulations", "forecasts", "daily_returns"):
        got = pd.read_parquet(out / f"{name}.parquet")
        want = pd.read_csv(finished / f"{name}.csv")
        assert list(got.columns) == list(want.columns)
        assert len(got) == len(want)
        numeric = want.select_dtypes("number").columns
        pd.testing.assert_frame_equal(
            got[numeric].astype("float64"), want[numeric].astype("float64"), check_exact=False, rtol=1e-12
        )
        listed = [c for c in want.columns if want[c].dtype != float and want[c].astype(str).str.startswith("[").all()]
        assert (name == "simulations") == bool(listed)  # the daily values: Parquet lists, JSON text in CSV
        for column in listed:
            assert [list(v) for v in got[column]] == [json.loads(v) for v in want[column]], column


def test_auto_tables_turn_to_parquet_for_a_universe():
    class Run:  # table_format reads only the settings
        def __init__(self, symbols, sims):
            self.settings = {"symbols": [f"S{i}" for i in range(symbols)], "num_simulations": sims, "keys": "OHLC"}

    assert table_format(Run(3, 10))[0] == "csv"
    rows = LARGE_TABLE_ROWS // (4 * 7) + 1
    assert table_format(Run(rows, 1))[0] == "parquet"
    assert table_format(Run(rows, 1), "csv") == ("csv", "csv as asked")
    with pytest.raises(ValueError, match="tables must be one of"):
        table_format(Run(1, 1), "xlsx")


def test_a_stored_run_reads_its_tables_back_from_the_folder(tmp_path):
    from test_backtest_api import mean5, prices

    data = {"AAA": prices(80, 1), "BBB": prices(80, 2)}
    result = backtest(data, num_simulations=4, forecaster=mean5, out_dir=tmp_path / "run", contexts_per_chunk=1)
    assert result.tables.store is not None and len(result.tables.chunks) == 2
    memory = backtest(data, num_simulations=4, forecaster=mean5)
    pd.testing.assert_frame_equal(result.simulations, memory.simulations)
    one = result.tables.symbol_rows("forecasts", "BBB")
    pd.testing.assert_frame_equal(
        one.reset_index(drop=True), memory.forecasts[memory.forecasts["symbol"] == "BBB"].reset_index(drop=True)
    )


@pytest.mark.parametrize(
    "cells",
    [
        [[0.1, -2.5e-07, float("nan")], [], [1, 2.0]],  # flat lists: one json.dumps, cut at the brackets
        [[0.25]],
        [[[1.0], [2.0]], [3.0]],  # nested: cell by cell
        [[1.0], None],
        [[[1.0], [2.0]], None],  # as many brackets as flat lists would have
        [["a], [b"], ["c]"]],  # text that looks like the cut
        [np.array([0.5, 1.5]), [2.5]],
        [],
    ],
)
def test_list_cells_are_written_as_json_of_each_cell(cells):
    assert csv_text._json_cells(cells) == [json.dumps(v, default=json_default) for v in cells]


def _frame_with_cells():
    return pd.DataFrame(
        {
            "symbol": ["A", "B", "C"],
            "daily": [np.array([0.1, -0.2]), np.array([0.3]), np.array([], dtype=np.float64)],  # ragged: packed
            "positions": [np.ones(2, np.float32), np.zeros(2, np.float32), -np.ones(2, np.float32)],  # packed
            "mixed": [np.array([1.0]), np.array([1], np.int64), np.array([2.0])],  # two dtypes: kept
            "nested": [np.eye(2), np.eye(2), np.eye(2)],  # 2-D: kept
            "gaps": [np.array([1.0]), None, np.array([2.0])],  # a None: kept
            "value": [1.5, 2.5, 3.5],
        }
    )


def test_parts_pack_array_cells_and_give_back_the_same_frame():
    from totowalk.backtest.forecast.store import pack_array_cells, unpack_array_cells

    frame = _frame_with_cells()
    rest, packed = pack_array_cells(frame)
    assert set(packed) == {"daily", "positions"}
    assert list(rest.columns) == ["symbol", "mixed", "nested", "gaps", "value"]
    back = unpack_array_cells(rest, packed)
    assert list(back.columns) == list(frame.columns)
    for column in frame.columns:
        for want, got in zip(frame[column], back[column]):
            if isinstance(want, np.ndarray):
                assert got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
            else:
                assert got == want
    assert unpack_array_cells(*pack_array_cells(frame.iloc[:0])).columns.tolist() == list(frame.columns)


def test_a_stored_part_reads_back_as_it_was_saved(tmp_path):
    store = RunStore(tmp_path / "run", "digest", {"profile": "clean"}, resume=False)
    frame = _frame_with_cells()
    store.save_part(0, ["A", "B", "C"], {"simulations": frame})
    back = store.load_part(0, ["A", "B", "C"], "simulations")
    assert csv_text._json_cells(back["daily"].tolist()) == [json.dumps(v.tolist()) for v in frame["daily"]]
    assert back["value"].tolist() == frame["value"].tolist() and list(back.columns) == list(frame.columns)


def _parts_with_cells(seed: int = 0) -> list:
    """Three parts of a table with array cells: ragged float64 and float32 ones (packed when stored),
    and one part whose daily values hold a None (kept as cells)."""
    rng = np.random.default_rng(seed)
    parts = []
    for rows in (5, 3, 4):
        parts.append(
            pd.DataFrame(
                {
                    "symbol": [f"S{rng.integers(100)}" for _ in range(rows)],
                    "daily": [rng.normal(size=rng.integers(0, 6)) for _ in range(rows)],
                    "positions": [rng.normal(size=3).astype(np.float32) for _ in range(rows)],
                    "value": rng.normal(size=rows),
                }
            )
        )
    parts[2].loc[1, "daily"] = None
    return parts


def test_parquet_tables_keep_dictionaries_for_repeating_columns_only(tmp_path):
    # text, dates and counts repeat a few values (dictionaries); floats and lists of floats nearly
    # never do (plain values: a dictionary would be built and dropped per column chunk)
    pq = pytest.importorskip("pyarrow.parquet")
    from totowalk.backtest.report.files import TableFile

    parts = _parts_with_cells()
    for k, part in enumerate(parts):
        part["simulation"] = np.arange(len(part)) + k
        part["date"] = pd.Timestamp("2024-01-02") + pd.to_timedelta(part["simulation"], "D")
    table = TableFile(tmp_path / "t.parquet", "parquet")
    for part in parts:
        table.append(part)
    table.close()
    path = table.commit()
    meta = pq.ParquetFile(path).metadata
    for group in range(meta.num_row_groups):
        encodings = {}
        for k in range(meta.num_columns):
            column = meta.row_group(group).column(k)
            encodings[column.path_in_schema.split(".")[0]] = "RLE_DICTIONARY" in column.encodings
        assert encodings == {
            "symbol": True,
            "simulation": True,
            "date": True,
            "daily": False,
            "positions": False,
            "value": False,
        }, group
    back = pd.read_parquet(path)
    want = pd.concat(parts, ignore_index=True)
    assert back["symbol"].tolist() == want["symbol"].tolist() and back["value"].tolist() == want["value"].tolist()
    assert (back["date"] == want["date"]).all() and back["simulation"].tolist() == want["simulation"].tolist()


def test_packed_parts_write_the_parquet_bytes_of_their_frames(tmp_path):
    pytest.importorskip("pyarrow")
    from totowalk.backtest.forecast.store import PackedFrame, pack_array_cells
    from totowalk.backtest.report.files import TableFile

    parts = _parts_with_cells()
    packed = [PackedFrame(*pack_array_cells(part)) for part in parts]
    assert [set(p.packed) for p in packed] == [{"daily", "positions"}] * 2 + [{"positions"}]
    files = {}
    for name, given in (("frames", parts), ("packed", packed)):
        table = TableFile(tmp_path / f"{name}.parquet", "parquet")
        for part in given:
            table.append(part)
        table.close()
        files[name] = table.commit().read_bytes()
    assert files["packed"] == files["frames"]
    back = pd.read_parquet(tmp_path / "packed.parquet")
    want = pd.concat(parts, ignore_index=True)
    assert [None if v is None else list(v) for v in back["daily"]] == [
        None if v is None else list(v) for v in want["daily"]
    ]
    assert back["value"].tolist() == want["value"].tolist()
