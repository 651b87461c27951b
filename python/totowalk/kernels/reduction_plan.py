"""Aggregates as rows of one linear formula over sorted samples, shared by torch and Triton.

Every sample-based aggregate kind (LEGACY_SEMANTICS.md §3) is

    value = w_mean * mean + w_std * std + w_range * mean(x_(lo) .. x_(hi-1))
            + w_q1 * lerp(x_(i1), x_(j1), t1) + w_q2 * lerp(x_(i2), x_(j2), t2)
    value = max(value, 0)            if clamp

over the sorted samples ``x_(0) <= ... <= x_(S-1)``, with indices and weights fixed on the host
from S exactly as numpy and the legacy code compute them (``int(n * f)`` truncation, numpy's
``h = (n - 1) q`` linear quantile and its two-sided ``lerp``). A zero weight adds an exact +0.0,
so e.g. a trimmed mean is bit-for-bit the range mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..aggregation import AggregateSpec, parse_aggregate

__all__ = ["COLUMNS", "ReductionPlan", "build_reduction_plan", "lerp_numpy", "reduce_with_plan"]

#: Column order of :attr:`ReductionPlan.table`.
COLUMNS = (
    "w_mean",
    "w_std",
    "w_range",
    "range_lo",
    "range_hi",
    "w_q1",
    "q1_lo",
    "q1_hi",
    "q1_t",
    "w_q2",
    "q2_lo",
    "q2_hi",
    "q2_t",
    "clamp_zero",
)
_COL = {name: i for i, name in enumerate(COLUMNS)}


@dataclass(frozen=True)
class ReductionPlan:
    """Parsed aggregates for S samples.

    Attributes
    ----------
    specs : tuple of AggregateSpec
        Sample-based aggregates, in output order.
    table : torch.Tensor, shape (len(specs), len(COLUMNS)), float64, CPU
    num_samples : int
    needs_std : bool
        Whether any row has a std term (saves a pass when not).
    """

    specs: tuple[AggregateSpec, ...]
    table: torch.Tensor
    num_samples: int

    @property
    def needs_std(self) -> bool:
        return bool((self.table[:, _COL["w_std"]] != 0).any())


def _quantile_terms(q: float, n: int) -> tuple[int, int, float]:
    """numpy 'linear' quantile: h = (n - 1) q, neighbours clipped to [0, n - 1], weight h - floor(h)."""
    h = (n - 1) * q
    lo = math.floor(h)
    if h >= n - 1:
        return n - 1, n - 1, h - lo
    return lo, lo + 1, h - lo


def _row(spec: AggregateSpec, n: int) -> list[float]:
    row = dict.fromkeys(COLUMNS, 0.0)
    row["range_hi"] = float(n)

    def quantile(slot: str, q: float, weight: float) -> None:
        lo, hi, t = _quantile_terms(q, n)
        row[f"w_{slot}"], row[f"{slot}_lo"], row[f"{slot}_hi"], row[f"{slot}_t"] = weight, lo, hi, t

    def range_mean(lo: int, hi: int) -> None:
        row["w_range"], row["range_lo"], row["range_hi"] = 1.0, float(lo), float(hi)

    kind, params = spec.kind, spec.params
    if kind == "mean":
        row["w_mean"] = 1.0
    elif kind == "median":
        quantile("q1", 0.5, 1.0)
    elif kind == "quantile":
        quantile("q1", params[0], 1.0)
    elif kind == "trimmed_mean":
        k = int(n * params[0])  # legacy truncation
        if k == 0 or 2 * k >= n:
            row["w_mean"] = 1.0
        else:
            range_mean(k, n - k)
    elif kind == "lower_trimmed_mean":
        range_mean(0, max(1, int(n * (1.0 - params[0]))))
    elif kind == "upper_trimmed_mean":
        range_mean(min(n - 1, int(n * params[0])), n)
    elif kind in ("mean_minus_std", "mean_plus_std"):
        row["w_mean"] = 1.0
        row["w_std"] = -params[0] if kind == "mean_minus_std" else params[0]
    elif kind == "mean_quantile_mix":
        q, weight = params
        row["w_mean"] = weight
        quantile("q1", q, 1.0 - weight)
    elif kind == "std":
        row["w_std"] = 1.0
    elif kind == "band":
        quantile("q1", 0.6, 1.0)
        quantile("q2", 0.4, -1.0)
        row["clamp_zero"] = 1.0
    else:
        raise ValueError(f"aggregate {spec.name!r} (kind {kind!r}) is not computed from samples")
    return [float(row[c]) for c in COLUMNS]


def _as_spec(aggregate) -> AggregateSpec:
    return aggregate if isinstance(aggregate, AggregateSpec) else parse_aggregate(aggregate, extended=True)


def build_reduction_plan(aggregates: Sequence[str | AggregateSpec], num_samples: int) -> ReductionPlan:
    """Parse ``aggregates`` (names or specs) and fix their indices and weights for S samples.

    Raises
    ------
    ValueError
        For an unknown name, for ``expected`` (not sample based), or for S < 1.
    """
    if isinstance(aggregates, (str, AggregateSpec)):
        aggregates = (aggregates,)
    if num_samples < 1:
        raise ValueError(f"reductions need at least one sample; got S = {num_samples}")
    specs = tuple(_as_spec(a) for a in aggregates)
    table = torch.tensor([_row(s, num_samples) for s in specs], dtype=torch.float64).reshape(len(specs), len(COLUMNS))
    return ReductionPlan(specs, table, num_samples)


def lerp_numpy(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """numpy's ``_lerp``: ``a + (b - a) t``, or ``b - (b - a)(1 - t)`` when ``t >= 0.5``."""
    diff = b - a
    return torch.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def reduce_with_plan(sorted_samples: torch.Tensor, plan: ReductionPlan) -> torch.Tensor:
    """Evaluate every plan row on sorted samples.

    Parameters
    ----------
    sorted_samples : torch.Tensor, shape (N, S), floating, sorted ascending along S
    plan : ReductionPlan
        Built for the same S.

    Returns
    -------
    torch.Tensor, shape (N, len(plan.specs)), dtype of ``sorted_samples``
    """
    n = sorted_samples.shape[1]
    if n != plan.num_samples:
        raise ValueError(f"reduction plan was built for S = {plan.num_samples}, samples have S = {n}")
    x = sorted_samples
    table = plan.table.to(device=x.device, dtype=x.dtype)
    col = {name: table[:, i] for name, i in _COL.items()}
    mean = x.mean(dim=1, keepdim=True)  # (N, 1)
    std = (x - mean).square().mean(dim=1, keepdim=True).sqrt() if plan.needs_std else torch.zeros_like(mean)
    # Range sums from a prefix sum: sum(x[lo:hi]) = prefix[hi] - prefix[lo].
    prefix = torch.nn.functional.pad(torch.cumsum(x, dim=1), (1, 0))
    lo, hi = col["range_lo"].long(), col["range_hi"].long()
    range_mean = (prefix[:, hi] - prefix[:, lo]) / (hi - lo).to(x.dtype)

    def quantile(slot: str) -> torch.Tensor:
        a = x[:, col[f"{slot}_lo"].long()]
        b = x[:, col[f"{slot}_hi"].long()]
        return lerp_numpy(a, b, col[f"{slot}_t"])

    value = (
        col["w_mean"] * mean
        + col["w_std"] * std
        + col["w_range"] * range_mean
        + col["w_q1"] * quantile("q1")
        + col["w_q2"] * quantile("q2")
    )
    return torch.where(col["clamp_zero"] > 0, value.clamp_min(0.0), value)
