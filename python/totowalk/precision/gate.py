"""Forecast-quality gate, its record: a reduced precision against fp32 on the same weights, against the
noise floor. The runs themselves are :mod:`totowalk.quality.gate` (it runs backtests, a layer above);
here are the settings, thresholds, verdict, stored results and the warning on load.

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

The exact runs also score every forecast whose next value is known with its exact CRPS (the
mixture each precision predicted): the mean CRPS of both, the mean paired change and its
Newey-West standard error (the forecasts along one series are autocorrelated), and z = change / SE.

PASS (``GateThresholds``) when, with the exact estimator, the mean z-shift of the mean and of the
aggregate are <= 1e-2, the flip rate <= 2 %, |MAE change| <= 0.5 % and the precision does not make
the mean CRPS worse by more than 3 standard errors and more than 0.1 % (a change that many
samples make detectable but that is negligible passes; improvements never fail); the
noise-floor comparison is reported, not judged. Results are cached as JSON beside the weights
(``<dir>/quality/<precision>.json``) or, for bundled / Hugging Face cache weights or read-only
folders, in the user cache (``$TOTOWALK_CACHE_DIR`` or ``~/.cache/totowalk``)/
``quality/<sha256[:16]>-<precision>.json``; both places are read, and a result counts only if its
sha256 matches the weights file and it comes from this version of the gate (``GATE_VERSION``).
Results stored before the CRPS row carry no CRPS figures and are judged without that check.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..model import checkpoint
from ..model.hub import hf_cache_dir
from ..model.identity import file_sha256
from .gate_report import format_report

__all__ = [
    "GATE_VERSION",
    "GateSettings",
    "GateThresholds",
    "UngatedPrecisionWarning",
    "find_result",
    "format_report",
    "forget_warning",
    "judge",
    "result_paths",
    "store_result",
    "user_cache_dir",
    "warn_if_not_gated",
    "weights_fingerprint",
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
    max_crps_z: float = 3.0  # FAIL when the mean CRPS gets worse by more than this many standard errors...
    min_crps_change_pct: float = 0.1  # ...and by more than this percentage: a detectable but negligible change passes


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


def judge(metrics: dict, thresholds: GateThresholds) -> dict:
    """{check name: bool} on the exact-estimator figures, and ``passed``."""
    p = metrics["precision"]
    checks = {
        "z_mean_mean": p["z_mean_mean"] <= thresholds.z_shift_mean,
        "z_aggregate_mean": p["z_aggregate_mean"] <= thresholds.z_shift_mean,
        "flip_rate": p["flip_rate"] <= thresholds.flip_rate,
        "mae_change_pct": abs(p["mae_change_pct"]) <= thresholds.mae_change_pct,
    }
    if "crps_z" in p:  # absent from results stored before the CRPS row: judged as they were
        # one-sided (a better CRPS never fails); NaN (under 2 scored forecasts) fails
        negligible = p.get("crps_change_pct", float("nan")) <= thresholds.min_crps_change_pct
        checks["crps_z"] = bool(p["crps_z"] <= thresholds.max_crps_z or negligible)
    return {"checks": checks, "passed": all(checks.values())}


# -- identity and cache -------------------------------------------------------------------

_WARNED: set[tuple[str, str]] = set()


def weights_fingerprint(weights_path: str | os.PathLike) -> str:
    """sha256 of the weights file (the model's identity file hash, memoised per path, size and mtime)."""
    return file_sha256(weights_path)


def user_cache_dir() -> Path:
    """``$TOTOWALK_CACHE_DIR``, else ``$XDG_CACHE_HOME/totowalk``, else ``~/.cache/totowalk``."""
    if os.environ.get("TOTOWALK_CACHE_DIR"):
        return Path(os.environ["TOTOWALK_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "totowalk"


def _weights_dir() -> Path:
    return checkpoint.WEIGHTS_DIR  # read at call time: the bundled weights' folder


def _beside_model_allowed(weights_path: Path) -> bool:
    folder = weights_path.parent.resolve()
    shared = (_weights_dir().resolve(), hf_cache_dir().resolve())
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
        if (
            result.get("fingerprint") == fingerprint
            and result.get("label") == label
            and result.get("gate_version") == GATE_VERSION
        ):  # an older gate's verdict meant something else
            return result
    return None


def store_result(result: dict, weights_path: Path) -> Path:
    """Write a gate result where :func:`result_paths` allows; returns the path written."""
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
        UngatedPrecisionWarning,
        stacklevel=3,
    )


def forget_warning(fingerprint: str, label: str) -> None:
    """A new result is on record: the next load of these weights is judged afresh."""
    _WARNED.discard((fingerprint, label))
