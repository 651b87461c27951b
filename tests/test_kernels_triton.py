"""Fused Triton sampler/reducer vs the torch reference, scipy and torch.distributions.

Runs on CUDA when present, else on CPU under the Triton interpreter (TRITON_INTERPRET=1, set here
before the kernel module is first imported). The interpreter is slow, most of all for the on-chip
sort, so sizes stay tiny and reductions use S <= 256.
"""

import numpy as np
import pytest
import torch
from _triton import require_triton
from scipy import stats

require_triton()

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from totowalk.aggregation import aggregate_numpy  # noqa: E402
from totowalk.kernels import philox4x32, sample_and_reduce, sample_mixture  # noqa: E402
from totowalk.kernels.backend import resolve_backend  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
NAMES = [
    "mean",
    "std",
    "median",
    "p10",
    "p90",
    "quantile_0.35",
    "trimmed_mean_10",
    "lower_trimmed_mean_20",
    "upper_trimmed_mean_20",
    "mean_minus_std_0.5",
    "mean_plus_std_1.5",
    "mean_quantile_mix_35_0.5",
    "band",
]


def mixture(rows, components, seed=0, scale_factor=1.0):
    g = torch.Generator().manual_seed(seed)
    params = dict(
        weights=torch.softmax(torch.randn(rows, components, generator=g) * 2, dim=1),
        df=2.0 + torch.nn.functional.softplus(torch.randn(rows, components, generator=g) * 3),
        loc=torch.randn(rows, components, generator=g),
        scale=(torch.nn.functional.softplus(torch.randn(rows, components, generator=g)) + 1e-2) * scale_factor,
        affine_loc=torch.randn(rows, generator=g),
        affine_scale=torch.rand(rows, generator=g) * 3 + 0.1,
        keys=torch.randint(-(2**62), 2**62, (rows,), generator=g, dtype=torch.int64),
    )
    return {name: value.to(DEVICE) for name, value in params.items()}


def args(p, num_samples):
    return (p["weights"], p["df"], p["loc"], p["scale"], p["affine_loc"], p["affine_scale"], p["keys"], num_samples)


@triton.jit
def _philox_probe_kernel(out_ptr, c0_ptr, c1_ptr, c2_ptr, c3_ptr, seed, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    words = tl.philox(
        seed, tl.load(c0_ptr + offs), tl.load(c1_ptr + offs), tl.load(c2_ptr + offs), tl.load(c3_ptr + offs)
    )
    for i in tl.static_range(4):
        tl.store(out_ptr + i * BLOCK + offs, words[i].to(tl.int64) & 0xFFFFFFFF)
    ints = tl.randint4x(seed, tl.load(c0_ptr + offs).to(tl.int64) + (tl.load(c1_ptr + offs).to(tl.int64) << 32))
    for i in tl.static_range(4):
        tl.store(out_ptr + (4 + i) * BLOCK + offs, ints[i].to(tl.int64) & 0xFFFFFFFF)


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3, 2**63 - 1])
def test_torch_philox_is_bit_exact_with_triton(seed):
    block = 64
    g = torch.Generator().manual_seed(seed % 1000)
    counters = [torch.randint(0, 2**32, (block,), generator=g, dtype=torch.int64) for _ in range(4)]
    out = torch.zeros(8 * block, dtype=torch.int64, device=DEVICE)
    _philox_probe_kernel[(1,)](
        out, *(c.to(torch.uint32).to(DEVICE) for c in counters), seed, BLOCK=block, enable_fp_fusion=False
    )
    lo, hi = seed & 0xFFFFFFFF, seed >> 32
    expected = philox4x32(*counters, lo, hi)
    zero = torch.zeros_like(counters[0])
    expected_randint = philox4x32(counters[0], counters[1], zero, zero, lo, hi)
    assert torch.equal(out.cpu(), torch.cat(expected + expected_randint))


def test_triton_samples_equal_torch_reference_to_rounding():
    p = mixture(4, 24, seed=1)
    fast = sample_mixture(*args(p, 200), seed=5, backend="triton")
    reference = sample_mixture(*args(p, 200), seed=5, backend="torch")
    # Same counters and math; only transcendental rounding differs (an accept/reject flip within
    # rounding of its boundary would change one sample, hence the allowance of 1 in 800).
    close = torch.isclose(fast, reference, rtol=1e-5, atol=1e-5)
    assert close.float().mean() >= 1 - 1 / 800


def test_determinism_and_batch_invariance():
    p = mixture(5, 6, seed=2)
    first = sample_mixture(*args(p, 64), seed=3, backend="triton")
    assert torch.equal(first, sample_mixture(*args(p, 64), seed=3, backend="triton"))
    subset = {name: value[[3, 0]] for name, value in p.items()}
    assert torch.equal(sample_mixture(*args(subset, 64), seed=3, backend="triton"), first[[3, 0]])
    assert torch.equal(sample_mixture(*args(p, 48), seed=3, backend="triton"), first[:, :48])


def _reference_mixture_draws(p, row, count, seed):
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=p["weights"][row].cpu().double()),
        torch.distributions.StudentT(
            p["df"][row].cpu().double(), p["loc"][row].cpu().double(), p["scale"][row].cpu().double()
        ),
    )
    torch.manual_seed(seed)
    return (p["affine_loc"][row].cpu().double() + p["affine_scale"][row].cpu().double() * mix.sample((count,))).numpy()


def _replicated(p, row, copies):
    """``copies`` rows with row ``row``'s parameters and distinct keys (more samples per KS test)."""
    out = {name: value[[row] * copies].clone() for name, value in p.items()}
    out["keys"] = p["keys"][row] + torch.arange(copies, device=DEVICE) * 7919
    return out


KS_CASES = ["random", "df_near_2", "tiny_scale", "huge_scale", "dominant"]


@pytest.mark.parametrize("case", KS_CASES)
def test_ks_against_torch_distributions_and_reference(case):
    p = mixture(2, 5, seed=KS_CASES.index(case), scale_factor={"tiny_scale": 1e-12, "huge_scale": 1e12}.get(case, 1.0))
    if case == "df_near_2":
        p["df"] = torch.full_like(p["df"], 2.0) + torch.rand_like(p["df"]) * 1e-3
    if case == "dominant":
        p["weights"] = torch.full_like(p["weights"], 1e-6)
        p["weights"][:, 2] = 1.0
    if case in ("tiny_scale", "huge_scale"):
        p["affine_loc"] = torch.zeros_like(p["affine_loc"])  # keep the shape visible at that scale
        p["loc"] = p["loc"] * (1e-12 if case == "tiny_scale" else 1e12)
    for row in range(2):
        drawn = sample_mixture(*args(_replicated(p, row, 4), 2048), seed=11, backend="triton").cpu().double().flatten()
        reference = _reference_mixture_draws(p, row, 8192, seed=row)
        assert stats.ks_2samp(drawn.numpy(), reference).pvalue > 1e-3, (case, row)
        torch_path = sample_mixture(*args(_replicated(p, row, 4), 2048), seed=12, backend="torch").cpu().double()
        assert stats.ks_2samp(drawn.numpy(), torch_path.flatten().numpy()).pvalue > 1e-3, (case, row)


def test_single_component_against_scipy_student_t():
    ones = torch.ones(4, 1, device=DEVICE)
    p = dict(
        weights=ones,
        df=ones * 2.5,
        loc=ones * 0.0,
        scale=ones * 1.0,
        affine_loc=torch.zeros(4, device=DEVICE),
        affine_scale=torch.ones(4, device=DEVICE),
        keys=torch.arange(4, device=DEVICE),
    )
    drawn = sample_mixture(*args(p, 4096), backend="triton").cpu().flatten().numpy()
    assert stats.kstest(drawn, stats.t(2.5).cdf).pvalue > 1e-3


ON_GPU_ONLY = pytest.mark.skipif(not torch.cuda.is_available(), reason="the interpreter sorts 4096 values in ~10 s")


@pytest.mark.parametrize(
    "num_samples", [1, 7, 256, pytest.param(3000, marks=ON_GPU_ONLY), pytest.param(4096, marks=ON_GPU_ONLY)]
)
def test_fused_aggregates_equal_numpy_on_returned_samples(num_samples):
    p = mixture(3, 24, seed=num_samples)
    fused, samples = sample_and_reduce(*args(p, num_samples), NAMES, return_samples=True, backend="triton")
    values = samples.cpu().double().numpy()
    spread = values.std(axis=1) + np.abs(values).mean(axis=1)
    for name in NAMES:
        expected = aggregate_numpy(values, name)
        # float32 accumulation (tree sums over <= 4096 values): a few ulps of the typical magnitude.
        np.testing.assert_allclose(
            fused[name].cpu().numpy(), expected, rtol=0, atol=float(spread.max()) * 1e-5, err_msg=name
        )
    stats_only, none = sample_and_reduce(*args(p, num_samples), NAMES, return_samples=False, backend="triton")
    assert none is None
    for name in NAMES:
        assert torch.equal(stats_only[name], fused[name])


@pytest.mark.parametrize("num_samples, chunk, dtype", [(128, 32, torch.float32), (40, 16, torch.float16)])
def test_chunked_draws_equal_one_shot_draws(monkeypatch, num_samples, chunk, dtype):
    # S = 4096 draws in chunks through a scratch buffer (launched 8192 rows at a time); smaller
    # chunks, a 2-row scratch buffer and an S that leaves the last chunks partly or wholly masked
    # force that path here. Samples and statistics must not change.
    from totowalk.kernels import mixture_triton
    from totowalk.kernels.reduction_plan import build_reduction_plan
    from totowalk.kernels.validation import check_mixture_inputs

    p = mixture(3, 24, seed=num_samples)
    params = check_mixture_inputs(*args(p, num_samples))
    plan = build_reduction_plan(NAMES, num_samples)
    one_shot, samples = mixture_triton.sample_and_reduce_triton(params, num_samples, 7, dtype, plan, True)
    for return_samples in (True, False):
        monkeypatch.setattr(mixture_triton, "_SCRATCH_BYTES", 2 * num_samples * torch.finfo(dtype).bits // 8)
        chunked, chunked_samples = mixture_triton.sample_and_reduce_triton(
            params, num_samples, 7, dtype, plan, return_samples, chunk_samples=chunk
        )
        assert torch.equal(chunked, one_shot)
        if return_samples:
            assert torch.equal(chunked_samples, samples)
        else:
            assert chunked_samples is None


def test_fp16_samples_and_aggregates_within_tolerance_of_fp32():
    p = mixture(3, 24, seed=9)
    full, full_samples = sample_and_reduce(*args(p, 256), NAMES[:7] + ["band"], return_samples=True, backend="triton")
    half, half_samples = sample_and_reduce(
        *args(p, 256), NAMES[:7] + ["band"], return_samples=True, backend="triton", dtype=torch.float16
    )
    assert half_samples.dtype == torch.float16
    # Samples: most agree to fp16 resolution; a few move component (weights rounded to fp16).
    close = torch.isclose(half_samples.float(), full_samples, rtol=5e-3, atol=5e-3)
    assert close.float().mean() > 0.95
    reference_half = sample_and_reduce(*args(p, 256), NAMES[:7] + ["band"], backend="torch", dtype=torch.float16)[0]
    std = full["std"]
    for name in full:
        # Stated fp16 tolerance: 2e-3 |level| + 5 % of the spread (see the report / bench).
        bound = 2e-3 * (p["affine_loc"].abs() + 5 * std) + 0.05 * std
        assert ((half[name] - full[name]).abs() <= bound).all(), name
        assert torch.allclose(half[name], reference_half[name], rtol=1e-3, atol=1e-3 * float(std.max())), name


def test_triton_on_cpu_requires_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        resolve_backend("triton", torch.device("cpu"))
    assert resolve_backend("auto", torch.device("cpu")).value == "torch"
