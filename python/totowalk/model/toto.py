"""The Toto network: scaler -> patch embedding -> time/space transformer -> mixture head.

Shapes: B rows, V variates, T time steps (a multiple of the patch size P), S = T / P patches,
d model width, H forecast steps, K mixture components.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..devices import to_device_async
from .config import TotoConfig
from .decode import ROPE_MODES, DecodeState
from .head import MixtureHead, MixtureParams
from .layers import TransformerLayer, readout_layout
from .rotary import XPosRotary
from .scaler import ScalerState, causal_patch_scale


class TotoModel(nn.Module):
    """Toto forecaster network returning mixture parameters (no torch.distributions).

    Rows are independent. Time-wise attention has no padding mask and rotary positions count
    from the start of the padded array, so a row's result depends on its padded length: batch
    only contexts with the same number of patches.
    """

    def __init__(self, config: TotoConfig):
        super().__init__()
        self.config = config
        d, p = config.embed_dim, config.patch_size
        self.patch_embed = nn.Linear(p, d)
        self.layers = nn.ModuleList(
            TransformerLayer(d, config.num_heads, config.mlp_hidden_dim, spacewise, config.norm_eps)
            for spacewise in config.layer_is_spacewise()
        )
        self.rotary = XPosRotary(config.head_dim, config.rope_theta, config.xpos_scale_base)
        self.unembed = nn.Linear(d, d * p)
        self.head = MixtureHead(d, config.k_components)

    # -- public API ----------------------------------------------------------------------

    def forward(
        self,
        values: torch.Tensor,
        padding_mask: torch.Tensor,
        id_mask: torch.Tensor | None = None,
        horizon: int = 1,
    ) -> MixtureParams:
        """Same as ``forecast_params`` (so ``model(values, mask)`` works)."""
        return self.forecast_params(values, padding_mask, id_mask, horizon)

    @torch.no_grad()
    def forecast_params(
        self,
        values: torch.Tensor,
        padding_mask: torch.Tensor,
        id_mask: torch.Tensor | None = None,
        horizon: int = 1,
        scaling_prefix_length: int | None = None,
    ) -> MixtureParams:
        """Mixture parameters of the ``horizon`` steps right after the context.

        Parameters
        ----------
        values : Tensor, shape (B, V, T), float
            Left-padded series, T a multiple of the patch size.
        padding_mask : Tensor of bool, shape (B, V, T)
            True for real values; padded values are treated as 0.
        id_mask : Tensor of int, shape (B, V, T), optional
            Variate group ids (constant within a patch); None means one group per row.
        horizon : int
            1 .. patch_size; only the last patch is un-embedded, and only these steps.
        scaling_prefix_length : int, optional
            Compute the scaler's global stabilisation from the first steps only (the official
            decoder's ``prefix_length``); default all T.

        Returns
        -------
        MixtureParams with tensors (B, V, horizon, K) and scaler statistics (B, V).
        """
        values, padding_mask, patch_ids = self._check_inputs(values, padding_mask, id_mask)
        self._check_horizon(horizon)
        normalised, loc, scale, _ = self._scale(values, padding_mask, None, scaling_prefix_length)
        hidden, _ = self._backbone(self._embed(normalised), self._group_mask(patch_ids), capture=False)
        return self._params(hidden[:, :, -1], horizon, loc[..., -1], scale[..., -1])

    @torch.no_grad()
    def forecast_params_at(
        self,
        values: torch.Tensor,
        padding_mask: torch.Tensor,
        rows: torch.Tensor,
        positions: torch.Tensor,
        horizon: int = 1,
        layout: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> MixtureParams:
        """Mixture parameters of the ``horizon`` steps after patch ``positions[i]`` of row ``rows[i]``.

        Time-wise attention is causal and the scaler's patch statistics are cumulative, so the state
        at patch p of a forward over a long series is, up to float rounding, the last state of a
        forward over its first p + 1 patches with the same left padding (the scaler's global clamp
        aside: callers check it). One forward thus serves every prefix of a series whose length is
        congruent to the series' modulo the patch size. Only the final layer's readout positions,
        their un-embedding and the head are evaluated. One group of variates per row.

        Parameters
        ----------
        values, padding_mask : as in :meth:`forecast_params`
        rows, positions : Tensor of int64, shape (M,)
            Readouts: row index into the batch and patch index (0-based) within it.
        layout : (slot, grid), optional
            ``layers.readout_layout(rows, positions, B)`` on the inputs' device; default: computed
            from ``rows`` and ``positions`` where they are (host tensors: no wait on the device).

        Returns
        -------
        MixtureParams with tensors (M, V, horizon, K) and scaler statistics (M, V).
        """
        values, padding_mask, patch_ids = self._check_inputs(values, padding_mask, None)
        self._check_horizon(horizon)
        normalised, loc, scale, _ = self._scale(values, padding_mask, None, None)
        if layout is None:
            layout = readout_layout(rows, positions, values.shape[0])
        device = values.device
        readout = tuple(to_device_async(t, device) for t in (rows, positions, *layout))
        hidden, _ = self._backbone(self._embed(normalised), self._group_mask(patch_ids), capture=False, readout=readout)
        return self._params(hidden[:, :, -1], horizon, loc[readout[0], :, readout[1]], scale[readout[0], :, readout[1]])

    @torch.no_grad()
    def prefill(
        self,
        values: torch.Tensor,
        padding_mask: torch.Tensor,
        id_mask: torch.Tensor | None = None,
        max_new_patches: int = 1,
        horizon: int | None = None,
        rope: str = "reference",
    ) -> DecodeState:
        """Process the context once and keep a static KV cache for ``decode_next``.

        Parameters
        ----------
        values, padding_mask, id_mask
            As for ``forecast_params``.
        max_new_patches : int
            Patches that ``decode_next`` may append (the cache is allocated once).
        horizon : int, optional
            Steps of the next patch to evaluate (default: the whole patch).
        rope : {"reference", "full"}
            "reference" reproduces the official KV-cache decoding; "full" equals a fresh
            forward over the extended series (see ``totowalk.model.decode``).

        Returns
        -------
        DecodeState whose ``params`` are those of the patch after the context.
        """
        if rope not in ROPE_MODES:
            raise ValueError(f"prefill: rope must be one of {ROPE_MODES}, got {rope!r}")
        if not isinstance(max_new_patches, int) or max_new_patches < 0:
            raise ValueError(f"prefill: max_new_patches must be an int >= 0, got {max_new_patches!r}")
        horizon = self.config.patch_size if horizon is None else horizon
        self._check_horizon(horizon)
        values, padding_mask, patch_ids = self._check_inputs(values, padding_mask, id_mask)
        normalised, loc, scale, scaler_state = self._scale(values, padding_mask, None, None)
        group_mask = self._group_mask(patch_ids)
        hidden, kv = self._backbone(self._embed(normalised), group_mask, capture=True)

        b, v, s = patch_ids.shape
        keys, vals = self._allocate_cache(b * v, s + max_new_patches, values.device, values.dtype)
        for layer_index, (k, val) in enumerate(kv):
            keys[layer_index, :, :, :s] = k
            vals[layer_index, :, :, :s] = val
        return DecodeState(
            keys=keys,
            values=vals,
            length=s,
            num_variates=v,
            scaler=scaler_state,
            group_mask=None if group_mask is None else group_mask[:, -1:],
            rope=rope,
            prefill_center=float((s - 1) // 2),
            params=self._params(hidden[:, :, -1], horizon, loc[..., -1], scale[..., -1]),
        )

    @torch.no_grad()
    def decode_next(self, state: DecodeState, patch_values: torch.Tensor, horizon: int | None = None) -> MixtureParams:
        """Append one patch of values to every row and return the next patch's parameters.

        Updates ``state`` in place (cache slot, length, scaler sums, params); no host
        synchronisation happens inside.

        Parameters
        ----------
        state : DecodeState
            From ``prefill`` (optionally ``repeat_rows``-expanded).
        patch_values : Tensor, shape (B', V, patch_size)
            The appended values (real values, padding mask True), B' = state.batch_size.
        horizon : int, optional
            Steps of the following patch to evaluate (default: the whole patch).
        """
        cfg = self.config
        horizon = cfg.patch_size if horizon is None else horizon
        self._check_horizon(horizon)
        expected = (state.batch_size, state.num_variates, cfg.patch_size)
        if tuple(patch_values.shape) != expected:
            raise ValueError(f"decode_next: patch_values has shape {tuple(patch_values.shape)}, expected {expected}")
        if state.length >= state.capacity:
            raise ValueError(
                f"decode_next: the cache holds {state.capacity} patches and is full; "
                "prefill with a larger max_new_patches"
            )
        position = state.length
        mask = torch.ones(patch_values.shape, dtype=torch.bool, device=patch_values.device)
        normalised, loc, scale, state.scaler = self._scale(patch_values, mask, state.scaler, None)
        x = self._embed(normalised)  # (B', V, 1, d)

        positions = torch.arange(position, position + 1, device=x.device, dtype=torch.float32)
        rope = self.rotary.tables(positions, state.rope_center(position))
        key_mask = (torch.arange(state.capacity, device=x.device) <= position).unsqueeze(0)  # (1, S_max)
        time_index = 0
        for layer in self.layers:
            normed = layer.norm1(x)
            if layer.spacewise:
                attended = layer.attention(normed, state.group_mask)
            else:
                attended = layer.attention.step(
                    normed, rope, state.keys[time_index], state.values[time_index], position, key_mask
                )
                time_index += 1
            x = layer.finish(x, attended)
        state.length = position + 1
        state.params = self._params(x[:, :, -1], horizon, loc[..., -1], scale[..., -1])
        return state.params

    # -- pieces ----------------------------------------------------------------------------

    def _check_horizon(self, horizon: int) -> None:
        p = self.config.patch_size
        if not isinstance(horizon, int) or isinstance(horizon, bool) or not 1 <= horizon <= p:
            raise ValueError(f"horizon must be an int in 1..{p} (one patch), got {horizon!r}")

    def _check_inputs(
        self, values: torch.Tensor, padding_mask: torch.Tensor, id_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validate shapes/dtypes; return values, mask and per-patch ids (B, V, S) int64."""
        p = self.config.patch_size
        if not isinstance(values, torch.Tensor) or values.ndim != 3:
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"values must be a (batch, variates, time) tensor, got {shape}")
        if not values.is_floating_point():
            raise ValueError(f"values must be floating point, got {values.dtype}")
        values = values.to(self.patch_embed.weight.dtype)  # e.g. float64 input for an fp32 model
        b, v, t = values.shape
        if t == 0 or t % p:
            raise ValueError(
                f"values has {t} time steps; it must be a positive multiple of the patch size {p} "
                "(left-pad with zeros and padding_mask False)"
            )
        if tuple(padding_mask.shape) != (b, v, t):
            raise ValueError(f"padding_mask has shape {tuple(padding_mask.shape)}, expected {(b, v, t)} like values")
        if padding_mask.dtype != torch.bool:
            raise ValueError(f"padding_mask must be bool (True = real value), got {padding_mask.dtype}")
        if id_mask is None:
            return values, padding_mask, torch.zeros(b, v, t // p, dtype=torch.long, device=values.device)
        if tuple(id_mask.shape) != (b, v, t):
            raise ValueError(f"id_mask has shape {tuple(id_mask.shape)}, expected {(b, v, t)} like values")
        patches = id_mask.reshape(b, v, t // p, p)
        mixed = patches.amin(-1) != patches.amax(-1)
        if bool(mixed.any()):
            row, variate, patch = (int(i) for i in mixed.nonzero()[0])
            raise ValueError(
                f"id_mask changes inside a patch (row {row}, variate {variate}, patch {patch}); "
                "ids must be constant over each patch"
            )
        return values, padding_mask, patches[..., 0].to(torch.long)

    def _scale(
        self, values: torch.Tensor, mask: torch.Tensor, state: ScalerState | None, prefix_length: int | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, ScalerState]:
        cfg = self.config
        return causal_patch_scale(
            values,
            mask,
            cfg.patch_size,
            min_scale=cfg.min_scale,
            stabilize_with_global=cfg.stabilize_with_global,
            scale_factor_exponent=cfg.scale_factor_exponent,
            state=state,
            prefix_length=prefix_length,
        )

    def _embed(self, normalised: torch.Tensor) -> torch.Tensor:
        """(B, V, T) -> (B, V, S, d): Linear on non-overlapping patches."""
        return self.patch_embed(normalised.unflatten(-1, (-1, self.config.patch_size)))

    @staticmethod
    def _group_mask(patch_ids: torch.Tensor) -> torch.Tensor | None:
        """(B, V, S) ids -> (B, S, V, V) bool 'same id' mask, or None for a single variate."""
        if patch_ids.shape[1] == 1:
            return None
        ids = patch_ids.transpose(1, 2)
        return ids.unsqueeze(-1) == ids.unsqueeze(-2)

    def _backbone(
        self,
        x: torch.Tensor,
        group_mask: torch.Tensor | None,
        capture: bool,
        readout: tuple[torch.Tensor, ...] | None = None,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Run all layers; only the last patch of the final layer is computed.

        Returns the (B, V, 1, d) output of the last patch and, if ``capture``, the rotated
        keys and values (B*V, H, S, h) of every time-wise layer. With ``readout`` = (rows,
        positions, slot, grid), the final layer is computed at those (row, patch) pairs instead: (M, V, 1, d).
        """
        rope = self.rotary.full_tables(x.shape[2], x.device)
        kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        final = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            last_only = index == final
            if last_only and readout is not None:
                return self._readout_layer(layer, x, group_mask, rope, *readout), kv
            if layer.spacewise:
                if last_only:  # space-wise attention is per patch: keep the last one
                    x = x[:, :, -1:]
                    group_mask = None if group_mask is None else group_mask[:, -1:]
                attended = layer.attention(layer.norm1(x), group_mask)
            else:
                attended, k, v = layer.attention(layer.norm1(x), rope, last_query_only=last_only)
                if capture:
                    kv.append((k, v))
                if last_only:
                    x = x[:, :, -1:]
            x = layer.finish(x, attended)
        return x, kv

    @staticmethod
    def _readout_layer(layer, x, group_mask, rope, rows, positions, slot, grid) -> torch.Tensor:
        """The final layer at chosen (row, patch) pairs only: (B, V, S, d) -> (M, V, 1, d)."""
        picked = x[rows, :, positions].unsqueeze(2)  # (M, V, 1, d)
        if layer.spacewise:  # per patch: the picked patches are all it needs
            mask = None if group_mask is None else group_mask[rows, positions].unsqueeze(1)
            return layer.finish(picked, layer.attention(layer.norm1(picked), mask))
        attended = layer.attention.readout(layer.norm1(x), rope, rows, slot, grid)
        return layer.finish(picked, attended)

    def _params(self, last_hidden: torch.Tensor, horizon: int, loc: torch.Tensor, scale: torch.Tensor) -> MixtureParams:
        """Un-embed only the first ``horizon`` steps of the last patch; (B, V, d) -> params."""
        d = self.config.embed_dim
        rows = horizon * d  # un-embedding output is laid out (step, feature)
        features = F.linear(last_hidden, self.unembed.weight[:rows], self.unembed.bias[:rows])
        weights, df, mix_loc, mix_scale = self.head(features.unflatten(-1, (horizon, d)))
        return MixtureParams(weights, df, mix_loc, mix_scale, loc, scale)

    def _allocate_cache(
        self, rows: int, slots: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        time_layers = sum(not layer.spacewise for layer in self.layers)
        shape = (time_layers, rows, cfg.num_heads, slots, cfg.head_dim)
        return torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype)
