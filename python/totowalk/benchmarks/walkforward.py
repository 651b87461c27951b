"""W1 / W2 measurements: forecasts, strategies and the whole backtest, engine vs baselines.

Baselines of the forecasts are timed on a stated number of calls and extrapolated to the
classic loop's call count (it makes one call per (series, simulation, key, step), no cache).
"""

from __future__ import annotations

import numpy as np

from ..backtest import backtest
from ..engine import reference_forecast
from .flops import forward_flops, planned_flops
from .official import find_official, time_official_calls
from .session import BenchSession
from .timing import same_call, time_interleaved
from .workloads import WorkloadSpec, forecast_plan, num_classic_calls, unique_contexts

BACKTEST_AGGREGATE = ("trimmed_mean_10", "band")  # what tw.backtest asks the engine for


def bench_walkforward(
    session: BenchSession,
    spec: WorkloadSpec,
    frames: dict,
    num_simulations: int,
    label: str,
    slice_note: str = "",
    full_contexts: int | None = None,
) -> list:
    """All rows of one walk-forward workload.

    Parameters
    ----------
    session : BenchSession
    spec : the workload (preset, samples)
    frames : ``{series name: price frame}`` the workload runs on (a slice of it on CPU for W2)
    num_simulations : K for these frames
    label : row name prefix, e.g. ``W1``
    slice_note : what slice of the workload ran (empty when all of it)
    full_contexts : unique contexts of the whole workload, to extrapolate a slice's time

    Returns
    -------
    list of BenchRow: forecast vs reference_forecast (and vs toto-ts when available),
    strategies (vectorized vs per-simulation loop), whole backtest (engine vs the classic loop)
    """
    opts, log = session.options, session.log
    plan = forecast_plan(frames, num_simulations)
    contexts = unique_contexts(plan)
    calls = num_classic_calls(plan)
    model = session.model(spec.preset)
    config = model.config
    engine = session.engine(spec.preset, spec.num_samples)
    gemm = session.ceiling["gflops"]

    # engine repeats and reference calls alternate, so both see the same machine load
    ref_contexts = contexts[: opts.reference_calls]
    ref_kwargs = {
        "num_samples": spec.num_samples,
        "samples_per_batch": spec.samples_per_batch,
        "aggregate": ("trimmed_mean_10", "expected"),
        "seed": opts.seed,
    }

    expected_ref = []

    def reference_call(i):  # warm-up (None): a one-patch context, for allocator and lazy set-up
        ctx = ref_contexts[0][-config.patch_size :] if i is None else ref_contexts[i]
        value = reference_forecast(model, [ctx], **ref_kwargs).stats["expected"][0, 0]
        if i is not None:
            expected_ref.append(value)

    (timing, ref_timing), (result, _) = time_interleaved(
        [same_call(engine.forecast, contexts, aggregate=BACKTEST_AGGREGATE), reference_call],
        session.device,
        [opts.repeats, len(ref_contexts)],
    )
    ref = {
        "times": ref_timing.times_s,
        "per_call": float(np.mean(ref_timing.times_s)),
        "expected": np.asarray(expected_ref),
    }
    flops, forwards = planned_flops(config, contexts, engine.share_prefixes)  # the forwards actually run
    engine_gflops = flops / timing.median_s / 1e9
    rate = len(contexts) / timing.median_s
    log(
        f"{label} forecast: engine {timing.median_s:.3f} s for {len(contexts)} unique contexts "
        f"({calls} classic calls), {rate:.1f} contexts/s, {engine_gflops:.1f} GFLOP/s of {gemm:.1f} ceiling"
    )
    scope = f"{len(contexts)} unique contexts ({calls} classic calls){', ' + slice_note if slice_note else ''}"
    sharing = (
        f"; prefix sharing: {forwards} forwards for {len(contexts)} unique contexts (GFLOP/s counts the forwards run)"
        if forwards < len(contexts)
        else ""
    )
    extrapolated_full = ""
    if full_contexts and full_contexts != len(contexts):
        extrapolated_full = f"; whole workload ({full_contexts} contexts) at this rate ~{full_contexts / rate:.1f} s"
    rows = []

    engine_expected = engine.forecast(ref_contexts, aggregate=("expected",)).stats["expected"][:, 0]
    rel = np.max(np.abs(engine_expected - ref["expected"]) / np.maximum(np.abs(ref["expected"]), 1e-12))
    per_call_flops = forward_flops(config, -(-len(contexts[0]) // config.patch_size))
    log(
        f"{label} forecast: reference_forecast {ref['per_call']:.3f} s per call over {len(ref['times'])} calls; "
        f"expected-value max relative difference vs engine {rel:.1e}"
    )
    rows.append(
        session.row(
            f"{label} forecast",
            timing.median_s,
            "reference_forecast (classic loop)",
            ref["per_call"] * calls,
            baseline_extrapolated=True,
            unique_contexts=len(contexts),
            engine_gflops=engine_gflops,
            baseline_gflops=per_call_flops * (spec.num_samples + 1) / ref["per_call"] / 1e9,
            baseline_detail=(
                f"baseline (same model and precision): {len(ref['times'])} call(s) timed "
                f"({ref['per_call']:.2f} s/call, {spec.num_samples} samples in batches of "
                f"{spec.samples_per_batch}, alternating with the engine repeats) x {calls} calls; with a cache of the "
                f"{len(contexts)} unique contexts {ref['per_call'] * len(contexts):.0f} s"
            ),
            notes=f"{scope}; expected-value max rel. diff vs baseline {rel:.1e}{sharing}{extrapolated_full}",
            extra={
                "reference_times_s": ref["times"],
                "engine_times_s": timing.times_s,
                "forecast_flops": flops,
                "classic_calls": calls,
                "engine_info": dict(result.info),
                "forwards": forwards,
            },
        )
    )

    official = _official_row(
        session, model, contexts, spec, label, calls, timing.median_s, engine_gflops, engine, scope, per_call_flops
    )
    if official is not None:
        rows.append(official)

    rows.extend(
        _backtest_rows(
            session, spec, frames, num_simulations, label, engine, result, plan, ref["per_call"] * calls, calls, scope
        )
    )
    return rows


def _official_row(session, model, contexts, spec, label, calls, engine_s, engine_gflops, engine, scope, per_call_flops):
    opts = session.options
    if opts.official == "off":
        return None
    if opts.precision != "fp32":
        session.log(f"{label}: the toto-ts baseline runs fp32 weights only; skipped at precision {opts.precision}")
        return None
    runner = find_official(None if opts.official == "auto" else opts.official)
    if runner is None:
        if opts.official != "auto":
            raise RuntimeError(f"--official {opts.official}: that python cannot import toto-ts")
        session.log(f"{label}: toto-ts not found (in-process or /tmp/refvenv); skipping the official baseline")
        return None
    timed = contexts[: opts.official_calls]
    out = time_official_calls(model, timed, spec.num_samples, spec.samples_per_batch, session.device.type, runner)
    engine_expected = engine.forecast(timed, aggregate=("expected",)).stats["expected"][:, 0]
    # samples of the official forecaster are random: compare its sample mean with the engine's
    # analytic mean in units of the sample mean's standard error
    z = np.abs(np.asarray(out["sample_mean"]) - engine_expected) / (
        np.asarray(out["sample_std"]) / np.sqrt(spec.num_samples) + 1e-30
    )
    per_call = out["per_call_s"]
    session.log(
        f"{label} forecast: toto-ts {out['toto_version']} {per_call:.3f} s per call over {len(timed)} calls "
        f"({'this process' if runner == 'in-process' else runner}); max |z| of its sample mean vs engine {z.max():.1f}"
    )
    return session.row(
        f"{label} forecast",
        engine_s,
        f"toto-ts {out['toto_version']} TotoForecaster",
        per_call * calls,
        baseline_extrapolated=True,
        unique_contexts=len(contexts),
        engine_gflops=engine_gflops,
        baseline_gflops=per_call_flops * spec.num_samples / per_call / 1e9,
        baseline_detail=(
            f"baseline: same weights via save_checkpoint, {len(timed)} call(s) timed ({per_call:.2f} s/call, "
            f"{spec.num_samples} samples, samples_per_batch {spec.samples_per_batch}; in "
            f"{'this process' if runner == 'in-process' else 'its own venv'}, after the engine runs, "
            f"not alternated) x {calls} calls"
        ),
        notes=f"{scope}; official sample mean vs engine mean: largest z-score {z.max():.1f}",
        extra={"official_times_s": out["times_s"], "official_runner": runner, "torch_version": out["torch_version"]},
    )


def _point_lookup(contexts: list, points: np.ndarray):
    """A forecaster function returning precomputed point forecasts by context content."""
    table = {c.tobytes(): float(p) for c, p in zip(contexts, points)}

    def lookup(batch):
        try:
            return np.array([table[c.tobytes()] for c in batch], dtype=np.float32)
        except KeyError:
            raise KeyError("benchmark lookup forecaster: a context not in the precomputed plan") from None

    return lookup


def _backtest_rows(
    session, spec, frames, num_simulations, label, engine, result, plan, forecast_baseline_s, calls, scope
) -> list:
    opts, log = session.options, session.log
    contexts = unique_contexts(plan)
    lookup = _point_lookup(contexts, result.stats["trimmed_mean_10"][:, 0])

    pairs = [(name, k) for name in frames for k in range(num_simulations)]
    timed_pairs = pairs[: opts.strategy_loop_sims]

    def one_simulation(i):  # warm-up (None) runs the first pair untimed
        name, k = timed_pairs[0 if i is None else i]
        frame = frames[name].iloc[: len(frames[name]) - k]  # its simulation 0 is simulation k of the run
        return backtest({name: frame}, num_simulations=1, forecaster=lookup, profile="legacy")

    (vectorized, loop), _ = time_interleaved(
        [
            same_call(backtest, frames, num_simulations=num_simulations, forecaster=lookup, profile="legacy"),
            one_simulation,
        ],
        session.device,
        [opts.repeats, len(timed_pairs)],
    )
    loop_times = loop.times_s
    per_sim = float(np.mean(loop_times))
    loop_s = per_sim * len(pairs)
    loop_extrapolated = len(timed_pairs) < len(pairs)
    log(
        f"{label} strategies: vectorized {vectorized.median_s:.3f} s for {len(pairs)} simulations; "
        f"per-simulation loop {per_sim:.3f} s/simulation ({len(timed_pairs)} timed)"
    )
    strategies = session.row(
        f"{label} strategies",
        vectorized.median_s,
        "same evaluator, one simulation per call",
        loop_s,
        baseline_extrapolated=loop_extrapolated,
        gemm_gflops=0.0,
        baseline_detail=f"baseline: {len(timed_pairs)} of {len(pairs)} (series, simulation) backtests timed, "
        f"{per_sim * 1e3:.0f} ms each",
        notes=f"both with precomputed forecasts (point forecasts, zero band); includes planning and "
        f"result tables; {len(pairs)} simulations",
    )

    # the whole backtest in both profiles, alternating: the clean default (exact estimator) and the
    # legacy profile (the engine of --estimator, sampled by default) the classic loop is compared with
    clean_engine = session.engine(spec.preset, spec.num_samples, estimator="exact")
    (whole, clean), (last, clean_last) = time_interleaved(
        [
            same_call(
                backtest,
                frames,
                num_simulations=num_simulations,
                engine=engine,
                profile="legacy",
                host_workers=opts.host_workers,
            ),
            same_call(
                backtest,
                frames,
                num_simulations=num_simulations,
                engine=clean_engine,
                profile="clean",
                scores_backend=opts.scores_backend,
                host_workers=opts.host_workers,
            ),
        ],
        session.device,
        [opts.repeats, opts.repeats],
    )
    classic = forecast_baseline_s + loop_s
    log(
        f"{label} backtest: tw.backtest clean {clean.median_s:.3f} s, legacy {whole.median_s:.3f} s; classic loop "
        f"(extrapolated) {classic:.1f} s"
    )
    phases = ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in last.timings.items())
    notes = f"{scope}; engine: tw.backtest(engine=ForecastEngine, legacy profile); last run's phases: {phases}"
    if session.device.type == "cuda" and label == "W1" and spec.num_simulations == 10:
        notes += "; the classic loop's own GPU report: 67.29 s for 10 simulations (its figure, not ours)"
    clean_phases = ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in clean_last.timings.items())
    clean_forecast = clean_last.timings.get("forecast", 0.0)
    clean_ratio = clean_last.timings["total"] / clean_forecast if clean_forecast else float("nan")
    clean_row = session.row(
        f"{label} backtest clean",
        clean.median_s,
        "the legacy profile's whole backtest, same run (next row)",
        whole.median_s,
        unique_contexts=len(contexts),
        notes=f"{scope}; engine: tw.backtest(engine=ForecastEngine(estimator='exact'), clean profile, the "
        f"default; {session.statistics_note()}); ratio = legacy / clean (issue 35: clean <= 1.1x legacy); "
        f"whole / its forecast phase {clean_ratio:.2f}x; last run's phases: {clean_phases}",
        extra={"engine_times_s": clean.times_s, "phases_s": dict(clean_last.timings)},
    )
    backtest_row = session.row(
        f"{label} backtest",
        whole.median_s,
        "classic loop: reference_forecast per call + per-simulation strategies",
        classic,
        baseline_extrapolated=True,
        unique_contexts=len(contexts),
        baseline_detail=f"baseline: {calls} reference calls (extrapolated, see the forecast row) + strategy loop "
        f"{loop_s:.2f} s",
        notes=notes,
        extra={"engine_times_s": whole.times_s, "phases_s": dict(last.timings)},
    )
    return [strategies, clean_row, backtest_row]
