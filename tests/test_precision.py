"""bf16 / fp16 / int8 precision: quantization bounds, int8 matmuls, model conversion, checkpoints.

The quality of a whole model is the gate's job (test_precision_gate.py); here each piece is
checked against an fp32 torch reference with a bound derived from its rounding.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from totowalk import ForecastEngine, build_model, load_model, save_checkpoint
from totowalk.cli import main as cli_main
from totowalk.model import TotoConfig, TotoModel
from totowalk.precision import (
    Int8Kernel,
    Int8Linear,
    convert_precision,
    dequantize_weight,
    gate,
    quantize_weight,
    save_quantized,
    set_int8_kernel,
)
from totowalk.precision.cpu_int8 import int_mm_linear, quantize_rows

TINY = TotoConfig.preset("toto-tiny")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Gate results go to a temporary user cache; the once-per-process warning memory is fresh."""
    monkeypatch.setenv("TOTOWALK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gate, "_WARNED", set())


def series_batch(rows=8, patches=3, level=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = TINY.patch_size * patches
    values = level + torch.cumsum(torch.randn(rows, 1, t, generator=g), -1)
    mask = torch.ones(rows, 1, t, dtype=torch.bool)
    mask[0, :, :17] = False  # one left-padded row
    return values, mask


# -- quantization ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (37, 91), (128, 64)])
def test_quantize_round_trip_error_is_at_most_half_a_step(shape):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * torch.logspace(-3, 1, shape[0])[:, None]
    q, s = quantize_weight(w)
    assert q.dtype == torch.int8 and s.dtype == torch.float32 and s.shape == (shape[0],)
    assert int(q.abs().max()) <= 127
    assert torch.equal(q.abs().amax(1), torch.full((shape[0],), 127, dtype=torch.int8))  # absmax maps to 127
    torch.testing.assert_close(s, w.abs().amax(1) / 127)
    err = (dequantize_weight(q, s) - w).abs()
    # rounding to the nearest step: |error| <= s/2 (plus fp32 rounding of q * s)
    assert bool((err <= s[:, None] * (0.5 + 1e-5)).all())


def test_quantize_zero_row_and_bad_input():
    w = torch.zeros(3, 5)
    w[1] = torch.arange(5.0)
    q, s = quantize_weight(w)
    assert torch.equal(q[0], torch.zeros(5, dtype=torch.int8)) and float(s[0]) == 1.0
    with pytest.raises(ValueError, match=r"NaN or inf"):
        quantize_weight(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"2-D floating weight"):
        quantize_weight(torch.ones(4))


# -- int8 matmuls on CPU --------------------------------------------------------------------


def _layer(n=33, k=70, seed=2):
    g = torch.Generator().manual_seed(seed)
    w, b, x = torch.randn(n, k, generator=g), torch.randn(n, generator=g), torch.randn(19, k, generator=g)
    return w, b, x


def test_int8_linear_dequant_matches_the_dequantized_fp32_linear_and_bounds_the_weight_error():
    w, b, x = _layer()
    lin = torch.nn.Linear(w.shape[1], w.shape[0])
    lin.weight.data, lin.bias.data = w, b
    q8 = Int8Linear.from_linear(lin, kernel="dequant")
    y = q8(x)
    torch.testing.assert_close(y, F.linear(x, dequantize_weight(q8.qweight, q8.weight_scale), b), rtol=0, atol=1e-5)
    # vs the original weights: |dy_n| <= sum_k |x_k| * s_n / 2
    bound = x.abs().sum(1, keepdim=True) * q8.weight_scale[None, :] / 2
    assert bool(((y - F.linear(x, w, b)).abs() <= bound * 1.001 + 1e-5).all())
    assert q8(x[None]).shape == (1, 19, 33)  # leading dims kept
    with pytest.raises(ValueError, match="70"):
        q8(torch.randn(2, 71))


def test_int_mm_path_is_within_the_activation_rounding_bound():
    w, b, x = _layer(n=40, k=64)
    q, s = quantize_weight(w)
    w_deq = dequantize_weight(q, s)
    y = int_mm_linear(x, q, s, b)
    ref = F.linear(x, w_deq, b)
    _, row_scale = quantize_rows(x)
    # activations rounded to half a step each: |dy_mn| <= s_x,m / 2 * sum_k |w_nk|
    bound = row_scale * w_deq.abs().sum(1)[None, :] / 2
    assert bool(((y - ref).abs() <= bound * 1.001 + 1e-4).all())
    assert float((y - ref).norm() / ref.norm()) < 2e-2


@pytest.mark.parametrize("rows", [1, 5, 16, 17, 40])
def test_int_mm_pads_short_inputs_exactly(rows):
    # torch._int_mm on CUDA refuses <= 16 rows; padded with zero rows the product is unchanged.
    from totowalk.precision.cpu_int8 import int_mm

    g = torch.Generator().manual_seed(rows)
    qx = torch.randint(-127, 128, (rows, 64), generator=g, dtype=torch.int8)
    qw = torch.randint(-127, 128, (24, 64), generator=g, dtype=torch.int8)
    exact = qx.to(torch.int64) @ qw.t().to(torch.int64)
    padded = int_mm(qx, qw.t(), min_rows=17)
    assert padded.shape == (rows, 24) and padded.dtype == torch.int32
    assert torch.equal(padded.to(torch.int64), exact)


def test_row_slicer_dequantizes_only_the_requested_rows():
    w, _, _ = _layer()
    lin = torch.nn.Linear(w.shape[1], w.shape[0])
    lin.weight.data = w
    q8 = Int8Linear.from_linear(lin)
    rows = q8.weight[:7]
    assert rows.shape == (7, w.shape[1])
    torch.testing.assert_close(rows, dequantize_weight(q8.qweight[:7], q8.weight_scale[:7]))
    assert q8.weight.shape == w.shape


# -- model conversion -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    return build_model(TINY, seed=0)


def _convert(precision):
    return convert_precision(build_model(TINY, seed=0), precision)


@pytest.mark.parametrize("precision,tol", [("bf16", 3e-2), ("fp16", 5e-3), ("int8", 3e-2)])
def test_converted_model_keeps_fp32_scaler_and_head_outputs_and_stays_close(reference, precision, tol):
    values, mask = series_batch(level=1e4)  # large prices: a bf16 scaler would lose them entirely
    ref = reference.forecast_params(values, mask, horizon=3)
    got = _convert(precision).forecast_params(values, mask, horizon=3)
    for name in ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale"):
        assert getattr(got, name).dtype == torch.float32, name
    # the scaler runs on fp32 inputs with float64 sums in every precision: identical statistics
    assert torch.equal(got.scaler_loc, ref.scaler_loc) and torch.equal(got.scaler_scale, ref.scaler_scale)
    # expected value, normalised by the scaler scale (its natural unit)
    err = (got.expected() - ref.expected()).abs() / ref.scaler_scale[..., None]
    assert float(err.max()) < tol
    assert float((got.weights - ref.weights).abs().max()) < 10 * tol


def test_reduced_model_layout(reference):
    bf16 = _convert("bf16")
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    assert bf16.rotary.inv_freq.dtype == torch.float32  # tables computed in fp32, then cast
    int8 = _convert("int8")
    linears = [m for m in int8.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in int8.modules() if isinstance(m, Int8Linear)]
    assert not linears and len(quantized) == sum(isinstance(m, torch.nn.Linear) for m in reference.modules())
    assert all(m.compute_dtype == torch.float32 for m in quantized)  # CPU: fp32 activations
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        convert_precision(build_model(TINY, seed=0), "int4")


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_kv_cache_decoding_runs_in_reduced_precision(reference, precision):
    values, mask = series_batch(rows=2, patches=2)
    model = _convert(precision)
    state = model.prefill(values, mask, max_new_patches=1)
    ref_state = reference.prefill(values, mask, max_new_patches=1)
    nxt = values[:, :, -TINY.patch_size :] + 0.5
    got, ref = model.decode_next(state, nxt), reference.decode_next(ref_state, nxt)
    assert got.loc.dtype == torch.float32
    err = (got.expected() - ref.expected()).abs() / ref.scaler_scale[..., None]
    assert float(err.max()) < 5e-2


def test_engine_forecasts_with_a_bf16_model_close_to_fp32(reference):
    contexts = [np.sin(np.arange(n) / 7.0) + 0.01 * np.arange(n) for n in (150, 200, 333)]
    ref = ForecastEngine(reference, num_samples=64, seed=3).forecast(contexts, 2, aggregate=("expected", "mean"))
    got = ForecastEngine(_convert("bf16"), num_samples=64, seed=3).forecast(contexts, 2, aggregate=("expected", "mean"))
    scale = np.abs(ref.stats["expected"]).mean()
    assert np.abs(got.stats["expected"] - ref.stats["expected"]).max() < 5e-2 * scale + 1e-3


# -- checkpoints and load_model -------------------------------------------------------------


@pytest.fixture()
def tiny_dir(tmp_path, reference):
    return save_checkpoint(reference, tmp_path / "tiny")


def test_quantized_checkpoint_round_trip(tmp_path, tiny_dir, reference):
    out = tmp_path / "tiny-int8"
    assert cli_main(["quantize", str(tiny_dir), str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"]["method"] == "int8_weight_only"
    tensors = load_file(str(out / "model.safetensors"))
    qkv = "model.transformer.layers.0.attention.wQKV"
    assert tensors[qkv + ".weight"].dtype == torch.int8 and tensors[qkv + ".weight_scale"].dtype == torch.float32
    assert (out / "model.safetensors").stat().st_size < (tiny_dir / "model.safetensors").stat().st_size / 2

    with pytest.warns(gate.UngatedPrecisionWarning):
        loaded = load_model(out, precision="int8")
    direct = _convert("int8")
    for (name, a), (_, b) in zip(loaded.named_buffers(), direct.named_buffers()):
        assert torch.equal(a, b), name  # stored int8 values and scales are used as they are
    values, mask = series_batch()
    torch.testing.assert_close(
        loaded.forecast_params(values, mask).loc, direct.forecast_params(values, mask).loc, rtol=0, atol=0
    )
    fp32 = load_model(out)  # the dequantized weights, in fp32
    torch.testing.assert_close(
        fp32.layers[0].attention.wQKV.weight,
        dequantize_weight(*quantize_weight(reference.layers[0].attention.wQKV.weight)),
    )


def test_quantized_checkpoint_with_a_missing_scale_is_refused(tmp_path, reference):
    from safetensors.torch import save_file

    out = save_quantized(reference, tmp_path / "q")
    tensors = load_file(str(out / "model.safetensors"))
    del tensors["model.unembed.weight_scale"]
    save_file(tensors, str(out / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model\.unembed\.weight"):
        load_model(out)


def test_load_model_warns_once_per_weights_and_precision(tiny_dir):
    with pytest.warns(gate.UngatedPrecisionWarning, match="has no quality-gate result"):
        model = load_model(tiny_dir, precision="bf16")
    assert isinstance(model, TotoModel) and model.compute_dtype == torch.bfloat16
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tiny_dir, precision="bf16")  # second time: silent
        load_model(tiny_dir)  # fp32 is the reference: never warns
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        load_model(tiny_dir, precision="fp8")


def test_set_int8_kernel_switches_every_layer():
    model = set_int8_kernel(_convert("int8"), "int_mm")
    assert {m.kernel for m in model.modules() if isinstance(m, Int8Linear)} == {Int8Kernel.INT_MM}
    with pytest.raises(ValueError):
        set_int8_kernel(model, "int4")


def test_int8_for_cuda_runs_bf16_activations_and_matches_fp32_on_cpu(reference):
    # the CUDA configuration (bf16 activations, fp32 residual) with the dequant kernel, on CPU
    model = convert_precision(build_model(TINY, seed=0), "int8", device="cuda")
    layers = [m for m in model.modules() if isinstance(m, Int8Linear)]
    assert layers and {m.compute_dtype for m in layers} == {torch.bfloat16}
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # RMSNorm scales
    values, mask = series_batch(level=50.0)
    ref = reference.forecast_params(values, mask, horizon=2)
    got = model.forecast_params(values, mask, horizon=2)
    assert got.loc.dtype == torch.float32 and torch.equal(got.scaler_loc, ref.scaler_loc)
    err = (got.expected() - ref.expected()).abs() / ref.scaler_scale[..., None]
    assert float(err.max()) < 5e-2
    state = model.prefill(values[:2], mask[:2], max_new_patches=1)
    assert state.keys.dtype == torch.bfloat16
    assert model.decode_next(state, values[:2, :, -TINY.patch_size :]).loc.dtype == torch.float32
