"""Left-zero-pad a batch of contexts into the model's (b, V, P) input and padding mask.

Uses the native ``staging.pack_contexts`` when it is available (multithreaded, GIL released);
otherwise packs with numpy. Both give byte-identical results.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pack_batch", "staging_requests"]


def _pack_with_numpy(series: list, padded_length: int) -> tuple:
    num_variates = series[0].shape[0]
    values = np.zeros((len(series), num_variates, padded_length), dtype=np.float32)
    mask = np.zeros((len(series), num_variates, padded_length), dtype=bool)
    for row, context in enumerate(series):
        length = context.shape[-1]
        values[row, :, padded_length - length :] = context
        mask[row, :, padded_length - length :] = True
    return values, mask


def staging_requests(series: list, padded_length: int) -> tuple:
    """Sources and request rows for ``staging.pack_contexts`` / ``StagingPipeline.submit``.

    Returns
    -------
    sources : list of np.ndarray
        One 1-D float32 array per (context, variate), row-major: row r*V + v.
    requests : np.ndarray
        (b*V, 4) int64 rows (source, start=0, end=length, padded_length).
    """
    num_variates = series[0].shape[0]
    sources = [context[v] for context in series for v in range(num_variates)]
    requests = np.array([(i, 0, src.shape[0], padded_length) for i, src in enumerate(sources)], dtype=np.int64).reshape(
        -1, 4
    )
    return sources, requests


def _pack_with_staging(series: list, padded_length: int):
    try:
        from .staging import pack_contexts
    except ImportError:
        return None
    sources, requests = staging_requests(series, padded_length)
    values, mask = pack_contexts(sources, requests, padded_length)
    shape = (len(series), series[0].shape[0], padded_length)
    return np.asarray(values).reshape(shape), np.asarray(mask).reshape(shape)


def pack_batch(series: list, padded_length: int) -> tuple:
    """Pack contexts for one model call.

    Parameters
    ----------
    series : list of np.ndarray
        b float32 (V, L_i) contexts with L_i <= padded_length.
    padded_length : int
        P, a multiple of the patch size.

    Returns
    -------
    values : np.ndarray
        (b, V, P) float32, zeros on the left, the context right-aligned.
    mask : np.ndarray
        (b, V, P) bool, True where a real value sits.
    """
    packed = _pack_with_staging(series, padded_length)
    if packed is None:
        packed = _pack_with_numpy(series, padded_length)
    return packed
