"""argparse value types shared by the subcommands, so a bad value is refused before any work
starts with one line naming the option (argparse adds "argument --NAME:")."""

from __future__ import annotations

import argparse

import pandas as pd

__all__ = ["aggregate_name", "iso_date", "non_negative_float", "positive_int"]


def positive_int(text: str) -> int:
    """A whole number >= 1 (``--samples 0`` or ``--batch 0`` would do nothing or divide by zero)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def iso_date(text: str) -> pd.Timestamp:
    """A calendar date YYYY-MM-DD."""
    try:
        return pd.Timestamp(pd.to_datetime(text, format="%Y-%m-%d"))
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def aggregate_name(text: str) -> str:
    """An aggregate the engine knows (mean, trimmed_mean_10, p90, band, ...), checked before any work."""
    from .aggregation import parse_aggregate

    try:
        parse_aggregate(text, extended=True)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text
