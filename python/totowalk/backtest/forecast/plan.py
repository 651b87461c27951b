"""All forecast requests of a backtest run, deduplicated across symbols, simulations and steps.

A context is determined by its symbol, key and length (LEGACY_SEMANTICS §2.3: it is
``pct_1 … pct_ℓ`` of the full series whichever simulation asks for it), so ``K`` simulations need
only ``K + 6`` distinct contexts per key. The plan lists each distinct context once, orders them by
length, hands them to the forecaster in as few calls as possible (the engine dedupes and buckets
by patch count across the whole call), and maps the results back to every (symbol, simulation,
key, step) slot.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..inputs.frames import float64_columns
from ..inputs.windows import PRICE_KEYS, STEPS, WindowLayout, percent_changes
from .forecasters import Forecasts


@dataclass
class SymbolSeries:
    """One symbol's validated prices, its windows and its per-key percent changes.

    Attributes
    ----------
    symbol : str
    frame : DataFrame with float64 Open/High/Low/Close (T rows), index as given
    layout : WindowLayout of its K simulations
    pct : dict key -> (T,) float64 percent changes (§2.1)
    """

    symbol: str
    frame: pd.DataFrame
    layout: WindowLayout
    pct: dict = field(default_factory=dict)

    @classmethod
    def build(cls, symbol, frame, layout, keys=PRICE_KEYS):
        pct = dict(zip(keys, percent_changes(np.stack(float64_columns(frame, keys)))))  # the keys at once
        return cls(symbol, frame, layout, pct)


class ForecastPlan:
    """Distinct forecast requests of a run and the map from result slots to requests.

    Attributes
    ----------
    series : list of SymbolSeries, in run order
    keys : tuple of price keys
    req_symbol, req_key, req_length : (U,) arrays describing each distinct request
    slot_request : (R, len(keys), 7) int, request index of every (row, key, step) slot, where the
        R rows are (symbol, simulation) pairs in run order (symbols, then simulation 0, 1, …)
    """

    def __init__(self, series: list[SymbolSeries], keys=PRICE_KEYS):
        self.series = list(series)
        self.keys = tuple(keys)
        symbols, key_idx, lengths, slots = [], [], [], []
        count = 0
        for s_i, s in enumerate(self.series):
            lengths_k = np.asarray(s.layout.context_lengths, dtype=np.int64)  # (K, 7)
            sym_slots = np.empty((lengths_k.shape[0], len(self.keys), STEPS), dtype=np.int64)
            # One request per distinct (series, key, length), numbered in order of first
            # appearance over the (simulation, step) slots.
            distinct, first, inverse = np.unique(lengths_k.reshape(-1), return_index=True, return_inverse=True)
            by_appearance = np.argsort(first, kind="stable")
            rank = np.empty_like(by_appearance)
            rank[by_appearance] = np.arange(by_appearance.size)
            for k_i in range(len(self.keys)):
                sym_slots[:, k_i, :] = (count + rank[inverse]).reshape(lengths_k.shape)
                symbols.append(np.full(distinct.size, s_i, dtype=np.int64))
                key_idx.append(np.full(distinct.size, k_i, dtype=np.int64))
                lengths.append(distinct[by_appearance])
                count += distinct.size
            slots.append(sym_slots)
        empty = np.empty(0, dtype=np.int64)
        self.req_series = np.concatenate(symbols) if symbols else empty
        self.req_key = np.concatenate(key_idx) if key_idx else empty
        self.req_length = np.concatenate(lengths) if lengths else empty
        self.slot_request = np.concatenate(slots, axis=0) if slots else np.empty((0, len(self.keys), STEPS), np.int64)
        self._float32: dict = {}  # (series, key) -> float32 pct_1 ... pct_T, read-only

    def __len__(self) -> int:
        return int(self.req_length.shape[0])

    @property
    def num_slots(self) -> int:
        return int(self.slot_request.size)

    def request_id(self, i: int) -> str:
        """Stable text name of request ``i``: ``symbol|key|length``."""
        return f"{self.series[self.req_series[i]].symbol}|{self.keys[self.req_key[i]]}|{self.req_length[i]}"

    def context(self, i: int) -> np.ndarray:
        """(ℓ,) float32 context of request ``i``: ``pct_1 … pct_ℓ`` of its key (§2.3).

        A read-only view: the contexts of one series-key are prefixes of one float32 array
        (converted once), so they cost no copy and the engine sees that they share memory.
        """
        return self._values(int(self.req_series[i]), int(self.req_key[i]))[: self.req_length[i]]

    def outcomes(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx),) float64: the return each request forecasts, ``pct_{ℓ+1}`` of its key (the row
        after its context), NaN where that row lies past the end of the data."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.full(len(idx), np.nan)
        pairs = self.req_series[idx] * len(self.keys) + self.req_key[idx]
        for pair in np.unique(pairs).tolist():  # one gather per series-key
            rows = np.flatnonzero(pairs == pair)
            pct = self.series[pair // len(self.keys)].pct[self.keys[pair % len(self.keys)]]
            targets = self.req_length[idx[rows]] + 1
            inside = targets < len(pct)
            out[rows[inside]] = pct[targets[inside]]
        return out

    def _values(self, s_i: int, k_i: int) -> np.ndarray:
        """float32 ``pct_1 … pct_T`` of series ``s_i``, key ``k_i`` (converted once, read-only)."""
        values = self._float32.get((s_i, k_i))
        if values is None:
            values = self.series[s_i].pct[self.keys[k_i]][1:].astype(np.float32)
            values.flags.writeable = False
            self._float32[(s_i, k_i)] = values
        return values

    def walk_forward(self, idx: np.ndarray) -> tuple[list, list, np.ndarray]:
        """Requests ``idx`` as walk-forward requests: (series, ends, order), one float32 series per
        series-key among them with its context lengths; results come back in ``idx[order]`` order."""
        pairs = self.req_series[idx] * len(self.keys) + self.req_key[idx]
        distinct, which = np.unique(pairs, return_inverse=True)
        order = np.argsort(which, kind="stable")
        bounds = np.cumsum(np.bincount(which, minlength=len(distinct)))[:-1]
        series = [self._values(int(pair) // len(self.keys), int(pair) % len(self.keys)) for pair in distinct]
        return series, np.split(self.req_length[idx][order], bounds), order

    def batches(self, max_batch: int, todo=None, patch_size: int = 64) -> list[np.ndarray]:
        """Request indices cut into chunks of at most ``max_batch``, one forecaster call each.

        One series-key's contexts are prefixes of each other, and the engine serves every context
        whose length is congruent modulo the patch size from one shared forward (walk-forward
        prefix sharing) when they arrive in the same call. So a chunk holds whole series-keys; a
        series-key larger than ``max_batch`` is cut between its residue classes (length mod
        ``patch_size``), never inside one. The engine buckets by patch count inside each call;
        chunks only bound the work lost to an interruption. The order is deterministic, so a
        resumed run makes the same chunks.

        Parameters
        ----------
        max_batch : most contexts per forecaster call
        todo : optional (U,) bool mask of requests still to compute (resume skips the rest)
        patch_size : the forecaster's alignment unit (Toto's patch); only the cut points depend on it
        """
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        idx = np.arange(len(self)) if todo is None else np.flatnonzero(todo)
        lengths = self.req_length[idx]
        order = np.lexsort((lengths, lengths % patch_size, self.req_key[idx], self.req_series[idx]))
        idx = idx[order]
        if idx.size == 0:
            return []
        group = self.req_series[idx] * len(self.keys) + self.req_key[idx]
        cuts = np.flatnonzero(np.diff(group)) + 1
        chunks, current = [], []

        def held(parts) -> int:
            return sum(len(p) for p in parts)

        for part in np.split(idx, cuts):
            if held(current) + len(part) > max_batch and current:
                chunks.append(np.concatenate(current))
                current = []
            if len(part) <= max_batch:
                current.append(part)
                continue
            residue = self.req_length[part] % patch_size
            pieces = np.split(part, np.flatnonzero(np.diff(residue)) + 1)  # whole residue chains
            piece_chunk, size = [], 0
            for piece in pieces:
                for start in range(0, len(piece), max_batch):  # a chain longer than a chunk is cut
                    bit = piece[start : start + max_batch]
                    if size + len(bit) > max_batch and piece_chunk:
                        chunks.append(np.concatenate(piece_chunk))
                        piece_chunk, size = [], 0
                    piece_chunk.append(bit)
                    size += len(bit)
            current = piece_chunk
        if current:
            chunks.append(np.concatenate(current))
        return chunks


def check_chunk_result(plan: ForecastPlan, idx: np.ndarray, found: Forecasts) -> None:
    """A forecaster's answer for the requests ``idx``: one finite point and one band each."""
    p, b = found.point, found.band
    if p.shape != (len(idx),) or b.shape != (len(idx),):
        raise ValueError(f"forecaster returned point {p.shape} and band {b.shape} for {len(idx)} contexts")
    bad = ~np.isfinite(p)
    if bad.any():
        raise ValueError(f"forecaster returned a non-finite forecast for {plan.request_id(idx[bad][0])}")


def gives_mixture(forecaster) -> bool:
    """Whether ``forecaster`` scores its forecasts exactly (the engine's exact estimator)."""
    return bool(getattr(forecaster, "gives_mixture", False))


def chunk_request(plan: ForecastPlan, forecaster, idx: np.ndarray) -> tuple[object, np.ndarray]:
    """What one forecaster call gets for requests ``idx``, and ``idx`` in the order its results come
    back: walk-forward ``(series, ends, outcomes)`` where the forecaster takes them (the engine: each
    series once, its contexts known prefixes; the outcomes, to score them, when it gives its
    mixture), else the list of contexts."""
    if hasattr(forecaster, "walk_forward"):
        series, ends, order = plan.walk_forward(idx)
        outcomes = plan.outcomes(idx[order]) if gives_mixture(forecaster) else None
        return (series, ends, outcomes), idx[order]
    return [plan.context(i) for i in idx], idx


def run_request(forecaster, request, scoring=None) -> Forecasts:
    """The :class:`Forecasts` of one :func:`chunk_request`, point and band as float32; with
    ``scoring`` (an executor), scores may still be on their way (:meth:`Forecasts.settle`)."""
    if not isinstance(request, tuple):
        found = forecaster(request)
    elif scoring is not None:
        found = forecaster.walk_forward(*request, scoring=scoring)
    else:
        found = forecaster.walk_forward(*request)
    found.point, found.band = np.asarray(found.point, np.float32), np.asarray(found.band, np.float32)
    return found


def known_forecasts(plan: ForecastPlan, forecaster, done=None) -> tuple[Forecasts, np.ndarray]:
    """The run's forecasts as far as ``done`` knows them, and the (U,) mask of requests still to run."""
    found = Forecasts.unknown(len(plan), gives_mixture(forecaster))
    todo = np.ones(len(plan), dtype=bool)
    if done is not None:
        mask, stored = done
        found.put(np.flatnonzero(mask), stored.take(mask))
        todo[mask] = False
    return found, todo


def compute_forecasts(
    plan: ForecastPlan, forecaster, *, max_batch: int = 1024, done=None, on_batch=None, progress=None
) -> Forecasts:
    """Run every distinct request of ``plan`` through ``forecaster``.

    Parameters
    ----------
    plan : ForecastPlan
    forecaster : callable(list of (ℓ,) float32) -> :class:`Forecasts`
    max_batch : most contexts per forecaster call (the whole run in one call when it fits)
    done : optional ``(mask (U,) bool, Forecasts of (U,))`` of results already known (resume)
    on_batch : optional ``on_batch(indices (B,), Forecasts of (B,))`` called after each batch,
        e.g. to persist it
    progress : optional tqdm-like object; ``update(B)`` is called after each batch

    Returns
    -------
    Forecasts of the (U,) requests; pit and crps when the forecaster gives its mixture
    """
    found, todo = known_forecasts(plan, forecaster, done)

    def finish(idx, part):
        part.settle()
        check_chunk_result(plan, idx, part)
        found.put(idx, part)
        if on_batch is not None:
            on_batch(idx, part)
        if progress is not None:
            progress.update(len(idx))

    # a batch's exact scores are computed while the next batch is forecast (the scorer releases the
    # GIL: its threads fill the cores the forecast leaves idle); each batch is finished in order
    scoring = ThreadPoolExecutor(1, thread_name_prefix="totowalk-scores") if gives_mixture(forecaster) else None
    waiting = None  # (idx, part) forecast, its scores on the way
    try:
        for chunk in plan.batches(max_batch, todo):
            request, idx = chunk_request(plan, forecaster, chunk)
            try:
                part = run_request(forecaster, request, scoring)
            finally:  # the batch before is complete whatever becomes of this one: kept (on_batch) first
                if waiting is not None:
                    finish(*waiting)
                    waiting = None
            if part.pending is None:
                finish(idx, part)
            else:
                waiting = (idx, part)
        if waiting is not None:
            finish(*waiting)
    finally:
        if scoring is not None:
            scoring.shutdown(wait=True)
    return found
