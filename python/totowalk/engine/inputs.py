"""Turn the caller's ``contexts`` into validated float32 ``(V, L)`` arrays with content hashes.

The model consumes float32, so contexts are validated and hashed in float32: two float64 contexts
that round to the same float32 values give the same model input, the same forecast and the same
content hash (and therefore the same random stream).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ContextBatch", "content_digest", "normalize_contexts"]


@dataclass(frozen=True)
class ContextBatch:
    """Requests in caller order.

    Attributes
    ----------
    series : list of np.ndarray
        One float32 C-contiguous array of shape (V, L_i) per request.
    multivariate : bool
        True when the caller passed (B, V, T) or 2-D items, so results keep a variate axis.
    num_variates : int
        V, the same for every request.
    lengths : np.ndarray, optional
        (B,) int64 L_i, where the caller knows them (walk-forward ends); else read from the
        arrays on first use.
    """

    series: list
    multivariate: bool
    num_variates: int
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.series)

    def context_lengths(self) -> np.ndarray:
        """(B,) int64 length of every context."""
        if self.lengths is None:
            object.__setattr__(
                self, "lengths", np.fromiter((s.shape[-1] for s in self.series), dtype=np.int64, count=len(self.series))
            )
        return self.lengths


def _as_numpy(item, index: int) -> np.ndarray:
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    try:
        arr = np.asarray(item)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"context {index}: cannot convert {type(item).__name__} to an array ({exc})") from None
    if arr.dtype.kind not in "fiu":  # floats, signed and unsigned integers (not bool, complex, object)
        raise TypeError(f"context {index}: expected real numbers, got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, index: int) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        variate, position = (int(i[0]) for i in np.nonzero(bad)) if arr.ndim == 2 else (0, int(np.argmax(bad)))
        value = arr[variate, position] if arr.ndim == 2 else arr[position]
        where = (
            f"variate {variate}, position {position}" if arr.ndim == 2 and arr.shape[0] > 1 else f"position {position}"
        )
        raise ValueError(
            f"context {index}: non-finite value {value} at {where} "
            f"({int(bad.sum())} non-finite in total); drop or fill missing values before forecasting"
        )


def normalize_contexts(contexts) -> ContextBatch:
    """Validate ``contexts`` and convert each request to a float32 (V, L) array.

    Parameters
    ----------
    contexts : sequence of array-like, or array-like
        A list of 1-D arrays of any lengths (univariate), a list of 2-D (V, L_i) arrays
        (multivariate, same V), a (B, T) array, or a (B, V, T) array (multivariate).

    Returns
    -------
    ContextBatch

    Raises
    ------
    ValueError
        A zero-length context, a non-finite value (naming the request index and position),
        mixed variate counts, or an array of the wrong rank.
    """
    if isinstance(contexts, (np.ndarray, torch.Tensor)):
        array = _as_numpy(contexts, 0)
        if array.ndim == 1:
            raise ValueError(
                "contexts: a single 1-D array is ambiguous; pass [context] for one series "
                "or a (B, T) array for B series of equal length"
            )
        if array.ndim not in (2, 3):
            raise ValueError(f"contexts: expected a (B, T) or (B, V, T) array, got shape {array.shape}")
        items, multivariate = list(array), array.ndim == 3
    else:
        try:
            items = list(contexts)
        except TypeError:
            raise TypeError(f"contexts: expected a list of arrays or an array, got {type(contexts).__name__}") from None
        multivariate = None

    series = []
    num_variates = None
    for index, item in enumerate(items):
        arr = _as_numpy(item, index)
        if arr.ndim == 1:
            arr = arr[None, :]
            item_multivariate = False
        elif arr.ndim == 2:
            item_multivariate = True
        else:
            raise ValueError(f"context {index}: expected a 1-D series or a (V, L) array, got shape {arr.shape}")
        if multivariate is None:
            multivariate = item_multivariate
        elif multivariate != item_multivariate and not isinstance(contexts, (np.ndarray, torch.Tensor)):
            raise ValueError(f"context {index}: mixes 1-D and 2-D contexts; pass all univariate or all (V, L)")
        if arr.shape[-1] == 0:
            raise ValueError(f"context {index}: zero-length context; every request needs at least one value")
        if arr.shape[0] == 0:
            raise ValueError(f"context {index}: zero variates in shape {arr.shape}")
        if num_variates is None:
            num_variates = arr.shape[0]
        elif arr.shape[0] != num_variates:
            raise ValueError(f"context {index}: has {arr.shape[0]} variates, context 0 has {num_variates}")
        series.append(_as_float32(arr, index))
    return ContextBatch(series=series, multivariate=bool(multivariate), num_variates=num_variates or 1)


def _as_float32(arr: np.ndarray, index: int) -> np.ndarray:
    # Convert first, check once: a float32 result is finite exactly when the input was finite and
    # within float32's range (one pass over the values; the slow diagnosis runs only on failure).
    if arr.dtype == np.float32:
        converted = np.ascontiguousarray(arr)
    else:
        with np.errstate(over="ignore"):
            converted = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(converted).all():
        _check_finite(arr, index)
        raise ValueError(f"context {index}: values overflow float32 (max {np.finfo(np.float32).max:.3g})")
    return converted


def content_digest(series: np.ndarray) -> bytes:
    """A 16-byte BLAKE2b digest of a float32 (V, L) context: its values, then its shape (int64).

    Used both to deduplicate requests and (its first 8 bytes) as the request's random-stream key.
    The values come first so that the contexts of one series, prefixes of each other, can be
    hashed from one running state (``plan._walk_forward_digests``).
    """
    h = hashlib.blake2b(series if series.flags.c_contiguous else series.tobytes(), digest_size=16)
    h.update(np.asarray(series.shape, dtype=np.int64).tobytes())
    return h.digest()
