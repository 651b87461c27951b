"""State carried between autoregressive decoding steps (static KV cache + scaler sums).

How the official forecaster decodes beyond one patch, and what is carried here:

* It appends one patch of forecast values and runs the model again with its KV cache, so only
  the new patch goes through the layers. Appended values are real (padding mask True) and
  inherit the id of the context's last step.
* The scaler is re-run over the whole extended series with ``prefix_length`` = the padded
  context length: the causal running sums continue over the appended values, while the
  global stabilisation scale stays that of the context. ``ScalerState`` holds those sums, so the
  new patch gets exactly the statistics the official re-run gives it; its forecasts are
  de-normalised with the new patch's own statistics (it is now the last context patch).
* Rotary/xPos: the official KV cache stores keys rotated in the call that produced them, and
  rotates a decoded patch at position p with xPos centre ``floor(p / 2)`` while the prefill used
  ``floor((S - 1) / 2)``. The centre cancels inside one call but not across calls, so decoding
  with the official cache is *not* identical to a fresh forward over the extended series.
  ``rope="reference"`` (default) reproduces the official cached decoding;
  ``rope="full"`` keeps the prefill centre and equals a fresh forward (with
  ``scaling_prefix_length`` = the context length) on the concatenated series.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .head import MixtureParams
from .scaler import ScalerState

ROPE_MODES = ("reference", "full")


@dataclass
class DecodeState:
    """Everything ``TotoModel.decode_next`` needs; rows can be repeated to share one prefill.

    Attributes
    ----------
    keys, values : Tensor, shape (L_time, B*V, H, S_max, h)
        Static KV cache of the time-wise layers; slots ``0 .. length-1`` are filled.
    length : int
        Patches in the cache (context patches + decoded patches).
    num_variates : int
        V, to reshape the flattened (row, variate) axis.
    scaler : ScalerState
        Running scaler statistics after the last patch, each (B, V).
    group_mask : Tensor of bool, shape (B, 1, V, V), or None
        Space-wise attention mask of the decoded patches (ids of the context's last step).
    rope : str
        "reference" or "full", see the module docstring.
    prefill_center : float
        xPos centre of the prefill call, ``floor((S - 1) / 2)``.
    params : MixtureParams
        Mixture parameters of the patch after the last one processed.
    """

    keys: torch.Tensor
    values: torch.Tensor
    length: int
    num_variates: int
    scaler: ScalerState
    group_mask: torch.Tensor | None
    rope: str
    prefill_center: float
    params: MixtureParams

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1] // self.num_variates

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    def rope_center(self, position: int) -> float:
        """xPos centre used for a patch decoded at ``position``."""
        return float(position // 2) if self.rope == "reference" else self.prefill_center

    def repeat_rows(self, repeats: int) -> DecodeState:
        """Each row repeated ``repeats`` times in place order (row b -> rows b*n .. b*n+n-1).

        Used to share one prefill across sample paths; the copies evolve independently.
        """
        if repeats < 1:
            raise ValueError(f"repeat_rows: repeats must be >= 1, got {repeats}")
        layers, _, heads, slots, head_dim = self.keys.shape
        b, v = self.batch_size, self.num_variates

        def cache(t: torch.Tensor) -> torch.Tensor:
            t = t.view(layers, b, v, heads, slots, head_dim).repeat_interleave(repeats, dim=1)
            return t.reshape(layers, b * repeats * v, heads, slots, head_dim)

        rows = torch.arange(b, device=self.keys.device).repeat_interleave(repeats)
        return DecodeState(
            keys=cache(self.keys),
            values=cache(self.values),
            length=self.length,
            num_variates=v,
            scaler=self.scaler.index(rows),
            group_mask=None if self.group_mask is None else self.group_mask[rows],
            rope=self.rope,
            prefill_center=self.prefill_center,
            params=self.params.index(rows),
        )
