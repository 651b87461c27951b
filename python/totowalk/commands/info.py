"""``totowalk info``: what this installation can do (native module, CUDA, Triton), the default model
and the bundled data."""

from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser("info", help="build, runtime, default model and bundled data")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_info)
    return p


def _info(args) -> int:
    from .. import build_info, datasets

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
        from ..model import default_model_info
    except ImportError:
        return None
    return default_model_info()
