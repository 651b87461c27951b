"""bench/gpu_check.sh runs once per lent card, with no second try: every command it would run must
be one its script accepts. GPU_CHECK_DRY=1 writes the command lines instead of running them; each
is parsed here by its own script's argument parser (nothing is computed)."""

import argparse
import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from totowalk.benchmarks.suites import SUITES
from totowalk.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


class _Parsed(Exception):
    """Raised in place of running a script once its options parsed."""


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "GPU_CHECK_DRY": "1", "OUT": str(out), "PYTHON": sys.executable}
    done = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = (out / "commands.txt").read_text().splitlines()
    return [shlex.split(line) for line in lines if line.strip()]


def _parse_cli(argv: list) -> argparse.Namespace:
    try:
        return build_parser().parse_args(argv)
    except SystemExit as stop:
        raise AssertionError(f"totowalk {shlex.join(argv)}: refused by the CLI's parser (exit {stop.code})") from None


def _parse_script(script: str, argv: list, monkeypatch) -> None:
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        original(self, args, namespace)  # a bad option exits with status 2
        raise _Parsed

    with monkeypatch.context() as patch:  # undone before the next command
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        patch.setattr(sys, "argv", [script, *argv])
        patch.syspath_prepend(str(ROOT / "bench"))
        try:
            runpy.run_path(str(ROOT / script), run_name="__main__")
        except _Parsed:
            return
        except SystemExit as stop:
            raise AssertionError(f"{script} {shlex.join(argv)}: refused by its parser (exit {stop.code})") from None
    raise AssertionError(f"{script} ran without parsing its options")


def test_the_dry_run_lists_the_open_issues_rows_first(commands):
    names = [" ".join(c[1:4]) for c in commands]
    assert names[0].startswith("-m pip install")
    harness = [i for i, c in enumerate(commands) if c[1:4] == ["-m", "totowalk.cli", "bench"]]
    kronos = [i for i, c in enumerate(commands) if c[1] == "bench/bench_kronos_batch.py"]
    universe = [i for i, c in enumerate(commands) if c[1] == "bench/universe.py"]
    prefix = [i for i, c in enumerate(commands) if c[1] == "bench/bench_prefix_sharing.py"]
    assert harness and kronos and universe and prefix
    # the rows issues 29, 31, 33 and 35 wait for come before the closed issues' rows
    assert harness[0] < universe[0] < prefix[0] and kronos[0] < prefix[0]
    first_w2 = commands[harness[0]]
    assert first_w2[4] == "W2" and "--statistics-backend" in first_w2 and "fp16" in first_w2


def test_every_command_parses(commands, monkeypatch):
    markers = (ROOT / "pyproject.toml").read_text()
    assert len(commands) >= 10
    for command in commands:
        assert command[0] == sys.executable, command
        argv = command[1:]
        if argv[:2] == ["-m", "pip"]:
            assert argv[2] == "install" and argv[-1] == "."
        elif argv[:2] == ["-m", "pytest"]:
            rest = argv[2:]
            for i, arg in enumerate(rest):
                if arg.startswith("tests"):
                    assert (ROOT / arg).exists(), arg
                if arg == "-m":
                    assert f'"{rest[i + 1]}:' in markers, f"marker {rest[i + 1]} is not registered"
        elif argv[:2] == ["-m", "totowalk.cli"]:
            args = _parse_cli(argv[2:])
            if argv[2] == "bench":
                assert set(args.workloads) <= set(SUITES), args.workloads
        else:
            script, rest = argv[0], argv[1:]
            assert (ROOT / script).is_file(), script
            own, backtest = (rest[: rest.index("--")], rest[rest.index("--") + 1 :]) if "--" in rest else (rest, [])
            _parse_script(script, own, monkeypatch)
            if backtest:  # bench/universe.py hands these to `totowalk backtest`
                _parse_cli(["backtest", "--data", "panel.csv", "--out", "run", *backtest])
