"""Rotary position embedding with xPos scaling, as Toto's time-wise attention uses it.

For head dim h, pair j = 0 .. h/2-1 rotates features (2j, 2j+1) (interleaved pairs) by the angle
``pos * theta**(-2j/h)``.  xPos multiplies queries by ``b_k ** ((pos - c) / scale_base)`` and keys
by its inverse, with ``b = (2j + 0.4 h) / (1.4 h)``; note that the official code lays ``b`` out as
``[b_0 .. b_{h/2-1}, b_0 .. b_{h/2-1}]`` (concatenated, not interleaved like the angles), so
feature k gets ``b_{k mod h/2}``.  ``c`` is ``floor(max position / 2)`` of the positions rotated
in one call; it cancels in q.k within one call but not across a KV cache (see ``model.decode``).
"""

from __future__ import annotations

import torch
from torch import nn


class XPosRotary(nn.Module):
    """Tables and application of rotary + xPos for one head dim.

    Parameters
    ----------
    head_dim : int
        Even head dimension h.
    theta : float
        Rotary base (10000 in Toto).
    scale_base : float
        xPos scale base (512 in Toto).
    """

    def __init__(self, head_dim: int, theta: float = 10000.0, scale_base: float = 512.0):
        super().__init__()
        # Computed on the CPU, then moved to the default device: under ``torch.device("meta")`` (a
        # checkpoint's skeleton) the division would import torch._dynamo, 1.8 s of every model
        # load, and the CPU is where the loaded model's tables are made in any case.
        half = torch.arange(0, head_dim, 2, device="cpu")
        home = torch.get_default_device()
        self.register_buffer("inv_freq", (1.0 / (theta ** (half.float() / head_dim))).to(home), persistent=False)
        self.register_buffer("xpos_base", ((half + 0.4 * head_dim) / (1.4 * head_dim)).to(home), persistent=False)
        self.scale_base = scale_base

    def tables(self, positions: torch.Tensor, center: torch.Tensor | float) -> tuple[torch.Tensor, ...]:
        """cos, sin, query scale and key scale for each position.

        Parameters
        ----------
        positions : Tensor, shape (S,), float32
            Patch indices.
        center : Tensor or float
            The xPos centre c.

        Returns
        -------
        cos, sin, q_scale, k_scale : Tensor, shape (S, h)
        """
        angles = (positions.unsqueeze(-1) * self.inv_freq).repeat_interleave(2, dim=-1)
        power = (positions - center) / self.scale_base
        half_scale = self.xpos_base ** power.unsqueeze(-1)
        q_scale = torch.cat([half_scale, half_scale], dim=-1)
        return angles.cos(), angles.sin(), q_scale, q_scale**-1

    def full_tables(self, num_patches: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Tables for positions 0..S-1 rotated together (one forward over the whole series)."""
        positions = torch.arange(num_patches, device=device, dtype=torch.float32)
        return self.tables(positions, float((num_patches - 1) // 2))

    @staticmethod
    def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Rotate and scale ``x`` of shape (..., S, h) with tables of shape (S, h) (or broadcast to
        x). On CUDA one fused Triton kernel computes the same expression bit for bit."""
        if x.is_cuda:
            from . import rotary_kernel  # Triton only where it runs

            if rotary_kernel.supports(x, cos, sin, scale):
                return rotary_kernel.rotary_xpos(x, cos, sin, scale)
        return XPosRotary.apply_torch(x, cos, sin, scale)

    @staticmethod
    def apply_torch(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """:meth:`apply` as torch operations (every device)."""
        pairs = x.unflatten(-1, (-1, 2))
        rotated_half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return (x * cos + rotated_half * sin) * scale
