"""bench/bench_parquet.py: both comparisons run end to end on small parts and say their files agree."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench_parquet():
    pytest.importorskip("pyarrow")
    sys.path.insert(0, str(BENCH))  # it imports bench_csv's synthetic parts, as when run from bench/
    try:
        spec = importlib.util.spec_from_file_location("bench_parquet", BENCH / "bench_parquet.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("compare, agree", [("packing", "same bytes: True"), ("dictionaries", "same table: True")])
def test_each_comparison_writes_both_sides_and_checks_they_agree(bench_parquet, capsys, compare, agree):
    from totowalk.backtest.report import files

    repeating = files._repeating
    assert bench_parquet.main(["--compare", compare, "--parts", "2", "--rows", "40", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert agree in printed and "2 parts x 40 rows" in printed
    assert files._repeating is repeating  # the dictionaries side puts the writer's rule back
