"""Forecast-quality gate: a reduced precision against fp32 on the same weights, against the noise floor.

The fixed evaluation (``GateSettings`` defaults) runs the legacy-profile backtest on the bundled
data for IBM and MSFT, 20 simulations each, and records, per distinct next-step context of the 4
price keys, the forecast mean, the backtest's aggregate (its signal, ``trimmed_mean_10``) and the
predictive std. Five runs:

* fp32 and the precision with the exact estimator: the precision's own deviation, free of
  sampling noise. Figures (``gate_figures.compare_runs``): z-shift |E_P - E_32| / sigma_32 of the
  mean and of the aggregate (sigma_32 = the fp32 exact predictive std), the rate of flipped
  signal signs, the MAE change against realised values, per-strategy mean return and Sharpe change;
* fp32 sampled at the gate's S with ``seed`` and with ``floor_seed``: the same figures for fp32
  against fp32, the Monte Carlo noise floor every sampled run carries;
* the precision sampled with ``seed``: its deviation in a sampled configuration (same random
  numbers as the fp32 run), reported against a quarter of that floor.

PASS (``GateThresholds``) when, with the exact estimator, the mean z-shift of the mean and of the
aggregate are <= 1e-2, the flip rate <= 2 % and |MAE change| <= 0.5 %; the noise-floor comparison
is reported, not judged. Results are cached as JSON beside the weights
(``<dir>/quality/<precision>.json``) or, for bundled / Hugging Face cache weights or read-only
folders, in the user cache (``$TOTOWALK_CACHE_DIR`` or ``~/.cache/totowalk``)/
``quality/<sha256[:16]>-<precision>.json``; both places are read, and a result counts only if its
sha256 matches the weights file and it comes from this version of the gate (``GATE_VERSION``).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .gate_figures import RunRecord, against_noise_floor, compare_runs
from .gate_report import format_report

__all__ = [
    "GATE_VERSION", "GateSettings", "GateThresholds", "UngatedPrecisionWarning", "evaluate_models",
    "find_result", "format_report", "judge", "run_quality_gate", "warn_if_not_gated", "weights_fingerprint",
]

GATE_VERSION = 2  # 2: z-shifts against the exact fp32 std and the noise floor (1: relative error of the mean)


class UngatedPrecisionWarning(UserWarning):
    """A reduced precision is used without a passing quality-gate result for these weights."""


@dataclass(frozen=True)
class GateThresholds:
    """PASS limits on the exact-estimator figures; ``noise_fraction`` is the reported floor comparison."""

    z_shift_mean: float = 1e-2
    flip_rate: float = 0.02
    mae_change_pct: float = 0.5
    noise_fraction: float = 0.25


@dataclass(frozen=True)
class GateSettings:
    """The fixed evaluation: bundled symbols, simulations, the sampled runs' S and seeds, the aggregate."""

    symbols: tuple[str, ...] = ("IBM", "MSFT")
    num_simulations: int = 20
    num_samples: int = 128
    seed: int = 0
    floor_seed: int = 1
    profile: str = "legacy"
    aggregate: str = "trimmed_mean_10"

    def __post_init__(self):
        if self.num_simulations < 1 or self.num_samples < 2 or not self.symbols:
            raise UsageError(f"GateSettings: need symbols, num_simulations >= 1 and num_samples >= 2, got {self}")
        if self.floor_seed == self.seed:
            raise UsageError(f"GateSettings: the noise floor needs floor_seed != seed, got {self.seed} for both")


# -- evaluation ---------------------------------------------------------------------------


class _Recorder:
    """Engine wrapper that also asks for the mean and std and records them and the aggregate per call."""

    def __init__(self, engine):
        self.engine = engine
        self.num_samples, self.seed, self.estimator = engine.num_samples, engine.seed, engine.estimator
        self.mean: list[np.ndarray] = []
        self.aggregate: list[np.ndarray] = []
        self.std: list[np.ndarray] = []

    def forecast(self, contexts, prediction_length=1, aggregate=("mean",), **kwargs):
        aggregate = (aggregate,) if isinstance(aggregate, str) else tuple(aggregate)
        res = self.engine.forecast(contexts, prediction_length, aggregate=aggregate + ("mean", "std"), **kwargs)
        for store, name in ((self.mean, "mean"), (self.aggregate, aggregate[0]), (self.std, "std")):
            store.append(np.asarray(res.stats[name], dtype=np.float64)[:, 0])
        return res


def _run(model, settings: GateSettings, prices: dict, estimator: str, seed: int) -> RunRecord:
    from ..backtest import backtest
    from ..engine import ForecastEngine

    recorder = _Recorder(ForecastEngine(model, num_samples=settings.num_samples, seed=seed, estimator=estimator))
    bt = backtest(prices, symbols=list(settings.symbols), num_simulations=settings.num_simulations,
                  engine=recorder, profile=settings.profile, aggregate=settings.aggregate)
    return RunRecord(bt, *(np.concatenate(x) for x in (recorder.mean, recorder.aggregate, recorder.std)))


def evaluate_models(reference_model, candidate_model, settings: GateSettings = GateSettings(), prices=None,
                    noise_fraction: float = GateThresholds.noise_fraction) -> dict:
    """The five runs (module docstring) and every figure: ``precision`` (exact), ``noise_floor``,
    ``sampled`` (the precision at the gate's S) and ``sampled_vs_floor``."""
    from ..data import datasets

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


def judge(metrics: dict, thresholds: GateThresholds) -> dict:
    """{check name: bool} on the exact-estimator figures, and ``passed``."""
    p = metrics["precision"]
    checks = {
        "z_mean_mean": p["z_mean_mean"] <= thresholds.z_shift_mean,
        "z_aggregate_mean": p["z_aggregate_mean"] <= thresholds.z_shift_mean,
        "flip_rate": p["flip_rate"] <= thresholds.flip_rate,
        "mae_change_pct": abs(p["mae_change_pct"]) <= thresholds.mae_change_pct,
    }
    return {"checks": checks, "passed": all(checks.values())}


# -- identity and cache -------------------------------------------------------------------

_FINGERPRINTS: dict[tuple, str] = {}
_WARNED: set[tuple[str, str]] = set()


def weights_fingerprint(weights_path: str | os.PathLike) -> str:
    """sha256 of the weights file (memoised per path, size and mtime)."""
    path = Path(weights_path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                digest.update(block)
        _FINGERPRINTS[key] = digest.hexdigest()
    return _FINGERPRINTS[key]


def user_cache_dir() -> Path:
    """``$TOTOWALK_CACHE_DIR``, else ``$XDG_CACHE_HOME/totowalk``, else ``~/.cache/totowalk``."""
    if os.environ.get("TOTOWALK_CACHE_DIR"):
        return Path(os.environ["TOTOWALK_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "totowalk"


def _beside_model_allowed(weights_path: Path) -> bool:
    from ..model.checkpoint import WEIGHTS_DIR, _hf_cache_dir

    folder = weights_path.parent.resolve()
    shared = (WEIGHTS_DIR.resolve(), _hf_cache_dir().resolve())
    return not any(folder.is_relative_to(p) for p in shared) and os.access(folder, os.W_OK)


def result_paths(weights_path: str | os.PathLike, label: str, for_writing: bool = False) -> list[Path]:
    """Where a result may live, preferred first: beside the weights, then the user cache.

    Results are read from both (a package may ship one beside bundled weights) but written
    beside the weights only for a writable folder outside the package and the HF cache.
    """
    weights_path = Path(weights_path)
    beside = weights_path.parent / "quality" / f"{label}.json"
    cached = user_cache_dir() / "quality" / f"{weights_fingerprint(weights_path)[:16]}-{label}.json"
    if for_writing and not _beside_model_allowed(weights_path):
        return [cached]
    return [beside, cached]


def find_result(weights_path: str | os.PathLike, label: str) -> dict | None:
    """The stored result of this gate version for these weights (same sha256) and label, or None."""
    fingerprint = weights_fingerprint(weights_path)
    for path in result_paths(weights_path, label):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (result.get("fingerprint") == fingerprint and result.get("label") == label
                and result.get("gate_version") == GATE_VERSION):  # an older gate's verdict meant something else
            return result
    return None


def _store(result: dict, weights_path: Path) -> Path:
    text = json.dumps(result, indent=2) + "\n"
    for path in result_paths(weights_path, result["label"], for_writing=True):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return path
        except OSError:
            continue
    raise OSError(f"cannot write the quality result to any of {result_paths(weights_path, result['label'], True)}")


def warn_if_not_gated(weights_path: str | os.PathLike, precision: str) -> None:
    """Warn (once per weights and precision) when no passing gate result is stored."""
    fingerprint = weights_fingerprint(weights_path)
    if (fingerprint, precision) in _WARNED:
        return
    result = find_result(weights_path, precision)
    if result is not None and result.get("passed"):
        return
    _WARNED.add((fingerprint, precision))
    state = "failed the quality gate" if result is not None else "has no quality-gate result"
    warnings.warn(
        f"precision {precision!r} {state} for weights {weights_path} (sha256 {fingerprint[:16]}); "
        f"run `totowalk quality --model <model> --precision {precision}` to measure its forecast error vs fp32",
        UngatedPrecisionWarning, stacklevel=3,
    )


# -- the whole gate -----------------------------------------------------------------------


def run_quality_gate(spec, precision: str, thresholds: GateThresholds = GateThresholds(),
                     settings: GateSettings = GateSettings(), device=None, int8_kernel: str = "auto",
                     store: bool = True) -> dict:
    """Load ``spec`` in fp32 and in ``precision``, evaluate, judge, and store the JSON result.

    Returns the result dict (``passed``, ``checks``, ``metrics``, ``path`` where stored).
    """
    from .._version import __version__
    from ..loading import load_model
    from ..model.checkpoint import _resolve
    from .convert import PRECISIONS, set_int8_kernel
    from .int8 import Int8Kernel

    if precision not in PRECISIONS or precision == "fp32":
        raise ValueError(f"precision must be one of {[p for p in PRECISIONS if p != 'fp32']}, got {precision!r}")
    kernel = Int8Kernel(int8_kernel)
    label = precision if kernel in (Int8Kernel.AUTO, Int8Kernel.DEQUANT) or precision != "int8" else f"int8-{kernel.value}"
    weights_path, _ = _resolve(spec)
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
        result["path"] = str(_store(result, Path(weights_path)))
    # the load above was silenced; with a new result on record the next load judges afresh
    _WARNED.discard((result["fingerprint"], label))
    return result
