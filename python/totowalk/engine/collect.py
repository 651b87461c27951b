"""Bring each model batch's results back to the host without stalling the card.

A batch's aggregates, first-patch mixture parameters and validity flags are packed on the device
into one float64 table (every float32/float16 value is exact in float64) and copied back
asynchronously into pinned memory; the engine reads batch k's table only after it has queued
batch k + 1, so the card always has work while the host prepares the next batch. Parameter
checks run on the device as one flag per context and are read with the results: a bad
parameter is still an error that names the request, without a host wait per check.
"""

from __future__ import annotations

import numpy as np
import torch

from ..kernels.validation import invalid_rows
from .result import ForecastParams, ForecastResult
from .sampling import flatten_rows

__all__ = ["PendingOutputs", "ResultCollector"]

PARAM_FIELDS = ("weights", "df", "loc", "scale")
SCALER_FIELDS = ("scaler_loc", "scaler_scale")


def invalid_contexts(params) -> torch.Tensor:
    """(b,) bool on the device: a context whose predicted mixture breaks the sampler's value rules
    (``kernels.validation``), at any of its variates and steps. No host synchronisation."""
    b = params.weights.shape[0]
    (weights, df, loc, scale), affine_loc, affine_scale = flatten_rows(params)
    return invalid_rows(weights, df, loc, scale, affine_loc, affine_scale).reshape(b, -1).any(dim=1)


class PendingOutputs:
    """One batch's outputs on their way to the host (see the module docstring)."""

    def __init__(self, members: np.ndarray, stats: dict, samples, params, param_steps: int):
        self.members = members
        self.names = list(stats)
        n = len(members)
        fields = [stats[name] for name in self.names]
        fields += [getattr(params, name)[..., :param_steps, :] for name in PARAM_FIELDS]
        fields += [getattr(params, name) for name in SCALER_FIELDS]
        fields.append(invalid_contexts(params))
        self.shapes = [tuple(f.shape[1:]) for f in fields]
        packed = torch.cat([f.reshape(n, -1).to(torch.float64) for f in fields], dim=1)
        self.samples = samples  # only with return_samples: large, copied when stored
        if packed.device.type == "cuda":
            self.host = torch.empty(packed.shape, dtype=torch.float64, pin_memory=True)
            self.host.copy_(packed, non_blocking=True)
            self.done = torch.cuda.Event()
            self.done.record()
        else:
            self.host, self.done = packed, None

    def arrays(self) -> list[np.ndarray]:
        """The packed fields as host arrays (waits for this batch's copy only)."""
        if self.done is not None:
            self.done.synchronize()
        table = self.host.numpy()
        out, start = [], 0
        for shape in self.shapes:
            width = int(np.prod(shape, dtype=np.int64))
            out.append(table[:, start : start + width].reshape((len(table),) + shape))
            start += width
        return out


class ResultCollector:
    """Host arrays per unique context, filled batch by batch."""

    def __init__(self, num_unique, num_variates, horizon, num_samples, specs, return_samples, param_steps, exact=False):
        self.exact = exact  # exact statistics: NaN marks a row whose iteration did not converge
        shape = (num_unique, num_variates, horizon)
        self.stats = {s.name: np.zeros(shape, dtype=np.float64) for s in specs}
        self.samples = np.zeros(shape + (num_samples,), dtype=np.float32) if return_samples else None
        self.param_steps = param_steps
        self.params = None
        self.invalid = np.zeros(num_unique, dtype=bool)
        self.num_unique, self.num_variates = num_unique, num_variates

    def store(self, pending: PendingOutputs) -> None:
        members = pending.members
        arrays = pending.arrays()
        for name, value in zip(pending.names, arrays):
            self.stats[name][members] = value
        *params, invalid = arrays[len(pending.names) :]
        names = PARAM_FIELDS + SCALER_FIELDS
        if self.params is None:
            self.params = {
                name: np.zeros((self.num_unique,) + value.shape[1:], dtype=np.float32)
                for name, value in zip(names, params)
            }
        for name, value in zip(names, params):
            self.params[name][members] = value
        self.invalid[members] = invalid != 0
        if self.samples is not None:
            self.samples[members] = pending.samples.float().cpu().numpy()

    def result(self, inverse, multivariate, num_unique, info) -> ForecastResult:
        bad = np.flatnonzero(self.invalid[inverse])
        if bad.size:
            raise ValueError(
                f"request {int(bad[0])} (and {bad.size - 1} more): the model predicted an unusable distribution "
                "(non-finite parameters, negative weights, df < 2 or scale <= 0); with fp16/bf16/int8 this is "
                "usually an overflow: run the model in fp32"
            )
        if self.exact:  # (the exact statistics are never NaN otherwise: infinite at most)
            unconverged = np.zeros(self.num_unique, dtype=bool)
            for value in self.stats.values():
                unconverged |= np.isnan(value).reshape(self.num_unique, -1).any(axis=1)
            bad = np.flatnonzero(unconverged[inverse])
            if bad.size:
                raise RuntimeError(
                    f"request {int(bad[0])} (and {bad.size - 1} more): the exact statistics of its predicted "
                    "distribution did not converge"
                )

        def per_request(array):
            out = array[inverse]
            return out if multivariate else out[:, 0]

        stats = {name: per_request(value) for name, value in self.stats.items()}
        samples = per_request(self.samples) if self.samples is not None else None
        params = None
        if self.params is not None:
            params = ForecastParams(**{name: value[inverse] for name, value in self.params.items()})
        return ForecastResult(stats=stats, samples=samples, params=params, num_unique=num_unique, info=info)
