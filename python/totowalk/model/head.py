"""Student-T mixture output head and the parameter container it returns."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class MixtureParams:
    """Student-T mixture parameters per forecast step, plus the scaler statistics.

    Attributes
    ----------
    weights : Tensor, shape (B, V, H, K)
        Mixture probabilities (softmax of the logits).
    df, loc, scale : Tensor, shape (B, V, H, K)
        Component degrees of freedom (> 2), locations and scales, in the scaler's normalised space.
    scaler_loc, scaler_scale : Tensor, shape (B, V)
        Statistics of the last context patch: a normalised sample y maps to
        ``scaler_loc + scaler_scale * y`` in data space.
    """

    weights: torch.Tensor
    df: torch.Tensor
    loc: torch.Tensor
    scale: torch.Tensor
    scaler_loc: torch.Tensor
    scaler_scale: torch.Tensor

    def expected(self) -> torch.Tensor:
        """Analytic mixture mean in data space, shape (B, V, H).

        Each component's mean is its loc (df > 2 so it exists); the affine map of the scaler
        then gives the data-space mean, as the official forecaster's ``distr.mean``.
        """
        normalised_mean = (self.weights * self.loc).sum(-1)
        return self.scaler_loc.unsqueeze(-1) + self.scaler_scale.unsqueeze(-1) * normalised_mean

    def index(self, rows: torch.Tensor | slice | int) -> MixtureParams:
        """Select rows along B (an index tensor, a slice or an int that keeps the dim)."""
        if isinstance(rows, int):
            rows = slice(rows, rows + 1 if rows != -1 else None)
        return MixtureParams(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    __getitem__ = index

    @property
    def batch_size(self) -> int:
        return self.weights.shape[0]

    @property
    def horizon(self) -> int:
        return self.weights.shape[2]

    def to(self, *args, **kwargs) -> MixtureParams:
        return MixtureParams(**{f.name: getattr(self, f.name).to(*args, **kwargs) for f in fields(self)})


class MixtureHead(nn.Module):
    """Linear maps from the un-embedded features to the K-component Student-T mixture.

    ``df = 2 + max(softplus(.), eps)``, ``scale = max(softplus(.), eps)`` (eps = the dtype's
    machine epsilon), ``weights = softmax(logits)``.
    """

    def __init__(self, dim: int, k_components: int):
        super().__init__()
        self.df = nn.Linear(dim, k_components)
        self.loc_proj = nn.Linear(dim, k_components)
        self.scale_proj = nn.Linear(dim, k_components)
        self.mixture_weights = nn.Linear(dim, k_components)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """features (..., d) -> weights, df, loc, scale, each (..., K)."""
        eps = torch.finfo(features.dtype).eps
        df = 2.0 + F.softplus(self.df(features)).clamp_min(eps)
        loc = self.loc_proj(features)
        scale = F.softplus(self.scale_proj(features)).clamp_min(eps)
        weights = F.softmax(self.mixture_weights(features), dim=-1)
        return weights, df, loc, scale
