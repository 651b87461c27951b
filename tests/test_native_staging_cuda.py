"""StagingPipeline on a GPU: pinned-ring correctness, stream ordering, slab reuse, errors.

Each ordering test first parks a spin kernel (torch.cuda._sleep) on one stream so that a
missing wait would read or overwrite data too early and give a wrong result.
"""

import numpy as np
import pytest
import torch

from totowalk.engine import staging
from totowalk.engine.staging import StagingPipeline, numpy_pack_reference

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

NATIVE = staging.compiled_module()
NATIVE_CUDA = NATIVE is not None and NATIVE.cuda_compiled()
SPIN_CYCLES = 50_000_000  # ~25 ms at ~2 GHz: longer than any host-side step below


@pytest.fixture(params=["cuda-pinned", "torch-pinned"])
def make_pipeline(request, monkeypatch):
    """Build pipelines on one path: the native pinned ring or the torch fallback."""
    if request.param == "cuda-pinned" and not NATIVE_CUDA:
        pytest.skip("totowalk._C was built without CUDA")
    if request.param == "torch-pinned":
        # The fallback is chosen when the native module is missing; packing then uses numpy.
        monkeypatch.setattr(staging, "compiled_module", lambda: None)

    def make(**kwargs):
        kwargs.setdefault("slab_bytes", 4 << 20)
        pipeline = StagingPipeline(device="cuda", **kwargs)
        assert pipeline.native_path() == request.param
        return pipeline

    return make


def _batches(count, rows=16, width=1472, seed=0):
    rng = np.random.default_rng(seed)
    sources = [rng.standard_normal(2000), rng.standard_normal(1600).astype(np.float32)[::2]]
    batches = []
    for _ in range(count):
        series = rng.integers(0, 2, rows)
        ends = [int(rng.integers(1, min(len(sources[s]), width) + 1)) for s in series]
        batches.append([(int(s), e, width) for s, e in zip(series, ends)])
    return sources, batches


def _check(staged, sources, requests, width):
    want_values, want_mask = numpy_pack_reference(sources, requests, width)
    assert staged.values.device.type == "cuda" and staged.values.dtype == torch.float32
    assert staged.values.cpu().numpy().tobytes() == want_values.tobytes()
    assert np.array_equal(staged.mask.cpu().numpy(), want_mask)


def test_submitted_batches_arrive_intact_even_when_slabs_are_reused(make_pipeline):
    pipeline = make_pipeline(num_slabs=2)
    sources, batches = _batches(7)
    # Hold the copy stream back: slab reuse must wait for the copies that read each slab.
    with torch.cuda.stream(pipeline._copy_stream):
        torch.cuda._sleep(SPIN_CYCLES)
    staged = [pipeline.submit(sources, requests, 1472) for requests in batches]
    torch.cuda.synchronize()
    for batch, requests in zip(staged, batches):
        _check(batch, sources, requests, 1472)


def test_compute_stream_waits_for_the_copy(make_pipeline):
    pipeline = make_pipeline()
    sources, (requests,) = _batches(1, seed=1)
    with torch.cuda.stream(pipeline._copy_stream):
        torch.cuda._sleep(SPIN_CYCLES)
    values, mask, ready = pipeline.submit(sources, requests, 1472)
    sums = (values * mask).sum(dim=1)  # queued on the current stream right away
    want_values, _ = numpy_pack_reference(sources, requests, 1472)
    np.testing.assert_allclose(sums.cpu().numpy(), want_values.sum(axis=1), rtol=1e-5, atol=1e-4)
    assert ready.query()


def test_results_come_back_after_the_compute_that_made_them(make_pipeline):
    pipeline = make_pipeline(num_slabs=2)
    x = torch.arange(4096, dtype=torch.float32, device="cuda")
    pending = []
    for k in range(4):
        torch.cuda._sleep(SPIN_CYCLES // 4)  # the result is written late on the compute stream
        result = (x * (k + 1)).reshape(64, 64)[:, ::2]  # non-contiguous on purpose
        pending.append(pipeline.fetch_results(result))
        if k % 2:  # collect as we go: the ring holds two uncollected results at most
            for p in pending[-2:]:
                p.wait()
    for k, p in enumerate(pending):
        want = (np.arange(4096, dtype=np.float32) * (k + 1)).reshape(64, 64)[:, ::2]
        got = p.wait()
        assert got.dtype == np.float32 and got.shape == (64, 32)
        np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not NATIVE_CUDA, reason="totowalk._C was built without CUDA")
class TestPinnedRingErrors:
    def test_batch_larger_than_a_slab_is_refused(self):
        pipeline = StagingPipeline(slab_bytes=4096, device="cuda")
        with pytest.raises(ValueError, match=r"batch of 2 x 1024 .*4096 bytes\); raise slab_bytes"):
            pipeline.submit([np.ones(10)], [(0, 10, 1024), (0, 5, 1024)], 1024)

    def test_bad_request_is_named_before_anything_is_copied(self):
        pipeline = StagingPipeline(slab_bytes=1 << 20, device="cuda")
        with pytest.raises(ValueError, match="request 1: end 11 is out of range for series 0 of length 10"):
            pipeline.submit([np.ones(10)], [(0, 10, 64), (0, 11, 64)], 64)

    def test_uncollected_results_are_never_overwritten(self):
        pipeline = StagingPipeline(slab_bytes=1 << 20, num_slabs=2, device="cuda")
        x = torch.ones(8, device="cuda")
        first, second = pipeline.fetch_results(x), pipeline.fetch_results(x * 2)
        with pytest.raises(RuntimeError, match="all 2 pinned result slabs hold results not yet collected"):
            pipeline.fetch_results(x * 3)
        np.testing.assert_array_equal(first.wait(), np.ones(8, np.float32))
        third = pipeline.fetch_results(x * 3)  # the collected slab is free again
        del second  # dropping a pending result frees its slab too
        fourth = pipeline.fetch_results(x * 4)
        np.testing.assert_array_equal(third.wait(), np.full(8, 3, np.float32))
        np.testing.assert_array_equal(fourth.wait(), np.full(8, 4, np.float32))

    def test_result_larger_than_a_slab_is_refused(self):
        pipeline = StagingPipeline(slab_bytes=1 << 20, result_slab_bytes=64, device="cuda")
        with pytest.raises(ValueError, match="result of 128 bytes does not fit .* 64 bytes"):
            pipeline.fetch_results(torch.ones(32, device="cuda"))

    def test_copy_timing(self):
        pipeline = StagingPipeline(slab_bytes=8 << 20, device="cuda", enable_timing=True)
        sources, (requests,) = _batches(1, rows=256)
        pipeline.submit(sources, requests, 1472)
        assert 0.0 < pipeline.last_copy_ms() < 1000.0
