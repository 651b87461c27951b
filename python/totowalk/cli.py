"""The ``totowalk`` command: one subcommand per module, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from .devices import DeviceError

# (subcommand, module defining register(subparsers) -> parser with set_defaults(func=...))
COMMANDS = [
    ("info", "totowalk.cli"),
    ("backtest", "totowalk.backtest.command"),
    ("quantize", "totowalk.precision.command"),
    ("quality", "totowalk.precision.command"),
    ("forecast", "totowalk.engine.command"),
    ("bench", "totowalk.benchmarks.command"),
]


def register(subparsers):
    p = subparsers.add_parser("info", help="build, runtime, default model and bundled data")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_info)
    return p


def _info(args) -> int:
    from . import build_info, datasets

    info = build_info()
    info["datasets"] = datasets.list()
    default_model = _default_model_info()
    if default_model:
        info["default_model"] = default_model
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        print(f"{key:<{width}}  {value}")
    return 0


def _default_model_info():
    try:
        from .model import default_model_info
    except ImportError:
        return None
    return default_model_info()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="totowalk", description="Exact, batched walk-forward backtests on Toto forecasts."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for _, module in COMMANDS:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DeviceError as err:  # a --device this machine cannot run: no traceback
        print(f"totowalk {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
