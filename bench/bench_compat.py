"""The drop-ins (totowalk.compat) against the engine and against toto-ts, side by side in one run.

Model: the random-weight reference model tests/fixtures/toto_ref/ref_a (toto-ts's layout, which
both sides load: ``totowalk.load_model`` here, toto-ts's ``Toto.load_from_checkpoint`` in its own
venv through ``bench/compat_reference_worker.py``), CPU, fp32. Series: random walks of lengths
evenly spaced from 100 to 2,000 (64 for the forecaster, 1,000 in shuffled order for GluonTS).

1. Overhead of a drop-in over the engine call it makes, on the same inputs (target <= 5 %):
   ``compat.toto.TotoForecaster.forecast`` with S = 256 sample paths (H = 1 and 100) against
   ``ForecastEngine.forecast(contexts, H, num_samples=256, aggregate=(), return_samples=True)``;
   its mean path at H = 1 against the engine's exact mean (the same numbers); and
   ``compat.gluonts.TotoPredictor.predict`` over 1,000 series (exact quantiles) against the
   engine call with the same aggregates on the same contexts. The two sides alternate (ABBA)
   after one warm-up each; medians of the repeats. As wall-time differences of a few percent drown
   in a shared machine's noise, the drop-in's engine call is also timed from inside (its
   ``engine.forecast`` wrapped): the target is judged on the drop-in's own time outside that call.
2. toto-ts 0.2.0's ``TotoForecaster.forecast`` on the 64 series left-padded into one batch (how
   toto-ts batches series of different lengths) against the drop-in on the same batch, S = 256
   and the mean path, H = 1 and 100 (target >= 20x at S = 256).
3. ``TotoPredictor.predict`` over the 1,000 series against toto-ts in a naive GluonTS loop: one
   toto-ts call per series with 256 sample paths, their quantiles and mean as a
   ``QuantileForecast``. Timed on a subset of series spread evenly over the lengths and scaled
   linearly to 1,000 ("(extrap.)").

toto-ts runs in its own process, kept running: each of its calls alternates with the drop-in's
(ABBA, after a warm-up call on each side). Its batched calls are timed at 64 of the 256 paths by
default (``--toto-samples``; ``--toto-samples 256`` times them whole, about 30 s a call here) and
scaled x4: toto-ts draws paths in identical batches of ``samples_per_batch`` (16), each re-running
the whole context, so its time is linear in the number of batches, and short calls are less exposed
to other jobs on a shared machine. ``--toto-series`` likewise times fewer series. Rows say so
("(extrap.)"). Progress goes to stderr.

    python bench/bench_compat.py                       # about 2.5 minutes on 2 CPU cores
    python bench/bench_compat.py --reference-python off  # drop-in overhead only
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from totowalk import load_model
from totowalk.compat.toto import MaskedTimeseries, TotoForecaster
from totowalk.provenance import git_commit, machine_description, today

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = ROOT / "tests" / "fixtures" / "toto_ref" / "ref_a"
DEFAULT_REFERENCE = "/tmp/refvenv/bin/python"
GLUONTS_START, GLUONTS_FREQ = "2000-01-01", "D"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_series(count: int, seed: int, shuffle: bool = False) -> list:
    """``count`` float32 random walks, lengths evenly spaced over [100, 2000], levels and scales varied."""
    rng = np.random.default_rng(seed)
    lengths = np.linspace(100, 2000, count).round().astype(int)
    if shuffle:
        lengths = rng.permutation(lengths)
    return [
        (rng.uniform(10, 1000) + np.cumsum(rng.normal(0.0, rng.uniform(0.1, 5.0), n))).astype(np.float32)
        for n in lengths
    ]


def spread(series: list, count: int) -> list:
    """Indices of ``count`` series evenly spread over the sorted lengths (shortest and longest included)."""
    order = np.argsort([s.size for s in series], kind="stable")
    picks = np.unique(np.linspace(0, len(series) - 1, min(count, len(series))).round().astype(int))
    return sorted(int(i) for i in order[picks])


def left_padded(series: list) -> MaskedTimeseries:
    """The drop-in's input: (B, 1, T) series left-padded with zeros, padding_mask False there."""
    length = max(s.size for s in series)
    values = np.zeros((len(series), 1, length), dtype=np.float32)
    mask = np.zeros(values.shape, dtype=bool)
    for row, s in enumerate(series):
        values[row, 0, length - s.size :] = s
        mask[row, 0, length - s.size :] = True
    values, mask = torch.from_numpy(values), torch.from_numpy(mask)
    return MaskedTimeseries(
        values,
        mask,
        torch.zeros_like(values, dtype=torch.int),
        torch.zeros_like(values, dtype=torch.int),
        torch.ones(values.shape[:2], dtype=torch.int),
    )


def alternate(first, second, repeats: int) -> tuple:
    """Wall times of ``first`` and ``second``: one warm-up each, then ABBA order; and their last outputs."""
    out = [first(), second()]
    times = ([], [])
    for r in range(repeats):
        for which in (0, 1) if r % 2 == 0 else (1, 0):
            start = time.perf_counter()
            out[which] = (first, second)[which]()
            times[which].append(time.perf_counter() - start)
    return times[0], times[1], out


class EngineClock:
    """Time spent inside ``engine.forecast`` during each call of a drop-in (the rest is the drop-in's own work)."""

    def __init__(self, engine):
        self.engine = engine
        self.inside = []  # seconds inside the engine, one entry per wrapped call

    def wrap(self, call):
        def run():
            spent = [0.0]
            original = self.engine.forecast

            def forecast(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    spent[0] += time.perf_counter() - start

            self.engine.forecast = forecast  # instance attribute shadows the method for this call only
            try:
                return call()
            finally:
                del self.engine.forecast
                self.inside.append(spent[0])

        return run


def timed(call, repeats: int) -> list:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def median(times) -> float:
    return float(np.median(times))


def seconds(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def overhead_row(what, baseline, ours_times, base_times, notes, inside=None) -> dict:
    """Wall-time overhead (medians of alternating repeats) and, when the drop-in calls the engine
    (``inside``: seconds inside it per timed call), the share of its own work outside that call,
    which the machine's load does not blur; the target is judged on the latter when there is one."""
    ours, base = median(ours_times), median(base_times)
    pct = 100.0 * (ours / base - 1.0)
    best = 100.0 * (min(ours_times) / min(base_times) - 1.0)
    result, judged = f"wall {pct:+.1f} %", pct
    if inside is not None:
        outside = np.asarray(ours_times) - np.asarray(inside[-len(ours_times) :])
        judged = 100.0 * median(outside) / median(inside[-len(ours_times) :])
        result += f"; outside the engine call {judged:.1f} % ({1000 * median(outside):.1f} ms)"
    return dict(
        what=what,
        ours_s=seconds(ours),
        baseline=baseline,
        baseline_s=seconds(base),
        result=result,
        target="<= 5 %",
        met="yes" if judged <= 5.0 else "no",
        notes=f"medians of {len(ours_times)} alternating (ABBA) repeats, wall best-of-repeats {best:+.1f} %; {notes}",
    )


def speedup_row(what, baseline, ours, base, extrap, target, notes) -> dict:
    ratio = base / ours
    return dict(
        what=what,
        ours_s=seconds(ours),
        baseline=baseline,
        baseline_s=seconds(base) + (" (extrap.)" if extrap else ""),
        result=f"{ratio:.1f}x",
        target=f">= {target:g}x" if target else "—",
        met=("yes" if ratio >= target else "no") if target else "—",
        notes=notes,
    )


def rel_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def reference_python(choice: str) -> str | None:
    if choice == "off":
        return None
    if choice != "auto":
        return choice
    for candidate in (os.environ.get("TOTOWALK_TOTO_TS_PYTHON"), DEFAULT_REFERENCE):
        if candidate and Path(candidate).exists():
            return candidate
    return None


class Reference:
    """toto-ts in its own venv (``compat_reference_worker.py``), kept running so that its calls can
    alternate with ours: one task per :meth:`run`, its wall times back."""

    def __init__(self, python: str, checkpoint: Path, arrays: dict, folder: str):
        inputs = Path(folder) / "inputs.npz"
        np.savez(inputs, **arrays)
        worker = Path(__file__).with_name("compat_reference_worker.py")
        self.process = subprocess.Popen(
            [python, str(worker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        job = dict(checkpoint=str(checkpoint), threads=torch.get_num_threads(), inputs=str(inputs))
        self.info = self._ask(job)
        self.warm = set()

    def _ask(self, message: dict) -> dict:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"toto-ts worker exited (code {self.process.wait()}); its stderr is above")
        return json.loads(line)

    def run(self, task: dict) -> list:
        """Wall times of ``task`` (a warm-up call first, the first time a task of this name runs)."""
        answer = self._ask(dict(task, warm_up=task["name"] not in self.warm))
        self.warm.add(task["name"])
        return answer["seconds"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def alternate_with(ours, reference: Reference, task: dict, repeats: int) -> tuple:
    """Our call and toto-ts's task in ABBA order, one call each per step, after a warm-up call of ours:
    (ours, toto-ts) wall times."""
    ours()
    mine, theirs = [], []
    for r in range(repeats):
        for side in ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours"):
            if side == "ours":
                start = time.perf_counter()
                ours()
                mine.append(time.perf_counter() - start)
            else:
                theirs += reference.run(dict(task, repeats=1))
    return mine, theirs


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="toto-ts-layout weights")
    parser.add_argument("--series", type=int, default=64, help="series of the TotoForecaster batch")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--samples", type=int, default=256, help="sample paths S")
    parser.add_argument("--gluonts-series", type=int, default=1000)
    parser.add_argument("--gluonts-horizon", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=7, help="alternating repeats of drop-in and engine")
    parser.add_argument("--reference-python", default="auto", help="python with toto-ts 0.2.0, or auto, or off")
    parser.add_argument("--toto-repeats", type=int, default=3, help="toto-ts calls per row, alternating")
    parser.add_argument("--toto-series", type=int, default=None, help="time toto-ts's batch on fewer series, scale")
    parser.add_argument(
        "--toto-samples", type=int, default=64, help="paths toto-ts's batch is timed at, scaled to --samples"
    )
    parser.add_argument("--toto-samples-per-batch", type=int, default=16, help="toto-ts samples_per_batch, batch")
    parser.add_argument("--gluonts-toto-series", type=int, default=50, help="series the toto-ts loop is timed on")
    parser.add_argument("--gluonts-toto-samples-per-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown-out", type=Path, default=None, help="also write the output there")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from totowalk.compat.gluonts import DEFAULT_QUANTILE_LEVELS, TotoPredictor

    load_start = os.getloadavg()[0]
    samples = args.samples
    forecaster = TotoForecaster(load_model(args.checkpoint), seed=args.seed)
    engine = forecaster.engine
    batch_series = make_series(args.series, args.seed)
    batch = left_padded(batch_series)
    rows = []
    clock = EngineClock(engine)

    # 1. drop-in overhead over the engine call --------------------------------------------------
    for horizon in args.horizons:
        log(f"drop-in TotoForecaster vs engine, S={samples}, H={horizon} ...")
        ours, base, _ = alternate(
            clock.wrap(lambda h=horizon: forecaster.forecast(batch, h, num_samples=samples)),
            lambda h=horizon: engine.forecast(
                batch_series, h, num_samples=samples, aggregate=(), return_samples=True, estimator="sampled"
            ),
            args.repeats,
        )
        rows.append(
            overhead_row(
                f"compat.toto TotoForecaster.forecast, {args.series} series, S = {samples}, H = {horizon}",
                "ForecastEngine.forecast (return_samples, same series)",
                ours,
                base,
                "drop-in input: one left-padded (B, 1, T) MaskedTimeseries; output (B, 1, H, S) tensor and its mean",
                clock.inside,
            )
        )
    log("drop-in mean path vs engine exact mean, H=1 ...")
    ours, base, (path, exact) = alternate(
        lambda: forecaster.forecast(batch, 1),
        lambda: engine.forecast(batch_series, 1, aggregate=("mean",), estimator="exact"),
        args.repeats,
    )
    rows.append(
        overhead_row(
            f"compat.toto TotoForecaster.forecast mean path, {args.series} series, H = 1",
            "ForecastEngine.forecast (exact mean, same series)",
            ours,
            base,
            f"the same numbers (max rel. diff {rel_diff(path.mean[:, 0], exact.stats['mean']):.1e}); the drop-in's "
            "mean path runs the model's prefill itself, not the engine",
        )
    )
    import pandas as pd

    gluonts_series = make_series(args.gluonts_series, args.seed + 1, shuffle=True)
    dataset = [
        {"start": pd.Period(GLUONTS_START, freq=GLUONTS_FREQ), "target": s, "item_id": f"g{i}"}
        for i, s in enumerate(gluonts_series)
    ]
    predictor = TotoPredictor(engine, prediction_length=args.gluonts_horizon)
    names = ["mean"] + ["quantile_" + np.format_float_positional(q, trim="-") for q in predictor.quantile_levels]
    log(f"GluonTS TotoPredictor vs engine, {len(dataset)} series, H={args.gluonts_horizon} ...")
    ours, base, (forecasts, direct) = alternate(
        clock.wrap(lambda: list(predictor.predict(dataset))),
        lambda: engine.forecast(gluonts_series, args.gluonts_horizon, aggregate=names, estimator="exact"),
        args.repeats,
    )
    from gluonts.model.forecast import QuantileForecast

    constructor_s = median(
        timed(
            lambda: [
                QuantileForecast(f.forecast_array, f.start_date, f.forecast_keys, f.item_id, dict(f.info))
                for f in forecasts
            ],
            args.repeats,
        )
    )
    medians = np.stack([f.quantile(0.5) for f in forecasts])
    rows.append(
        overhead_row(
            f"compat.gluonts TotoPredictor.predict, {len(dataset)} series, H = {args.gluonts_horizon}",
            "ForecastEngine.forecast (mean + 9 exact quantiles, same contexts)",
            ours,
            base,
            f"{predictor.estimator} quantiles, one engine call (batch_size {predictor.batch_size}); the drop-in "
            f"adds target cleaning and {len(dataset)} QuantileForecast objects, whose GluonTS constructor alone takes "
            f"{1000 * constructor_s:.0f} ms ({100 * constructor_s / median(base):.1f} % of the engine call, its "
            f"pydantic parsing of the {len(predictor.quantile_levels)} quantile keys); medians equal to the engine's "
            f"(max rel. diff {rel_diff(medians, direct.stats['quantile_0.5']):.1e})",
            clock.inside,
        )
    )

    # 2. and 3. toto-ts, alternating with the drop-ins ------------------------------------------
    python = reference_python(args.reference_python)
    toto_version = None
    if python is None:
        log("toto-ts rows skipped: no toto-ts python (--reference-python, $TOTOWALK_TOTO_TS_PYTHON, /tmp/refvenv)")
    else:
        toto_rows = spread(batch_series, args.toto_series or args.series)
        toto_samples = args.toto_samples or samples
        spb = min(args.toto_samples_per_batch, toto_samples)
        if toto_samples % spb:
            raise SystemExit(f"--toto-samples {toto_samples} must be a multiple of samples_per_batch {spb}")
        loop_rows = spread(gluonts_series, args.gluonts_toto_series)
        loop_spb = min(args.gluonts_toto_samples_per_batch, samples)
        arrays = {f"b{i}": s for i, s in enumerate(batch_series)}
        arrays.update({f"g{i}": s for i, s in enumerate(gluonts_series)})
        log(f"toto-ts ({python}), alternating with the drop-ins ...")
        with tempfile.TemporaryDirectory() as folder:
            reference = Reference(python, args.checkpoint, arrays, folder)
            try:
                toto_version = reference.info["toto_version"]
                for horizon in args.horizons:
                    for kind in ("samples", "mean"):
                        log(f"toto-ts vs drop-in, {kind}, H={horizon} ...")
                        sampled = kind == "samples"
                        task = dict(
                            kind="batch",
                            name=f"{kind}_h{horizon}",
                            rows=toto_rows,
                            horizon=horizon,
                            num_samples=toto_samples if sampled else None,
                            samples_per_batch=spb if sampled else 1,
                        )
                        mine, theirs = alternate_with(
                            lambda h=horizon, n=samples if sampled else None: forecaster.forecast(
                                batch, h, num_samples=n
                            ),
                            reference,
                            task,
                            args.toto_repeats,
                        )
                        scale = args.series / len(toto_rows) * (samples / toto_samples if sampled else 1.0)
                        timed_on = []
                        if len(toto_rows) != args.series:
                            timed_on.append(
                                f"{len(toto_rows)} of {args.series} series (spread over the lengths, longest included)"
                            )
                        if sampled and toto_samples != samples:
                            timed_on.append(f"{toto_samples} of {samples} paths")
                        how = f"timed on {' x '.join(timed_on)}, scaled x{scale:.2f}; " if scale != 1.0 else ""
                        rows.append(
                            speedup_row(
                                f"toto-ts vs compat.toto TotoForecaster.forecast, {args.series} series, "
                                f"{f'S = {samples}' if sampled else 'mean path'}, H = {horizon}",
                                f"toto-ts {toto_version} TotoForecaster.forecast",
                                median(mine),
                                median(theirs) * scale,
                                scale != 1.0,
                                20.0 if sampled else None,
                                f"{how}toto-ts: one call on the series left-padded to "
                                f"{max(batch_series[i].size for i in toto_rows)} steps"
                                f"{f', samples_per_batch {spb}' if sampled else ''}, after a warm-up call; "
                                f"{len(theirs)} call(s) each side, alternating (ABBA); measured: toto-ts "
                                f"{', '.join(f'{t:.3g}' for t in theirs)} s, drop-in {', '.join(f'{t:.3g}' for t in mine)} s",
                            )
                        )
                log(f"naive toto-ts GluonTS loop ({len(loop_rows)} series) vs TotoPredictor ...")
                task = dict(
                    kind="gluonts_loop",
                    name="gluonts",
                    rows=loop_rows,
                    horizon=args.gluonts_horizon,
                    num_samples=samples,
                    samples_per_batch=loop_spb,
                    quantile_levels=list(DEFAULT_QUANTILE_LEVELS),
                    start=GLUONTS_START,
                    freq=GLUONTS_FREQ,
                )
                mine, theirs = alternate_with(
                    lambda: list(predictor.predict(dataset)), reference, task, args.toto_repeats
                )
            finally:
                reference.close()
        per_series = median(theirs) / len(loop_rows)
        rows.append(
            speedup_row(
                f"toto-ts in a naive GluonTS loop vs compat.gluonts TotoPredictor.predict, {len(dataset)} series, "
                f"H = {args.gluonts_horizon}",
                f"toto-ts {toto_version}, one TotoForecaster.forecast per series (S = {samples}) -> QuantileForecast",
                median(mine),
                per_series * len(dataset),
                len(loop_rows) != len(dataset),
                None,
                f"toto-ts loop timed on {len(loop_rows)} of {len(dataset)} series (spread over the lengths), "
                f"{per_series:.3f} s per series, scaled linearly; its quantiles from {samples} paths "
                f"(samples_per_batch {loop_spb}), ours exact; {len(theirs)} call(s) each side, alternating (ABBA); "
                f"measured: toto-ts loop {', '.join(f'{t:.3g}' for t in theirs)} s, predictor "
                f"{', '.join(f'{t:.3g}' for t in mine)} s",
            )
        )

    load_end = os.getloadavg()[0]
    header = [
        f"machine: {machine_description(torch.device('cpu'))}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; toto-ts: {toto_version or 'not run'}",
        f"date: {today()}; commit: {git_commit()}; 1-minute load average {load_start:.2f} at start, "
        f"{load_end:.2f} at end",
        f"command: python bench/bench_compat.py {shlex.join(argv)}".rstrip(),
        f"model: {args.checkpoint.name} (random weights, CPU, fp32); ratio = baseline s / ours s; "
        "overhead = ours s / engine s - 1 (wall), and the drop-in's own time outside its engine call / time inside "
        "it, on which the 5 % target is judged (the wall difference is within this shared machine's noise); toto-ts "
        "runs in its own process, its calls alternating with the drop-in's",
    ]
    columns = ["comparison", "ours s", "baseline", "baseline s", "result", "target", "met", "notes"]
    keys = ["what", "ours_s", "baseline", "baseline_s", "result", "target", "met", "notes"]
    lines = [*header, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    text = "\n".join(lines)
    print(text)
    if args.markdown_out:
        args.markdown_out.write_text(text + "\n")


if __name__ == "__main__":
    main()
