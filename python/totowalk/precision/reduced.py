"""Reduced precision for ``TotoModel``: bf16 / fp16 weights and matmuls.

Every Linear runs in the compute dtype (weights stored in it, inputs cast to it, outputs in it),
and attention runs on compute-dtype q/k/v. What stays in higher precision, and why:

* the residual stream between layers is fp32 (as under autocast): adding many small updates
  to a bf16 running sum loses them (toto-mini quality gate, expected value's mean relative
  error vs fp32: 1.03e-2 with a bf16 residual, 6.1e-3 with an fp32 one);
* the scaler runs on the fp32 input values with float64 sums (as the reference); only its
  normalised output is cast to the compute dtype before the patch embedding;
* RMSNorm statistics are fp32 (``x * x`` overflows fp16 once |x| > 256, which happens on the
  padded patches of large-valued series);
* rotary/xPos tables are computed in fp32 (angles up to ~S rad lose all accuracy in bf16) and
  cast afterwards;
* the mixture head's projections run in the compute dtype, then softplus / softmax and the
  returned parameters are fp32, so sampling and expected values see fp32 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model.head import MixtureHead
from ..model.layers import RMSNorm
from ..model.rotary import XPosRotary
from ..model.toto import TotoModel

__all__ = ["ReducedPrecisionToto", "cast_float_weights", "to_reduced_precision"]


class CastingRotary(XPosRotary):
    """XPosRotary whose tables are computed in fp32 and returned in ``dtype``."""

    def __init__(self, head_dim: int, theta: float, scale_base: float, dtype: torch.dtype):
        super().__init__(head_dim, theta, scale_base)
        self.dtype = dtype

    def _apply(self, fn, recurse=True):
        # Keep the frequency buffers fp32 even if the model is later cast with .to(dtype).
        super()._apply(fn, recurse)
        self.inv_freq = self.inv_freq.float()
        self.xpos_base = self.xpos_base.float()
        return self

    def tables(self, positions: torch.Tensor, center) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(self.dtype) for t in super().tables(positions.float(), center))


class CastingLinear(nn.Linear):
    """nn.Linear that casts its input to the weight dtype (fp32 residual -> bf16/fp16 matmul)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x.to(self.weight.dtype), self.weight, self.bias)


class Fp32StatisticsRMSNorm(RMSNorm):
    """RMSNorm computed in fp32 and returned in the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(torch.mean(x32 * x32, dim=-1, keepdim=True) + self.eps)
        return (normed * self.scale.float()).to(x.dtype)


class Fp32ActivationHead(MixtureHead):
    """MixtureHead whose projections run in the compute dtype and whose activations run in fp32."""

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        projections = {
            name: getattr(self, name)(features).float() for name in ("df", "loc_proj", "scale_proj", "mixture_weights")
        }
        eps = torch.finfo(torch.float32).eps
        df = 2.0 + torch.nn.functional.softplus(projections["df"]).clamp_min(eps)
        scale = torch.nn.functional.softplus(projections["scale_proj"]).clamp_min(eps)
        weights = torch.softmax(projections["mixture_weights"], dim=-1)
        return weights, df, projections["loc_proj"], scale


class ReducedPrecisionToto(TotoModel):
    """TotoModel running its transformer in ``compute_dtype`` (set by ``to_reduced_precision``).

    Overrides only where a dtype enters or leaves: the inputs (kept fp32 for the scaler), the
    patch embedding (compute-dtype matmul, fp32 residual out), the un-embedding input (the
    residual cast to the compute dtype) and the KV cache (compute-dtype keys/values).
    """

    compute_dtype: torch.dtype = torch.float32

    def _check_inputs(self, values, padding_mask, id_mask):
        # The base class casts values to the weights' dtype; the scaler must see fp32 prices.
        _, padding_mask, patch_ids = super()._check_inputs(values, padding_mask, id_mask)
        return values.to(torch.float32), padding_mask, patch_ids

    def _embed(self, normalised: torch.Tensor) -> torch.Tensor:
        return super()._embed(normalised.to(self.compute_dtype)).float()

    def _params(self, last_hidden, horizon, loc, scale):
        return super()._params(last_hidden.to(self.compute_dtype), horizon, loc, scale)

    def _allocate_cache(self, rows, slots, device, dtype):
        return super()._allocate_cache(rows, slots, device, self.compute_dtype)


def cast_float_weights(model: nn.Module, dtype: torch.dtype) -> None:
    """Cast every floating parameter (RMSNorm scales, nn.Linear weights/biases) to ``dtype``.

    Buffers are left alone: int8 layers keep their fp32 scales, rotary keeps fp32 tables.
    """
    for param in model.parameters():
        param.data = param.data.to(dtype)


def to_reduced_precision(model: TotoModel, dtype: torch.dtype) -> TotoModel:
    """Convert an fp32 ``TotoModel`` in place to run in ``dtype`` (bf16 or fp16); returns it."""
    if dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"to_reduced_precision: dtype must be float16, bfloat16 or float32, got {dtype}")
    if not isinstance(model, TotoModel):
        raise TypeError(f"to_reduced_precision expects a TotoModel, got {type(model).__name__}")
    cfg = model.config
    device = model.rotary.inv_freq.device
    cast_float_weights(model, dtype)
    model.rotary = CastingRotary(cfg.head_dim, cfg.rope_theta, cfg.xpos_scale_base, dtype).to(device)
    # Subclasses add behaviour only (no new state), so swapping the class keeps every tensor.
    model.head.__class__ = Fp32ActivationHead
    for module in model.modules():
        if type(module) is RMSNorm:
            module.__class__ = Fp32StatisticsRMSNorm
        elif type(module) is nn.Linear:
            module.__class__ = CastingLinear
    model.__class__ = ReducedPrecisionToto
    model.compute_dtype = dtype
    return model
