"""Torch reference path of totowalk.kernels: Philox, the mixture sampler, reductions, keys."""

import numpy as np
import pytest
import torch
from scipy import stats

from totowalk.aggregation import aggregate_numpy
from totowalk.kernels import mixture_mean, philox4x32, reduce_samples, request_keys, sample_and_reduce, sample_mixture

ALL_SAMPLED = [
    "mean",
    "std",
    "median",
    "p10",
    "p90",
    "p37",
    "quantile_0.35",
    "trimmed_mean_10",
    "trimmed_mean_0",
    "lower_trimmed_mean_20",
    "upper_trimmed_mean_20",
    "mean_minus_std_0.5",
    "mean_plus_std_1.5",
    "mean_quantile_mix_35_0.5",
    "band",
]


def random_mixture(rows, components=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        weights=torch.softmax(torch.randn(rows, components, generator=g) * 2, dim=1),
        df=2.0 + torch.nn.functional.softplus(torch.randn(rows, components, generator=g) * 3),
        loc=torch.randn(rows, components, generator=g),
        scale=torch.nn.functional.softplus(torch.randn(rows, components, generator=g)) + 1e-3,
        affine_loc=torch.randn(rows, generator=g) * 10,
        affine_scale=torch.rand(rows, generator=g) * 3 + 0.1,
        keys=torch.randint(-(2**62), 2**62, (rows,), generator=g, dtype=torch.int64),
    )


def call(params, num_samples, **kwargs):
    p = params
    return sample_mixture(
        p["weights"],
        p["df"],
        p["loc"],
        p["scale"],
        p["affine_loc"],
        p["affine_scale"],
        p["keys"],
        num_samples,
        **kwargs,
    )


@pytest.mark.parametrize(
    "counter, key, expected",
    [  # Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 10 rounds).
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_philox_known_answers(counter, key, expected):
    words = philox4x32(*(torch.tensor([c], dtype=torch.int64) for c in counter), *key)
    assert tuple(int(w) for w in words) == expected


def test_samples_are_deterministic_and_batch_invariant():
    params = random_mixture(7)
    full = call(params, 300, seed=11)
    assert torch.equal(full, call(params, 300, seed=11))
    assert not torch.equal(full, call(params, 300, seed=12))
    # Rows 4 and 1 alone, reversed: same samples as inside the batch.
    subset = {name: value[[4, 1]] for name, value in params.items()}
    assert torch.equal(call(subset, 300, seed=11), full[[4, 1]])
    # Sample i does not depend on S: the first 100 of 300 equal a 100-sample draw.
    assert torch.equal(call(params, 100, seed=11), full[:, :100])


def test_same_key_and_params_give_same_samples_regardless_of_row():
    params = random_mixture(3)
    params["keys"][2] = params["keys"][0]
    for name in ("weights", "df", "loc", "scale", "affine_loc", "affine_scale"):
        params[name][2] = params[name][0]
    samples = call(params, 64)
    assert torch.equal(samples[0], samples[2])
    assert not torch.equal(samples[0], samples[1])


@pytest.mark.parametrize("df", [2.0, 2.001, 3.0, 30.0])
def test_single_component_matches_student_t(df):
    ones = torch.ones(1, 1)
    samples = sample_mixture(
        ones,
        torch.full((1, 1), df),
        torch.full((1, 1), 0.5),
        torch.full((1, 1), 2.0),
        torch.tensor([1.0]),
        torch.tensor([3.0]),
        torch.tensor([5]),
        20_000,
        seed=3,
    )
    # data = 1 + 3 * (0.5 + 2 t) = 2.5 + 6 t
    result = stats.kstest(samples[0].numpy(), stats.t(df, loc=2.5, scale=6.0).cdf)
    assert result.pvalue > 1e-3


def test_mixture_matches_torch_distributions():
    params = random_mixture(3, components=5, seed=4)
    samples = call(params, 20_000, seed=9)
    for row in range(3):
        mixture = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(probs=params["weights"][row]),
            torch.distributions.StudentT(params["df"][row], params["loc"][row], params["scale"][row]),
        )
        torch.manual_seed(row)
        drawn = params["affine_loc"][row] + params["affine_scale"][row] * mixture.sample((20_000,))
        assert stats.ks_2samp(samples[row].numpy(), drawn.numpy()).pvalue > 1e-3


def test_one_dominant_component_and_extreme_scales():
    weights = torch.tensor([[1e-9, 1.0, 1e-9]])
    df = torch.tensor([[2.0, 4.0, 2.0]])
    loc = torch.tensor([[100.0, 0.0, -100.0]])
    for scale in (1e-20, 1e15):
        samples = sample_mixture(
            weights, df, loc, torch.full((1, 3), scale), torch.zeros(1), torch.ones(1), torch.tensor([1]), 5_000
        )
        assert stats.kstest(samples[0].numpy() / scale, stats.t(4.0).cdf).pvalue > 1e-3


def test_extreme_values_are_replaced_by_zero_like_the_reference():
    # affine_scale * scale overflows float32 for most draws: those samples become exactly 0.
    samples = sample_mixture(
        torch.ones(1, 1),
        torch.full((1, 1), 2.0),
        torch.zeros(1, 1),
        torch.full((1, 1), 1e30),
        torch.zeros(1),
        torch.tensor([1e20]),
        torch.tensor([1]),
        500,
    )
    assert torch.isfinite(samples).all()
    assert (samples == 0).float().mean() > 0.9
    half = sample_mixture(
        torch.ones(1, 1),
        torch.full((1, 1), 2.0),
        torch.zeros(1, 1),
        torch.full((1, 1), 1e4),
        torch.zeros(1),
        torch.ones(1),
        torch.tensor([1]),
        2000,
        dtype=torch.float16,
    )
    assert half.dtype == torch.float16
    nonzero = half[half != 0].float()
    assert (nonzero.abs() < torch.finfo(torch.float16).max / 2).all()
    assert (half == 0).any()  # |x| >= 32752 happens for df = 2, scale 1e4


@pytest.mark.parametrize("num_samples", [1, 2, 7, 300])
def test_reductions_equal_numpy_on_returned_samples(num_samples):
    params = random_mixture(5, seed=num_samples)
    p = params
    stats_, samples = sample_and_reduce(
        p["weights"],
        p["df"],
        p["loc"],
        p["scale"],
        p["affine_loc"],
        p["affine_scale"],
        p["keys"],
        num_samples,
        ALL_SAMPLED,
        return_samples=True,
    )
    assert samples.shape == (5, num_samples)
    for name in ALL_SAMPLED:
        expected = aggregate_numpy(samples.numpy(), name)
        # float64 reductions, then a float32 result: one float32 rounding of the value.
        np.testing.assert_allclose(stats_[name].numpy(), expected, rtol=2e-7, atol=1e-6, err_msg=name)
    again = reduce_samples(samples, ALL_SAMPLED)
    for name in ALL_SAMPLED:
        assert torch.equal(again[name], stats_[name])


def test_expected_is_the_analytic_mixture_mean():
    p = random_mixture(4)
    stats_, _ = sample_and_reduce(
        p["weights"],
        p["df"],
        p["loc"],
        p["scale"],
        p["affine_loc"],
        p["affine_scale"],
        p["keys"],
        8,
        ["expected", "mean"],
    )
    w = p["weights"].double()
    by_hand = p["affine_loc"].double() + p["affine_scale"].double() * (w * p["loc"].double()).sum(1) / w.sum(1)
    np.testing.assert_allclose(stats_["expected"].numpy(), by_hand.numpy(), rtol=1e-6)
    assert torch.equal(stats_["expected"], mixture_mean(p["weights"], p["loc"], p["affine_loc"], p["affine_scale"]))
    with pytest.raises(ValueError, match="expected"):
        reduce_samples(torch.zeros(2, 4), ["expected"])


def test_fp16_aggregates_close_to_fp32():
    p = random_mixture(8, seed=5)
    args = (p["weights"], p["df"], p["loc"], p["scale"], p["affine_loc"], p["affine_scale"], p["keys"], 512)
    names = ["mean", "median", "trimmed_mean_10", "p10", "p90", "band", "std"]
    full, _ = sample_and_reduce(*args, names)
    half, _ = sample_and_reduce(*args, names, dtype=torch.float16)
    spread = full["std"].abs() + 1e-3
    for name in names:
        # fp16 parameters and samples: relative rounding 2**-11 of |x| ~ |affine_loc| + a few std.
        bound = 2e-3 * (p["affine_loc"].abs() + 5 * spread) + 0.05 * spread
        assert ((half[name] - full[name]).abs() <= bound).all(), name


def test_request_keys_mixing():
    hashes = np.array([0, 1, 2**64 - 1], dtype=np.uint64)
    keys = request_keys(hashes, 3)
    assert keys.shape == (3, 3) and keys.dtype == torch.int64
    assert len(set(keys.flatten().tolist())) == 9
    assert torch.equal(request_keys(hashes[1:2], 2), keys[1:2, :2])  # batch and horizon invariant
    with pytest.raises(ValueError, match="uint64"):
        request_keys(np.array([1, 2]), 1)


def test_bad_inputs_name_the_tensor_and_row():
    p = random_mixture(4)
    bad = dict(p, df=p["df"].clone())
    bad["df"][2, 3] = 1.5
    with pytest.raises(ValueError, match=r"df: row 2"):
        call(bad, 8)
    with pytest.raises(ValueError, match=r"scale must have the shape of weights"):
        call(dict(p, scale=p["scale"][:, :3]), 8)
    with pytest.raises(TypeError, match="keys must be an int64"):
        call(dict(p, keys=p["keys"].int()), 8)
    with pytest.raises(ValueError, match="backend"):
        call(p, 8, backend="cuda")
    with pytest.raises(ValueError, match="Unknown aggregation"):
        reduce_samples(torch.zeros(2, 4), ["nonsense"])


def test_lazy_later_gamma_blocks_equal_drawing_every_block():
    # The torch path draws Philox blocks 2..4 only for samples still rejected; the kernel draws
    # all of them. Shape 1 (df = 2) has the lowest acceptance, so later blocks are exercised.
    from totowalk.kernels.mixture_torch import _gamma_marsaglia_tsang, _marsaglia_tsang_tries
    from totowalk.kernels.stream import GAMMA_DRAWS, philox_block

    keys, index = torch.arange(8) * 977, torch.arange(2048)
    shape = torch.ones(8, 2048)
    d = shape - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    gamma, done = d.clone(), torch.zeros_like(d, dtype=torch.bool)
    for draw in range(1, 1 + GAMMA_DRAWS):
        gamma, done = _marsaglia_tsang_tries(d, c, gamma, done, philox_block(3, keys, index, draw))
    assert done.all()
    assert torch.equal(_gamma_marsaglia_tsang(shape, 3, keys, index), gamma)


def test_value_checks_can_be_skipped_without_changing_samples():
    """check_values=False (the decode loop: no host sync) skips only the range checks."""
    from totowalk.kernels import sample_mixture

    gen = torch.Generator().manual_seed(3)
    n, k = 5, 4
    weights = torch.rand(n, k, generator=gen) + 0.1
    df = 2 + 5 * torch.rand(n, k, generator=gen)
    loc = torch.randn(n, k, generator=gen)
    scale = torch.rand(n, k, generator=gen) + 0.1
    aloc, ascale = torch.randn(n, generator=gen), torch.rand(n, generator=gen) + 0.5
    keys = torch.arange(n, dtype=torch.int64)
    checked = sample_mixture(weights, df, loc, scale, aloc, ascale, keys, 64, seed=1)
    unchecked = sample_mixture(weights, df, loc, scale, aloc, ascale, keys, 64, seed=1, check_values=False)
    assert torch.equal(checked, unchecked)
    bad_df = df.clone()
    bad_df[2, 1] = 1.0
    with pytest.raises(ValueError, match="df: row 2"):
        sample_mixture(weights, bad_df, loc, scale, aloc, ascale, keys, 8)
    with pytest.raises(ValueError, match="shape"):  # shapes are still checked
        sample_mixture(weights[:, :3], df, loc, scale, aloc, ascale, keys, 8, check_values=False)


def test_philox_compiled_loop_equals_the_tensor_rounds():
    from totowalk._native import native
    from totowalk.kernels.philox import philox4x32, philox4x32_torch

    if not hasattr(native(), "philox4x32"):
        pytest.skip("the extension is not built")
    rng = np.random.default_rng(3)
    edges = torch.tensor([0, 1, 2**16, 2**31, 2**32 - 1], dtype=torch.int64)
    c0 = torch.cat([edges, torch.from_numpy(rng.integers(0, 2**32, 995, dtype=np.int64))])[:, None]
    c1 = torch.from_numpy(rng.integers(0, 2**32, 7, dtype=np.int64))[None, :]  # broadcast to (1000, 7)
    c2 = torch.tensor(2**32 - 1, dtype=torch.int64)
    c3 = torch.zeros((1000, 1), dtype=torch.int64)
    for key in ((0, 0), (0xFFFFFFFF, 0xFFFFFFFF), (123456789, 987654321)):
        for rounds in (10, 7, 0):
            compiled = philox4x32(c0, c1, c2, c3, *key, rounds=rounds)
            tensors = philox4x32_torch(*torch.broadcast_tensors(c0, c1, c2, c3), *key, rounds=rounds)
            for a, b in zip(compiled, tensors):
                assert a.shape == (1000, 7) and torch.equal(a, b)
