"""``totowalk quantize MODEL OUT``: an int8 weight-only checkpoint of a model."""

from __future__ import annotations

import os
from pathlib import Path


def register(subparsers):
    q = subparsers.add_parser("quantize", help="save an int8 weight-only checkpoint (per-channel scales)")
    q.add_argument("model", help="preset with shipped weights, checkpoint directory, .safetensors file or hub id")
    q.add_argument("out", help="output directory (model.safetensors + config.json)")
    q.set_defaults(func=_quantize)
    return q


def _quantize(args) -> int:
    from ..loading import load_model
    from ..precision.int8_checkpoint import save_quantized

    target = Path(args.out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"output {target} already exists; quantize writes a new folder and never overwrites")
    model = load_model(args.model)
    out = save_quantized(model, args.out)
    _readable_like_other_files(out)
    print(f"wrote int8 weight-only checkpoint of {args.model} to {out}")
    return 0


def _readable_like_other_files(folder: Path) -> None:
    """safetensors writes 0600 files; give them the mode any new file gets here (umask applies)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in Path(folder).iterdir():
        path.chmod(0o666 & ~umask)
