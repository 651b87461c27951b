"""Universe scale: the real ``totowalk backtest`` CLI on a synthetic panel of many symbols.

Each row generates a panel of ``--symbols`` symbols (U0000, U0001, ...) x ``--bars`` daily bars
whose OHLC come from one simulated intraday path per day (78 five-minute steps of a driftless
log random walk, 1-3 % daily volatility per symbol, a small overnight gap), writes it as a CSV and
runs ``backtest --data panel.csv --profile clean --sims S --out RUN`` in a child process, plus any
arguments given after ``--``. It measures the child's wall and CPU seconds, its peak RSS, the run
folder (total size, largest files, report.html), the lines and bytes it printed, and the phase
timings of summary.json when the run writes them. It prints the rows in RESULTS.md's style and,
with ``--json PATH``, writes the measurements there.

    python bench/universe.py --symbols 500 --bars 800 --sims 250
    python bench/universe.py --symbols 20 --bars 400 --sims 20 \\
        -- --no-progress --model random:toto-tiny --allow-random-weights
    python bench/universe.py --pythonpath /tmp/old/python ...   # time another checkout (its built extension)

Symbol ``Uxxxx``'s bars depend on the seed and its index only, so a smaller universe is the first
symbols of a larger one.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

STEPS_PER_DAY = 78  # five-minute steps of a 6.5-hour session
DAILY_VOLATILITY = (0.01, 0.03)  # per symbol, uniform in this range
GAP_FRACTION = 0.2  # the overnight gap's standard deviation, as a share of the daily volatility
START_PRICE = (10.0, 500.0)  # first open, log-uniform in this range
PRICE_FORMAT = "%.8g"  # rounding is monotone, so the CSV keeps Low <= Open, Close <= High
CLI = "import sys; from totowalk.cli import main; sys.exit(main(sys.argv[1:]))"  # works at any commit


def symbol_name(index: int) -> str:
    return f"U{index:04d}"


def symbol_bars(index: int, num_bars: int, seed: int) -> dict:
    """One symbol's OHLCV arrays, from a stream of its own (seed, index) so it is the same in any universe."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    daily_vol = rng.uniform(*DAILY_VOLATILITY)
    start = np.exp(rng.uniform(*np.log(START_PRICE)))
    # column 0 of each day: the overnight gap into its open; columns 1..78: the intraday steps
    steps = rng.standard_normal((num_bars, STEPS_PER_DAY + 1))
    steps[:, 0] *= GAP_FRACTION * daily_vol
    steps[0, 0] = 0.0  # the first open is the start price
    steps[:, 1:] *= daily_vol / np.sqrt(STEPS_PER_DAY)
    # one cumulative sum over the whole history: each day's path starts from the previous close
    log_path = np.log(start) + np.cumsum(steps.ravel()).reshape(steps.shape)
    path = np.exp(log_path)
    # volume: lognormal around a million shares, more on days that move more (feeds dollar volume, no forecast)
    volume = np.round(
        rng.lognormal(np.log(1e6), 0.5, size=num_bars) * (1.0 + 50.0 * np.abs(log_path[:, -1] - log_path[:, 0]))
    )
    return {
        "Open": path[:, 0],
        "High": path.max(axis=1),
        "Low": path.min(axis=1),
        "Close": path[:, -1],
        "Volume": volume.astype(np.int64),
    }


def synthetic_panel(num_symbols: int, num_bars: int = 800, seed: int = 0) -> pd.DataFrame:
    """Daily OHLCV bars of ``num_symbols`` symbols, one row per (Ticker, Date), sorted by both."""
    bars = [symbol_bars(i, num_bars, seed) for i in range(num_symbols)]
    dates = pd.bdate_range("2020-01-01", periods=num_bars)
    frame = pd.DataFrame(
        {
            "Date": np.tile(dates.strftime("%Y-%m-%d"), num_symbols),
            "Ticker": np.repeat([symbol_name(i) for i in range(num_symbols)], num_bars),
        }
    )
    for column in ("Open", "High", "Low", "Close", "Volume"):
        frame[column] = np.concatenate([b[column] for b in bars]) if bars else np.empty(0)
    return frame


def write_panel(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, float_format=PRICE_FORMAT)


def child_environment(pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    return env


def run_child(command: list, env: dict, stdout_path: Path, stderr_path: Path) -> tuple:
    """Run ``command``; (exit code, wall s, rusage). os.wait4 gives this one child's own resource
    use (its peak RSS and CPU seconds, with those of any children it waited for), not the sum
    over everything this process ever started, as RUSAGE_CHILDREN would."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: do not leave the backtest running
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen: tell it
    return proc.returncode, wall, usage


def folder_files(folder: Path) -> dict:
    """{path relative to the folder: bytes} of every file under it."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def read_timings(run_dir: Path) -> dict:
    """summary.json's ``timings`` (seconds per phase) where the run wrote them, else {}."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    timings = summary.get("timings") if isinstance(summary, dict) else None
    if not isinstance(timings, dict):
        return {}
    return {str(k): float(v) for k, v in timings.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def read_beside_run(run_dir: Path) -> dict:
    """summary.json's ``outputs.written_beside_run`` (the outputs process' CPU seconds and peak RSS)
    where a process wrote the tables beside the run, else {}."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        beside = summary["outputs"]["written_beside_run"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return dict(beside) if isinstance(beside, dict) else {}


def whole_over_forecast(timings: dict, wall: float) -> dict:
    """How many times its forecasting the run takes: the child's wall seconds (start-up, data,
    model, outputs included) and the phases' own total (a ``total`` entry, else their sum)."""
    forecast = timings.get("forecast")
    if not forecast:
        return {}
    phases = timings.get("total", sum(v for k, v in timings.items() if k != "total"))
    return {"wall": wall / forecast, "phases": phases / forecast}


def backtest_command(python: str, csv_path: Path, run_dir: Path, sims: int, extra: list) -> list:
    return [
        python,
        "-c",
        CLI,
        "backtest",
        "--data",
        str(csv_path),
        "--profile",
        "clean",
        "--sims",
        str(sims),
        "--out",
        str(run_dir),
        *extra,
    ]


def measure_backtest(
    csv_path: Path, run_dir: Path, sims: int, extra: list, python: str = sys.executable, pythonpath: str | None = None
) -> dict:
    """Run the CLI's backtest of ``csv_path`` into ``run_dir`` and measure it (one row's numbers)."""
    command = backtest_command(python, csv_path, run_dir, sims, extra)
    stdout_path = run_dir.with_name(run_dir.name + ".stdout")
    stderr_path = run_dir.with_name(run_dir.name + ".stderr")
    code, wall, usage = run_child(command, child_environment(pythonpath), stdout_path, stderr_path)
    printed = stdout_path.read_bytes()
    files = folder_files(run_dir)
    timings = read_timings(run_dir)
    largest = sorted(files.items(), key=lambda item: -item[1])[:3]
    row = {
        "exit_code": code,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux reports KiB
        "run_folder_bytes": sum(files.values()),
        "run_folder_files": len(files),
        "largest_files": dict(largest),
        "report_html_bytes": files.get("report.html", 0),
        "stdout_lines": printed.count(b"\n"),
        "stdout_bytes": len(printed),
        "timings": timings,
        # wait4's peak RSS is the larger of the run's process and the outputs process, not their sum
        "written_beside_run": read_beside_run(run_dir),
        "whole_over_forecast": whole_over_forecast(timings, wall),
        "command": shlex.join(["totowalk", *command[3:]]),  # what the child ran, as one would type it
        "stderr_tail": stderr_path.read_text(errors="replace")[-2000:] if code else "",
    }
    return row  # stdout and stderr stay beside the run folder (gone with the workdir unless --keep)


def measure_row(
    num_symbols: int,
    num_bars: int,
    sims: int,
    seed: int,
    workdir: Path,
    extra: list,
    python: str = sys.executable,
    pythonpath: str | None = None,
    keep: bool = False,
) -> dict:
    """Generate the panel, run the backtest on it and measure; without ``keep`` the files go afterwards."""
    start = time.perf_counter()
    panel = synthetic_panel(num_symbols, num_bars, seed)
    csv_path = workdir / f"panel_{num_symbols}x{num_bars}_seed{seed}.csv"
    write_panel(panel, csv_path)
    generated = time.perf_counter() - start
    run_dir = workdir / f"run_{num_symbols}x{num_bars}x{sims}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a kept folder from before would be resumed or mixed in
    row = {"symbols": num_symbols, "bars": num_bars, "sims": sims, "seed": seed}
    row["panel_s"], row["panel_csv_bytes"] = generated, csv_path.stat().st_size
    row.update(measure_backtest(csv_path, run_dir, sims, extra, python, pythonpath))
    if keep:
        row["run_dir"], row["panel_csv"] = str(run_dir), str(csv_path)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        csv_path.unlink()
        for printed in ("stdout", "stderr"):
            run_dir.with_name(f"{run_dir.name}.{printed}").unlink(missing_ok=True)
    return row


def tree_commit(python: str, env: dict) -> str:
    """Short commit (+dirty for changed python/, csrc/, CMakeLists.txt) of the totowalk the child
    imports. Read-only: --no-optional-locks keeps git status from refreshing the shared index."""
    probe = subprocess.run(
        [python, "-c", "import os, totowalk; print(os.path.dirname(os.path.realpath(totowalk.__file__)))"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    package = probe.stdout.strip()
    if probe.returncode or not package:
        return "unknown (the child cannot import totowalk)"

    def git(*args):
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", package, *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return f"no git checkout ({package})"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/python", ":/csrc", ":/CMakeLists.txt")
    return head + ("+dirty" if dirty else "")


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f}"


def seconds(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


TABLE_COLUMNS = (
    "symbols x bars x sims",
    "wall s",
    "CPU s",
    "peak RSS MiB",
    "run folder MiB (files)",
    "largest files MiB",
    "report.html MiB",
    "stdout lines / KiB",
    "phases s",
    "whole / forecast",
    "notes",
)


def markdown_row(row: dict) -> str:
    phases = ", ".join(f"{k} {seconds(v)}" for k, v in row["timings"].items()) or "—"
    ratio = row["whole_over_forecast"]
    ratio_text = f"{ratio['wall']:.2f} (wall), {ratio['phases']:.2f} (phases)" if ratio else "—"
    notes = [f"panel CSV {mib(row['panel_csv_bytes'])} MiB, made in {row['panel_s']:.1f} s"]
    beside = row.get("written_beside_run")
    if beside:
        notes.append(
            f"tables and plots written beside the run by a second process: peak RSS "
            f"{beside['peak_rss_mib']:.0f} MiB, CPU {beside['cpu_seconds']:.1f} s (in the row's CPU s; the row's "
            "peak RSS is the larger process')"
        )
    if row["exit_code"]:
        notes.insert(0, f"FAILED: exit code {row['exit_code']}")
    cells = [
        f"{row['symbols']} x {row['bars']} x {row['sims']}",
        seconds(row["wall_s"]),
        seconds(row["cpu_s"]),
        f"{row['peak_rss_mib']:.0f}",
        f"{mib(row['run_folder_bytes'])} ({row['run_folder_files']})",
        ", ".join(f"{name} {mib(size)}" for name, size in row["largest_files"].items()) or "—",
        mib(row["report_html_bytes"]),
        f"{row['stdout_lines']} / {row['stdout_bytes'] / 1024:.1f}",
        phases,
        ratio_text,
        "; ".join(notes),
    ]
    return "| " + " | ".join(cells) + " |"


def provenance(commit: str) -> dict:
    from totowalk.provenance import cpu_description, today  # torch comes with it: not for the tests' import

    return {"machine": cpu_description(), "date": today(), "commit": commit}


def header_lines(made: dict, command: str, load: dict) -> list:
    return [
        f"machine: {made['machine']}",
        f"date: {made['date']}; commit: {made['commit']}; 1-minute load average {load['start']:.2f} at start, "
        f"{load['end']:.2f} at end",
        f"command: {command}",
        "rows: the CLI's backtest in a child process; peak RSS and CPU s are the child's (os.wait4); whole / "
        "forecast: the child's wall s, and the phases' total, over summary.json's forecast phase",
    ]


def split_extra(argv: list) -> tuple:
    """(this script's arguments, the ones after ``--`` that go to the backtest)."""
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


def parse_args(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="arguments after -- go to `totowalk backtest`"
    )
    parser.add_argument("--symbols", type=int, nargs="+", default=[500], help="universe sizes, one row each")
    parser.add_argument("--bars", type=int, default=800, help="daily bars per symbol")
    parser.add_argument("--sims", type=int, default=250, help="simulations per symbol")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic panel")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs the CLI")
    parser.add_argument("--pythonpath", help="prepended to the child's PYTHONPATH (e.g. another checkout's python/)")
    parser.add_argument("--workdir", help="where panels and run folders go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the panels and run folders")
    parser.add_argument("--json", metavar="PATH", help="also write the measurements here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    own, extra = split_extra(sys.argv[1:] if argv is None else list(argv))
    args = parse_args(own)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="totowalk-universe-"))
    workdir.mkdir(parents=True, exist_ok=True)
    commit = tree_commit(args.python, child_environment(args.pythonpath))
    command = shlex.join(["python", "bench/universe.py", *own, *(["--", *extra] if extra else [])])
    made = provenance(commit)
    load = {"start": os.getloadavg()[0]}
    rows = []
    for num_symbols in args.symbols:
        row = measure_row(
            num_symbols, args.bars, args.sims, args.seed, workdir, extra, args.python, args.pythonpath, args.keep
        )
        rows.append(row)
        load["end"] = os.getloadavg()[0]
        print(f"{num_symbols} symbols: {row['wall_s']:.1f} s, exit code {row['exit_code']}", file=sys.stderr)
        if row["exit_code"]:
            print(row["stderr_tail"], file=sys.stderr)
        if args.json:  # after every row: a long series that fails late keeps what it measured
            body = {**made, "command": command, "python": args.python, "pythonpath": args.pythonpath}
            body.update(load_average=load, rows=rows)
            Path(args.json).write_text(json.dumps(body, indent=2) + "\n")
    print("\n".join(header_lines(made, command, load)) + "\n")
    print("| " + " | ".join(TABLE_COLUMNS) + " |")
    print("|" + "---|" * len(TABLE_COLUMNS))
    for row in rows:
        print(markdown_row(row))
    if args.keep:
        print(f"\nkept under {workdir}", file=sys.stderr)
    elif not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(row["exit_code"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
