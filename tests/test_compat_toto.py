"""totowalk.compat.toto: toto-ts 0.2.0's TotoForecaster / Forecast / MaskedTimeseries as a drop-in.

The reference numbers in tests/fixtures/toto_ref/forecaster.npz were written by
tests/fixtures/make_toto_forecaster_reference.py running toto-ts's own forecaster on the
random-weight reference model toto_ref/ref_a; see that script for what each array is.
"""

from __future__ import annotations

import enum
import importlib.util
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import ks_2samp

from totowalk import load_model
from totowalk.compat import Forecast, MaskedTimeseries, TotoForecaster
from totowalk.engine import ForecastEngine

pytestmark = pytest.mark.usefixtures("single_torch_thread")

REF_DIR = Path(__file__).resolve().parent / "fixtures" / "toto_ref"
UNI_LENGTHS = (70, 200, 1000)
HORIZONS = (1, 8, 64, 100)
MULTI_IDS = (0, 0, 1)
# fp32 parity bound of the issue: max |ours - reference| / max |reference|, per variate.
RTOL = 1e-5


def relative_error(ours, reference: np.ndarray) -> float:
    """Largest absolute difference relative to the largest magnitude, each variate on its own."""
    reference = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    ours = np.asarray(ours, dtype=np.float64).reshape(reference.shape)
    scale = np.maximum(np.abs(reference).max(axis=1), 1e-30)
    return float((np.abs(ours - reference).max(axis=1) / scale).max())


def masked(series: np.ndarray, ids=None, mask: np.ndarray | None = None) -> MaskedTimeseries:
    """(B, V, T) or (V, T) values as toto-ts users build them."""
    values = torch.from_numpy(np.ascontiguousarray(series, dtype=np.float32))
    id_mask = torch.zeros_like(values, dtype=torch.int)
    if ids is not None:
        id_mask = torch.tensor(ids, dtype=torch.int).reshape(-1, 1).expand_as(values).contiguous()
    return MaskedTimeseries(
        series=values,
        padding_mask=torch.ones_like(values, dtype=torch.bool) if mask is None else torch.from_numpy(mask),
        id_mask=id_mask,
        timestamp_seconds=torch.zeros_like(values, dtype=torch.int),
        time_interval_seconds=torch.ones(values.shape[:-1], dtype=torch.int),
    )


@pytest.fixture(scope="module")
def reference() -> dict:
    return dict(np.load(REF_DIR / "forecaster.npz"))


@pytest.fixture(scope="module")
def model():
    return load_model(REF_DIR / "ref_a")


@pytest.fixture(scope="module")
def forecaster(model):
    return TotoForecaster(model, seed=5)


# -- the mean path against toto-ts ---------------------------------------------------------------


@pytest.mark.parametrize("horizon", HORIZONS)
@pytest.mark.parametrize("length", UNI_LENGTHS)
def test_mean_path_matches_toto_ts(forecaster, reference, length, horizon):
    series = reference[f"uni_{length}/series"]
    forecast = forecaster.forecast(masked(series[None, None]), prediction_length=horizon)
    assert forecast.samples is None and forecast.mean.shape == (1, 1, horizon)
    err = relative_error(forecast.mean[0], reference[f"uni_{length}/mean_h{horizon}"])
    assert err <= RTOL, f"uni_{length}, H={horizon}: mean path off by {err:.2e}"


@pytest.mark.parametrize("horizon", HORIZONS)
def test_multivariate_mean_path_with_groups_matches_toto_ts(forecaster, reference, horizon):
    forecast = forecaster.forecast(masked(reference["multi/series"][None], MULTI_IDS), horizon)
    assert forecast.mean.shape == (1, 3, horizon)
    err = relative_error(forecast.mean[0], reference[f"multi/mean_h{horizon}"])
    assert err <= RTOL, f"multi, H={horizon}: mean path off by {err:.2e}"


@pytest.mark.parametrize("case", ["uni_70", "uni_1000", "multi"])
def test_mean_path_without_kv_cache_matches_toto_ts(forecaster, reference, case):
    series = reference[f"{case}/series"]
    inputs = masked(series[None], MULTI_IDS) if case == "multi" else masked(series[None, None])
    uncached = forecaster.forecast(inputs, 100, use_kv_cache=False).mean[0]
    err = relative_error(uncached, reference[f"{case}/mean_h100_nokv"])
    assert err <= RTOL, f"{case}: uncached mean path off by {err:.2e}"
    if case == "uni_1000":  # the two decodings differ (toto-ts's cached rotary centre moves)
        assert not torch.equal(uncached, forecaster.forecast(inputs, 100).mean[0])


@pytest.mark.parametrize("horizon", [8, 100])
def test_left_padded_batch_gives_each_series_its_answer_alone(forecaster, reference, horizon):
    series, mask = reference["padded/series"], reference["padded/padding_mask"]
    batched = forecaster.forecast(masked(series[:, None], mask=mask[:, None]), horizon).mean[:, 0]
    for row in range(series.shape[0]):
        alone = forecaster.forecast(masked(series[row, mask[row]][None, None]), horizon).mean[0, 0]
        assert torch.equal(batched[row], alone), f"row {row}"
    # toto-ts alone, to the parity bound; toto-ts's own batched call moves the padded series
    assert relative_error(batched, reference[f"padded/alone_h{horizon}"]) <= RTOL
    moved = np.abs(reference[f"padded/batched_h{horizon}"] - reference[f"padded/alone_h{horizon}"]).max(axis=1)
    assert moved[0] > 0.1 and moved[1] > 0.1  # rows 0 and 1 are padded; row 2 fills the batch


def test_unbatched_input_dtype_device_and_no_samples(forecaster, reference):
    series = reference["multi/series"]  # (V, T): one series, as in toto-ts's README
    forecast = forecaster.forecast(masked(series, MULTI_IDS), 8)
    assert isinstance(forecast, Forecast)
    assert forecast.mean.shape == (1, 3, 8) and forecast.mean.dtype == torch.float32
    assert forecast.mean.device == torch.device("cpu")
    batched = forecaster.forecast(masked(series[None], MULTI_IDS), 8).mean
    assert torch.equal(forecast.mean, batched)
    assert torch.equal(forecaster.forecast(masked(series, MULTI_IDS).to("cpu"), 8).mean, batched)
    with pytest.raises(ValueError, match="needs sample paths"):
        forecast.median
    with pytest.raises(ValueError, match="needs sample paths"):
        forecast.quantile(0.9)


def test_interior_padding_mean_path_equals_the_model_with_that_mask(forecaster, model, reference):
    series = reference["uni_200/series"].copy()
    mask = np.ones(series.shape, dtype=bool)
    mask[100:110] = False
    series[100:110] = 1e6  # masked values are ignored
    got = forecaster.forecast(masked(series[None, None], mask=mask[None, None]), 5).mean[0, 0]
    values = torch.zeros(1, 1, 256)
    padding = torch.zeros(1, 1, 256, dtype=torch.bool)
    values[..., 56:] = torch.from_numpy(np.where(mask, series, 0.0))
    padding[..., 56:] = torch.from_numpy(mask)
    expected = model.forecast_params(values, padding, horizon=5).expected()[0, 0]
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


# -- sample paths -------------------------------------------------------------------------------


def test_sample_paths_shapes_and_distribution(forecaster, reference):
    series = reference["uni_200/series"]
    inputs = masked(series[None, None])
    samples_count = 256
    forecast = forecaster.forecast(inputs, 100, num_samples=samples_count, samples_per_batch=32)
    samples = forecast.samples
    assert samples.shape == (1, 1, 100, samples_count) and samples.dtype == torch.float32
    assert samples.device == torch.device("cpu") and bool(torch.isfinite(samples).all())
    torch.testing.assert_close(forecast.mean, samples.mean(dim=-1), rtol=0, atol=0)

    # the first patch's marginals are the mixtures whose exact mean the mean path holds
    exact = forecaster.forecast(inputs, 64).mean[0, 0]
    standard_error = samples[0, 0, :64].std(dim=-1) / samples_count**0.5
    z = (forecast.mean[0, 0, :64] - exact) / standard_error
    assert abs(float(z[0])) < 4.0 and float(z.abs().max()) < 4.5, z

    # and every step, beyond the first patch too, is distributed as toto-ts's paths
    paths = reference["samples/paths"]
    for step in (0, 31, 63, 64, 80, 99):
        p_value = ks_2samp(samples[0, 0, step].numpy(), paths[step]).pvalue
        assert p_value > 1e-3, f"step {step}: KS p = {p_value:.2e}"


def test_quantiles_median_std_follow_toto_ts_semantics(forecaster, model, reference):
    series = reference["uni_70/series"]
    forecast = forecaster.forecast(masked(series[None, None]), 8, num_samples=400)
    samples = forecast.samples
    torch.testing.assert_close(forecast.quantile(0.9), samples.quantile(0.9, dim=-1), rtol=0, atol=0)
    torch.testing.assert_close(forecast.median, samples.quantile(0.5, dim=-1), rtol=0, atol=0)
    torch.testing.assert_close(forecast.std, samples.std(dim=-1), rtol=0, atol=0)
    levels = torch.tensor([0.1, 0.5, 0.9])
    assert forecast.quantile(levels).shape == (3, 1, 1, 8)
    assert bool((forecast.quantile(0.1) < forecast.median).all() and (forecast.median < forecast.quantile(0.9)).all())
    # close to the predicted distribution's exact quantiles (the engine's exact estimator)
    exact = ForecastEngine(model).forecast([series], 8, aggregate=("quantile_0.9", "median", "std"), estimator="exact")
    spread = exact["std"][0]
    for name, ours in (("quantile_0.9", forecast.quantile(0.9)), ("median", forecast.median)):
        gap = np.abs(ours[0, 0].numpy() - exact[name][0]) / spread
        assert gap.max() < 0.3, f"{name}: sample estimate {gap.max():.2f} std away from the exact value"


def test_quantiles_of_large_sample_arrays_go_in_chunks(monkeypatch):
    import totowalk.compat.toto as compat_toto

    samples = torch.randn(2, 3, 5, 40, generator=torch.Generator().manual_seed(0))
    forecast = Forecast(mean=samples.mean(-1), samples=samples)
    levels = torch.tensor([0.25, 0.9])
    whole = (forecast.quantile(0.9), forecast.quantile(levels))
    monkeypatch.setattr(compat_toto, "_QUANTILE_MAX_ELEMENTS", 100)  # 2 rows of 40 per chunk
    torch.testing.assert_close(forecast.quantile(0.9), whole[0], rtol=0, atol=0)
    torch.testing.assert_close(forecast.quantile(levels), whole[1], rtol=0, atol=0)


def test_seeds_repeat_and_global_generator_controls_unseeded_draws(model, reference):
    inputs = masked(reference["uni_70/series"][None, None])
    seeded = TotoForecaster(model, seed=11)
    first = seeded.forecast(inputs, 4, num_samples=8).samples
    assert torch.equal(first, seeded.forecast(inputs, 4, num_samples=8).samples)
    fresh = TotoForecaster(model)
    torch.manual_seed(0)
    a = fresh.forecast(inputs, 4, num_samples=8).samples
    b = fresh.forecast(inputs, 4, num_samples=8).samples
    torch.manual_seed(0)
    assert torch.equal(a, fresh.forecast(inputs, 4, num_samples=8).samples)
    assert not torch.equal(a, b)


def test_variate_groups_are_forecast_as_separate_series(forecaster, reference):
    series = reference["multi/series"][None]
    joint = forecaster.forecast(masked(series, MULTI_IDS), 100, num_samples=8).samples
    pair = forecaster.forecast(masked(series[:, :2]), 100, num_samples=8).samples
    single = forecaster.forecast(masked(series[:, 2:]), 100, num_samples=8).samples
    assert joint.shape == (1, 3, 100, 8)
    assert torch.equal(joint[:, :2], pair) and torch.equal(joint[:, 2:], single)


# -- a toto-ts script, its import swapped --------------------------------------------------------

README_SCRIPT = """
import torch
from toto.data.util.dataset import MaskedTimeseries
from toto.inference.forecaster import TotoForecaster
from toto.model.toto import Toto

DEVICE = "cpu"
toto = Toto.from_pretrained(MODEL_ID)
toto.to(DEVICE)
toto.compile()
forecaster = TotoForecaster(toto.model)

input_series = torch.randn(7, 300).cumsum(-1).to(DEVICE)
timestamp_seconds = torch.zeros(7, 300).to(DEVICE)
time_interval_seconds = torch.full((7,), 60 * 15).to(DEVICE)
inputs = MaskedTimeseries(
    series=input_series,
    padding_mask=torch.full_like(input_series, True, dtype=torch.bool),
    id_mask=torch.zeros_like(input_series),
    timestamp_seconds=timestamp_seconds,
    time_interval_seconds=time_interval_seconds,
)
forecast = forecaster.forecast(inputs, prediction_length=80, num_samples=32, samples_per_batch=32)
median_prediction = forecast.median
prediction_samples = forecast.samples
lower_quantile = forecast.quantile(0.1)
upper_quantile = forecast.quantile(0.9)
"""

TOTO_IMPORTS = (
    "from toto.data.util.dataset import MaskedTimeseries\n"
    "from toto.inference.forecaster import TotoForecaster\n"
    "from toto.model.toto import Toto\n"
)


def run_readme_script(source: str) -> dict:
    namespace = {"MODEL_ID": str(REF_DIR / "ref_a")}
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(source, "<toto-ts README>", "exec"), namespace)
    return namespace


def test_a_toto_ts_script_runs_with_only_its_import_changed():
    assert TOTO_IMPORTS in README_SCRIPT
    swapped = README_SCRIPT.replace(
        TOTO_IMPORTS, "from totowalk.compat.toto import MaskedTimeseries, Toto, TotoForecaster\n"
    )
    done = run_readme_script(swapped)
    assert done["prediction_samples"].shape == (1, 7, 80, 32)
    for name in ("median_prediction", "lower_quantile", "upper_quantile"):
        assert done[name].shape == (1, 7, 80) and bool(torch.isfinite(done[name]).all()), name
    assert bool((done["lower_quantile"] <= done["upper_quantile"]).all())


@pytest.mark.skipif(importlib.util.find_spec("toto") is None, reason="toto-ts (the reference) is not installed")
def test_live_toto_ts_objects_work_unchanged(reference):
    """toto-ts's own Toto and MaskedTimeseries go straight into our forecaster."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from toto.data.util.dataset import MaskedTimeseries as TotoMaskedTimeseries
        from toto.model.toto import Toto

        official = Toto.load_from_checkpoint(str(REF_DIR / "ref_a"))
    inputs = TotoMaskedTimeseries(*masked(reference["multi/series"][None], MULTI_IDS)[:5])
    ours = TotoForecaster(official.model).forecast(inputs, 100).mean[0]
    assert relative_error(ours, reference["multi/mean_h100"]) <= RTOL


# -- toto-ts modules by duck typing --------------------------------------------------------------


class AttentionAxis(enum.Enum):
    TIME = 1
    SPACE = 2


class CausalPatchStdMeanScaler(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.minimum_scale, self.use_bessel_correction = 0.1, True
        self.stabilize_with_global, self.scale_factor_exponent = True, 10.0


class MixtureOfStudentTsOutput(torch.nn.Module):
    def __init__(self, d: int, k: int):
        super().__init__()
        self.k_components = k
        self.df, self.loc_proj = torch.nn.Linear(d, k), torch.nn.Linear(d, k)
        self.scale_proj, self.mixture_weights = torch.nn.Linear(d, k), torch.nn.Linear(d, k)


class FakeNorm(torch.nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.eps = 1e-8
        self.scale = torch.nn.Parameter(torch.ones(d))


def fake_toto_ts_module(d=32, layers=3, heads=4, hidden=64, k=6, patch=64):
    """A module laid out as toto-ts's Toto (the ref_a configuration), without toto-ts."""
    backbone = torch.nn.Module()
    backbone.embed_dim, backbone.dropout = d, 0.0
    backbone.scaler = CausalPatchStdMeanScaler()
    backbone.patch_embed = torch.nn.Module()
    backbone.patch_embed.patch_size = backbone.patch_embed.stride = patch
    backbone.patch_embed.projection = torch.nn.Linear(patch, d)
    backbone.transformer = torch.nn.Module()
    backbone.transformer.rotary_emb = types.SimpleNamespace(scale_base=512)
    backbone.transformer.layers = torch.nn.ModuleList()
    for index in range(layers):
        layer = torch.nn.Module()
        layer.num_heads, layer.mlp_hidden_dim = heads, hidden
        layer.attention_axis = AttentionAxis.SPACE if index == layers - 1 else AttentionAxis.TIME
        layer.norm1, layer.norm2 = FakeNorm(d), FakeNorm(d)
        layer.attention = torch.nn.Module()
        layer.attention.wQKV, layer.attention.wO = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        layer.mlp = torch.nn.Sequential(torch.nn.Linear(d, 2 * hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, d))
        backbone.transformer.layers.append(layer)
    backbone.unembed = torch.nn.Linear(d, d * patch)
    backbone.output_distribution = MixtureOfStudentTsOutput(d, k)
    toto = torch.nn.Module()
    toto.model = backbone
    toto.load_state_dict(load_file(str(REF_DIR / "ref_a" / "model.safetensors")), strict=True)
    return toto


@pytest.mark.parametrize("which", ["Toto", "backbone"])
def test_a_toto_ts_module_is_converted_once(reference, which):
    toto = fake_toto_ts_module()
    forecaster = TotoForecaster(toto if which == "Toto" else toto.model, seed=0)
    inputs = types.SimpleNamespace(  # any object with toto-ts's field names
        series=torch.from_numpy(reference["uni_200/series"][None, None]),
        padding_mask=torch.ones(1, 1, 200, dtype=torch.bool),
        id_mask=torch.zeros(1, 1, 1, dtype=torch.int),  # broadcast over time, as toto-ts documents
    )
    err = relative_error(forecaster.forecast(inputs, 100).mean[0], reference["uni_200/mean_h100"])
    assert err <= RTOL
    toto.model.output_distribution.k_components = 5
    with pytest.raises(RuntimeError, match="size mismatch"):
        TotoForecaster(toto)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_give_cuda_forecasts(reference):
    forecaster = TotoForecaster(load_model(REF_DIR / "ref_a", device="cuda"), seed=1)
    inputs = masked(reference["multi/series"][None], MULTI_IDS).to("cuda")
    mean = forecaster.forecast(inputs, 100).mean
    assert mean.device.type == "cuda" and mean.dtype == torch.float32
    assert relative_error(mean[0].cpu(), reference["multi/mean_h100"]) <= RTOL
    sampled = forecaster.forecast(inputs, 100, num_samples=16)
    assert sampled.samples.shape == (1, 3, 100, 16) and sampled.samples.device.type == "cuda"
    assert sampled.median.device.type == "cuda"


# -- errors --------------------------------------------------------------------------------------


def test_unsupported_inputs_raise_clearly(forecaster, reference):
    series = reference["uni_200/series"][None, None]
    with pytest.raises(NotImplementedError, match="future_exogenous_variables"):
        forecaster.forecast(masked(series), 8, future_exogenous_variables=torch.zeros(1, 1, 8))
    changing = masked(np.repeat(series, 2, axis=1))
    ids = changing.id_mask.clone()
    ids[0, 1, 128:] = 1
    with pytest.raises(NotImplementedError, match="id_mask changes over time"):
        forecaster.forecast(changing._replace(id_mask=ids), 8)
    gap = np.ones(series.shape, dtype=bool)
    gap[..., 100] = False
    forecaster.forecast(masked(series, mask=gap), 8)  # the mean path takes any mask
    with pytest.raises(NotImplementedError, match="variate 0 has padding_mask False at step 100"):
        forecaster.forecast(masked(series, mask=gap), 8, num_samples=4)
    broken = series.copy()
    broken[..., 150] = np.nan
    with pytest.raises(ValueError, match="non-finite value nan at row 0, variate 0, step 150"):
        forecaster.forecast(masked(broken), 8)
    with pytest.raises(ValueError, match="no real value"):
        forecaster.forecast(masked(series, mask=np.zeros(series.shape, dtype=bool)), 8)
    with pytest.raises(ValueError, match="prediction_length must be an int >= 1"):
        forecaster.forecast(masked(series), 0)
    with pytest.raises(ValueError, match=r"expected \(batch, variates, time\)"):
        forecaster.forecast(masked(series[0, 0]), 8)
    with pytest.raises(TypeError, match="expected a totowalk TotoModel"):
        TotoForecaster(object())
