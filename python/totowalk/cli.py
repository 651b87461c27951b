"""The ``totowalk`` command: parses, dispatches to the subcommand modules of ``commands/``, and turns
a user's mistake into one ``error:`` line (exit 2) instead of a traceback."""

from __future__ import annotations

import argparse
import sys
import warnings

from .commands import backtest, bench, evaluate, forecast, info, quality, quantize, report, samples
from .devices import DeviceError
from .errors import MissingExtraError, UsageError, one_line

# each module's register(subparsers) adds its subcommand, in this order in --help
COMMANDS = (info, backtest, report, evaluate, samples, quantize, quality, forecast, bench)


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes read like every other error: one line, exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="totowalk", description="Exact, batched walk-forward backtests on Toto forecasts.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def expected_errors() -> tuple:
    """Failures a user causes and can fix: reported as one line, never as a traceback."""
    from .backtest.forecast.store import RunStoreError
    from .data import PriceDataError
    from .model.checkpoint import CheckpointError

    return (
        UsageError,
        MissingExtraError,
        PriceDataError,
        RunStoreError,
        CheckpointError,
        DeviceError,
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
    )


def interrupted_message(err: KeyboardInterrupt, args) -> str:
    """What an interrupted command saved and how to continue it."""
    progress = getattr(err, "progress", None)  # a stored run (backtest.store.RunInterrupted)
    if progress is not None:
        return f"interrupted; re-run with --resume to continue ({progress})"
    if getattr(args, "command", None) == "backtest":
        if not getattr(args, "out", None):
            return "interrupted; nothing was saved (give --out DIR to make a run resumable)"
        return f"interrupted; what was computed is saved in {args.out}: re-run the same command with --resume to finish"
    return "interrupted"


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """A warning as one line for the user, without the library's source line."""
    print(f"WARNING: {one_line(message) if isinstance(message, BaseException) else message}", file=file or sys.stderr)


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a bad option already reported as one line
        return stop.code if isinstance(stop.code, int) else 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", UserWarning)  # each once, also under `-W error` (tests)
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except expected_errors() as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(interrupted_message(err, args), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `totowalk ... | head`: the reader left; nothing more to say
        sys.stderr.close()
        return 141


if __name__ == "__main__":
    sys.exit(main())
