"""Forecast-quality gate: a reduced precision against fp32 on the same weights.

The fixed evaluation (``GateSettings`` defaults) runs the legacy-profile backtest on the bundled
data for IBM and MSFT, 20 simulations each, with a ``ForecastEngine`` of 128 samples and seed 0,
once with the fp32 model and once with the candidate. Both runs draw the same random numbers,
so every difference comes from precision. The walk-forward next-step forecasts of the 4 price
keys (Open, High, Low, Close percent changes; 26 distinct contexts per symbol and key) give:

* ``expected_rel_err_max`` / ``expected_rel_err_mean``: ``|E_P - E_32| / max(|E_32|, mean|E_32|)``
  of the mixture's analytic mean per context (the floor keeps near-zero forecasts from dividing
  by ~0);
* ``mae_change_pct``: change of the backtest's point-forecast MAE vs realised values, in %;
* per strategy: change of the mean return and the mean Sharpe over (symbol, simulation).

PASS when ``expected_rel_err_mean <= 1e-2`` and ``|mae_change_pct| <= 1`` (``GateThresholds``).
Results are cached as JSON beside the weights (``<dir>/quality/<precision>.json``) or, for
bundled / Hugging Face cache weights or read-only folders, in the user cache
(``$TOTOWALK_CACHE_DIR`` or ``~/.cache/totowalk``)/``quality/<sha256[:16]>-<precision>.json``;
both places are read, and a result counts only if its sha256 matches the weights file.
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

__all__ = [
    "GateSettings", "GateThresholds", "UngatedPrecisionWarning", "compare_backtests", "evaluate_models",
    "find_result", "format_report", "judge", "run_quality_gate", "warn_if_not_gated", "weights_fingerprint",
]

STRATEGIES = ("simple_strategy", "all_signals_strategy", "buy_hold", "unprofit_shutdown", "entry_takeprofit",
              "highlow", "maxdiff", "maxdiffalwayson", "ci_guard")


class UngatedPrecisionWarning(UserWarning):
    """A reduced precision is used without a passing quality-gate result for these weights."""


@dataclass(frozen=True)
class GateThresholds:
    """PASS limits. ``expected_rel_err_max`` is optional (None: reported, not judged)."""

    expected_rel_err_mean: float = 1e-2
    mae_change_pct: float = 1.0
    expected_rel_err_max: float | None = None


@dataclass(frozen=True)
class GateSettings:
    """The fixed evaluation: bundled symbols, simulations, engine samples and seed."""

    symbols: tuple[str, ...] = ("IBM", "MSFT")
    num_simulations: int = 20
    num_samples: int = 128
    seed: int = 0
    profile: str = "legacy"

    def __post_init__(self):
        if self.num_simulations < 1 or self.num_samples < 2 or not self.symbols:
            raise ValueError(f"GateSettings: need symbols, num_simulations >= 1 and num_samples >= 2, got {self}")


# -- evaluation ---------------------------------------------------------------------------


class _ExpectedRecorder:
    """Engine wrapper that also asks for the analytic mean and records it per call."""

    def __init__(self, engine):
        self.engine = engine
        self.num_samples, self.seed = engine.num_samples, engine.seed
        self.expected: list[np.ndarray] = []

    def forecast(self, contexts, prediction_length=1, aggregate=("mean",), **kwargs):
        aggregate = (aggregate,) if isinstance(aggregate, str) else tuple(aggregate)
        res = self.engine.forecast(contexts, prediction_length, aggregate=aggregate + ("expected",), **kwargs)
        self.expected.append(np.asarray(res.stats["expected"], dtype=np.float64)[:, 0])
        return res


def _run(model, settings: GateSettings, prices: dict):
    from ..backtest import backtest
    from ..engine import ForecastEngine

    recorder = _ExpectedRecorder(ForecastEngine(model, num_samples=settings.num_samples, seed=settings.seed))
    bt = backtest(prices, symbols=list(settings.symbols), num_simulations=settings.num_simulations,
                  engine=recorder, profile=settings.profile)
    return bt, np.concatenate(recorder.expected)


def compare_backtests(reference, candidate, expected_ref: np.ndarray, expected_cand: np.ndarray) -> dict:
    """Metrics of a candidate run against the fp32 run (see the module docstring)."""
    if expected_ref.shape != expected_cand.shape:
        raise ValueError(f"expected values differ in shape: {expected_ref.shape} vs {expected_cand.shape}")
    floor = max(float(np.mean(np.abs(expected_ref))), np.finfo(np.float64).tiny)
    rel = np.abs(expected_cand - expected_ref) / np.maximum(np.abs(expected_ref), floor)

    def mae(bt) -> float:
        f = bt.forecasts
        ok = np.isfinite(f["actual"].to_numpy())
        return float(np.mean(np.abs(f["prediction"].to_numpy()[ok] - f["actual"].to_numpy()[ok])))

    mae_ref, mae_cand = mae(reference), mae(candidate)
    strategies = {}
    for name in STRATEGIES:
        cols = (f"{name}_return", f"{name}_sharpe")
        if not all(c in reference.simulations for c in cols):
            continue
        row = {}
        for metric, col in zip(("return", "sharpe"), cols):
            ref = float(np.nanmean(reference.simulations[col].to_numpy(np.float64)))
            cand = float(np.nanmean(candidate.simulations[col].to_numpy(np.float64)))
            row[f"mean_{metric}_fp32"], row[f"mean_{metric}"], row[f"{metric}_change"] = ref, cand, cand - ref
        strategies[name] = row
    return {
        "contexts": int(expected_ref.size),
        "expected_rel_err_max": float(rel.max()),
        "expected_rel_err_mean": float(rel.mean()),
        "mae_fp32": mae_ref,
        "mae": mae_cand,
        "mae_change_pct": 100.0 * (mae_cand - mae_ref) / mae_ref if mae_ref > 0 else float("nan"),
        "strategies": strategies,
    }


def evaluate_models(reference_model, candidate_model, settings: GateSettings = GateSettings(), prices=None) -> dict:
    """Run the fixed evaluation with both models and compare (``compare_backtests``)."""
    from ..data import datasets

    prices = prices if prices is not None else {s: datasets.load(s) for s in settings.symbols}
    ref_bt, ref_expected = _run(reference_model, settings, prices)
    cand_bt, cand_expected = _run(candidate_model, settings, prices)
    return compare_backtests(ref_bt, cand_bt, ref_expected, cand_expected)


def judge(metrics: dict, thresholds: GateThresholds) -> dict:
    """{check name: bool} and ``passed`` for metrics against thresholds."""
    checks = {
        "expected_rel_err_mean": metrics["expected_rel_err_mean"] <= thresholds.expected_rel_err_mean,
        "mae_change_pct": abs(metrics["mae_change_pct"]) <= thresholds.mae_change_pct,
    }
    if thresholds.expected_rel_err_max is not None:
        checks["expected_rel_err_max"] = metrics["expected_rel_err_max"] <= thresholds.expected_rel_err_max
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
    """The stored gate result for these weights (same sha256) and label, or None."""
    fingerprint = weights_fingerprint(weights_path)
    for path in result_paths(weights_path, label):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if result.get("fingerprint") == fingerprint and result.get("label") == label:
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
    metrics = evaluate_models(reference, candidate, settings)
    verdict = judge(metrics, thresholds)
    result = {
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


def format_report(result: dict) -> str:
    """Markdown tables: the gate checks, then per-strategy changes."""
    m, t = result["metrics"], result["thresholds"]
    verdict = "PASS" if result["passed"] else "FAIL"
    max_limit = t["expected_rel_err_max"]
    lines = [
        (f"quality gate: {result['label']} vs fp32 on {result['model']} ({m['contexts']} next-step contexts, "
         f"device {result['device']}): **{verdict}**"),
        "",
        "| metric | value | threshold | ok |",
        "|---|---|---|---|",
        (f"| expected value: mean relative error | {m['expected_rel_err_mean']:.3e} | "
         f"<= {t['expected_rel_err_mean']:g} | {_ok(result, 'expected_rel_err_mean')} |"),
        (f"| expected value: max relative error | {m['expected_rel_err_max']:.3e} | "
         f"{f'<= {max_limit:g}' if max_limit is not None else '(reported)'} | {_ok(result, 'expected_rel_err_max')} |"),
        (f"| MAE change (%) | {m['mae_change_pct']:+.4f} (fp32 {m['mae_fp32']:.6g}, now {m['mae']:.6g}) "
         f"| abs <= {t['mae_change_pct']:g} | {_ok(result, 'mae_change_pct')} |"),
        "",
        "| strategy | mean return fp32 | change | mean Sharpe fp32 | change |",
        "|---|---|---|---|---|",
    ]
    for name, row in m["strategies"].items():
        lines.append(f"| {name} | {row['mean_return_fp32']:.6g} | {row['return_change']:+.3e} | "
                     f"{row['mean_sharpe_fp32']:.6g} | {row['sharpe_change']:+.3e} |")
    if result.get("path"):
        lines += ["", f"result: {result['path']}"]
    return "\n".join(lines)


def _ok(result: dict, check: str) -> str:
    if check not in result["checks"]:
        return "-"
    return "yes" if result["checks"][check] else "NO"
