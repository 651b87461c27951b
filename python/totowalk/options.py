"""argparse value types shared by the subcommands, so a bad value is refused before any work
starts with one line naming the option (argparse adds "argument --NAME:"), and the flags they share."""

from __future__ import annotations

import argparse
import math
import os
import sys

import pandas as pd

__all__ = [
    "MAX_COUNT",
    "MAX_SEED",
    "add_progress_option",
    "aggregate_name",
    "existing_dir",
    "fee_rate",
    "iso_date",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "progress_wanted",
    "seed",
    "spread_ratio",
    "symbol_names",
]

# Counts (simulations, samples, batch, ...) are sizes of int32-indexed tensors: anything larger could
# never run, and a huge one would otherwise fail deep inside NumPy/torch with a traceback.
MAX_COUNT = 2**31 - 1
# The Philox stream keys a seed as two 32-bit words and keeps it in an int64 (kernels.stream.seed_words).
MAX_SEED = 2**63 - 1


def _whole_number(text: str, expected: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number >= 1 (``--samples 0`` or ``--batch 0`` would do nothing or divide by zero)
    and at most MAX_COUNT (a count the tensors can index)."""
    value = _whole_number(text, "a whole number >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_COUNT} (2**31 - 1), got {value}")
    return value


def worker_count(text: str) -> int:
    """A number of worker processes: a whole number from 0 (none: the work stays in this process)
    to 256 (more processes than any host has cores would only add start-up time and memory)."""
    value = _whole_number(text, "a whole number >= 0")
    return _at_most_256(value)


def worker_count_or_auto(text: str) -> int | str:
    """:func:`worker_count`, or "auto" (the run picks; backtest/host_workers.py)."""
    if text.strip().lower() == "auto":
        return "auto"
    return _at_most_256(_whole_number(text, "a whole number >= 0 or 'auto'"))


def _at_most_256(value: int) -> int:
    if not 0 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be between 0 and 256, got {value}")
    return value


def seed(text: str) -> int:
    """A random-stream seed: a whole number in [0, 2**63), the range the Philox key holds; checked
    here so a bad one is refused before any data or model is loaded."""
    value = _whole_number(text, "a whole number in [0, 2**63)")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be a whole number in [0, 2**63) (0 to {MAX_SEED}), got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _finite_float(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value):  # float() takes "nan", "inf", "-Infinity"
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def fee_rate(text: str) -> float:
    """A fee per unit position change: a finite fraction in [0, 1) (0.0005 is 5 basis points)."""
    value = _finite_float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1) (0.0005 = 5 basis points), got {text!r}")
    return value


def spread_ratio(text: str) -> str:
    """A bid/ask ratio: a number must be finite and >= 1; a name (legacy-fallback, ...) is kept as text
    and resolved, or refused naming the choices, by the run (this floor cannot import the names)."""
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value) or value < 1.0:
        raise argparse.ArgumentTypeError(
            f"a bid/ask ratio must be finite and >= 1 (1.0 = no spread cost), got {text!r}"
        )
    return text


def existing_dir(text: str) -> str:
    """A folder that exists (a run folder to read), so a typo is one line, not a traceback."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file; give the folder written by `totowalk backtest --out`")
    return text


def positive_float(text: str) -> float:
    """A finite number > 0 (an annualising factor, a rate)."""
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if not (value >= 0.0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def iso_date(text: str) -> pd.Timestamp:
    """A calendar date YYYY-MM-DD."""
    try:
        return pd.Timestamp(pd.to_datetime(text, format="%Y-%m-%d"))
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def symbol_names(text: str) -> list:
    """One symbol or several separated by commas ("AAA,BBB"): tickers hold no commas."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected symbols separated by commas, got {text!r} (an empty name)")
    return names


def aggregate_name(text: str) -> str:
    """An aggregate the engine knows (mean, trimmed_mean_10, p90, band, ...), checked before any work."""
    from .aggregation import parse_aggregate

    try:
        parse_aggregate(text, extended=True)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``: progress bars on stderr, by default only where stderr is a
    terminal (a log file or a pipe would keep every redraw of every bar)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: shown when stderr is a terminal)",
    )


def progress_wanted(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: as ``--progress`` / ``--no-progress`` say, else where stderr is a terminal."""
    if args.progress is not None:
        return args.progress
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
