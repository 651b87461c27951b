"""pack_contexts (native and numpy paths) against numpy_pack_reference, byte for byte.

No torch here: this file is also run against an AddressSanitizer build of the extension
(tests/test_native_asan.py), so it must stay quick and exercise every native code path.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from totowalk.engine import staging
from totowalk.engine.staging import numpy_pack_reference, pack_contexts

NATIVE = staging.compiled_module()


@pytest.fixture(params=["native", "numpy"])
def pack(request, monkeypatch):
    """pack_contexts on one path: the compiled routine, or the numpy fallback."""
    if request.param == "native":
        if NATIVE is None:
            pytest.skip("totowalk._C is not built")
    else:
        monkeypatch.setattr(staging, "compiled_module", lambda: None)
    return pack_contexts


def _special_values(n, rng):
    """float64 values including ones whose float32 rounding is delicate."""
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n)
    special = [np.nan, np.inf, -np.inf, -0.0, 1e-45, 1e39, -1e39, 2.0**-149, 1 + 2.0**-24]
    x[rng.integers(0, n, min(n, 20))] = rng.choice(special, min(n, 20))
    return x


def _sources(rng):
    """Sources of every layout the native loads handle: dtypes, strides, unaligned, empty."""
    base64 = _special_values(12_000, rng)
    unaligned_buffer = bytearray(8 * 3001 + 1)
    unaligned = np.frombuffer(unaligned_buffer, dtype=np.float64, count=3001, offset=1)
    unaligned[:] = rng.standard_normal(3001)
    assert not unaligned.flags.aligned
    with np.errstate(over="ignore"):  # +-1e39 becomes +-inf in float32, as intended
        base32 = base64.astype(np.float32)
    return [
        base64[:5000].copy(),  # float64 contiguous
        base32[:5000],  # float32 contiguous (memcpy)
        base64[::3][:2500],  # float64 strided
        base32[::-2][:4000],  # float32 negative stride
        unaligned,  # float64 unaligned
        np.zeros(0, dtype=np.float32),  # empty
        rng.standard_normal(1).astype(np.float32),  # single value
        np.asfortranarray(rng.standard_normal((7, 300)))[2],  # row of a Fortran array
    ]


def _random_requests(rng, sources, count, width):
    rows = []
    for _ in range(count):
        series = int(rng.integers(len(sources)))
        length = len(sources[series])
        end = int(rng.integers(0, length + 1))
        start = int(rng.integers(max(0, end - width), end + 1))
        padded = int(rng.integers(end - start, width + 1))
        rows.append((series, start, end, padded))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _assert_same_bytes(got, want):
    assert got[0].dtype == np.float32 and got[1].dtype == np.bool_
    assert got[0].shape == want[0].shape and got[1].shape == want[1].shape
    assert got[0].tobytes() == want[0].tobytes(), "values differ from the numpy reference"
    assert np.array_equal(got[1], want[1]), "mask differs from the numpy reference"


@pytest.mark.parametrize(
    "seed, count, width, threads",
    [
        (0, 300, 5000, None),  # wide rows: several worker threads
        (1, 1000, 64, 3),  # many short rows, small batch: caller thread only
        (2, 257, 1536, 7),  # odd row count split over 7 threads
        (3, 40, 5000, 1),
    ],
)
def test_pack_matches_reference_on_random_requests(pack, seed, count, width, threads):
    rng = np.random.default_rng(seed)
    sources = _sources(rng)
    requests = _random_requests(rng, sources, count, width)
    got = pack(sources, requests, width, threads=threads)
    _assert_same_bytes(got, numpy_pack_reference(sources, requests, width))


def test_prefix_rows_equal_windows_starting_at_zero(pack):
    rng = np.random.default_rng(4)
    sources = [rng.standard_normal(1500), rng.standard_normal(900).astype(np.float32)]
    prefix = [(0, 1450, 1472), (1, 900, 960), (0, 0, 64), (1, 1, 1)]
    window = [(s, 0, e, p) for s, e, p in prefix]
    got = pack(sources, prefix, 1472)
    _assert_same_bytes(got, pack(sources, window, 1472))
    values, mask = got
    assert values[0, -1] == np.float32(sources[0][1449]) and mask[0].sum() == 1450
    assert not mask[2].any() and values[2].tobytes() == bytes(4 * 1472)


def test_left_padding_layout_on_a_hand_made_case(pack):
    source = np.arange(10, dtype=np.float64)
    values, mask = pack([source], [(0, 2, 5, 4), (0, 7, 7, 0)], 6)
    np.testing.assert_array_equal(values, [[0, 0, 0, 2, 3, 4], [0] * 6])
    np.testing.assert_array_equal(mask, [[0, 0, 0, 1, 1, 1], [0] * 6])


def test_writes_in_place_over_garbage(pack):
    rng = np.random.default_rng(5)
    sources = _sources(rng)
    requests = _random_requests(rng, sources, 50, 700)
    out = np.full((50, 700), np.nan, dtype=np.float32)
    mask_out = np.ones((50, 700), dtype=bool)
    values, mask = pack(sources, requests, 700, out=out, mask_out=mask_out)
    assert values is out and mask is mask_out
    _assert_same_bytes((out, mask_out), numpy_pack_reference(sources, requests, 700))


def test_empty_batch_and_default_width(pack):
    sources = [np.ones(5)]
    values, mask = pack(sources, [], 128)
    assert values.shape == (0, 128) and mask.shape == (0, 128)
    values, mask = pack(sources, np.zeros((0, 3), dtype=np.int32), None)
    assert values.shape == (0, 0)
    values, mask = pack(sources, [(0, 3, 8), (0, 5, 16)], None)  # width = largest padded_length
    assert values.shape == (2, 16) and mask.sum() == 8


def test_concurrent_calls_from_python_threads(pack):
    rng = np.random.default_rng(6)
    sources = _sources(rng)
    batches = [_random_requests(rng, sources, 64, 1024) for _ in range(8)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda r: pack(sources, r, 1024, threads=2), batches))
    for requests, got in zip(batches, results):
        _assert_same_bytes(got, numpy_pack_reference(sources, requests, 1024))


BAD_REQUESTS = [
    ((2, 0, 3, 8), r"request 1: series 2 is out of range \(have 2 sources\)"),
    ((-1, 0, 3, 8), r"request 1: series -1 is out of range"),
    ((1, 0, 11, 16), r"request 1: end 11 is out of range for series 1 of length 10"),
    ((0, 0, -1, 8), r"request 1: end -1 is out of range for series 0 of length 20"),
    ((0, 5, 4, 8), r"request 1: start 5 must be in \[0, end=4\]"),
    ((0, -2, 4, 8), r"request 1: start -2 must be in \[0, end=4\]"),
    ((0, 0, 9, 8), r"request 1: padded_length 8 is shorter than its window of 9 values"),
    ((0, 0, 3, 32), r"request 1: padded_length 32 exceeds the batch width 16"),
]


@pytest.mark.parametrize("bad, message", BAD_REQUESTS)
def test_bad_request_names_it_and_writes_nothing(pack, bad, message):
    sources = [np.arange(20.0), np.arange(10, dtype=np.float32)]
    requests = [(0, 0, 4, 8), bad, (1, 9, 10, 16)]
    out = np.full((3, 16), 7.0, dtype=np.float32)
    mask_out = np.zeros((3, 16), dtype=bool)
    with pytest.raises(ValueError, match=message):
        pack(sources, requests, 16, out=out, mask_out=mask_out)
    assert (out == 7.0).all() and not mask_out.any()


@pytest.mark.parametrize(
    "source, error, message",
    [
        (np.arange(5), TypeError, "source 1 has dtype int64, expected native float32 or float64"),
        (np.ones(5, np.float16), TypeError, "source 1 has dtype float16"),
        (np.ones(5, ">f8"), TypeError, "source 1 has dtype >f8"),
        (np.ones((2, 5)), ValueError, "source 1 has 2 dimensions, expected 1"),
    ],
)
def test_bad_source_is_named(pack, source, error, message):
    with pytest.raises(error, match=message):
        pack([np.ones(5), source], [(0, 0, 5, 5)], 5)


@pytest.mark.parametrize(
    "requests, error, message",
    [
        (np.zeros((2, 2), np.int64), ValueError, r"shape \(R, 3\) or \(R, 4\).*got shape \(2, 2\)"),
        (np.zeros((2, 3), np.float64), TypeError, "requests must hold integers, got dtype float64"),
        ([(0, 1, 2), (0, 0, 1, 2)], ValueError, "requests rows must all be"),
    ],
)
def test_bad_request_table(pack, requests, error, message):
    with pytest.raises(error, match=message):
        pack([np.ones(5)], requests, 5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(out=np.empty((2, 8), np.float64)),
            r"out must be a writable C-contiguous float32 .*\(2, 8\); got float64",
        ),
        (dict(out=np.empty((2, 9), np.float32)), r"out must .*shape \(2, 8\); got float32 \(2, 9\)"),
        (dict(out=np.empty((8, 2), np.float32).T), "out must be a writable C-contiguous"),
        (dict(mask_out=np.empty((2, 8), np.uint8)), "mask_out must be a writable C-contiguous bool"),
    ],
)
def test_bad_output_buffer(pack, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pack([np.ones(5)], [(0, 5, 8), (0, 2, 8)], 8, **kwargs)


def test_read_only_output_is_rejected(pack):
    out = np.empty((1, 8), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be a writable"):
        pack([np.ones(5)], [(0, 5, 8)], 8, out=out)


@pytest.mark.skipif(NATIVE is None, reason="totowalk._C is not built")
class TestNativeEntryPoint:
    """totowalk._C.pack called directly checks its own arguments (no Python pre-checks)."""

    def _args(self):
        return (
            [np.arange(6.0)],
            np.array([[0, 1, 5, 8]], np.int64),
            np.empty((1, 8), np.float32),
            np.empty((1, 8), bool),
        )

    def test_direct_call_matches_reference(self):
        sources, requests, values, mask = self._args()
        NATIVE.pack(sources, requests, 8, values, mask, 0)
        _assert_same_bytes((values, mask), numpy_pack_reference(sources, requests, 8))

    def test_three_column_table_is_rejected(self):
        sources, _, values, mask = self._args()
        with pytest.raises(ValueError, match=r"int64 array of shape \(R, 4\)"):
            NATIVE.pack(sources, np.array([[0, 5, 8]], np.int64), 8, values, mask, 0)

    def test_out_of_range_end_is_rejected(self):
        sources, _, values, mask = self._args()
        with pytest.raises(ValueError, match="request 0: end 7 is out of range for series 0 of length 6"):
            NATIVE.pack(sources, np.array([[0, 0, 7, 8]], np.int64), 8, values, mask, 0)

    def test_small_buffer_is_rejected(self):
        sources, requests, _, mask = self._args()
        with pytest.raises(ValueError, match=r"values must be .*shape \(1, 8\); got float32 with shape \(1, 4\)"):
            NATIVE.pack(sources, requests, 8, np.empty((1, 4), np.float32), mask, 0)

    def test_non_array_source_is_rejected(self):
        _, requests, values, mask = self._args()
        with pytest.raises(TypeError, match="source 0 is a list, expected a 1-D numpy array"):
            NATIVE.pack([[1.0, 2.0]], requests, 8, values, mask, 0)


def test_native_sources_build_messages_without_iostreams():
    # On the lent H200 (whose g++ links libstdc++ statically into _C.so) the first error message
    # formatted with `std::ostringstream << int64_t` segfaulted the process instead of raising
    # (csrc/message.h). Error paths must stay locale-free.
    from pathlib import Path

    csrc = Path(__file__).resolve().parents[1] / "csrc"
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(csrc.glob("*.*"))
        if path.suffix in {".cpp", ".cu", ".h"}
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith("//")
        and any(token in line for token in ("<sstream>", "<iostream>", "stringstream", "std::cout"))
    ]
    assert offenders == []


@pytest.mark.skipif(NATIVE is None or not hasattr(NATIVE, "clean_always_on_fit"), reason="totowalk._C is not built")
def test_native_grid_searches_do_not_depend_on_the_thread_count():
    # The strategy grid searches split simulations over threads; each thread writes its own rows.
    # Run here too because the AddressSanitizer build runs this file (bounds of every buffer).
    rng = np.random.default_rng(3)
    sims, days = 37, 6
    moves32 = [rng.normal(0.0, 0.01, (sims, days)).astype(np.float32) for _ in range(5)]
    moves64 = [m.astype(np.float64) for m in moves32]
    crypto = rng.random(sims) < 0.3
    position = rng.choice(np.array([-1.0, 0.0, 1.0], dtype=np.float32), size=(sims, days))
    cost = np.full(sims, 0.0007)
    grid81, grid500 = np.linspace(-0.03, 0.03, 81), np.linspace(-0.03, 0.03, 500)

    # the clean fits take the open move second (close, open, high, low, ...) and a fill model
    bars64 = [moves64[0], rng.normal(0.0, 0.01, (sims, days))] + moves64[1:]

    def run(threads, optimistic):
        return (
            NATIVE.always_on_search(*moves32, crypto, grid81.astype(np.float32), 0.0005, threads)
            + NATIVE.maxdiff_search(*moves32, position, grid500.astype(np.float32), 0.0005, threads)
            + NATIVE.clean_maxdiff_fit(*bars64, position.astype(np.float64), cost, grid500, optimistic, threads)
            + NATIVE.clean_always_on_fit(*bars64, crypto, cost, grid81, optimistic, threads)
        )

    one = run(1, False)
    ix, iz = one[0], one[1]
    assert ix.shape == iz.shape == (sims,) and ((0 <= ix) & (ix < 81)).all() and ((0 <= iz) & (iz < 81)).all()
    assert one[4].shape == (sims,) and ((-1 <= one[4]) & (one[4] < 500)).all()
    assert one[6].shape == one[8].shape == (sims, days + 1)
    for optimistic in (False, True):
        first = run(1, optimistic)
        for threads in (3, 16):
            for a, b in zip(first, run(threads, optimistic)):
                np.testing.assert_array_equal(a, b)
