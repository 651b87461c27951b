"""Batch packing and host-to-device staging for the forecast engine.

``pack_contexts`` turns many windows of source series into one left-zero-padded float32 batch
and its padding mask, with the native multithreaded routine (``totowalk._C.pack``, GIL released)
when the extension is built and a numpy loop otherwise; both give the same bytes.

``StagingPipeline`` moves packed batches to the model's device. On CUDA with the native module
built with CUDA ("cuda-pinned"), batches are packed straight into a ring of pinned host slabs
allocated natively with ``cudaHostAlloc`` and copied with ``cudaMemcpyAsync`` on a dedicated copy
stream; the current torch stream waits on an event recorded after the copy, so packing and
copying bucket k+1 overlap computing bucket k. The device tensors are allocated by torch (on the
copy stream, then ``record_stream`` on the compute stream), so torch's caching allocator owns and
recycles them. Results come back through a second pinned ring. Without a CUDA build of the
extension the same API uses torch's pinned host allocator ("torch-pinned"); on a CPU device it
packs into ordinary memory ("cpu-native" or "numpy").

Request rows, shared by every function here:

* ``(series, end, padded_length)``: the context ``sources[series][0:end]`` (a prefix), or
* ``(series, start, end, padded_length)``: the window ``sources[series][start:end]``.

Each row is left-zero-padded to the batch width ``padded_length`` (the function argument); the
row's own ``padded_length`` must satisfy ``end - start <= row padded_length <= batch width``, which
catches a request put in the wrong patch-count bucket.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._native import native as compiled_module

__all__ = [
    "pack_contexts",
    "numpy_pack_reference",
    "StagingPipeline",
    "StagedBatch",
    "PendingResult",
    "native_status",
]

_REQUEST_COLUMNS = "(series, end, padded_length) or (series, start, end, padded_length)"


# ----------------------------------------------------------------------------- argument checks


def _request_table(requests) -> np.ndarray:
    """Normalise requests to a C-contiguous int64 (R, 4) table (series, start, end, padded)."""
    try:
        table = np.asarray(requests)
    except ValueError as exc:  # ragged list of tuples
        raise ValueError(f"requests rows must all be {_REQUEST_COLUMNS}: {exc}") from None
    if table.size == 0 and table.ndim <= 1:
        return np.zeros((0, 4), dtype=np.int64)
    if table.dtype.kind not in "iu":
        raise TypeError(f"requests must hold integers, got dtype {table.dtype}")
    if table.ndim != 2 or table.shape[1] not in (3, 4):
        raise ValueError(
            f"requests must have shape (R, 3) or (R, 4) with rows {_REQUEST_COLUMNS}; got shape {table.shape}"
        )
    if table.dtype.kind == "u" and table.size and table.max() > np.iinfo(np.int64).max:
        raise ValueError("requests hold values too large for int64")
    table = table.astype(np.int64, copy=False)
    if table.shape[1] == 3:  # prefix contexts: start = 0
        table = np.insert(table, 1, 0, axis=1)
    return np.ascontiguousarray(table)


def _source_list(sources) -> list:
    """Check every source is a 1-D native float32/float64 array; return them as a list."""
    if isinstance(sources, np.ndarray):
        raise TypeError("sources must be a list of 1-D arrays, not one array (wrap it: [array])")
    checked = []
    for index, source in enumerate(sources):
        array = source if isinstance(source, np.ndarray) else np.asarray(source)
        if array.ndim != 1:
            raise ValueError(f"source {index} has {array.ndim} dimensions, expected 1")
        if array.dtype not in (np.float32, np.float64) or not array.dtype.isnative:
            raise TypeError(f"source {index} has dtype {array.dtype}, expected native float32 or float64")
        checked.append(array)
    return checked


def _batch_width(table: np.ndarray, padded_length) -> int:
    if padded_length is None:
        return int(table[:, 3].max()) if len(table) else 0
    width = int(padded_length)
    if width != padded_length or width < 0:
        raise ValueError(f"padded_length must be a non-negative integer, got {padded_length!r}")
    return width


def _validate(sources: list, table: np.ndarray, width: int) -> None:
    """Raise ValueError naming the first bad request (same messages as the native check)."""
    lengths = np.array([len(s) for s in sources], dtype=np.int64)
    series, start, end, padded = table.T
    bad_series = (series < 0) | (series >= len(sources))
    safe = np.where(bad_series, 0, series)
    length = lengths[safe] if len(lengths) else np.zeros_like(series)
    bad_end = (end < 0) | (end > length)
    bad_start = (start < 0) | (start > end)
    bad_short = padded < end - start
    bad_wide = padded > width
    bad = bad_series | bad_end | bad_start | bad_short | bad_wide
    if not bad.any():
        return
    i = int(np.argmax(bad))
    s, b, e, p = (int(v) for v in table[i])
    if bad_series[i]:
        what = f"series {s} is out of range (have {len(sources)} sources)"
    elif bad_end[i]:
        what = f"end {e} is out of range for series {s} of length {int(length[i])}"
    elif bad_start[i]:
        what = f"start {b} must be in [0, end={e}]"
    elif bad_short[i]:
        what = f"padded_length {p} is shorter than its window of {e - b} values"
    else:
        what = f"padded_length {p} exceeds the batch width {width}"
    raise ValueError(f"request {i}: {what}")


def _output(out, name: str, dtype, shape) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    ok = (
        isinstance(out, np.ndarray)
        and out.dtype == dtype
        and out.shape == shape
        and out.flags.c_contiguous
        and out.flags.writeable
    )
    if not ok:
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(
            f"{name} must be a writable C-contiguous {np.dtype(dtype).name} array of shape {shape}; got {got}"
        )
    return out


# ----------------------------------------------------------------------------- packing


def numpy_pack_reference(sources, requests, padded_length=None):
    """Pack requests one at a time with numpy slicing: the reference ``pack_contexts`` matches.

    Parameters
    ----------
    sources : list of 1-D np.ndarray, float32 or float64, any stride.
    requests : (R, 3) or (R, 4) integer array or list of tuples; see the module docstring.
    padded_length : int or None
        Batch width P; None uses the largest row ``padded_length``.

    Returns
    -------
    values : (R, P) float32, zeros left of each window.
    mask : (R, P) bool, True where ``values`` holds a real value.
    """
    sources = _source_list(sources)
    table = _request_table(requests)
    width = _batch_width(table, padded_length)
    _validate(sources, table, width)
    values = np.zeros((len(table), width), dtype=np.float32)
    mask = np.zeros((len(table), width), dtype=bool)
    # float64 values beyond float32's range become +-inf, as numpy's cast defines (no warning).
    with np.errstate(over="ignore"):
        for row, (series, start, end, _) in enumerate(table):
            count = end - start
            if count:
                values[row, width - count :] = sources[series][start:end]
                mask[row, width - count :] = True
    return values, mask


def pack_contexts(sources, requests, padded_length=None, out=None, mask_out=None, threads=None):
    """Pack windows of source series into a left-zero-padded float32 batch and its mask.

    Uses the native multithreaded routine (GIL released) when ``totowalk._C`` is built, else
    ``numpy_pack_reference``; the results are byte-for-byte equal.

    Parameters
    ----------
    sources : list of 1-D np.ndarray
        Source series, float32 or float64, contiguous or strided (read in place, not copied).
    requests : (R, 3) or (R, 4) integer array or list of tuples
        Rows ``(series, end, padded_length)`` (prefix ``[0:end]``) or
        ``(series, start, end, padded_length)``; see the module docstring.
    padded_length : int or None
        Batch width P (>= every row's padded_length); None uses the largest row value.
    out : (R, P) float32 C-contiguous np.ndarray, optional
        Written in place (e.g. a numpy view of a pinned torch tensor).
    mask_out : (R, P) bool C-contiguous np.ndarray, optional
    threads : int or None
        Native worker threads; None or 0 uses ``totowalk._C.default_pack_threads()``.

    Returns
    -------
    values : (R, P) float32
    mask : (R, P) bool, True where ``values`` holds a real value.

    Raises
    ------
    ValueError
        A request out of range (naming the request index, series and bounds), a bad shape, or
        an ``out`` array of the wrong dtype/shape.
    TypeError
        A source that is not float32/float64.
    """
    native = compiled_module()
    sources = _source_list(sources)
    table = _request_table(requests)
    width = _batch_width(table, padded_length)
    shape = (len(table), width)
    values = _output(out, "out", np.float32, shape)
    mask = _output(mask_out, "mask_out", np.bool_, shape)
    if native is None:
        ref_values, ref_mask = numpy_pack_reference(sources, table, width)
        values[...] = ref_values
        mask[...] = ref_mask
        return values, mask
    native.pack(sources, table, width, values, mask, int(threads or 0))
    return values, mask


# ----------------------------------------------------------------------------- CUDA staging


class StagedBatch(NamedTuple):
    """A batch on its way to the device.

    values : (R, P) float32 torch.Tensor on the pipeline's device.
    mask : (R, P) bool torch.Tensor on the pipeline's device.
    ready : torch.cuda.Event recorded after the copy (None on CPU). The current stream at
        ``submit`` time already waits on it; other streams can ``wait_event(ready)``.
    """

    values: object
    mask: object
    ready: object


class PendingResult:
    """A device result being copied back to pinned host memory.

    ``ready()`` polls without blocking; ``wait()`` blocks until the copy is done and returns an
    ordinary numpy array (a copy out of the pinned slab, so the slab can be reused at once and
    the array stays valid forever). Dropping it without ``wait()`` frees its slab.
    """

    def __init__(self, array=None, ring=None, slot=-1, generation=-1, shape=(), dtype=None, event=None, host=None):
        self._array = array  # result already on the host (CPU device)
        # cuda-pinned path: where the native ring holds it and what it looks like
        self._ring, self._slot, self._generation = ring, slot, generation
        self._shape, self._dtype = shape, dtype
        self._event, self._host = event, host  # torch-pinned path

    def ready(self) -> bool:
        if self._ring is not None:
            return self._ring.query(self._slot)
        if self._event is not None:
            return self._event.query()
        return True

    def wait(self) -> np.ndarray:
        if self._array is None:
            if self._ring is not None:
                array = np.empty(self._shape, dtype=self._dtype)
                ring, self._ring = self._ring, None
                ring.collect(self._slot, self._generation, array)
                self._array = array
            else:
                self._event.synchronize()
                self._array = self._host.numpy().copy()
                self._host = self._event = None
        return self._array

    def __del__(self):
        ring = getattr(self, "_ring", None)
        if ring is not None:
            ring.release(self._slot, self._generation)


def _torch_to_numpy_dtype(dtype):
    import torch

    try:
        return torch.empty((), dtype=dtype).numpy().dtype
    except TypeError:  # bfloat16 and other dtypes numpy lacks
        raise TypeError(f"fetch_results: numpy has no {dtype}; cast the result (e.g. to float32) first") from None


class StagingPipeline:
    """Pack and copy batches to a device while the previous batch computes.

    Parameters
    ----------
    slab_bytes : int
        Size of each pinned input slab; a batch of R rows of width P needs
        ``4*R*P`` rounded up to 256, plus ``R*P`` bytes.
    num_slabs : int
        Slabs per ring (>= 2 to overlap; 3 lets the host run one batch ahead of two copies).
    device : str, torch.device or None
        Target device; None picks CUDA when available, else CPU.
    result_slab_bytes : int
        Size of each pinned slab used by ``fetch_results``.
    threads : int or None
        Native packing threads.
    enable_timing : bool
        Record CUDA timing events around each input copy (``last_copy_ms``); cuda-pinned only.
    """

    def __init__(
        self,
        slab_bytes: int,
        num_slabs: int = 3,
        device=None,
        result_slab_bytes: int = 1 << 20,
        threads=None,
        enable_timing: bool = False,
    ):
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        if int(slab_bytes) <= 0 or int(num_slabs) < 1 or int(result_slab_bytes) <= 0:
            raise ValueError(
                "slab_bytes and result_slab_bytes must be > 0 and num_slabs >= 1; got "
                f"{slab_bytes}, {result_slab_bytes}, {num_slabs}"
            )
        self.slab_bytes, self.num_slabs = int(slab_bytes), int(num_slabs)
        self.result_slab_bytes = int(result_slab_bytes)
        self.threads = int(threads or 0)
        self._enable_timing = bool(enable_timing)
        self._last_slot = None
        self._path = self._choose_path()
        self._input_ring = self._result_ring = None
        if self.device.type == "cuda":
            # Dedicated streams: inputs and results use separate copy engines.
            self._copy_stream = torch.cuda.Stream(self.device)
            self._result_stream = torch.cuda.Stream(self.device)
            if self._path == "cuda-pinned":
                native = compiled_module()
                index = self.device.index
                self._input_ring = native.PinnedRing(
                    self.slab_bytes,
                    self.num_slabs,
                    index,
                    self._copy_stream.cuda_stream,
                    self._enable_timing,
                )
                self._result_ring = native.PinnedRing(
                    self.result_slab_bytes,
                    self.num_slabs,
                    index,
                    self._result_stream.cuda_stream,
                    False,
                )

    def _choose_path(self) -> str:
        native = compiled_module()
        if self.device.type == "cuda":
            if native is not None and native.cuda_compiled() and native.cuda_device_count() > 0:
                return "cuda-pinned"
            return "torch-pinned"
        if self.device.type != "cpu":
            raise ValueError(f"StagingPipeline supports cpu and cuda devices, got {self.device}")
        return "cpu-native" if native is not None else "numpy"

    def native_path(self) -> str:
        """Which path runs: "cuda-pinned", "torch-pinned", "cpu-native" or "numpy"."""
        return self._path

    def submit(self, sources, requests, padded_length=None) -> StagedBatch:
        """Pack ``requests`` (see ``pack_contexts``) and start copying them to the device.

        Returns at once after packing (waiting only for a free slab); the current torch stream
        of the pipeline's device waits on the copy, so kernels queued on it afterwards see the
        data. Returns a StagedBatch(values (R, P) float32, mask (R, P) bool, ready event).
        """
        import torch

        sources = _source_list(sources)
        table = _request_table(requests)
        width = _batch_width(table, padded_length)
        shape = (len(table), width)
        if self.device.type == "cpu":
            values, mask = pack_contexts(sources, table, width, threads=self.threads)
            return StagedBatch(torch.from_numpy(values), torch.from_numpy(mask), None)

        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._copy_stream):
            # Allocated on the copy stream: the allocator recycles them in copy-stream order.
            values = torch.empty(shape, dtype=torch.float32, device=self.device)
            mask = torch.empty(shape, dtype=torch.bool, device=self.device)
        if self._path == "cuda-pinned":
            self._last_slot = self._input_ring.stage_pack(
                sources,
                table,
                width,
                values.data_ptr(),
                mask.data_ptr(),
                compute.cuda_stream,
                self.threads,
            )
        else:
            host_values = torch.empty(shape, dtype=torch.float32, pin_memory=True)
            host_mask = torch.empty(shape, dtype=torch.bool, pin_memory=True)
            pack_contexts(sources, table, width, host_values.numpy(), host_mask.numpy(), self.threads)
            with torch.cuda.stream(self._copy_stream):
                values.copy_(host_values, non_blocking=True)
                mask.copy_(host_mask, non_blocking=True)
            compute.wait_stream(self._copy_stream)
        ready = torch.cuda.Event()
        ready.record(self._copy_stream)
        # The compute stream uses them next; keep the allocator from recycling them early.
        values.record_stream(compute)
        mask.record_stream(compute)
        return StagedBatch(values, mask, ready)

    def fetch_results(self, tensor) -> PendingResult:
        """Start copying a (small) device result back to pinned host memory.

        The copy runs on a result stream after the work queued so far on the current stream.
        Returns a PendingResult; ``.wait()`` gives a numpy array of the tensor's shape/dtype.
        """
        import torch

        if tensor.device.type == "cpu":
            return PendingResult(array=tensor.detach().numpy().copy())
        if tensor.device != self.device:
            raise ValueError(f"fetch_results: tensor is on {tensor.device}, pipeline on {self.device}")
        tensor = tensor.detach().contiguous()
        compute = torch.cuda.current_stream(self.device)
        if self._path == "cuda-pinned":
            nbytes = tensor.numel() * tensor.element_size()
            slot, generation = self._result_ring.fetch(tensor.data_ptr(), nbytes, compute.cuda_stream)
            tensor.record_stream(self._result_stream)  # the copy still reads it
            return PendingResult(
                ring=self._result_ring,
                slot=slot,
                generation=generation,
                shape=tuple(tensor.shape),
                dtype=_torch_to_numpy_dtype(tensor.dtype),
            )
        self._result_stream.wait_stream(compute)
        with torch.cuda.stream(self._result_stream):
            host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            host.copy_(tensor, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self._result_stream)
        tensor.record_stream(self._result_stream)
        return PendingResult(event=event, host=host)

    def last_copy_ms(self) -> float:
        """CUDA-event time of the last ``submit``'s host-to-device copy (enable_timing only)."""
        if self._input_ring is None or self._last_slot is None:
            raise RuntimeError("last_copy_ms needs the cuda-pinned path and one submit() first")
        return self._input_ring.copy_ms(self._last_slot)

    def synchronize(self) -> None:
        """Wait for every queued copy in both directions."""
        if self.device.type == "cuda":
            self._copy_stream.synchronize()
            self._result_stream.synchronize()
            if self._input_ring is not None:
                self._input_ring.synchronize()


# ----------------------------------------------------------------------------- status


def native_status() -> dict:
    """Which packing and staging paths this installation uses (for ``tw.build_info()``).

    Keys: ``pack`` ("native" or "numpy"), ``pack_threads``, ``staging`` (the StagingPipeline
    path on the default device: "cuda-pinned", "torch-pinned", "cpu-native" or "numpy"),
    ``sanitized`` (the extension was built with AddressSanitizer).
    """
    import torch

    native = compiled_module()
    if torch.cuda.is_available():
        cuda_native = native is not None and native.cuda_compiled() and native.cuda_device_count() > 0
        staging = "cuda-pinned" if cuda_native else "torch-pinned"
    else:
        staging = "cpu-native" if native is not None else "numpy"
    return {
        "pack": "native" if native is not None else "numpy",
        "pack_threads": native.default_pack_threads() if native is not None else 1,
        "staging": staging,
        "sanitized": bool(native is not None and native.sanitized),
    }
