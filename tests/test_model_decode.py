"""KV-cache decoding, the causal scaler and input validation of totowalk.model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from totowalk.model import TotoConfig, build_model
from totowalk.model.scaler import causal_patch_scale

# fp32 through a few layers; same bound as the reference parity tests.
RTOL = 1e-5


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return build_model(TotoConfig.preset("toto-tiny"), seed=1)


def series(batch: int, variates: int, patches: int, pad: int = 0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    values = torch.cumsum(torch.randn(batch, variates, patches * 64, generator=generator), -1) + 5.0
    mask = torch.ones_like(values, dtype=torch.bool)
    values[..., :pad] = 0.0
    mask[..., :pad] = False
    return values, mask


def assert_params_close(ours, reference, what: str):
    for name in ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale"):
        a, b = getattr(ours, name), getattr(reference, name)
        err = float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
        assert err <= RTOL, f"{what}: {name} off by {err:.2e}"


@pytest.mark.parametrize("variates,ids", [(1, None), (3, (0, 1, 0))])
def test_full_rope_decoding_equals_forward_on_concatenated_series(model, variates, ids):
    values, mask = series(2, variates, 3, pad=40)
    id_mask = None if ids is None else torch.tensor(ids).reshape(1, -1, 1).expand_as(values).contiguous()
    state = model.prefill(values, mask, id_mask, max_new_patches=2, rope="full")
    context_length = values.shape[-1]
    appended = [torch.randn(2, variates, 64, generator=torch.Generator().manual_seed(k)) * 3 + 7 for k in (1, 2)]
    for step, patch in enumerate(appended, start=1):
        decoded = model.decode_next(state, patch)
        values = torch.cat([values, patch], -1)
        mask = torch.cat([mask, torch.ones_like(patch, dtype=torch.bool)], -1)
        if id_mask is not None:
            id_mask = torch.cat([id_mask, id_mask[..., -1:].expand(-1, -1, 64)], -1)
        fresh = model.forecast_params(values, mask, id_mask, horizon=64, scaling_prefix_length=context_length)
        assert_params_close(decoded, fresh, f"decode step {step}")
    assert state.length == 5


def test_prefill_params_equal_forecast_params(model):
    values, mask = series(3, 2, 2, pad=10)
    state = model.prefill(values, mask, horizon=5)
    direct = model.forecast_params(values, mask, horizon=5)
    for name in ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale"):
        torch.testing.assert_close(getattr(state.params, name), getattr(direct, name), rtol=1e-6, atol=1e-6)


def test_repeat_rows_shares_one_prefill(model):
    values, mask = series(2, 2, 2)
    shared = model.prefill(values, mask, max_new_patches=1).repeat_rows(3)
    assert shared.batch_size == 6
    patch = torch.randn(6, 2, 64, generator=torch.Generator().manual_seed(4))
    decoded = model.decode_next(shared, patch)
    for row in range(6):
        alone = model.prefill(values[row // 3 : row // 3 + 1], mask[row // 3 : row // 3 + 1], max_new_patches=1)
        assert_params_close(decoded.index(row), model.decode_next(alone, patch[row : row + 1]), f"row {row}")


def test_reference_rope_mode_differs_from_full_only_after_prefill(model):
    values, mask = series(1, 1, 4)
    reference = model.prefill(values, mask, max_new_patches=1, rope="reference")
    full = model.prefill(values, mask, max_new_patches=1, rope="full")
    assert torch.equal(reference.params.loc, full.params.loc)
    patch = torch.full((1, 1, 64), 9.0)
    # S = 4: prefill centre floor(3/2) = 1, decode centre floor(4/2) = 2 -> the logits differ
    assert not torch.equal(model.decode_next(reference, patch).loc, model.decode_next(full, patch).loc)


def test_decode_errors(model):
    values, mask = series(1, 2, 1)
    state = model.prefill(values, mask, max_new_patches=1)
    with pytest.raises(ValueError, match=r"patch_values has shape \(1, 2, 10\), expected \(1, 2, 64\)"):
        model.decode_next(state, torch.zeros(1, 2, 10))
    model.decode_next(state, torch.zeros(1, 2, 64))
    with pytest.raises(ValueError, match="cache holds 2 patches and is full"):
        model.decode_next(state, torch.zeros(1, 2, 64))
    with pytest.raises(ValueError, match="rope must be one of"):
        model.prefill(values, mask, rope="other")


def test_input_validation_names_the_problem(model):
    values, mask = series(1, 2, 2)
    with pytest.raises(ValueError, match="multiple of the patch size 64"):
        model.forecast_params(values[..., :100], mask[..., :100])
    with pytest.raises(ValueError, match=r"padding_mask has shape \(1, 2, 64\), expected \(1, 2, 128\)"):
        model.forecast_params(values, mask[..., :64])
    with pytest.raises(ValueError, match="padding_mask must be bool"):
        model.forecast_params(values, mask.float())
    with pytest.raises(ValueError, match=r"values must be a \(batch, variates, time\) tensor, got \(2, 128\)"):
        model.forecast_params(values[0], mask[0])
    with pytest.raises(ValueError, match="horizon must be an int in 1..64"):
        model.forecast_params(values, mask, horizon=65)
    ids = torch.zeros(1, 2, 128, dtype=torch.long)
    ids[0, 1, 70:] = 1
    with pytest.raises(ValueError, match=r"id_mask changes inside a patch \(row 0, variate 1, patch 1\)"):
        model.forecast_params(values, mask, ids)


def test_rows_are_independent_and_padding_values_are_ignored(model):
    values, mask = series(3, 1, 2, pad=30)
    together = model.forecast_params(values, mask, horizon=2)
    alone = model.forecast_params(values[1:2], mask[1:2], horizon=2)
    assert_params_close(together.index(1), alone, "row 1")
    garbage = values.clone()
    garbage[..., :30] = 1e6  # padded positions count as zeros
    assert torch.equal(model.forecast_params(garbage, mask, horizon=2).loc, together.loc)


def test_variates_with_other_ids_do_not_interact(model):
    values, mask = series(1, 3, 2)
    ids = torch.tensor([0, 1, 0]).reshape(1, 3, 1).expand_as(values).contiguous()
    before = model.forecast_params(values, mask, ids)
    changed = values.clone()
    changed[0, 1] *= 3.0
    after = model.forecast_params(changed, mask, ids)
    assert torch.equal(before.loc[:, [0, 2]], after.loc[:, [0, 2]])
    assert not torch.equal(before.loc[:, 1], after.loc[:, 1])
    # with one shared id the space-wise layer mixes them
    shared = torch.zeros_like(ids)
    assert not torch.equal(
        model.forecast_params(values, mask, shared).loc[:, 0], model.forecast_params(changed, mask, shared).loc[:, 0]
    )


def numpy_patch_scale(x: np.ndarray, real: np.ndarray, patch: int, exponent: float):
    """Two-pass float64 statistics of every prefix ending at a patch boundary."""
    g_values = x[real]
    g_scale = np.sqrt(((g_values - g_values.mean()) ** 2).mean() + 0.1) if g_values.size else np.sqrt(0.1)
    locs, scales = [], []
    for end in range(patch, x.size + 1, patch):
        seen = x[:end][real[:end]]
        mean = seen.mean() if seen.size else 0.0
        var = ((seen - mean) ** 2).sum() / max(seen.size - 1, 1) if seen.size else 0.0
        scale = np.sqrt(var + 0.1)
        scale = min(max(scale, max(0.1, g_scale * 10.0**-exponent)), g_scale * 10.0**exponent)
        locs.append(mean)
        scales.append(scale)
    return np.array(locs), np.array(scales)


@pytest.mark.parametrize("exponent", [10.0, 0.3])
def test_scaler_matches_direct_two_pass_statistics(exponent):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(50), 1e3 + np.cumsum(rng.normal(0, 20, 270))]).astype(np.float32)
    real = np.arange(x.size) >= 50
    values = torch.from_numpy(x).reshape(1, 1, -1)
    mask = torch.from_numpy(real).reshape(1, 1, -1)
    normalised, loc, scale, state = causal_patch_scale(values, mask, 64, scale_factor_exponent=exponent)
    want_loc, want_scale = numpy_patch_scale(x.astype(np.float64), real, 64, exponent)
    np.testing.assert_allclose(loc[0, 0].numpy(), want_loc, rtol=1e-6)
    np.testing.assert_allclose(scale[0, 0].numpy(), want_scale, rtol=1e-6)
    step_loc = np.repeat(want_loc, 64)
    step_scale = np.repeat(want_scale, 64)
    np.testing.assert_allclose(normalised[0, 0].numpy(), (x - step_loc) / step_scale, rtol=1e-5, atol=1e-5)
    assert float(state.count[0, 0]) == real.sum()


def test_scaler_state_continues_like_one_pass():
    values, mask = series(2, 2, 3, pad=20)
    _, loc_all, scale_all, _ = causal_patch_scale(values, mask, 64, prefix_length=128)
    _, loc_head, _, head_state = causal_patch_scale(values[..., :128], mask[..., :128], 64)
    _, loc_tail, scale_tail, _ = causal_patch_scale(values[..., 128:], mask[..., 128:], 64, state=head_state)
    torch.testing.assert_close(loc_all[..., :2], loc_head, rtol=0, atol=0)
    torch.testing.assert_close(loc_all[..., 2:], loc_tail, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(scale_all[..., 2:], scale_tail, rtol=1e-6, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_for_forward_and_decode(model):
    values, mask = series(2, 3, 3, pad=17)
    ids = torch.tensor([0, 0, 1]).reshape(1, 3, 1).expand_as(values).contiguous()
    gpu = build_model(TotoConfig.preset("toto-tiny"), seed=1, device="cuda")
    assert_params_close(
        gpu.forecast_params(values.cuda(), mask.cuda(), ids.cuda(), horizon=4).to("cpu"),
        model.forecast_params(values, mask, ids, horizon=4),
        "cuda forward",
    )
    patch = torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(9))
    cpu_state = model.prefill(values, mask, ids, max_new_patches=1)
    gpu_state = gpu.prefill(values.cuda(), mask.cuda(), ids.cuda(), max_new_patches=1)
    assert_params_close(
        gpu.decode_next(gpu_state, patch.cuda()).to("cpu"), model.decode_next(cpu_state, patch), "cuda decode"
    )


def test_float64_input_and_module_call(model):
    values, mask = series(1, 1, 2)
    reference = model.forecast_params(values, mask, horizon=3)
    via_call = model(values.double(), mask, None, 3)
    assert torch.equal(via_call.loc, reference.loc) and via_call.loc.dtype == torch.float32
