"""Planning: input validation, deduplication, bucketing by patch count, token-budget splits."""

import numpy as np
import pytest
import torch

from totowalk.engine.inputs import ContextBatch, normalize_contexts
from totowalk.engine.packing import pack_batch
from totowalk.engine.plan import num_patches, plan_forecast, split_batch

PATCH = 64


def _contexts(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n) for n in lengths]


def test_num_patches_is_ceil():
    assert [num_patches(n, PATCH) for n in (1, 63, 64, 65, 128, 129, 1450)] == [1, 1, 1, 2, 2, 3, 23]


def test_dedupe_maps_every_request_to_identical_content():
    base = _contexts([10, 70, 70, 200])
    contexts = [base[0], base[1], base[0].copy(), base[2], base[1].astype(np.float32), base[3], base[0]]
    plan = plan_forecast(normalize_contexts(contexts), PATCH, max_batch_tokens=10_000)
    assert plan.num_unique == 4
    for i, ctx in enumerate(contexts):
        np.testing.assert_array_equal(plan.unique_series[plan.inverse[i]][0], np.float32(ctx))
    # identical content -> identical stream key; different content -> different key
    assert len(set(plan.stream_keys[:, 0].tolist())) == 4


@pytest.mark.parametrize("variates", [1, 3])
def test_stream_keys_are_the_content_digest_and_thread_count_free(monkeypatch, variates):
    # The random stream of a request is keyed by its content alone: digest[:8] (univariate) or
    # BLAKE2b(digest, variate); hashing across threads (large inputs) must give the same keys.
    import hashlib

    from totowalk.engine import plan as plan_module
    from totowalk.engine.inputs import content_digest

    rng = np.random.default_rng(4)
    contexts = [rng.normal(size=(variates, n)).astype(np.float32) for n in (5, 700, 700, 64, 3000)]
    contexts[2] = contexts[1].copy()
    batch = normalize_contexts(contexts)
    serial = plan_forecast(batch, 64, 4096)  # the compiled digests where the module is built
    monkeypatch.setattr(plan_module, "compiled_module", lambda: None)  # hashlib, one thread then several
    for parallel_bytes in (1 << 40, 0):
        monkeypatch.setattr(plan_module, "_PARALLEL_HASH_BYTES", parallel_bytes)
        other = plan_forecast(batch, 64, 4096)
        assert np.array_equal(serial.stream_keys, other.stream_keys) and np.array_equal(serial.inverse, other.inverse)
    assert serial.stream_keys.shape == (4, variates) and serial.inverse.tolist() == [0, 1, 1, 2, 3]
    for uid, series in enumerate(serial.unique_series):
        digest = content_digest(series)
        shape = np.asarray(series.shape, dtype=np.int64).tobytes()
        assert digest == hashlib.blake2b(series.tobytes() + shape, digest_size=16).digest()
        expected = (
            [digest[:8]]
            if variates == 1
            else [hashlib.blake2b(digest + v.to_bytes(4, "little"), digest_size=8).digest() for v in range(variates)]
        )
        assert serial.stream_keys[uid].tolist() == np.frombuffer(b"".join(expected), dtype="<u8").tolist()


def test_float64_contexts_equal_in_float32_are_deduplicated():
    x = np.linspace(1, 2, 100)
    plan = plan_forecast(normalize_contexts([x, x + 1e-12]), PATCH, 10_000)
    assert plan.num_unique == 1


def test_buckets_never_pad_beyond_own_patch_count():
    lengths = [1, 63, 64, 65, 127, 128, 129, 1000, 2000, 5]
    plan = plan_forecast(normalize_contexts(_contexts(lengths)), PATCH, max_batch_tokens=10_000)
    seen = []
    for batch in plan.batches:
        for uid in batch.members:
            assert batch.num_patches == num_patches(plan.unique_series[uid].shape[-1], PATCH)
            seen.append(int(uid))
    assert sorted(seen) == list(range(plan.num_unique))


def test_token_budget_splits_buckets_but_keeps_oversized_contexts():
    lengths = [640] * 7 + [6400]  # 10 patches each, then one 100-patch context
    plan = plan_forecast(normalize_contexts(_contexts(lengths)), PATCH, max_batch_tokens=30)
    sizes = sorted((b.num_patches, len(b.members)) for b in plan.batches)
    assert sizes == [(10, 1), (10, 3), (10, 3), (100, 1)]
    ar = plan_forecast(normalize_contexts(_contexts([640] * 4)), PATCH, 60, rows_per_context=2, extra_patches=5)
    assert [len(b.members) for b in ar.batches] == [2, 2]  # 2 rows x 15 patches = 30 tokens each


def test_split_batch_halves():
    plan = plan_forecast(normalize_contexts(_contexts([100] * 5)), PATCH, 10_000)
    left, right = split_batch(plan.batches[0])
    assert left.members.tolist() == [0, 1, 2] and right.members.tolist() == [3, 4]


def test_array_inputs_and_multivariate():
    rng = np.random.default_rng(1)
    batch = normalize_contexts(rng.standard_normal((4, 100)))
    assert len(batch) == 4 and not batch.multivariate and batch.series[0].shape == (1, 100)
    mv = normalize_contexts(torch.randn(3, 2, 70))
    assert mv.multivariate and mv.num_variates == 2 and mv.series[2].shape == (2, 70)
    plan = plan_forecast(mv, PATCH, 10_000)
    assert plan.stream_keys.shape == (3, 2) and plan.stream_keys[0, 0] != plan.stream_keys[0, 1]


@pytest.mark.parametrize(
    "contexts, message",
    [
        ([np.ones(5), np.array([])], "context 1: zero-length"),
        ([np.ones(5), np.ones(5), np.array([1.0, np.nan, 2.0])], "context 2: non-finite value nan at position 1"),
        ([np.array([1.0, np.inf])], "context 0: non-finite value inf at position 1"),
        ([np.ones((2, 5)), np.ones((3, 5))], "context 1: has 3 variates"),
        ([np.ones(5), np.ones((1, 5))], "context 1: mixes 1-D and 2-D"),
        (np.ones(5), "single 1-D array is ambiguous"),
        ([np.array([1e300])], "context 0: values overflow float32"),
        ([np.array(["a", "b"])], "context 0: expected real numbers"),
    ],
)
def test_bad_input_names_the_request(contexts, message):
    with pytest.raises((ValueError, TypeError), match=message):
        normalize_contexts(contexts)


@pytest.mark.parametrize("compiled", [True, False])
def test_walk_forward_digests_equal_each_contexts_own_digest(monkeypatch, compiled):
    # Contexts of one series are hashed from one running state; every digest must still be the
    # context's own content_digest: ends around the 128-byte blocks (32 float32 values), in any
    # order, repeated, the whole series, families interleaved.
    from totowalk.engine import plan as plan_module
    from totowalk.engine.inputs import content_digest

    if compiled:
        pytest.importorskip("totowalk._C")
    else:
        monkeypatch.setattr(plan_module, "compiled_module", lambda: None)
    rng = np.random.default_rng(17)
    series = [rng.normal(size=(1, 300)).astype(np.float32), rng.normal(size=(1, 97)).astype(np.float32)]
    ends = [[300, 1, 31, 32, 33, 64, 31, 200, 95, 96, 97, 128, 129], [97, 5, 32, 96, 64, 5]]
    contexts, families = [], []
    for f in rng.permutation(sum(len(e) for e in ends)):  # interleave the two families
        which = 0 if f < len(ends[0]) else 1
        end = ends[which][f if which == 0 else f - len(ends[0])]
        contexts.append(series[which][:, :end])
        families.append(which * 7 + 3)  # any ids
    lengths = np.asarray([c.shape[-1] for c in contexts])
    digests = plan_module._walk_forward_digests(contexts, np.asarray(families), lengths)
    assert [bytes(d) for d in digests] == [content_digest(c) for c in contexts]
    batch = ContextBatch(contexts, False, 1)
    listed, walked = plan_forecast(batch, 64, 4096), plan_forecast(batch, 64, 4096, families=families)
    assert np.array_equal(listed.stream_keys, walked.stream_keys) and np.array_equal(listed.inverse, walked.inverse)


def test_compiled_walk_forward_digests_name_a_bad_input():
    native = pytest.importorskip("totowalk._C")
    base = np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="context 1: length 11 is outside 0..10 of series 0"):
        native.walk_forward_digests([base], np.zeros(2, np.int64), np.asarray([3, 11]))
    with pytest.raises(ValueError, match="context 0: family 1 is not a series index"):
        native.walk_forward_digests([base], np.ones(1, np.int64), np.ones(1, np.int64))
    with pytest.raises(ValueError, match="series 0: expected a C-contiguous float32 array of one row"):
        native.walk_forward_digests([np.zeros((2, 5), np.float32)], np.zeros(1, np.int64), np.ones(1, np.int64))


def test_pack_left_pads_with_mask():
    series = [np.float32([[1, 2, 3]]), np.float32([[4, 5, 6, 7, 8]])]
    values, mask = pack_batch(series, 8)
    np.testing.assert_array_equal(values[0, 0], [0, 0, 0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(mask[1, 0], [False] * 3 + [True] * 5)
    assert values.dtype == np.float32 and values.shape == (2, 1, 8)


def test_compiled_content_digests_are_hashlibs_blake2b():
    native = pytest.importorskip("totowalk._C")
    from totowalk.engine.inputs import content_digest

    rng = np.random.default_rng(9)
    # lengths around BLAKE2b's 128-byte blocks (the shape trailer is 8 bytes per axis), 1 to 3 axes
    arrays = [
        rng.normal(size=(v, n)).astype(np.float32) for v in (1, 2, 3) for n in (0, 1, 26, 27, 28, 30, 32, 64, 1000)
    ]
    arrays += [rng.normal(size=n).astype(np.float32) for n in (0, 30, 31, 32)]
    arrays += [rng.normal(size=(2, 3, 5)).astype(np.float32)]
    for threads in (1, 3):
        blob = native.content_digests(arrays, threads=threads)
        assert [blob[16 * i : 16 * i + 16] for i in range(len(arrays))] == [content_digest(a) for a in arrays]
    with pytest.raises(ValueError, match="context 1: expected a C-contiguous float32 array"):
        native.content_digests([arrays[0], np.zeros((2, 4), np.float64)])
