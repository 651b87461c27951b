"""``totowalk quality --model M --precision P``: the forecast-quality gate of a reduced precision."""

from __future__ import annotations

import json
import sys

from ..model.resolve import DEFAULT_MODEL
from ..options import non_negative_float, positive_int, seed
from ..precision.convert import PRECISIONS
from ..precision.gate import GateSettings, GateThresholds
from ..precision.int8 import Int8Kernel


def register(subparsers):
    g = subparsers.add_parser(
        "quality",
        help="forecast-quality gate of a precision vs fp32 on the same weights, against the Monte Carlo noise floor",
    )
    g.add_argument("--model", default=DEFAULT_MODEL, help="as for quantize (default %(default)s, bundled)")
    g.add_argument("--precision", required=True, choices=[p for p in PRECISIONS if p != "fp32"])
    g.add_argument("--device", default=None, help="cpu (default) or cuda")
    g.add_argument("--int8-kernel", default="auto", choices=[k.value for k in Int8Kernel])
    g.add_argument(
        "--max-z-shift",
        type=non_negative_float,
        default=GateThresholds.z_shift_mean,
        help="PASS limit on the mean z-shift of the mean and of the aggregate, in fp32 predictive "
        "std (exact estimator; default %(default)g)",
    )
    g.add_argument(
        "--max-flip-rate",
        type=non_negative_float,
        default=100 * GateThresholds.flip_rate,
        help="PASS limit on the rate of flipped signal signs in %% (default %(default)g)",
    )
    g.add_argument(
        "--max-mae-change",
        type=non_negative_float,
        default=GateThresholds.mae_change_pct,
        help="PASS limit on |MAE change| in %% (default %(default)g)",
    )
    g.add_argument(
        "--max-crps-z",
        type=non_negative_float,
        default=GateThresholds.max_crps_z,
        help="FAIL when the precision makes the exact mean CRPS worse by more than this many Newey-West "
        "standard errors (default %(default)g)",
    )
    g.add_argument("--symbols", default=",".join(GateSettings.symbols), help="bundled symbols (default %(default)s)")
    g.add_argument("--simulations", type=positive_int, default=GateSettings.num_simulations)
    g.add_argument(
        "--samples",
        type=positive_int,
        default=GateSettings.num_samples,
        help="S of the sampled runs that measure the noise floor (default %(default)s)",
    )
    g.add_argument(
        "--seed", type=seed, default=GateSettings.seed, help="seed of the sampled runs (default %(default)s)"
    )
    g.add_argument(
        "--floor-seed",
        type=seed,
        default=GateSettings.floor_seed,
        help="the other fp32 seed of the noise floor (default %(default)s)",
    )
    g.add_argument("--json", action="store_true", help="print the result JSON instead of the table")
    g.set_defaults(func=_quality)
    return g


def _quality(args) -> int:
    from ..precision.gate import format_report
    from ..quality.gate import run_quality_gate

    thresholds = GateThresholds(
        z_shift_mean=args.max_z_shift,
        flip_rate=args.max_flip_rate / 100,
        mae_change_pct=args.max_mae_change,
        max_crps_z=args.max_crps_z,
    )
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    settings = GateSettings(
        symbols=symbols,
        num_simulations=args.simulations,
        num_samples=args.samples,
        seed=args.seed,
        floor_seed=args.floor_seed,
    )
    result = run_quality_gate(
        args.model, args.precision, thresholds, settings, device=args.device, int8_kernel=args.int8_kernel
    )
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    if not result["passed"]:
        print(f"FAIL: {args.precision} does not meet the thresholds", file=sys.stderr)
        return 1
    return 0
