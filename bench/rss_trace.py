"""Where a run's memory peaks: run a command, sample its resident memory, and say what it was printing.

A peak RSS figure (bench/universe.py's, from os.wait4) says how high a run went, not when. This
runs any command (typically the CLI's backtest), reads the child's VmRSS from /proc every
``--every`` seconds, timestamps each line (or progress-bar update) it writes on stdout and stderr,
and prints the peak, when it came, and the highest and last RSS while each kind of line was the
latest printed: a peak in the "tables" stretch of a backtest is after the run's summary was printed
(its outputs), one before it is in the backtest itself. Linux only (/proc).

    python bench/rss_trace.py -- python -m totowalk.cli backtest --data panel.csv --out run
    python bench/rss_trace.py --tail 20 -- totowalk backtest ...   # also the last 20 s, sample by sample
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time

_BAR_TAIL = re.compile(r"[\d.,%|#█▏▎▍▌▋▊▉ ]+$")  # a progress bar's (or a table row's) changing numbers


def resident_mib(pid: int) -> float | None:
    """The process' resident memory (MiB), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def label(line: str) -> str:
    """What kind of line it is: its text before a colon, without a progress bar's counters."""
    head = line.split(":")[0][:40]
    return _BAR_TAIL.sub("", head) or head


def trace(command: list, every: float = 0.05) -> tuple:
    """Run ``command``; (exit code, [(s, RSS MiB)], [(s, stream, line)])."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    start = time.perf_counter()
    samples, lines = [], []

    def sample():
        while proc.poll() is None:
            rss = resident_mib(proc.pid)
            if rss is not None:
                samples.append((time.perf_counter() - start, rss))
            time.sleep(every)

    def read(stream, name):
        pending = b""
        with stream:
            while chunk := stream.read1(65536):
                pieces = re.split(rb"[\r\n]", pending + chunk)
                pending = pieces.pop()
                for piece in pieces:
                    keep(piece, name)
        keep(pending, name)  # the last piece, unterminated (a progress bar's last update)

    def keep(piece: bytes, name: str):
        text = piece.decode(errors="replace").strip()
        if text:
            lines.append((time.perf_counter() - start, name, text))

    threads = [threading.Thread(target=sample)]
    threads += [threading.Thread(target=read, args=(s, n)) for s, n in ((proc.stdout, "out"), (proc.stderr, "err"))]
    for thread in threads:
        thread.start()
    code = proc.wait()
    for thread in threads:
        thread.join()
    return code, samples, lines


def stretches(samples: list, lines: list) -> list:
    """[(from s, to s, highest MiB, last MiB, label)]: the run cut where the kind of line printed changes."""
    marks = []
    for at, _, text in [(0.0, "", "(start)")] + sorted(lines):
        if not marks or marks[-1][1] != label(text):
            marks.append((at, label(text)))
    end = samples[-1][0] + 1.0 if samples else 0.0
    out = []
    for (begin, name), (until, _) in zip(marks, marks[1:] + [(end, "")]):
        inside = [rss for at, rss in samples if begin <= at < until]
        if inside:
            out.append((begin, until, max(inside), inside[-1], name))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=float, default=0.05, help="seconds between samples")
    parser.add_argument("--tail", type=float, default=0.0, help="also print the last this many seconds' samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to trace after --")
    code, samples, lines = trace(command, args.every)
    if not samples:
        print(f"exit code {code}; no sample taken (the command ended within {args.every} s, or no /proc)")
        return code
    peak_at, peak = max(samples, key=lambda s: s[1])
    print(f"exit code {code}; peak RSS {peak:.0f} MiB at {peak_at:.1f} s of {samples[-1][0]:.1f} s")
    for begin, until, highest, last, name in stretches(samples, lines):
        print(f"{begin:8.1f} - {until:8.1f} s  highest {highest:7.0f}  last {last:7.0f} MiB  after: {name}")
    if args.tail:
        cut = samples[-1][0] - args.tail
        for at, rss in samples[:: max(1, round(0.5 / args.every))]:
            if at >= cut:
                print(f"{at:8.1f} s {rss:7.0f} MiB")
    return code


if __name__ == "__main__":
    sys.exit(main())
