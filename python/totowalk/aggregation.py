"""Reduce forecast samples to point values: legacy spec parsing and aggregation, plus the band.

Two entry points share one parser:

* :func:`aggregate_with_spec` reproduces the classic backtest's sample reduction exactly
  (LEGACY_SEMANTICS.md §3.1): float64, singleton axes squeezed, the longer axis of a 2-D input
  taken as the sample axis, one value per column.
* :func:`aggregate_numpy` reduces an ``(N, S)`` matrix row by row; it is the float64 reference
  that the engine's on-device reductions are tested against, and it understands the engine's
  extra names (``std``, ``band``, ``pXX``; ``expected`` is parsed but needs mixture parameters).

:func:`band_p60_minus_p40` is the legacy confidence band (§3.3), computed in float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AGGREGATE_KINDS",
    "AggregateSpec",
    "aggregate_numpy",
    "aggregate_with_spec",
    "band_p60_minus_p40",
    "parse_aggregate",
    "percentiles_p40_p60",
]

AGGREGATE_KINDS = (
    "mean",
    "median",
    "quantile",
    "trimmed_mean",
    "lower_trimmed_mean",
    "upper_trimmed_mean",
    "mean_minus_std",
    "mean_plus_std",
    "mean_quantile_mix",
    "std",
    "band",
    "expected",
)


@dataclass(frozen=True)
class AggregateSpec:
    """A parsed aggregation spec.

    Attributes
    ----------
    name : str
        The spec as given (``"mean"`` when the caller passed ``None``).
    kind : str
        One of :data:`AGGREGATE_KINDS`.
    params : tuple of float
        ``quantile``: ``(q,)``; trimmed means: ``(fraction,)``; ``mean_minus_std`` /
        ``mean_plus_std``: ``(scale,)``; ``mean_quantile_mix``: ``(q, weight)``; others: ``()``.
    """

    name: str
    kind: str
    params: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in AGGREGATE_KINDS:
            raise ValueError(
                f"AggregateSpec {self.name!r}: unknown kind {self.kind!r}; expected one of {AGGREGATE_KINDS}"
            )


def _fraction(token: str, spec: str) -> float:
    """Legacy fraction rule: a number above 1 is a percentage; the result must lie in [0, 1]."""
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f"aggregation spec {spec!r}: invalid fraction parameter {token!r}") from None
    if value > 1.0:
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"aggregation spec {spec!r}: fraction must be within [0, 1]; received {value}")
    return value


def _plain_float(token: str, spec: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"aggregation spec {spec!r}: invalid numeric parameter {token!r}") from None


def _parameter_tokens(body: str, count: int, spec: str) -> list[str]:
    tokens = body.split("_")
    if len(tokens) != count or any(not t for t in tokens):
        raise ValueError(f"aggregation spec {spec!r}: expected {count} parameter(s) separated by '_', got {body!r}")
    return tokens


_PERCENTILE_NAME = re.compile(r"p(\d{1,3})")


def parse_aggregate(spec: str | None, *, extended: bool = False) -> AggregateSpec:
    """Parse an aggregation spec with the legacy rules (§3.1).

    Parameters
    ----------
    spec : str or None
        e.g. ``"trimmed_mean_10"``, ``"quantile_0.35"``, ``"mean_quantile_mix_35_0.5"``.
        Stripped and lower-cased; empty or ``None`` means ``"mean"``.
    extended : bool
        Also accept the engine's names: ``std`` (population std), ``band`` (p60 - p40, >= 0),
        ``expected`` (analytic mixture mean) and any ``pXX`` with XX in 0..100.

    Raises
    ------
    ValueError
        Unknown method, malformed or out-of-range parameter (the message names the spec).
    """
    name = "mean" if spec is None else spec
    text = (spec or "").strip().lower()
    if not text or text == "mean":
        return AggregateSpec(name, "mean")
    if text == "median":
        return AggregateSpec(name, "median")
    if text in ("p10", "p90"):
        return AggregateSpec(name, "quantile", (int(text[1:]) / 100.0,))
    if extended:
        if text in ("std", "band", "expected"):
            return AggregateSpec(name, text)
        match = _PERCENTILE_NAME.fullmatch(text)
        if match and int(match.group(1)) <= 100:
            return AggregateSpec(name, "quantile", (int(match.group(1)) / 100.0,))
    if text.startswith("trimmed_mean_"):
        fraction = _fraction(text.rsplit("_", 1)[-1], name)
        if not 0.0 <= fraction < 0.5:
            raise ValueError(f"aggregation spec {name!r}: trimmed mean fraction must lie in [0, 0.5); got {fraction}")
        return AggregateSpec(name, "trimmed_mean", (fraction,))
    if text.startswith("lower_trimmed_mean_"):
        return AggregateSpec(name, "lower_trimmed_mean", (_fraction(text.rsplit("_", 1)[-1], name),))
    if text.startswith("upper_trimmed_mean_"):
        return AggregateSpec(name, "upper_trimmed_mean", (_fraction(text.rsplit("_", 1)[-1], name),))
    if text.startswith("quantile_"):
        # Legacy quirk (§11 defect 15): "quantile_plus_std_q_c" also lands here and is read as
        # the quantile of its *last* token, so only that token is parsed.
        return AggregateSpec(name, "quantile", (_fraction(text.rsplit("_", 1)[-1], name),))
    for prefix, kind in (("mean_minus_std_", "mean_minus_std"), ("mean_plus_std_", "mean_plus_std")):
        if text.startswith(prefix):
            (token,) = _parameter_tokens(text[len(prefix) :], 1, name)
            return AggregateSpec(name, kind, (_plain_float(token, name),))
    if text.startswith("mean_quantile_mix_"):
        q_token, w_token = _parameter_tokens(text[len("mean_quantile_mix_") :], 2, name)
        weight = min(max(_plain_float(w_token, name), 0.0), 1.0)
        return AggregateSpec(name, "mean_quantile_mix", (_fraction(q_token, name), weight))
    raise ValueError(f"Unknown aggregation method {name!r}")


def _as_spec(spec: str | AggregateSpec | None, extended: bool) -> AggregateSpec:
    return spec if isinstance(spec, AggregateSpec) else parse_aggregate(spec, extended=extended)


def _reduce_sorted(sorted_samples: np.ndarray, spec: AggregateSpec) -> np.ndarray:
    """Reduce along the last axis of already sorted float64 samples, shape (..., n) -> (...)."""
    n = sorted_samples.shape[-1]
    kind, params = spec.kind, spec.params
    if kind == "mean":
        return sorted_samples.mean(axis=-1)
    if kind == "median":
        return np.median(sorted_samples, axis=-1)
    if kind == "quantile":
        return np.quantile(sorted_samples, params[0], axis=-1)
    if kind == "trimmed_mean":
        k = int(n * params[0])  # truncation as in the legacy code, not rounding
        if k == 0 or 2 * k >= n:
            return sorted_samples.mean(axis=-1)
        return sorted_samples[..., k : n - k].mean(axis=-1)
    if kind == "lower_trimmed_mean":
        keep = max(1, int(n * (1.0 - params[0])))
        return sorted_samples[..., :keep].mean(axis=-1)
    if kind == "upper_trimmed_mean":
        start = min(n - 1, int(n * params[0]))
        return sorted_samples[..., start:].mean(axis=-1)
    if kind in ("mean_minus_std", "mean_plus_std"):
        sign = -1.0 if kind == "mean_minus_std" else 1.0
        return sorted_samples.mean(axis=-1) + sign * params[0] * sorted_samples.std(axis=-1)
    if kind == "mean_quantile_mix":
        q, weight = params
        return weight * sorted_samples.mean(axis=-1) + (1.0 - weight) * np.quantile(sorted_samples, q, axis=-1)
    if kind == "std":
        return sorted_samples.std(axis=-1)
    if kind == "band":
        p40, p60 = np.quantile(sorted_samples, [0.4, 0.6], axis=-1)
        return np.maximum(p60 - p40, 0.0)
    raise ValueError(
        f"aggregation {spec.name!r} (kind {kind!r}) needs the mixture parameters, not samples; "
        "ask the ForecastEngine for it"
    )


def aggregate_with_spec(samples, spec: str | AggregateSpec | None) -> np.ndarray:
    """Legacy ``aggregate_with_spec``: one float64 value per column of the sample matrix.

    Parameters
    ----------
    samples : array_like or torch.Tensor
        Any shape that squeezes to ``(n,)`` or ``(a, b)``; for 2-D input the longer axis is the
        sample axis (rows < columns is transposed, equal sizes are kept as rows = samples).
    spec : str, AggregateSpec or None
        Parsed with the legacy rules (``extended=False``) when a string.

    Returns
    -------
    numpy.ndarray, shape (columns,), float64

    Raises
    ------
    ValueError
        For an unknown spec, or a shape that does not squeeze to 1-D or 2-D (a single sample
        squeezes to 0-D and raises, as in the legacy code).
    """
    parsed = _as_spec(spec, extended=False)
    if hasattr(samples, "detach"):
        samples = samples.detach().cpu().numpy()
    matrix = np.squeeze(np.asarray(samples, dtype=np.float64))
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    elif matrix.ndim == 2:
        if matrix.shape[0] < matrix.shape[1]:
            matrix = matrix.T
    else:
        raise ValueError(
            f"aggregate_with_spec: samples of shape {np.shape(samples)} squeeze to {matrix.shape}; need 1-D or 2-D with at least 2 samples"
        )
    return _reduce_sorted(np.sort(matrix.T, axis=-1), parsed)


def aggregate_numpy(samples: np.ndarray, spec: str | AggregateSpec | None) -> np.ndarray:
    """Row-wise float64 reference reduction.

    Parameters
    ----------
    samples : numpy.ndarray, shape (N, S)
        ``S`` samples for each of ``N`` forecasts.
    spec : str, AggregateSpec or None
        Parsed with ``extended=True`` when a string.

    Returns
    -------
    numpy.ndarray, shape (N,), float64
    """
    parsed = _as_spec(spec, extended=True)
    matrix = np.asarray(samples, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 1:
        raise ValueError(f"aggregate_numpy: samples must have shape (N, S) with S >= 1; got {matrix.shape}")
    return _reduce_sorted(np.sort(matrix, axis=-1), parsed)


def percentiles_p40_p60(samples) -> tuple[np.float32, np.float32]:
    """Legacy P40 and P60 of the flattened float32 samples (numpy linear percentiles, float32)."""
    if hasattr(samples, "detach"):
        samples = samples.detach().cpu().numpy()
    flat = np.asarray(samples, dtype=np.float32).reshape(-1)
    if flat.size == 0:
        raise ValueError("percentiles_p40_p60: samples are empty")
    return np.float32(np.percentile(flat, 40)), np.float32(np.percentile(flat, 60))


def band_p60_minus_p40(samples) -> np.float32:
    """Legacy confidence band ``max(P60 - P40, 0)`` of the flattened samples, in float32 (§3.3).

    Parameters
    ----------
    samples : array_like, any shape
        Forecast samples of one context; flattened and cast to float32.

    Returns
    -------
    numpy.float32
    """
    p40, p60 = percentiles_p40_p60(samples)
    return np.float32(max(np.float32(p60 - p40), np.float32(0.0)))
