"""The precision quality gate's runs: five backtests of the fixed evaluation, their figures, the
verdict and the stored result (the evaluation is described in :mod:`totowalk.precision.gate`,
which keeps the record this module writes and ``load_model`` reads)."""

from __future__ import annotations

import dataclasses
import datetime
import warnings
from pathlib import Path

import numpy as np

from .._version import __version__
from ..backtest import backtest
from ..data import datasets
from ..engine import ForecastEngine
from ..loading import load_model
from ..model.checkpoint import resolve_checkpoint
from ..precision.convert import PRECISIONS, set_int8_kernel
from ..precision.gate import (
    GATE_VERSION,
    GateSettings,
    GateThresholds,
    UngatedPrecisionWarning,
    forget_warning,
    judge,
    store_result,
    weights_fingerprint,
)
from ..precision.gate_figures import RunRecord, against_noise_floor, compare_runs
from ..precision.int8 import Int8Kernel

__all__ = ["evaluate_models", "run_quality_gate"]


class _Recorder:
    """Engine wrapper that also asks for the mean and std and records them and the aggregate per call.

    A scoring recorder also records each forecast's exact CRPS against the next value of its series,
    known when the backtest asks in the walk-forward form (series and context ends).
    """

    def __init__(self, engine, score: bool = False):
        self.engine = engine
        self.num_samples, self.seed, self.estimator = engine.num_samples, engine.seed, engine.estimator
        self.score = score
        self.mean: list[np.ndarray] = []
        self.aggregate: list[np.ndarray] = []
        self.std: list[np.ndarray] = []
        self.crps: list[np.ndarray] = []
        self.segment: list[np.ndarray] = []  # per context: the series it is a prefix of, numbered as met
        self.end: list[np.ndarray] = []  # per context: its length, its place in time along that series
        self._segments = 0

    def forecast(self, contexts, prediction_length=1, aggregate=("mean",), **kwargs):
        # bare contexts: their next values are not known
        lengths = np.array([np.shape(c)[-1] for c in contexts], dtype=np.int64)
        segments = self._new_segments(len(contexts))
        return self._forecast(
            contexts, np.full(len(contexts), np.nan), segments, lengths, prediction_length, aggregate, **kwargs
        )

    def forecast_walk_forward(self, series, ends, prediction_length=1, aggregate=("mean",), **kwargs):
        # the very contexts and engine call of the backtest's fallback for an engine without this form,
        # so the figures are unchanged; the walk-forward form tells each context's next value
        contexts, next_values, segments, lengths = [], [], [], []
        for segment, (values, context_ends) in zip(self._new_segments(len(series)), zip(series, ends)):
            for end in map(int, context_ends):
                contexts.append(values[:end])
                next_values.append(float(values[end]) if end < len(values) else np.nan)
                segments.append(segment)
                lengths.append(end)
        return self._forecast(
            contexts,
            np.array(next_values),
            np.array(segments),
            np.array(lengths),
            prediction_length,
            aggregate,
            **kwargs,
        )

    def time_order(self) -> np.ndarray:
        """Permutation of the recorded contexts into time order, series after series."""
        return np.lexsort((np.concatenate(self.end), np.concatenate(self.segment)))

    def _new_segments(self, count: int) -> np.ndarray:
        self._segments += count
        return np.arange(self._segments - count, self._segments)

    def _forecast(self, contexts, next_values, segments, lengths, prediction_length, aggregate, **kwargs):
        aggregate = (aggregate,) if isinstance(aggregate, str) else tuple(aggregate)
        res = self.engine.forecast(contexts, prediction_length, aggregate=aggregate + ("mean", "std"), **kwargs)
        for store, name in ((self.mean, "mean"), (self.aggregate, aggregate[0]), (self.std, "std")):
            store.append(np.asarray(res.stats[name], dtype=np.float64)[:, 0])
        self.segment.append(segments)
        self.end.append(lengths)
        if self.score:
            self.crps.append(res.scores(next_values[:, None])["crps"][:, 0])
        return res


def _run(model, settings: GateSettings, prices: dict, estimator: str, seed: int) -> RunRecord:
    # the exact runs score their forecasts; a sampled run's mixture is the same one
    score = estimator == "exact"
    recorder = _Recorder(
        ForecastEngine(model, num_samples=settings.num_samples, seed=seed, estimator=estimator), score=score
    )
    bt = backtest(
        prices,
        symbols=list(settings.symbols),
        num_simulations=settings.num_simulations,
        engine=recorder,
        profile=settings.profile,
        aggregate=settings.aggregate,
    )
    run = RunRecord(bt, *(np.concatenate(x) for x in (recorder.mean, recorder.aggregate, recorder.std)))
    if score:
        run.crps, run.time_order = np.concatenate(recorder.crps), recorder.time_order()
    return run


def evaluate_models(
    reference_model,
    candidate_model,
    settings: GateSettings = GateSettings(),
    prices=None,
    noise_fraction: float = GateThresholds.noise_fraction,
) -> dict:
    """The five runs (module docstring) and every figure: ``precision`` (exact), ``noise_floor``,
    ``sampled`` (the precision at the gate's S) and ``sampled_vs_floor``."""
    prices = prices if prices is not None else {s: datasets.load(s) for s in settings.symbols}
    ref_exact = _run(reference_model, settings, prices, "exact", settings.seed)
    cand_exact = _run(candidate_model, settings, prices, "exact", settings.seed)
    ref_a = _run(reference_model, settings, prices, "sampled", settings.seed)
    ref_b = _run(reference_model, settings, prices, "sampled", settings.floor_seed)
    cand_a = _run(candidate_model, settings, prices, "sampled", settings.seed)
    sigma = ref_exact.std
    floor = compare_runs(ref_a, ref_b, sigma)
    sampled = compare_runs(ref_a, cand_a, sigma)
    return {
        "contexts": int(sigma.size),
        "signal_z_median": float(np.median(np.abs(ref_exact.aggregate) / sigma)),
        "precision": compare_runs(ref_exact, cand_exact, sigma),
        "noise_floor": floor,
        "sampled": sampled,
        "sampled_vs_floor": against_noise_floor(sampled, floor, noise_fraction),
    }


def run_quality_gate(
    spec,
    precision: str,
    thresholds: GateThresholds = GateThresholds(),
    settings: GateSettings = GateSettings(),
    device=None,
    int8_kernel: str = "auto",
    store: bool = True,
) -> dict:
    """Load ``spec`` in fp32 and in ``precision``, evaluate, judge, and store the JSON result.

    Returns the result dict (``passed``, ``checks``, ``metrics``, ``path`` where stored).
    """
    if precision not in PRECISIONS or precision == "fp32":
        raise ValueError(f"precision must be one of {[p for p in PRECISIONS if p != 'fp32']}, got {precision!r}")
    kernel = Int8Kernel(int8_kernel)
    label = (
        precision if kernel in (Int8Kernel.AUTO, Int8Kernel.DEQUANT) or precision != "int8" else f"int8-{kernel.value}"
    )
    weights_path, _ = resolve_checkpoint(spec)
    reference = load_model(spec, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UngatedPrecisionWarning)  # this is the measurement itself
        candidate = load_model(spec, device=device, precision=precision)
    if precision == "int8":
        set_int8_kernel(candidate, kernel)
    metrics = evaluate_models(reference, candidate, settings, noise_fraction=thresholds.noise_fraction)
    verdict = judge(metrics, thresholds)
    result = {
        "gate_version": GATE_VERSION,
        "label": label,
        "precision": precision,
        "int8_kernel": kernel.value if precision == "int8" else None,
        "model": str(spec),
        "weights": str(weights_path),
        "fingerprint": weights_fingerprint(weights_path),
        "device": str(device or "cpu"),
        "settings": dataclasses.asdict(settings),
        "thresholds": dataclasses.asdict(thresholds),
        "metrics": metrics,
        **verdict,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "totowalk_version": __version__,
    }
    if store:
        result["path"] = str(store_result(result, Path(weights_path)))
    # the load above was silenced; with a new result on record the next load judges afresh
    forget_warning(result["fingerprint"], label)
    return result
