"""Plan a forecast call: deduplicate identical contexts, bucket them by patch count, split by budget.

Why bucket by ``ceil(L / patch_size)``: Toto's time-wise attention has no padding mask and its
xPos positions count patches from the start of the padded array, so an extra all-padding patch
changes the forecast. Contexts with the same patch count are left-padded to the same length a
separate call would give them, so batching them changes nothing (rows are independent).
"""

from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .._native import native as compiled_module
from .inputs import ContextBatch, content_digest
from .prefix_sharing import ScalerSettings, group_prefixes

__all__ = ["Batch", "ForecastPlan", "Readout", "num_patches", "plan_forecast", "split_batch"]


def num_patches(length: int, patch_size: int) -> int:
    """Patches a context of ``length`` values occupies after left-padding: ceil(length / patch_size)."""
    return -(-int(length) // int(patch_size))


@dataclass(frozen=True)
class Readout:
    """Where a shared batch reads each served context (see ``prefix_sharing``).

    Attributes
    ----------
    contexts : np.ndarray
        (M,) int64 unique indices served by the batch.
    rows : np.ndarray
        (M,) int64 row of the batch (index into ``Batch.members``) whose forward serves each.
    positions : np.ndarray
        (M,) int64 patch index of each context's last patch in that row.
    """

    contexts: np.ndarray
    rows: np.ndarray
    positions: np.ndarray


@dataclass(frozen=True)
class Batch:
    """Unique contexts that go through the model together.

    Attributes
    ----------
    num_patches : int
        Every member is left-padded to ``num_patches * patch_size`` values.
    members : np.ndarray
        (b,) int64 indices into the plan's unique contexts: the contexts run through the model.
    readout : Readout or None
        For a prefix-shared batch, the contexts each member's forward serves; None when every
        member serves itself at its last patch.
    """

    num_patches: int
    members: np.ndarray
    readout: Readout | None = None

    @property
    def served(self) -> np.ndarray:
        """Unique indices whose results this batch produces, in output order."""
        return self.members if self.readout is None else self.readout.contexts


@dataclass(frozen=True)
class ForecastPlan:
    """Where each request's forecast comes from.

    Attributes
    ----------
    unique_series : list of np.ndarray
        U float32 (V, L) contexts, in order of first appearance.
    inverse : np.ndarray
        (B,) int64: request i is answered by unique context ``inverse[i]``.
    stream_keys : np.ndarray
        (U, V) uint64 content hashes per (unique context, variate): the random-stream keys, so a
        request's samples depend on its content only, never on batch position or neighbours.
    batches : list of Batch
        Each unique context appears in exactly one batch.
    """

    unique_series: list
    inverse: np.ndarray
    stream_keys: np.ndarray
    batches: list

    @property
    def num_unique(self) -> int:
        return len(self.unique_series)


_PARALLEL_HASH_BYTES = 8 << 20  # below this, threads cost more than they save


def _digests(series: list) -> np.ndarray:
    """content_digest of every context as an (N, 16) uint8 array: in the compiled module (BLAKE2b
    on native threads, one call) where it is built, else hashlib across Python threads (hashlib
    releases the GIL while hashing buffers over 2 KB)."""
    native = compiled_module()
    if native is not None and hasattr(native, "content_digests"):
        try:
            return np.frombuffer(native.content_digests(series), dtype=np.uint8).reshape(len(series), 16)
        except (TypeError, ValueError):  # not float32 C-contiguous arrays: hashlib takes any buffer
            pass
    total = sum(s.nbytes for s in series)
    workers = min(8, os.cpu_count() or 1)
    if workers < 2 or total < _PARALLEL_HASH_BYTES:
        digests = [content_digest(s) for s in series]
    else:
        step = -(-len(series) // workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = pool.map(
                lambda start: [content_digest(s) for s in series[start : start + step]], range(0, len(series), step)
            )
            digests = [digest for part in parts for digest in part]
    return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(series), 16)


def _walk_forward_digests(series: list, families: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """content_digest of every (1, L) context of walk-forward families, as (N, 16) uint8, hashing
    each family's longest member once: the others are its prefixes (what ``families`` promises),
    so one running BLAKE2b state per family, copied at each member's end, serves all of them."""
    _, family = np.unique(families, return_inverse=True)
    longest = np.lexsort((-lengths, family))
    firsts = longest[np.r_[0, np.flatnonzero(np.diff(family[longest])) + 1]] if len(series) else longest
    bases = [series[i].reshape(-1) for i in firsts]
    native = compiled_module()
    if native is not None and hasattr(native, "walk_forward_digests"):
        blob = native.walk_forward_digests(bases, family.astype(np.int64), lengths)
        return np.frombuffer(blob, dtype=np.uint8).reshape(len(series), 16)
    out = np.empty((len(series), 16), dtype=np.uint8)
    for f, base in enumerate(bases):
        members = np.flatnonzero(family == f)
        members = members[np.argsort(lengths[members], kind="stable")]
        running, fed = hashlib.blake2b(digest_size=16), 0
        for i in members:
            running.update(base[fed : lengths[i]])
            fed = lengths[i]
            context = running.copy()
            context.update(np.asarray((1, fed), dtype=np.int64).tobytes())
            out[i] = np.frombuffer(context.digest(), dtype=np.uint8)
    return out


def _first_seen(digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deduplication by digest: (first, inverse), ``first`` the index of each distinct digest's
    first request, in order of first appearance, ``inverse`` each request's distinct index."""
    if len(digests) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keys = np.ascontiguousarray(digests).view(np.dtype((np.void, 16))).ravel()
    _, first, which = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[which.ravel()].astype(np.int64)


def _stream_keys(digests: np.ndarray, num_variates: int) -> np.ndarray:
    """(U, V) uint64 keys: the digest's first 8 bytes (little-endian) for V = 1, a per-variate
    re-hash otherwise."""
    if num_variates == 1:
        return np.ascontiguousarray(digests[:, :8]).view("<u8").reshape(len(digests), 1).astype(np.uint64)
    words = [
        hashlib.blake2b(bytes(digest) + v.to_bytes(4, "little"), digest_size=8).digest()
        for digest in digests
        for v in range(num_variates)
    ]
    return np.frombuffer(b"".join(words), dtype="<u8").reshape(len(digests), num_variates).copy()


def plan_forecast(
    contexts: ContextBatch,
    patch_size: int,
    max_batch_tokens: int,
    rows_per_context: int = 1,
    extra_patches: int = 0,
    share_prefixes: ScalerSettings | None = None,
    families=None,
) -> ForecastPlan:
    """Deduplicate, bucket by patch count and split buckets so no batch exceeds the token budget.

    Parameters
    ----------
    contexts : ContextBatch
        Validated requests.
    patch_size : int
        The model's patch length (64 for Toto).
    max_batch_tokens : int
        Budget of patch tokens per model call:
        members * V * rows_per_context * (num_patches + extra_patches).
        A single context over budget still gets a batch of its own (never dropped).
    rows_per_context : int
        Model rows one context occupies: 1 for one-pass forecasting, the number of sample paths
        for autoregressive decoding.
    extra_patches : int
        Patches appended by autoregressive decoding (they occupy the KV cache too).
    share_prefixes : ScalerSettings, optional
        Serve contexts that are prefixes of a longer one (same length modulo the patch size) from
        that one's forward (``prefix_sharing``); those batches carry a ``Readout``.
    families : array-like of int, optional
        Per request, the id of a series it is a prefix of (walk-forward requests): sharing takes
        its families from it instead of comparing values, and univariate contexts are hashed as
        prefixes of their family's longest member (each series once).

    Returns
    -------
    ForecastPlan
    """
    if max_batch_tokens < 1:
        raise ValueError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
    if families is not None and contexts.num_variates == 1:
        digests = _walk_forward_digests(
            contexts.series, np.asarray(families, dtype=np.int64), contexts.context_lengths()
        )
    else:
        digests = _digests(contexts.series)
    first, inverse = _first_seen(digests)
    unique_series = [contexts.series[i] for i in first]
    stream_keys = _stream_keys(digests[first], contexts.num_variates)

    lengths = contexts.context_lengths()[first]
    patches = -(-lengths // int(patch_size))
    alone, groups = np.arange(len(unique_series)), None
    if share_prefixes is not None and rows_per_context == 1 and extra_patches == 0:
        unique_families = None if families is None else np.asarray(families, dtype=np.int64)[first]
        groups, alone = group_prefixes(unique_series, share_prefixes, unique_families, lengths)
    batches = []
    for p in np.unique(patches[alone]):
        members = alone[patches[alone] == p]
        per_batch = _per_batch(int(p), contexts.num_variates, max_batch_tokens, rows_per_context, extra_patches)
        for start in range(0, len(members), per_batch):
            batches.append(Batch(num_patches=int(p), members=members[start : start + per_batch]))
    if groups is not None:
        batches += _shared_batches(groups, patches, contexts.num_variates, max_batch_tokens)
    return ForecastPlan(unique_series=unique_series, inverse=inverse, stream_keys=stream_keys, batches=batches)


def _per_batch(
    patches: int, num_variates: int, max_batch_tokens: int, rows_per_context: int = 1, extra_patches: int = 0
) -> int:
    tokens_each = (patches + extra_patches) * num_variates * rows_per_context
    return max(1, max_batch_tokens // tokens_each)


def _shared_batches(groups, patches: np.ndarray, num_variates: int, max_batch_tokens: int) -> list:
    """Batches of group roots (bucketed by the root's patch count, groups in order within a
    bucket) with the readouts they serve."""
    root_patches = patches[groups.roots]
    sizes = np.diff(groups.starts)
    batches = []
    for p in np.unique(root_patches):
        bucket = np.flatnonzero(root_patches == p)
        per_batch = _per_batch(int(p), num_variates, max_batch_tokens)
        for start in range(0, len(bucket), per_batch):
            chosen = bucket[start : start + per_batch]
            counts = sizes[chosen]
            # the chosen groups' member spans, concatenated
            offsets = np.repeat(groups.starts[chosen] - (np.cumsum(counts) - counts), counts)
            span = offsets + np.arange(int(counts.sum()))
            readout = Readout(
                groups.members[span], np.repeat(np.arange(len(chosen), dtype=np.int64), counts), groups.positions[span]
            )
            batches.append(Batch(num_patches=int(p), members=groups.roots[chosen], readout=readout))
    return batches


def split_batch(batch: Batch) -> tuple:
    """Halve a batch (used to retry after running out of device memory); readouts follow their rows."""
    half = math.ceil(len(batch.members) / 2)
    if batch.readout is None:
        return Batch(batch.num_patches, batch.members[:half]), Batch(batch.num_patches, batch.members[half:])
    r = batch.readout
    first = r.rows < half
    return (
        Batch(batch.num_patches, batch.members[:half], Readout(r.contexts[first], r.rows[first], r.positions[first])),
        Batch(
            batch.num_patches,
            batch.members[half:],
            Readout(r.contexts[~first], r.rows[~first] - half, r.positions[~first]),
        ),
    )
