"""Input checks shared by every sampling backend; errors name the tensor, the shape and the row."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["MixtureInputs", "check_mixture_inputs", "check_sample_dtype", "invalid_rows"]

SUPPORTED_SAMPLE_DTYPES = (torch.float32, torch.float16)


@dataclass(frozen=True)
class MixtureInputs:
    """Validated mixture parameters of N rows with K components (float32, one device).

    Attributes
    ----------
    weights, df, loc, scale : torch.Tensor, shape (N, K)
    affine_loc, affine_scale : torch.Tensor, shape (N,)
    keys : torch.Tensor, shape (N,), int64
    """

    weights: torch.Tensor
    df: torch.Tensor
    loc: torch.Tensor
    scale: torch.Tensor
    affine_loc: torch.Tensor
    affine_scale: torch.Tensor
    keys: torch.Tensor

    @property
    def rows(self) -> int:
        return self.weights.shape[0]

    @property
    def components(self) -> int:
        return self.weights.shape[1]


def check_sample_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in SUPPORTED_SAMPLE_DTYPES:
        raise ValueError(f"dtype must be torch.float32 or torch.float16; got {dtype}")
    return dtype


def _first_bad_row(bad: torch.Tensor) -> int:
    flat = bad.reshape(bad.shape[0], -1).any(dim=1)
    return int(torch.nonzero(flat)[0, 0])


def _require(ok: torch.Tensor, tensor: torch.Tensor, name: str, rule: str) -> None:
    bad = ~ok
    if bool(bad.any()):
        row = _first_bad_row(bad)
        raise ValueError(f"{name}: row {row} violates '{rule}': {tensor[row].tolist()}")


def _value_rules(weights, df, loc, scale, affine_loc, affine_scale) -> list:
    """(name, rule, ok) per value range the sampler needs, on float32 (N, K) / (N,) tensors; ``ok``
    is elementwise (computed on the device, no host wait)."""
    return [
        ("weights", "finite and >= 0", torch.isfinite(weights) & (weights >= 0)),
        ("weights", "positive row sum", weights.sum(dim=1) > 0),
        # Student-T df >= 2 keeps the Gamma shape df/2 >= 1, where Marsaglia-Tsang needs no boost.
        ("df", "finite and >= 2", torch.isfinite(df) & (df >= 2)),
        ("loc", "finite", torch.isfinite(loc)),
        ("scale", "finite and > 0", torch.isfinite(scale) & (scale > 0)),
        ("affine_loc", "finite", torch.isfinite(affine_loc)),
        ("affine_scale", "finite and > 0", torch.isfinite(affine_scale) & (affine_scale > 0)),
    ]


def invalid_rows(weights, df, loc, scale, affine_loc, affine_scale) -> torch.Tensor:
    """(N,) bool on the inputs' device: rows that break any of :func:`check_mixture_inputs`' value
    rules, without a host synchronisation (for callers that read the flags with their results)."""
    as32 = [t.float() for t in (weights, df, loc, scale, affine_loc, affine_scale)]
    ok = torch.ones(weights.shape[0], dtype=torch.bool, device=weights.device)
    for _, _, rule_ok in _value_rules(*as32):
        ok &= rule_ok.reshape(rule_ok.shape[0], -1).all(dim=1)
    return ~ok


def check_mixture_inputs(
    weights, df, loc, scale, affine_loc, affine_scale, keys, num_samples: int, check_values: bool = True
) -> MixtureInputs:
    """Check shapes, dtypes, devices and value ranges; return float32 copies of the parameters.

    ``check_values=False`` skips the value-range checks, which read device memory (a host
    synchronisation on CUDA); for callers whose parameters come straight from the model head, whose
    clamps already guarantee the ranges (the engine's decode loop).

    Raises
    ------
    TypeError, ValueError
        Naming the offending tensor and its shape, or the first offending row.
    """
    named = {
        "weights": weights,
        "df": df,
        "loc": loc,
        "scale": scale,
        "affine_loc": affine_loc,
        "affine_scale": affine_scale,
        "keys": keys,
    }
    for name, tensor in named.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(tensor).__name__}")
    if weights.ndim != 2 or weights.shape[1] < 1:
        raise ValueError(f"weights must have shape (N, K) with K >= 1; got {tuple(weights.shape)}")
    rows, components = weights.shape
    for name in ("df", "loc", "scale"):
        if named[name].shape != weights.shape:
            raise ValueError(
                f"{name} must have the shape of weights {tuple(weights.shape)}; got {tuple(named[name].shape)}"
            )
    for name in ("affine_loc", "affine_scale", "keys"):
        if named[name].shape != (rows,):
            raise ValueError(f"{name} must have shape (N,) = ({rows},); got {tuple(named[name].shape)}")
    for name in ("weights", "df", "loc", "scale", "affine_loc", "affine_scale"):
        if not named[name].is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor; got {named[name].dtype}")
    if keys.dtype != torch.int64:
        raise TypeError(f"keys must be an int64 tensor; got {keys.dtype}")
    devices = {t.device for t in named.values()}
    if len(devices) != 1:
        raise ValueError(f"all inputs must be on one device; got {sorted(str(d) for d in devices)}")
    if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer; got {num_samples!r}")

    as32 = {name: named[name].detach().to(torch.float32) for name in named if name != "keys"}
    if not check_values:
        return MixtureInputs(keys=keys.detach(), **{k: v.contiguous() for k, v in as32.items()})
    for name, rule, ok in _value_rules(
        *(as32[n] for n in ("weights", "df", "loc", "scale", "affine_loc", "affine_scale"))
    ):
        _require(ok, named[name], name, rule)
    return MixtureInputs(keys=keys.detach(), **{k: v.contiguous() for k, v in as32.items()})
