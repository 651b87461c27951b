"""ForecastEngine: requests -> dedupe -> bucket -> pack -> one forward per unique context -> sample -> reduce.

For ``prediction_length <= patch_size`` every sample of a request sees the same context, so one
forward pass predicts the mixture for all H steps and the S draws come from it directly (the
classic forecaster pushes the context through the model S times for the same distribution).
Longer horizons decode autoregressively (``decode.py``) from one shared prefill per context.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch.profiler import record_function

from ..devices import resolve_device, to_device_async
from ..kernels.mixture_exact import resolved_backend as resolved_statistics_backend
from ..model.layers import readout_layout
from .collect import PendingOutputs, ResultCollector
from .cuda_graphs import ForwardGraphs
from .decode import decode_batch
from .inputs import ContextBatch, normalize_contexts
from .packing import staging_requests
from .plan import plan_forecast, split_batch
from .prefix_sharing import ScalerSettings
from .result import ForecastResult
from .sampling import (
    check_estimator,
    draw_and_reduce,
    exact_reduce,
    parse_engine_aggregates,
    stream_keys_for,
)
from .staging import StagingPipeline

__all__ = ["DEFAULT_MAX_BATCH_TOKENS", "ForecastEngine"]

logger = logging.getLogger("totowalk.engine")

# Patch tokens (rows x variates x patches) per model call; ~0.5 GB of activations on the base model.
DEFAULT_MAX_BATCH_TOKENS = 16384
# MKL's sgemm takes a different (small-M) path below 8 rows, summing in another order; padding
# every model call to >= 8 rows (copies of a member, results discarded) keeps each row's
# arithmetic identical whatever else is in the batch, so a request's parameters are batch invariant.
# (All rows, not just rows x patches: the un-embedding and head see one position per row.)
MIN_MODEL_ROWS = 8


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


class ForecastEngine:
    """Batched, exact walk-forward forecasting with a Toto model.

    Parameters
    ----------
    model : totowalk.model.TotoModel
        Any model exposing ``forecast_params`` (and ``prefill`` / ``decode_next`` for horizons
        beyond one patch) and ``config.patch_size``.
    num_samples : int
        Default S, draws per (request, step).
    seed : int
        Seed of the counter-based random streams; with the content hash it fixes every draw.
    device : str or torch.device, optional
        Where the model runs; the model is moved there. Default: the model's current device.
    max_batch_tokens : int
        Budget of patch tokens per model call (autoregressive decoding counts every path and
        decoded patch). Buckets larger than this are split; one context is never split.
    sampling_backend : {"auto", "torch", "triton"}
        Passed to ``totowalk.kernels.sample_and_reduce`` (auto: Triton on CUDA, torch on CPU).
    sampling_dtype : torch.dtype
        float32 (default) or float16 sampling.
    cuda_graphs : bool
        On CUDA, capture the forward once per bucket shape as a CUDA graph and replay it (one
        launch instead of one per kernel; horizons up to one patch; prefix-shared batches too,
        their readouts padded to powers of two). Costs a capture and the graph's memory per
        distinct (rows, variates, padded length, readouts, horizon). Ignored elsewhere.
    estimator : {"sampled", "exact"}
        How aggregates are computed from the predicted mixtures. "sampled" (default): from
        ``num_samples`` seeded Monte Carlo draws, as the classic loop does. "exact": the population
        value of each step's predicted distribution (``totowalk.kernels.exact_statistics``):
        nothing is drawn, so results depend on neither ``num_samples`` nor ``seed``. Exact
        statistics exist for horizons up to one patch (per-step marginals of one forward pass).
    share_prefixes : bool
        Walk-forward prefix sharing (default True): unique contexts that are prefixes of a longer
        one in the same call, with lengths congruent modulo the patch size, are read out of that
        context's forward at their own last patch instead of running their own (``prefix_sharing``;
        equal up to float rounding, and only where the scaler's global clamp cannot bind). Horizons
        up to one patch. False runs one forward per unique context.
    statistics_backend : {"auto", "native", "torch", "triton"}
        Where the exact estimator's statistics run (``totowalk.kernels.mixture_summary``'s backends).
        auto (default): the extension's compiled loop on the host (on a card the parameters are
        copied there and back), torch where it is not built; triton: one fused kernel on the
        engine's device, no host round trip (equal to the host loop to 1e-9; a CUDA device, or
        ``TRITON_INTERPRET=1`` for tests).

    Examples
    --------
    >>> engine = ForecastEngine(build_model(TotoConfig.preset("toto-tiny"), seed=0), num_samples=128)
    >>> res = engine.forecast([np.sin(np.arange(300) / 9)], prediction_length=7, aggregate=("mean", "band"))
    >>> res.stats["mean"].shape
    (1, 7)
    """

    def __init__(
        self,
        model,
        num_samples: int = 256,
        seed: int = 0,
        device=None,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        sampling_backend: str = "auto",
        sampling_dtype: torch.dtype = torch.float32,
        cuda_graphs: bool = False,
        estimator: str = "sampled",
        share_prefixes: bool = True,
        statistics_backend: str = "auto",
    ):
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        device = resolve_device(device)
        self.device = device if device is not None else _model_device(model)
        self.model = model.to(self.device) if device is not None else model
        self.model.eval()
        self.patch_size = int(model.config.patch_size)
        self.num_samples = int(num_samples)
        self.estimator = check_estimator(estimator)
        self.share_prefixes = bool(share_prefixes)
        self.seed = int(seed)
        self.max_batch_tokens = int(max_batch_tokens)
        self.sampling_backend = sampling_backend
        resolved_statistics_backend(statistics_backend, self.device)  # refuses a choice that cannot run here
        self.statistics_backend = statistics_backend
        self.sampling_dtype = sampling_dtype
        self._staging = None  # StagingPipeline, created on first use
        self.cuda_graphs = bool(cuda_graphs)
        self._graphs = self._forward_graphs()

    # ------------------------------------------------------------------ public
    def without_model(self) -> "ForecastEngine":
        """A copy holding no model (nor what is built from it: staging buffers, CUDA graphs): what
        travels to a worker that loads the weights itself; :meth:`with_model` completes it."""
        light = copy.copy(self)
        light.model, light._staging, light._graphs = None, None, None
        return light

    def with_model(self, model) -> "ForecastEngine":
        """A copy of this engine's settings computing with ``model`` (moved to the engine's device)."""
        out = copy.copy(self)
        out.model = model.to(self.device).eval()
        out._staging = None
        out._graphs = out._forward_graphs()
        return out

    def _forward_graphs(self):
        """CUDA graphs of this engine's model where asked for and on a card, else None."""
        return ForwardGraphs(self.model) if self.cuda_graphs and self.device.type == "cuda" else None

    def forecast(
        self,
        contexts,
        prediction_length: int = 1,
        num_samples: int | None = None,
        aggregate=("mean",),
        return_samples: bool = False,
        estimator: str | None = None,
    ) -> ForecastResult:
        """Forecast the next ``prediction_length`` steps of every context.

        Parameters
        ----------
        contexts : list of array-like, or array-like
            A list of 1-D arrays of any lengths, a (B, T) array, or (B, V, T) / a list of (V, L_i)
            arrays for multivariate series. Values must be finite.
        prediction_length : int
            H >= 1. Up to the patch size (64) one forward pass per unique context; beyond,
            autoregressive decoding with ``num_samples`` sample paths.
        num_samples : int, optional
            S, defaults to the engine's.
        aggregate : str or sequence of str
            Names per ``totowalk.aggregation.parse_aggregate(extended=True)``: mean, median, std,
            trimmed_mean_X, quantile_Q, pXX, band, expected, ...
        return_samples : bool
            Also copy the draws to the host (sampled estimator only).
        estimator : {"sampled", "exact"}, optional
            Overrides the engine's estimator for this call.

        Returns
        -------
        ForecastResult
            ``stats[name]`` (B, H) or (B, V, H); ``samples`` (B, H, S) or (B, V, H, S);
            ``params`` the first patch's mixture and scaler parameters; request order.
        """
        horizon, samples_per_step, specs, estimator = self._settings(
            prediction_length, num_samples, aggregate, estimator, return_samples
        )
        with record_function("totowalk.normalize"):
            batch = normalize_contexts(contexts)
        return self._forecast_batch(batch, None, horizon, samples_per_step, specs, estimator, return_samples)

    def _settings(self, prediction_length, num_samples, aggregate, estimator, return_samples) -> tuple:
        """Checked (horizon, samples per step, aggregate specs, estimator) of one call."""
        horizon = int(prediction_length)
        if horizon < 1:
            raise ValueError(f"prediction_length must be >= 1, got {prediction_length}")
        samples_per_step = self.num_samples if num_samples is None else int(num_samples)
        if samples_per_step < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        specs = parse_engine_aggregates(aggregate)
        estimator = self.estimator if estimator is None else check_estimator(estimator)
        if estimator == "exact" and horizon > self.patch_size:
            raise ValueError(
                f"estimator='exact' gives per-step statistics of one forward pass, i.e. horizons up to the patch "
                f"size ({self.patch_size}); prediction_length={horizon} needs autoregressive sample paths: use "
                "estimator='sampled'"
            )
        if estimator == "exact" and return_samples:
            raise ValueError("estimator='exact' draws no samples; return_samples=True needs estimator='sampled'")
        return horizon, samples_per_step, specs, estimator

    def _forecast_batch(
        self, batch, families, horizon, samples_per_step, specs, estimator, return_samples
    ) -> ForecastResult:
        autoregressive = horizon > self.patch_size
        extra_patches = -(-horizon // self.patch_size) - 1
        with record_function("totowalk.plan"):
            plan = plan_forecast(
                batch,
                self.patch_size,
                self.max_batch_tokens,
                rows_per_context=samples_per_step if autoregressive else 1,
                extra_patches=extra_patches,
                share_prefixes=self._sharing_settings() if not autoregressive else None,
                families=families,
            )
        param_steps = min(horizon, self.patch_size)
        collector = ResultCollector(
            plan.num_unique,
            batch.num_variates,
            horizon,
            samples_per_step,
            specs,
            return_samples,
            param_steps,
            exact=estimator == "exact",
        )
        info = {"model_batches": 0, "oom_splits": 0}
        settings = (horizon, samples_per_step, specs, return_samples, estimator)
        run = self._run_autoregressive if autoregressive else self._run_one_pass
        with torch.inference_mode():
            staged = self._stage(plan, plan.batches[0]) if plan.batches else None
            previous = []
            for index, model_batch in enumerate(plan.batches):
                # Queue batch k's compute and the copy of its results, pack batch k+1 on the host
                # and queue its copy (on CUDA the compute stream waits on it only after k), and
                # only then store batch k-1's results: nothing on this path waits for the card
                # except that last step, by which time k is queued behind k-1.
                finished = self._run_splitting_on_oom(run, plan, model_batch, staged, settings, info)
                with record_function("totowalk.collect"):
                    pending = [PendingOutputs(members, *outputs, param_steps) for members, outputs in finished]
                staged = self._stage(plan, plan.batches[index + 1]) if index + 1 < len(plan.batches) else None
                with record_function("totowalk.collect"):
                    for done in previous:
                        collector.store(done)
                previous = pending
            for done in previous:
                collector.store(done)
        return collector.result(plan.inverse, batch.multivariate, plan.num_unique, info)

    def forecast_walk_forward(
        self,
        series,
        ends,
        prediction_length: int = 1,
        num_samples: int | None = None,
        aggregate=("mean",),
        return_samples: bool = False,
        estimator: str | None = None,
    ) -> ForecastResult:
        """Forecast after every end index of every series: the walk-forward request form.

        Each series is checked and converted once and its contexts are views of it, so the
        engine knows without reading them that they are prefixes of one another (prefix sharing
        needs no comparisons, and no context is copied).

        Parameters
        ----------
        series : dict of name -> array-like, or list of array-like
            1-D series, or (V, T) for multivariate ones.
        ends : dict of name -> sequence of int, or list of sequences
            Per series, context end indices e (the context is ``series[..., :e]``, 1 <= e <= T), in
            any order, duplicates allowed.
        prediction_length, num_samples, aggregate, return_samples, estimator
            As :meth:`forecast`.

        Returns
        -------
        ForecastResult
            Equal to ``forecast([s[..., :e] for each series, for e in its ends])``, in that order
            (to float rounding with ``share_prefixes``: a context may share another forward).
        """
        horizon, samples_per_step, specs, estimator = self._settings(
            prediction_length, num_samples, aggregate, estimator, return_samples
        )
        names = list(series) if isinstance(series, dict) else list(range(len(series)))
        if (
            isinstance(series, dict) != isinstance(ends, dict)
            or (isinstance(ends, dict) and set(ends) != set(names))
            or len(ends) != len(names)
        ):
            raise ValueError("series and ends must both be dicts with the same names, or lists of the same length")
        with record_function("totowalk.normalize"):
            whole = [_checked_series(series[name], name) for name in names]
            kinds = {(batch.multivariate, batch.num_variates) for batch in whole}
            if len(kinds) > 1:
                raise ValueError(
                    f"series mix univariate and (V, T) series or variate counts: {sorted(kinds)} "
                    "(multivariate?, variates)"
                )
            multivariate, num_variates = kinds.pop() if kinds else (False, 1)
            contexts, families, lengths = [], [], []
            for family, (name, values) in enumerate(zip(names, (batch.series[0] for batch in whole))):
                series_ends = _checked_ends(ends[name], values.shape[-1], name)
                if values.shape[0] == 1:
                    contexts += [values[:, :end] for end in series_ends.tolist()]
                else:
                    contexts += [np.ascontiguousarray(values[:, :end]) for end in series_ends.tolist()]
                families.append(np.full(len(series_ends), family, dtype=np.int64))
                lengths.append(series_ends)
            batch = ContextBatch(
                series=contexts,
                multivariate=multivariate,
                num_variates=num_variates,
                lengths=np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64),
            )
        families = np.concatenate(families) if families else np.zeros(0, dtype=np.int64)
        return self._forecast_batch(batch, families, horizon, samples_per_step, specs, estimator, return_samples)

    # ------------------------------------------------------------------ internals
    def _run_splitting_on_oom(self, run, plan, model_batch, staged, settings, info) -> list[tuple]:
        """Queue one model batch; on out-of-memory halve it and retry (recursively), never dropping a request.

        Returns
        -------
        list of (members, outputs)
            One entry per batch that ran (more than one after a split), results still on the device.
        """
        try:
            outputs = run(model_batch, staged or self._stage(plan, model_batch), plan, *settings)
        except torch.OutOfMemoryError as exc:
            if len(model_batch.members) == 1:
                raise RuntimeError(
                    f"out of memory forecasting a single context of {model_batch.num_patches} patches "
                    f"(unique context {int(model_batch.members[0])}); lower num_samples or use a larger device"
                ) from exc
            info["oom_splits"] += 1
            logger.warning(
                "out of memory on a batch of %d contexts x %d patches; splitting in two and retrying",
                len(model_batch.members),
                model_batch.num_patches,
            )
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            staged = None  # release before retrying
            return [
                done
                for half in split_batch(model_batch)
                for done in self._run_splitting_on_oom(run, plan, half, None, settings, info)
            ]
        info["model_batches"] += 1
        return [(model_batch.served, outputs)]

    def _stage(self, plan, model_batch) -> tuple:
        """Pack a batch (padded to MIN_MODEL_ROWS rows) and start its copy to the device.

        Returns
        -------
        values, mask : torch.Tensor
            (b', V, P) on the engine's device; on CUDA the current stream already waits on the copy.
        """
        with record_function("totowalk.stage"):
            series = [plan.unique_series[i] for i in model_batch.members]
            series += [series[-1]] * (MIN_MODEL_ROWS - len(series))
            padded_length = model_batch.num_patches * self.patch_size
            sources, requests = staging_requests(series, padded_length)
            staged = self._staging_pipeline(len(requests) * padded_length).submit(sources, requests, padded_length)
            shape = (len(series), series[0].shape[0], padded_length)
            return staged.values.view(shape), staged.mask.view(shape)

    def _staging_pipeline(self, cells: int):
        """The (cached) staging pipeline, re-created when a batch of ``cells`` values outgrows its slabs."""
        needed = 5 * cells + 4096  # float32 values + bool mask, with alignment slack
        if self._staging is None or self._staging.slab_bytes < needed:
            slab = max(needed, 1 << 20)
            self._staging = StagingPipeline(slab, num_slabs=3, device=self.device)
        return self._staging

    def _run_one_pass(self, model_batch, staged, plan, horizon, num_samples, specs, return_samples, estimator) -> tuple:
        values, mask = staged
        forward = self._graphs if self._graphs is not None else self._eager_forward
        with record_function("totowalk.forward"):
            if model_batch.readout is None:
                params = forward(values, mask, horizon).index(slice(0, len(model_batch.members)))
            else:
                params = self._shared_forward(values, mask, model_batch.readout, horizon)
        if estimator == "exact":
            with record_function("totowalk.exact_statistics"):
                return exact_reduce(params, specs, self.statistics_backend), None, params
        with record_function("totowalk.sample"):
            content_keys = plan.stream_keys[model_batch.served].reshape(-1)
            keys = stream_keys_for(content_keys, horizon, self.device).reshape(params.weights.shape[:3])
            stats, samples = draw_and_reduce(
                params,
                keys,
                num_samples,
                specs,
                seed=self.seed,
                return_samples=return_samples,
                backend=self.sampling_backend,
                dtype=self.sampling_dtype,
                check_values=False,
            )  # checked in collect
        return stats, samples, params

    # -- mixtures the caller already holds (studies that re-sample one forward many times) ----------

    def stream_keys(self, contexts) -> np.ndarray:
        """(N,) uint64 content keys of ``contexts``: the keys :meth:`forecast` draws their samples with."""
        plan = plan_forecast(normalize_contexts(contexts), self.patch_size, max_batch_tokens=1 << 62)
        return plan.stream_keys[plan.inverse, 0]

    def sample_mixtures(
        self, params, content_keys, aggregate=("mean",), num_samples: int | None = None, seed: int | None = None
    ) -> dict:
        """Aggregates of ``num_samples`` draws from one-step mixtures the caller holds.

        ``params``: :class:`MixtureParams` of N univariate contexts with horizon 1, on this engine's device
        (e.g. ``ForecastResult.params`` rows); ``content_keys``: their (N,) :meth:`stream_keys`. The
        draws are the ones ``ForecastEngine(model, num_samples=num_samples, seed=seed).forecast``
        makes for those contexts (same streams, backend and dtype), without running the model.
        Returns ``{name: (N, 1) float64}``, laid out as :attr:`ForecastResult.stats`.
        """
        specs = parse_engine_aggregates(aggregate)
        keys = stream_keys_for(np.asarray(content_keys, dtype=np.uint64), 1, self.device)
        stats, _ = draw_and_reduce(
            params,
            keys.reshape(params.weights.shape[:3]),
            self.num_samples if num_samples is None else int(num_samples),
            specs,
            seed=self.seed if seed is None else int(seed),
            return_samples=False,
            backend=self.sampling_backend,
            dtype=self.sampling_dtype,
        )
        return {name: value.double().cpu().numpy()[:, 0] for name, value in stats.items()}

    @staticmethod
    def reduce_mixtures(params, aggregate=("mean",)) -> dict:
        """The exact estimator's aggregates of mixtures the caller holds: ``{name: (N, V, H) float64 tensor}``."""
        return exact_reduce(params, parse_engine_aggregates(aggregate))

    def _sharing_settings(self):
        if not self.share_prefixes or not hasattr(self.model, "forecast_params_at"):
            return None
        return ScalerSettings.from_config(self.model.config)

    def _shared_forward(self, values, mask, readout, horizon):
        """Parameters of every readout of a prefix-shared batch. Readouts are padded to
        MIN_MODEL_ROWS like model rows, so the head's matrix products take the same path whatever
        the number of readouts; with CUDA graphs to the next power of two, and the readouts per row
        likewise, so that a run needs few graph shapes."""
        count = len(readout.contexts)
        graphs = self._graphs is not None
        padded = max(MIN_MODEL_ROWS, 1 << (count - 1).bit_length()) if graphs else max(MIN_MODEL_ROWS, count)
        pad = padded - count
        rows = torch.as_tensor(np.concatenate([readout.rows, np.repeat(readout.rows[-1:], pad)]))
        positions = torch.as_tensor(np.concatenate([readout.positions, np.repeat(readout.positions[-1:], pad)]))
        if graphs:
            widest = int(np.bincount(rows.numpy(), minlength=values.shape[0]).max())
            slot, grid = readout_layout(rows, positions, values.shape[0], width=1 << (widest - 1).bit_length())
            on_device = [to_device_async(x, self.device) for x in (rows, positions, slot, grid)]
            params = self._graphs.shared(values, mask, *on_device, horizon)
        else:
            params = self.model.forecast_params_at(values, mask, rows, positions, horizon=horizon)
        return params.index(slice(0, count))

    def _eager_forward(self, values, mask, horizon):
        return self.model.forecast_params(values, mask, None, horizon=horizon)

    def _run_autoregressive(
        self, model_batch, staged, plan, horizon, num_samples, specs, return_samples, estimator
    ) -> tuple:
        values, mask = staged
        content_keys = plan.stream_keys[model_batch.members]
        return decode_batch(
            self.model,
            values,
            mask,
            content_keys,
            horizon,
            num_samples,
            specs,
            seed=self.seed,
            return_samples=return_samples,
            backend=self.sampling_backend,
            dtype=self.sampling_dtype,
        )


def _checked_ends(ends, total: int, name) -> np.ndarray:
    """One series' context ends as int64, each an integer in 1..total; errors name the series and
    the first bad end."""
    array = np.asarray(ends)
    if array.ndim != 1:
        raise ValueError(f"series {name!r}: ends must be a 1-D sequence of integers, got shape {array.shape}")
    # numpy turns a list's True into 1: a list is checked item by item (an integer array holds no bools)
    has_bool = not isinstance(ends, np.ndarray) and any(isinstance(end, (bool, np.bool_)) for end in ends)
    if has_bool or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        items = (
            array.ravel().tolist() if isinstance(ends, np.ndarray) else list(np.ravel(np.asarray(ends, dtype=object)))
        )
        bad = next(
            (
                j
                for j, end in enumerate(items)
                if isinstance(end, (bool, np.bool_)) or not isinstance(end, (int, np.integer))
            ),
            0,
        )
        shown = items[bad] if items else ends
        raise ValueError(
            f"series {name!r}: end {bad} is {shown!r}; ends must be integers in 1..{total} "
            "(the context is series[..., :end])"
        )
    array = array.astype(np.int64, copy=False)
    outside = np.flatnonzero((array < 1) | (array > total))
    if outside.size:
        j = int(outside[0])
        raise ValueError(
            f"series {name!r}: end {j} is {int(array[j])}; ends must be integers in 1..{total} "
            "(the context is series[..., :end])"
        )
    return array


def _checked_series(values, name) -> ContextBatch:
    """One walk-forward series, checked and converted once; its errors name the series."""
    try:
        return normalize_contexts([values])
    except (ValueError, TypeError) as err:
        message = str(err)
        raise type(err)(
            f"series {name!r}: {message.split(': ', 1)[1] if message.startswith('context 0') else message}"
        ) from None
