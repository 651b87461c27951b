"""bench/bench_parquet.py: both comparisons run end to end on small parts and say their files agree."""

import pytest
from _bench import bench_script


@pytest.fixture(scope="module")
def bench_parquet():
    pytest.importorskip("pyarrow")
    return bench_script("bench_parquet")


@pytest.mark.parametrize("compare, agree", [("packing", "same bytes: True"), ("dictionaries", "same table: True")])
def test_each_comparison_writes_both_sides_and_checks_they_agree(bench_parquet, capsys, compare, agree):
    from totowalk.backtest.report import files

    repeating = files._repeating
    assert bench_parquet.main(["--compare", compare, "--parts", "2", "--rows", "40", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert agree in printed and "2 parts x 40 rows" in printed
    assert files._repeating is repeating  # the dictionaries side puts the writer's rule back
