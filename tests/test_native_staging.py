"""StagingPipeline on CPU, native_status, and the pinned ring's refusal without CUDA."""

import numpy as np
import pytest
import torch

from totowalk.engine import staging
from totowalk.engine.staging import StagingPipeline, native_status, numpy_pack_reference

NATIVE = staging.compiled_module()


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    sources = [rng.standard_normal(1500), rng.standard_normal(700).astype(np.float32)[::-1]]
    requests = [(0, 0, 1450, 1472), (1, 0, 600, 640), (0, 0, 1472, 1472), (1, 3, 700, 704)]
    return sources, requests


def test_cpu_pipeline_matches_reference_and_reports_its_path():
    pipeline = StagingPipeline(slab_bytes=1 << 20, device="cpu")
    assert pipeline.native_path() == ("cpu-native" if NATIVE is not None else "numpy")
    sources, requests = _batch()
    values, mask, ready = pipeline.submit(sources, requests, 1472)
    want_values, want_mask = numpy_pack_reference(sources, requests, 1472)
    assert ready is None and values.dtype == torch.float32 and mask.dtype == torch.bool
    assert values.numpy().tobytes() == want_values.tobytes()
    assert np.array_equal(mask.numpy(), want_mask)
    result = pipeline.fetch_results(values.sum(dim=1))
    assert result.ready()
    np.testing.assert_array_equal(result.wait(), values.sum(dim=1).numpy())


def test_cpu_pipeline_without_native_uses_numpy(monkeypatch):
    monkeypatch.setattr(staging, "compiled_module", lambda: None)
    pipeline = StagingPipeline(slab_bytes=1 << 20, device="cpu")
    assert pipeline.native_path() == "numpy"
    sources, requests = _batch(1)
    values, _, _ = pipeline.submit(sources, requests, 1472)
    assert values.numpy().tobytes() == numpy_pack_reference(sources, requests, 1472)[0].tobytes()


def test_pipeline_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_slabs >= 1"):
        StagingPipeline(slab_bytes=1024, num_slabs=0, device="cpu")
    with pytest.raises(ValueError, match="slab_bytes"):
        StagingPipeline(slab_bytes=0, device="cpu")
    with pytest.raises(ValueError, match="cpu and cuda devices, got meta"):
        StagingPipeline(slab_bytes=1024, device="meta")
    pipeline = StagingPipeline(slab_bytes=1024, device="cpu")
    with pytest.raises(ValueError, match="request 0: end 9 is out of range for series 0 of length 3"):
        pipeline.submit([np.ones(3)], [(0, 9, 16)], 16)


def test_native_status_describes_this_installation():
    status = native_status()
    assert status["pack"] == ("native" if NATIVE is not None else "numpy")
    assert status["pack_threads"] >= 1
    if torch.cuda.is_available():
        assert status["staging"] in ("cuda-pinned", "torch-pinned")
    else:
        assert status["staging"] == ("cpu-native" if NATIVE is not None else "numpy")
    assert status["sanitized"] is False  # the installed extension is the release build


@pytest.mark.skipif(NATIVE is None, reason="totowalk._C is not built")
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_pinned_ring_refuses_clearly_without_a_gpu():
    if NATIVE.cuda_compiled():
        with pytest.raises(ValueError, match=r"PinnedRing: device 0 is out of range \(0 CUDA devices"):
            NATIVE.PinnedRing(1024, 2, 0, 0)
    else:
        with pytest.raises(RuntimeError, match="built without CUDA"):
            NATIVE.PinnedRing(1024, 2, 0, 0)


def test_result_dtype_without_numpy_equivalent_is_a_clear_error():
    from totowalk.engine.staging import _torch_to_numpy_dtype

    assert _torch_to_numpy_dtype(torch.float16) == np.float16
    with pytest.raises(TypeError, match="cast the result"):
        _torch_to_numpy_dtype(torch.bfloat16)
