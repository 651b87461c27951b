"""``totowalk quantize MODEL OUT`` and ``totowalk quality --model M --precision P``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..model.resolve import DEFAULT_MODEL
from ..precision.convert import PRECISIONS
from ..precision.gate import GateSettings, GateThresholds
from ..precision.int8 import Int8Kernel


def register(subparsers):
    """Add both subcommands (cli.COMMANDS lists this module once per name; the second call is a no-op)."""
    if "quantize" in subparsers.choices and "quality" in subparsers.choices:
        return subparsers.choices["quality"]
    q = subparsers.add_parser("quantize", help="save an int8 weight-only checkpoint (per-channel scales)")
    q.add_argument("model", help="preset with shipped weights, checkpoint directory, .safetensors file or hub id")
    q.add_argument("out", help="output directory (model.safetensors + config.json)")
    q.set_defaults(func=_quantize)

    g = subparsers.add_parser("quality", help="forecast-quality gate of a precision vs fp32 on the same weights, "
                                               "against the Monte Carlo noise floor")
    g.add_argument("--model", default=DEFAULT_MODEL, help="as for quantize (default %(default)s, bundled)")
    g.add_argument("--precision", required=True, choices=[p for p in PRECISIONS if p != "fp32"])
    g.add_argument("--device", default=None, help="cpu (default) or cuda")
    g.add_argument("--int8-kernel", default="auto", choices=[k.value for k in Int8Kernel])
    g.add_argument("--max-z-shift", type=float, default=GateThresholds.z_shift_mean,
                   help="PASS limit on the mean z-shift of the mean and of the aggregate, in fp32 predictive "
                        "std (exact estimator; default %(default)g)")
    g.add_argument("--max-flip-rate", type=float, default=100 * GateThresholds.flip_rate,
                   help="PASS limit on the rate of flipped signal signs in %% (default %(default)g)")
    g.add_argument("--max-mae-change", type=float, default=GateThresholds.mae_change_pct,
                   help="PASS limit on |MAE change| in %% (default %(default)g)")
    g.add_argument("--symbols", default=",".join(GateSettings.symbols), help="bundled symbols (default %(default)s)")
    g.add_argument("--simulations", type=int, default=GateSettings.num_simulations)
    g.add_argument("--samples", type=int, default=GateSettings.num_samples,
                   help="S of the sampled runs that measure the noise floor (default %(default)s)")
    g.add_argument("--seed", type=int, default=GateSettings.seed, help="seed of the sampled runs (default %(default)s)")
    g.add_argument("--floor-seed", type=int, default=GateSettings.floor_seed,
                   help="the other fp32 seed of the noise floor (default %(default)s)")
    g.add_argument("--json", action="store_true", help="print the result JSON instead of the table")
    g.set_defaults(func=_quality)
    return g


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


def _quality(args) -> int:
    from ..precision.gate import format_report, run_quality_gate

    thresholds = GateThresholds(z_shift_mean=args.max_z_shift, flip_rate=args.max_flip_rate / 100,
                                mae_change_pct=args.max_mae_change)
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    settings = GateSettings(symbols=symbols, num_simulations=args.simulations, num_samples=args.samples,
                            seed=args.seed, floor_seed=args.floor_seed)
    result = run_quality_gate(args.model, args.precision, thresholds, settings, device=args.device,
                              int8_kernel=args.int8_kernel)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    if not result["passed"]:
        print(f"FAIL: {args.precision} does not meet the thresholds", file=sys.stderr)
        return 1
    return 0
