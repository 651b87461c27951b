"""Kronos forecasts per second, contexts batched against one at a time: one run, both sides.

Seeded random weights of a Kronos shape, the classic sampling parameters (T 0.152, top_k 20,
top_p 0.83, 192 paths, clip 1.85), the window of each of ``--contexts`` W1 simulations (IBM, the
simulation k window ending k rows before the last, ``--lookback`` rows). The same ``KronosEngine``
forecasts them with ``context_batch=1`` (each context alone) and ``context_batch=--batch`` (contexts
of one length together), alternating, ``--repeats`` times each; the best time of each side counts.
``--pred-len 1`` is the clean backtest's walk-forward one-step forecast, 7 the legacy one. Prints
forecasts per second of both sides, their ratio, and how far the batched forecasts are from the
unbatched ones (the products' shapes change, so they may differ by float rounding).

With ``--precision bf16`` or ``fp16`` the two sides are fp32 and that precision instead, both with
contexts batched (the blocks in 16 bits, the heads and residual stream in fp32; same draws).

With ``--backtest``, the same two engines each run the W1-shaped clean Kronos backtest instead
(``tw.backtest`` of W1's frame, 10 simulations, Kronos forecasting every key walk-forward), and the
rows are whole seconds and the Kronos phase's. ``--backtest --scoring``: one batched engine, the
backtest without and with the scores of its sampled paths (``calibration=False`` / True).

    python bench/bench_kronos_batch.py --shape tiny --lookback 96 --contexts 16 --pred-len 1
    python bench/bench_kronos_batch.py --shape base --contexts 16 --pred-len 1 --device cuda
    python bench/bench_kronos_batch.py --shape base --backtest --sims 10
    python bench/bench_kronos_batch.py --shape tiny --lookback 96 --backtest --scoring
    python bench/bench_kronos_batch.py --shape base --contexts 16 --precision fp16 --device cuda
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from totowalk.benchmarks.workloads import w1_frames
from totowalk.kronos import KronosEngine, KronosModel, KronosTokenizer
from totowalk.kronos.config import MODEL_PRESETS, TOKENIZER_PRESETS, KronosConfig
from totowalk.kronos.engine import PRECISIONS
from totowalk.kronos.frames import kronos_input_from_frame
from totowalk.provenance import git_commit, machine_description, today

CLASSIC = dict(temperature=0.152, top_k=20, top_p=0.83, sample_count=192, clip=1.85)
SHAPES = {
    "base": MODEL_PRESETS["kronos-base"],
    "small": MODEL_PRESETS["kronos-small"],
    "tiny": KronosConfig(n_layers=3, d_model=96, n_heads=4, ff_dim=192),  # the small random shape
}


def random_kronos(shape: str, device, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = KronosModel(SHAPES[shape]).eval()
        tokenizer = KronosTokenizer(TOKENIZER_PRESETS["tokenizer-base"]).eval()
    return model.to(device), tokenizer.to(device)


def timed(engine, inputs, pred_len: int, device) -> tuple:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = engine.forecast(inputs, pred_len=pred_len, return_paths=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--lookback", type=int, default=232, help="rows a context holds (the window)")
    parser.add_argument("--contexts", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="context_batch of the batched side")
    parser.add_argument("--pred-len", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--precision",
        choices=[p for p in PRECISIONS if p != "fp32"],
        help="compare this precision with fp32 instead, both with contexts batched",
    )
    parser.add_argument("--backtest", action="store_true", help="time W1's clean Kronos backtest instead")
    parser.add_argument("--sims", type=int, default=10, help="simulations of the --backtest run")
    parser.add_argument(
        "--scoring", action="store_true", help="with --backtest: one engine, its sampled paths unscored and scored"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    frame = next(iter(w1_frames().values()))
    inputs = [
        kronos_input_from_frame(
            frame.iloc[: len(frame) - k], lookback=args.lookback, pred_len=args.pred_len, symbol="IBM"
        )
        for k in range(args.contexts)
    ]
    model, tokenizer = random_kronos(args.shape, device)

    def engine(batch: int, precision: str = "fp32") -> KronosEngine:
        return KronosEngine(
            model,
            tokenizer,
            max_context=args.lookback,
            context_batch=batch,
            device=device,
            precision=precision,
            **CLASSIC,
        )

    scored = None  # side -> whether its backtest scores the forecasts (--scoring)
    if args.scoring:
        batched = engine(args.batch)
        sides = {"unscored": batched, "scored": batched}
        scored = {"unscored": False, "scored": True}
    elif args.precision:  # baseline first, then the candidate
        sides = {
            f"fp32, context_batch {args.batch}": engine(args.batch),
            f"{args.precision}, context_batch {args.batch}": engine(args.batch, args.precision),
        }
    else:
        sides = {"one at a time": engine(1), f"context_batch {args.batch}": engine(args.batch)}
    for side in sides.values():  # warm-up: one small forecast each
        side.forecast(inputs[:2], pred_len=args.pred_len)
    if args.backtest:
        backtests(sides, frame, args, model, scored)
        return
    seconds, outputs = {name: [] for name in sides}, {}
    for _ in range(args.repeats):
        for name, side in sides.items():
            spent, outputs[name] = timed(side, inputs, args.pred_len, device)
            seconds[name].append(spent)
    (first, base), (second, candidate) = sides.items()
    best = {name: min(v) for name, v in seconds.items()}
    one, many = outputs[first], outputs[second]
    difference = float(np.max(np.abs(many.mean - one.mean) / np.abs(one.mean)))
    same_paths = float(np.mean(np.all(many.paths == one.paths, axis=(2, 3))))
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"{today()} {git_commit()} {machine_description(device)}; {torch.get_num_threads()} torch threads; "
        f"Kronos {args.shape} ({parameters:,} parameters, random weights), lookback {args.lookback}, "
        f"pred_len {args.pred_len}, {CLASSIC['sample_count']} paths, {args.contexts} contexts, best of {args.repeats}"
    )
    print(
        f"{first}: {best[first]:.3f} s ({args.contexts / best[first]:.2f} forecasts/s); {second}: "
        f"{best[second]:.3f} s ({args.contexts / best[second]:.2f} forecasts/s); ratio {best[first] / best[second]:.2f}x; "
        f"means differ by <= {difference:.1e} relative, {same_paths:.1%} of decoded paths bit-identical"
    )


def backtests(sides: dict, frame, args, model, scored: dict | None = None) -> None:
    """W1's clean Kronos backtest with each engine, alternating; whole and Kronos-phase seconds.
    ``scored``: per side, whether its backtest scores the forecasts (default: every side does)."""
    from totowalk import backtest

    seconds, results = {name: [] for name in sides}, {}
    for _ in range(args.repeats):
        for name, engine in sides.items():
            start = time.perf_counter()
            calibration = True if scored is None else scored[name]
            results[name] = backtest(
                {"IBM": frame}, num_simulations=args.sims, kronos=engine, profile="clean", calibration=calibration
            )
            seconds[name].append((time.perf_counter() - start, results[name].timings.get("kronos", float("nan"))))
    first, second = sides
    same = results[first].simulations.drop(columns="date").equals(results[second].simulations.drop(columns="date"))
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"{today()} {git_commit()} {machine_description(torch.device(args.device))}; {torch.get_num_threads()} torch "
        f"threads; clean Kronos backtest of W1's frame, {args.sims} simulations, Kronos {args.shape} "
        f"({parameters:,} parameters, random weights), lookback {args.lookback}, best of {args.repeats}"
    )
    best = {name: min(v) for name, v in seconds.items()}
    print(
        f"{first}: whole {best[first][0]:.2f} s, Kronos {best[first][1]:.2f} s; {second}: whole "
        f"{best[second][0]:.2f} s, Kronos {best[second][1]:.2f} s; ratio {best[first][0] / best[second][0]:.2f}x "
        f"whole; result rows identical: {same}"
    )


if __name__ == "__main__":
    main()
