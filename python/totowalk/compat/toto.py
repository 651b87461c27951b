"""Drop-in for toto-ts 0.2.0's forecasting API: ``TotoForecaster``, ``Forecast``, ``MaskedTimeseries``.

A script written for toto-ts changes its imports only::

    # from toto.data.util.dataset import MaskedTimeseries
    # from toto.inference.forecaster import TotoForecaster
    # from toto.model.toto import Toto
    from totowalk.compat.toto import MaskedTimeseries, Toto, TotoForecaster

    toto = Toto.from_pretrained("Datadog/Toto-Open-Base-1.0")
    forecaster = TotoForecaster(toto.model)
    inputs = MaskedTimeseries(series, padding_mask, id_mask, timestamp_seconds, time_interval_seconds)
    forecast = forecaster.forecast(inputs, prediction_length=336, num_samples=256)
    forecast.median, forecast.quantile(0.9), forecast.samples  # (B, V, H), (B, V, H), (B, V, H, S)

``TotoForecaster`` also takes toto-ts's own ``Toto`` or backbone module (its weights are converted
once) and toto-ts's own ``MaskedTimeseries`` (read by attribute; toto-ts need not be installed).

What ``forecast`` returns, as toto-ts does:

* ``num_samples=None``: the mean path. Each patch's predicted mixture mean is fed back as the next
  patch's input (non-finite or huge values replaced by 0 first), so beyond one patch it is a point
  path, not the mean of the predictive distribution. ``use_kv_cache=True`` reproduces toto-ts's
  cached decoding and ``False`` its uncached one (they differ slightly beyond the first patch: the
  reference's rotary centre moves as the cache grows). ``Forecast.samples`` is None.
* ``num_samples=S``: S sample paths ``(B, V, H, S)`` drawn by :class:`~totowalk.engine.ForecastEngine`
  (one prefill per context, shared by all paths; the engine decides the batching, so
  ``samples_per_batch`` is accepted and ignored), and ``mean`` their average.
* ``Forecast.quantile(q)``, ``median``, ``std`` reduce the samples over the last axis with
  ``torch.quantile`` (linear interpolation) and ``torch.std`` (Bessel-corrected), as toto-ts does;
  without samples they raise (toto-ts asserts).

Where it differs from toto-ts, on purpose:

* **Left padding.** Leading steps whose ``padding_mask`` is False for every variate of a series are
  dropped before forecasting, so each series of a batch gets the answer it gets alone. toto-ts
  feeds the padding through the time-wise attention (it counts as zeros), so its batched answer
  depends on the other series: a 70-step series left-padded to 384 moved its 8-step mean path by up
  to 0.026 in the issue's measurement (0.3 to 0.4 on the random-weight model of the tests).
* **Groups.** Variates with different ``id_mask`` ids never interact in Toto, so each group of a row
  is forecast as its own multivariate series (equal to toto-ts's joint call up to float rounding,
  with left padding dropped per group). ``id_mask`` must be constant over time for each variate.
* **Randomness.** Draws come from the engine's counter-based streams, keyed by the context's
  content and a seed: ``TotoForecaster(model, seed=k)`` fixes the draws, the default (``seed=None``)
  draws a fresh seed from torch's global generator on every call, so ``torch.manual_seed`` makes a
  run repeatable as with toto-ts. Identical contexts within one call share their draws.
* **Sample paths** always follow toto-ts's cached decoding (its default, ``use_kv_cache=True``), and
  need contexts without missing values after their left padding (``NotImplementedError``
  otherwise; the mean path handles any ``padding_mask``).
* Non-finite values where ``padding_mask`` is True raise ``ValueError`` (toto-ts forecasts NaN,
  then replaces it by 0); ``future_exogenous_variables`` raise ``NotImplementedError``;
  ``timestamp_seconds`` and ``time_interval_seconds`` are accepted and unused (the released model
  does not use them either).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ..engine import ForecastEngine
from ..engine.forecast_engine import DEFAULT_MAX_BATCH_TOKENS, MIN_MODEL_ROWS
from ..model import TotoConfig, build_model
from ..model import keys as official_keys

__all__ = ["Forecast", "MaskedTimeseries", "Toto", "TotoForecaster"]

# torch.quantile refuses inputs of more than 2**24 elements; larger sample arrays go in chunks of rows.
_QUANTILE_MAX_ELEMENTS = 1 << 24


class MaskedTimeseries(NamedTuple):
    """Input series with their masks, field for field toto-ts's ``MaskedTimeseries``.

    Shapes are (B, V, T), or (V, T) for one unbatched series.

    Attributes
    ----------
    series : Tensor, float
        The values.
    padding_mask : Tensor, bool
        True where ``series`` holds a real value, False for padding.
    id_mask : Tensor, int
        Group id of each variate (variates with the same id form one multivariate series and
        attend to each other); the time axis may be 1 to broadcast.
    timestamp_seconds : Tensor, int
        POSIX time of each step (unused by the model).
    time_interval_seconds : Tensor, int
        (B, V) or (V,) step length in seconds (unused by the model).
    num_exogenous_variables : int
        The last variates are exogenous (toto-ts 0.2.0); only 0 is supported for forecasting.
    """

    series: torch.Tensor
    padding_mask: torch.Tensor
    id_mask: torch.Tensor
    timestamp_seconds: torch.Tensor
    time_interval_seconds: torch.Tensor
    num_exogenous_variables: int = 0

    def to(self, device) -> MaskedTimeseries:
        """The same series with every tensor moved to ``device``."""
        return MaskedTimeseries(
            *(getattr(self, name).to(device) for name in self._fields[:5]), self.num_exogenous_variables
        )


@dataclass(frozen=True)
class Forecast:
    """A forecast as toto-ts's ``Forecast``: the mean and, when sampled, the sample paths.

    Attributes
    ----------
    mean : Tensor
        (B, V, H): the mean path, or the average of the sample paths.
    samples : Tensor or None
        (B, V, H, S) sample paths, None for a mean-path forecast.
    """

    mean: torch.Tensor
    samples: torch.Tensor | None = None

    def quantile(self, q: float | torch.Tensor) -> torch.Tensor:
        """The q-quantile of the samples per (row, variate, step), ``torch.quantile`` over the last axis.

        ``q`` a float gives (B, V, H); a 1-D tensor of Q levels gives (Q, B, V, H).
        """
        samples = self._needs_samples("quantile()")
        if isinstance(q, bool) or not isinstance(q, (float, int, torch.Tensor)):
            raise TypeError(f"q must be a float or a tensor, got {type(q).__name__}")
        q = torch.as_tensor(q, dtype=samples.dtype, device=samples.device)
        return _quantile(samples, q)

    @property
    def median(self) -> torch.Tensor:
        """(B, V, H) median of the samples (``quantile(0.5)``)."""
        return self.quantile(0.5)

    @property
    def std(self) -> torch.Tensor:
        """(B, V, H) standard deviation of the samples (Bessel-corrected)."""
        return self._needs_samples("std").std(dim=-1)

    def _needs_samples(self, what: str) -> torch.Tensor:
        if self.samples is None:
            raise ValueError(
                f"Forecast.{what} needs sample paths; this is a mean-path forecast (num_samples=None): "
                "call forecast(..., num_samples=S)"
            )
        return self.samples


def _quantile(samples: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    if samples.numel() <= _QUANTILE_MAX_ELEMENTS:
        return samples.quantile(q, dim=-1)
    rows = samples.reshape(-1, samples.shape[-1])
    step = max(1, _QUANTILE_MAX_ELEMENTS // samples.shape[-1])
    parts = [chunk.quantile(q, dim=-1) for chunk in rows.split(step)]
    return torch.cat(parts, dim=-1).reshape(*q.shape, *samples.shape[:-1])


class Toto(torch.nn.Module):
    """Stand-in for toto-ts's ``Toto`` module: ``Toto.from_pretrained(id).model`` is the network.

    Parameters
    ----------
    model : totowalk.model.TotoModel
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    @classmethod
    def from_pretrained(cls, model_id: str, map_location: str = "cpu", precision: str = "fp32", **_ignored) -> Toto:
        """Load weights with ``totowalk.load_model`` (a hub id, a directory or a .safetensors file)."""
        from ..loading import load_model

        return cls(load_model(model_id, device=map_location, precision=precision))

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location: str = "cpu", **_ignored) -> Toto:
        """As :meth:`from_pretrained` (toto-ts's local-checkpoint loader)."""
        return cls.from_pretrained(checkpoint_path, map_location=map_location)

    def compile(self, *args, **kwargs) -> None:
        """Accepted for compatibility; does nothing (the engine has its own CUDA-graph option)."""


class TotoForecaster:
    """toto-ts's ``TotoForecaster`` on totowalk's model and engine.

    Parameters
    ----------
    model : TotoModel, ForecastEngine, Toto, or toto-ts's ``Toto`` / ``TotoBackbone``
        A toto-ts module is converted once (same weights, this package's network).
    seed : int, optional
        Seed of the sample paths' random streams; None (default) draws one per call from torch's
        global generator.
    """

    def __init__(self, model, seed: int | None = None):
        if isinstance(model, ForecastEngine):
            self.engine = model
        else:
            self.engine = ForecastEngine(_as_totowalk_model(model))
        self.model = self.engine.model
        self.model.eval()
        if seed is not None and not 0 <= int(seed) < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {seed}")
        self.seed = None if seed is None else int(seed)

    def forecast(
        self,
        inputs,
        prediction_length: int,
        num_samples: int | None = None,
        samples_per_batch: int = 10,
        use_kv_cache: bool = True,
        future_exogenous_variables: torch.Tensor | None = None,
    ) -> Forecast:
        """Forecast the next ``prediction_length`` steps of every series in ``inputs``.

        Parameters
        ----------
        inputs : MaskedTimeseries (this module's or toto-ts's)
            (B, V, T) tensors, or (V, T) for one series (results keep a batch axis of 1).
        prediction_length : int
            H >= 1.
        num_samples : int, optional
            None: the mean path. S: S sample paths per series.
        samples_per_batch : int
            Accepted and ignored (the engine batches).
        use_kv_cache : bool
            The mean path's decoding: toto-ts's cached (True) or uncached (False) arithmetic.
        future_exogenous_variables : None
            Not supported.

        Returns
        -------
        Forecast
            ``mean`` (B, V, H) and ``samples`` (B, V, H, S) or None, on the device of
            ``inputs.series``, in its floating dtype (float32 otherwise).
        """
        if future_exogenous_variables is not None:
            raise NotImplementedError("future_exogenous_variables are not supported by totowalk's Toto")
        horizon = _positive_int(prediction_length, "prediction_length")
        if num_samples is not None:
            num_samples = _positive_int(num_samples, "num_samples")
        _positive_int(samples_per_batch, "samples_per_batch")
        series, mask, ids = _batch_tensors(inputs)
        out_device = series.device
        out_dtype = series.dtype if series.is_floating_point() else torch.float32
        units = _units(series, mask, ids)
        batch, variates = series.shape[:2]
        if num_samples is None:
            paths = self._mean_paths(units, horizon, use_kv_cache)
            mean = torch.zeros(batch, variates, horizon, dtype=torch.float32)
            for unit, path in zip(units, paths):
                mean[unit.row, torch.as_tensor(unit.variates)] = path
            return Forecast(mean=mean.to(device=out_device, dtype=out_dtype))
        samples = torch.zeros(batch, variates, horizon, num_samples, dtype=torch.float32)
        for unit, drawn in zip(units, self._sample_paths(units, horizon, num_samples)):
            samples[unit.row, torch.as_tensor(unit.variates)] = drawn
        samples = samples.to(device=out_device, dtype=out_dtype)
        return Forecast(mean=samples.mean(dim=-1), samples=samples)

    # -- mean path: each patch's mixture mean fed back, as toto-ts's generate_mean ------------------

    def _mean_paths(self, units: list, horizon: int, use_kv_cache: bool) -> list:
        """(V_u, H) float32 CPU tensor per unit, in order."""
        model = self.model
        patch = int(model.config.patch_size)
        new_patches = -(-horizon // patch) - 1
        rope = "reference" if use_kv_cache else "full"
        device = self.engine.device
        out = [None] * len(units)
        # units with the same variates and padded length share model calls
        buckets: dict = {}
        for index, unit in enumerate(units):
            buckets.setdefault((len(unit.variates), -(-unit.values.shape[-1] // patch)), []).append(index)
        for (variates, patches), members in buckets.items():
            per_call = max(1, DEFAULT_MAX_BATCH_TOKENS // (variates * (patches + new_patches)))
            for start in range(0, len(members), per_call):
                chunk = members[start : start + per_call]
                values, mask = _left_padded([units[i] for i in chunk], patches * patch, device)
                paths = _mean_path(model, values, mask, horizon, new_patches, rope)
                for row, index in enumerate(chunk):
                    out[index] = paths[row].float().cpu()
        return out

    # -- sample paths: the engine ------------------------------------------------------------------

    def _sample_paths(self, units: list, horizon: int, num_samples: int) -> list:
        """(V_u, H, S) float32 CPU tensor per unit, in order."""
        for unit in units:
            if not unit.mask.all():
                variate, step = (int(i[0]) for i in np.nonzero(~unit.mask))
                raise NotImplementedError(
                    f"sample paths need contexts without missing values after their left padding; row {unit.row}, "
                    f"variate {int(unit.variates[variate])} has padding_mask False at step {unit.start + step} "
                    "(fill it, or forecast the mean path with num_samples=None)"
                )
        seed = self.seed if self.seed is not None else int(torch.randint(0, 2**62, (), dtype=torch.int64))
        engine, previous = self.engine, self.engine.seed
        out = [None] * len(units)
        by_width: dict = {}
        for index, unit in enumerate(units):
            by_width.setdefault(len(unit.variates), []).append(index)
        engine.seed = seed
        try:
            for members in by_width.values():
                result = engine.forecast(
                    [units[i].values for i in members],
                    prediction_length=horizon,
                    num_samples=num_samples,
                    aggregate=(),
                    return_samples=True,
                    estimator="sampled",
                )
                for row, index in enumerate(members):
                    out[index] = torch.from_numpy(np.ascontiguousarray(result.samples[row]))
        finally:
            engine.seed = previous
        return out


@torch.inference_mode()
def _mean_path(model, values, mask, horizon: int, new_patches: int, rope: str) -> torch.Tensor:
    """(b, V, H) mean paths of left-padded contexts (rows padded to MIN_MODEL_ROWS, as the engine does)."""
    real = values.shape[0]
    if real < MIN_MODEL_ROWS:  # the same matrix-product path whatever the batch: a row's answer is its own
        fill = MIN_MODEL_ROWS - real
        values = torch.cat([values, values[-1:].expand(fill, -1, -1)])
        mask = torch.cat([mask, mask[-1:].expand(fill, -1, -1)])
    patch = int(model.config.patch_size)
    first = horizon if new_patches == 0 else patch
    state = model.prefill(values, mask, None, max_new_patches=new_patches, horizon=first, rope=rope)
    chunks = [_finite_or_zero(state.params.expected())]
    for _ in range(new_patches):
        chunks.append(_finite_or_zero(model.decode_next(state, chunks[-1].to(values.dtype)).expected()))
    return torch.cat(chunks, dim=-1)[:real, :, :horizon]


def _finite_or_zero(x: torch.Tensor) -> torch.Tensor:
    """toto-ts's treatment of fed-back values: NaN, infinities and |x| >= max/2 become 0."""
    limit = torch.finfo(x.dtype).max / 2
    return torch.where(torch.isfinite(x) & (x.abs() < limit), x, torch.zeros((), dtype=x.dtype, device=x.device))


def _left_padded(units: list, length: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(b, V, length) values and mask of units, left-padded with zeros (mask False)."""
    variates = len(units[0].variates)
    values = np.zeros((len(units), variates, length), dtype=np.float32)
    mask = np.zeros(values.shape, dtype=bool)
    for row, unit in enumerate(units):
        steps = unit.values.shape[-1]
        values[row, :, length - steps :] = unit.values
        mask[row, :, length - steps :] = unit.mask
    return torch.from_numpy(values).to(device), torch.from_numpy(mask).to(device)


# -- inputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """One multivariate series: a group of variates of one row, left padding dropped.

    ``values`` (V_u, L) float32 (0 where masked) and ``mask`` (V_u, L) bool start at step ``start``
    of the caller's time axis.
    """

    row: int
    variates: np.ndarray
    start: int
    values: np.ndarray
    mask: np.ndarray


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _field(inputs, name: str, required: bool = True):
    if not hasattr(inputs, name):
        if required:
            raise TypeError(f"inputs: expected a MaskedTimeseries (with .{name}), got {type(inputs).__name__}")
        return None
    value = getattr(inputs, name)
    if value is None or isinstance(value, torch.Tensor):
        return value
    return torch.as_tensor(np.asarray(value))


def _batch_tensors(inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """series (B, V, T), padding mask (B, V, T) bool and ids (B, V, T) or None, unbatched input batched."""
    series = _field(inputs, "series")
    if getattr(inputs, "num_exogenous_variables", 0):
        raise NotImplementedError("exogenous variables (num_exogenous_variables > 0) are not supported")
    if series.ndim == 2:
        series = series[None]
        unbatched = True
    elif series.ndim == 3:
        unbatched = False
    else:
        raise ValueError(
            f"inputs.series: expected (batch, variates, time) or (variates, time), got {tuple(series.shape)}"
        )
    if series.shape[-1] == 0 or series.shape[1] == 0:
        raise ValueError(f"inputs.series: empty shape {tuple(series.shape)}")
    shape = tuple(series.shape)

    def batched(name: str, value):
        if value is None:
            return None
        value = value[None] if unbatched else value
        try:
            return torch.broadcast_to(value, shape)
        except RuntimeError:
            raise ValueError(f"inputs.{name} has shape {tuple(value.shape)}, not broadcastable to {shape}") from None

    mask = batched("padding_mask", _field(inputs, "padding_mask", required=False))
    mask = torch.ones(shape, dtype=torch.bool) if mask is None else mask.to(torch.bool)
    ids = batched("id_mask", _field(inputs, "id_mask", required=False))
    return series, mask, ids


def _units(series: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor | None) -> list:
    """Each row's groups of variates as :class:`_Unit`, row by row, groups in order of first variate."""
    values = series.detach().to("cpu", torch.float32).numpy()
    real = mask.detach().cpu().numpy()
    groups = _groups(ids, series.shape[:2])
    units = []
    for row in range(values.shape[0]):
        for variates in groups[row]:
            unit_real = real[row, variates]
            seen = unit_real.any(axis=0)
            if not seen.any():
                raise ValueError(
                    f"inputs: row {row}, variates {variates.tolist()} have no real value (padding_mask all False)"
                )
            start = int(np.argmax(seen))
            unit_values = values[row, variates, start:]
            unit_mask = unit_real[:, start:]
            bad = unit_mask & ~np.isfinite(unit_values)
            if bad.any():
                variate, step = (int(i[0]) for i in np.nonzero(bad))
                raise ValueError(
                    f"inputs.series: non-finite value {unit_values[variate, step]} at row {row}, variate "
                    f"{int(variates[variate])}, step {start + step} where padding_mask is True; fill it or mask it"
                )
            unit_values = np.where(unit_mask, unit_values, np.float32(0.0))
            units.append(
                _Unit(row, variates, start, np.ascontiguousarray(unit_values), np.ascontiguousarray(unit_mask))
            )
    return units


def _groups(ids: torch.Tensor | None, shape: tuple) -> list:
    """Per row, the variate index arrays of each id group (one group when ``ids`` is None)."""
    batch, variates = shape
    if ids is None:
        return [[np.arange(variates)]] * batch
    ids = ids.detach().cpu()
    if not bool((ids == ids[..., :1]).all()):
        row, variate, _ = (int(i) for i in (ids != ids[..., :1]).nonzero()[0])
        raise NotImplementedError(
            f"inputs.id_mask changes over time (row {row}, variate {variate}); only ids constant over time are "
            "supported (one id per variate)"
        )
    first = ids[..., 0].numpy()
    groups = []
    for row in range(batch):
        _, index, inverse = np.unique(first[row], return_index=True, return_inverse=True)
        order = np.argsort(index)  # groups in order of their first variate
        groups.append([np.flatnonzero(inverse == group) for group in order])
    return groups


# -- models ----------------------------------------------------------------------------------------


def _as_totowalk_model(model):
    """A totowalk model for ``model``: itself, the network of a :class:`Toto`, or a converted toto-ts module."""
    if isinstance(model, Toto):
        model = model.model
    if hasattr(model, "prefill") and hasattr(model, "decode_next") and hasattr(model, "config"):
        return model
    backbone = getattr(model, "model", None)
    if _is_official_backbone(backbone):
        return _convert_official(backbone)
    if _is_official_backbone(model):
        return _convert_official(model)
    raise TypeError(
        f"TotoForecaster: expected a totowalk TotoModel or ForecastEngine, or toto-ts's Toto / TotoBackbone; "
        f"got {type(model).__name__}"
    )


def _is_official_backbone(module) -> bool:
    names = ("patch_embed", "transformer", "unembed", "output_distribution", "scaler")
    return module is not None and all(hasattr(module, name) for name in names)


def _convert_official(backbone):
    """This package's network with the weights of a toto-ts ``TotoBackbone`` (same device, fp32, eval)."""
    config = _official_config(backbone)
    state, unexpected = {}, []
    for name, tensor in backbone.state_dict().items():
        official = f"model.{name}"
        if official_keys.is_ignored(official):
            continue
        ours = official_keys.to_ours(official)
        if ours is None:
            unexpected.append(official)
        else:
            state[ours] = tensor.detach().to("cpu", torch.float32)
    if unexpected:
        raise NotImplementedError(f"toto-ts module has tensors this network does not: {sorted(unexpected)}")
    model = build_model(config)
    model.load_state_dict(state, strict=True)
    try:
        device = next(backbone.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    return model.to(device).eval()


def _official_config(backbone) -> TotoConfig:
    """The :class:`TotoConfig` of a toto-ts backbone, read from its modules."""
    if getattr(backbone, "fusion", None) is not None:
        raise NotImplementedError("toto-ts modules with variate labels (exogenous fusion) are not supported")
    scaler = backbone.scaler
    if type(scaler).__name__ != "CausalPatchStdMeanScaler" or not getattr(scaler, "use_bessel_correction", True):
        raise NotImplementedError(f"toto-ts scaler {type(scaler).__name__} is not supported")
    head = backbone.output_distribution
    if type(head).__name__ != "MixtureOfStudentTsOutput":
        raise NotImplementedError(f"toto-ts output distribution {type(head).__name__} is not supported")
    layers = list(backbone.transformer.layers)
    spacewise = [getattr(layer.attention_axis, "name", str(layer.attention_axis)) == "SPACE" for layer in layers]
    count = sum(spacewise)
    every = -1 if count == 0 else len(layers) // count
    rotary = backbone.transformer.rotary_emb
    config = TotoConfig(
        patch_size=int(backbone.patch_embed.patch_size),
        stride=int(backbone.patch_embed.stride),
        embed_dim=int(backbone.embed_dim),
        num_layers=len(layers),
        num_heads=int(layers[0].num_heads),
        mlp_hidden_dim=int(layers[0].mlp_hidden_dim),
        spacewise_every_n_layers=every,
        spacewise_first=bool(spacewise[0]) if count else False,
        k_components=int(head.k_components),
        stabilize_with_global=bool(scaler.stabilize_with_global),
        scale_factor_exponent=float(scaler.scale_factor_exponent),
        min_scale=float(scaler.minimum_scale),
        xpos_scale_base=float(getattr(rotary, "scale_base", 512.0)),
        norm_eps=float(getattr(layers[0].norm1, "eps", 1e-8)),
        dropout=float(getattr(backbone, "dropout", 0.0)),
    )
    if config.layer_is_spacewise() != spacewise:
        raise NotImplementedError(f"toto-ts layer layout {spacewise} (True = space-wise) is not supported")
    freqs = getattr(rotary, "freqs", None)
    if freqs is not None:
        dim = config.head_dim
        expected = 1.0 / config.rope_theta ** (torch.arange(0, dim, 2)[: dim // 2].double() / dim)
        if not torch.allclose(freqs.detach().double().cpu(), expected, rtol=1e-5, atol=0):
            raise NotImplementedError(f"toto-ts rotary frequencies differ from theta={config.rope_theta}")
    return config
