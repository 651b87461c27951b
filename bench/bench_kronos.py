"""Kronos forecasts, ours against the reference predictor, side by side in one run.

A Kronos shape (``--shape``: base, 102,310,592 parameters, by default; small; tiny, the d 96 x 3
layers shape) with seeded random weights and the base tokenizer, the classic parameters (temperature 0.152, top_k 20, top_p 0.83, 192 sample paths, 232-row window,
clip 1.85, 7 steps), the Close forecasts of W1's simulations (IBM, first 1,460 rows; simulation k
ends k rows before the last). Ours: KronosEngine. Reference: kronos-model-arch's
KronosPredictor.predict in its own venv (bench/kronos_reference_worker.py) on the same inputs and
weights; its cost is linear in sample_count (every path re-runs every window), so it is timed at
--reference-samples paths and scaled to 192, as the output says. Token passes: tokens run through
the decoder model and the tokenizer's decoder.

    python bench/bench_kronos.py --sims 2 --reference-python /work/kronos-ref-venv/bin/python
    python bench/bench_kronos.py --shape tiny --lookback 96 --sims 16 --reference-python ...

Ours forecasts the ``--sims`` contexts in one call (contexts of one length run together,
``context_batch`` 16); the reference one at a time, as it must.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_kronos_batch import SHAPES, random_kronos

from totowalk.benchmarks.workloads import w1_frames
from totowalk.kronos import KronosEngine, KronosInput, save_kronos_checkpoint
from totowalk.kronos.frames import kronos_input_from_frame
from totowalk.provenance import git_commit, machine_description, today

CLASSIC = dict(temperature=0.152, top_k=20, top_p=0.83, sample_count=192, max_context=232, clip=1.85)
PRED_LEN = 7


def reference_passes(length: int, samples: int, lookback: int) -> int:
    """Tokens the reference runs per forecast: every path's window at every step, then its decode."""
    window = min(length, lookback)
    return samples * (PRED_LEN * window + window)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10, help="W1 simulations (Close forecasts) to time")
    parser.add_argument("--reference-python", default=None, help="python of a venv with kronos-model-arch")
    parser.add_argument("--reference-samples", type=int, default=2, help="paths the reference is timed at")
    parser.add_argument("--reference-sims", type=int, default=1, help="forecasts the reference is timed on")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="base")
    parser.add_argument("--lookback", type=int, default=CLASSIC["max_context"], help="the window (max_context)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    frame = next(iter(w1_frames().values()))
    inputs = [
        kronos_input_from_frame(frame.iloc[: len(frame) - k], lookback=args.lookback, pred_len=PRED_LEN, symbol="IBM")
        for k in range(args.sims)
    ]
    model, tokenizer = random_kronos(args.shape, torch.device("cpu"))
    engine = KronosEngine(model, tokenizer, **{**CLASSIC, "max_context": args.lookback})
    print(
        f"{today()} {git_commit()} {machine_description(torch.device('cpu'))}; {torch.get_num_threads()} torch threads; "
        f"Kronos {args.shape} ({sum(p.numel() for p in model.parameters()):,} parameters), lookback {args.lookback}"
    )
    first = inputs[0]
    engine.forecast([KronosInput(first.x, first.x_stamp, first.y_stamp[:1])], pred_len=1)  # warm-up
    start = time.perf_counter()
    ours = engine.forecast(inputs, pred_len=PRED_LEN)
    ours_s = (time.perf_counter() - start) / len(inputs)
    theirs_passes = reference_passes(len(inputs[0].x), CLASSIC["sample_count"], args.lookback)
    print(
        f"ours: {ours_s:.2f} s per forecast (mean of {len(inputs)}), {ours.token_passes / len(inputs):,.0f} token "
        f"passes per forecast; the reference's loop runs {theirs_passes:,} (x{theirs_passes * len(inputs) / ours.token_passes:.0f})"
    )
    if not args.reference_python:
        return
    with tempfile.TemporaryDirectory() as tmp:
        save_kronos_checkpoint(model, Path(tmp) / "model")
        save_kronos_checkpoint(tokenizer, Path(tmp) / "tokenizer")
        arrays = {}
        for i, item in enumerate(inputs[: args.reference_sims]):
            stamps = frame.index[: len(frame) - i][-len(item.x) :]
            spacing = stamps.to_series().diff().median()
            arrays[f"x{i}"], arrays[f"t{i}"] = item.x, stamps.values
            arrays[f"f{i}"] = np.array(
                [stamps[-1] + spacing * (j + 1) for j in range(PRED_LEN)], dtype="datetime64[ns]"
            )
        np.savez(Path(tmp) / "inputs.npz", **arrays)
        job = dict(
            checkpoint=tmp,
            inputs=str(Path(tmp) / "inputs.npz"),
            count=args.reference_sims,
            threads=torch.get_num_threads(),
            max_context=args.lookback,
            clip=CLASSIC["clip"],
            temperature=CLASSIC["temperature"],
            top_k=CLASSIC["top_k"],
            top_p=CLASSIC["top_p"],
            sample_count=args.reference_samples,
        )
        worker = Path(__file__).with_name("kronos_reference_worker.py")
        done = subprocess.run(
            [args.reference_python, str(worker)], input=json.dumps(job), capture_output=True, text=True, check=True
        )
    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    measured = float(np.mean(seconds))
    scaled = measured * CLASSIC["sample_count"] / args.reference_samples
    print(
        f"reference KronosPredictor.predict: {measured:.2f} s per forecast at {args.reference_samples} paths "
        f"(mean of {len(seconds)}), scaled linearly to {CLASSIC['sample_count']} paths: {scaled:.1f} s"
    )
    print(f"ratio: {scaled / ours_s:.1f}x per forecast at {CLASSIC['sample_count']} paths")


if __name__ == "__main__":
    main()
