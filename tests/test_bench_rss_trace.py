"""bench/rss_trace.py: a child's resident memory, sampled, attributed to the lines it printed."""

import sys
from pathlib import Path

import pytest
from _bench import bench_script

rss_trace = bench_script("rss_trace")

# 160 MB held between the "allocating" and "freeing" lines; a progress bar's updates on stderr
CHILD = """
import sys, time
print("start: small", flush=True); time.sleep(0.3)
print("allocating: 160 MB", flush=True)
block = bytearray(160 * 2**20); block[::4096] = b"x" * len(block[::4096]); time.sleep(0.4)
print("freeing: done", flush=True)
del block
time.sleep(0.3)
for k in range(3):
    sys.stderr.write(f"\\rbar: {k}/3 |#  |"); sys.stderr.flush(); time.sleep(0.1)
sys.exit(3)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc")
def test_the_peak_falls_in_the_stretch_of_the_line_printed_before_it(capsys):
    code, samples, lines = rss_trace.trace([sys.executable, "-c", CHILD], every=0.02)
    assert code == 3
    assert [text for _, name, text in lines if name == "out"] == ["start: small", "allocating: 160 MB", "freeing: done"]
    assert [text for _, name, text in lines if name == "err"] == ["bar: 0/3 |#  |", "bar: 1/3 |#  |", "bar: 2/3 |#  |"]
    parts = {name: (highest, last) for _, _, highest, last, name in rss_trace.stretches(samples, lines)}
    assert list(parts)[-4:] == ["start", "allocating", "freeing", "bar"]  # the bar's updates: one stretch
    assert parts["allocating"][0] > parts["start"][0] + 150  # resident while "allocating" was the latest line
    assert parts["freeing"][1] < parts["allocating"][0] - 150  # and given back
    assert rss_trace.main(["--", sys.executable, "-c", CHILD]) == 3
    printed = capsys.readouterr().out
    assert "peak RSS" in printed and "after: allocating" in printed
