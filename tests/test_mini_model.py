"""The bundled "toto-mini" checkpoint: it loads as a preset, and its held-out table is reproducible.

The evaluation code lives in tools/evaluate_mini.py (it wrote EVALUATION.md / evaluation.json);
these tests recompute the 100-day IBM slice stored in that JSON from the shipped weights, and check
the metric helpers against values worked out by hand or by torch.distributions.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import totowalk.model as tm
from totowalk import load_model

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "python/totowalk/model/weights/toto-mini"


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


evaluate_mini = _load_tool("evaluate_mini")


@pytest.fixture(scope="module")
def mini():
    return load_model("toto-mini")


@pytest.fixture(scope="module")
def stored():
    return json.loads((WEIGHTS / "evaluation.json").read_text())


def test_checkpoint_is_small_and_in_the_package(mini):
    assert (WEIGHTS / "model.safetensors").stat().st_size <= 10 * 2**20
    assert (WEIGHTS / "config.json").is_file()
    assert sum(p.numel() for p in mini.parameters()) <= 3_000_000
    assert mini.config.k_components == 24


def test_ibm_slice_reproduces_the_stored_table(mini, stored):
    expected = stored["test_slice"]["results"]
    assert stored["test_slice"]["symbol"] == "IBM" and stored["test_slice"]["days"] == 100
    got = evaluate_mini.evaluate_symbol(mini, "IBM", evaluate_mini.slice_targets("IBM"))
    assert got["toto-mini"]["n"] == 400  # 100 days x 4 keys
    for method, row in expected.items():
        # fp32 forward, same batching as the stored run: only summation-order noise is allowed
        tol = 1e-5 if method.startswith("toto-mini") else 1e-12
        assert got[method]["mae"] == pytest.approx(row["mae"], rel=tol), method
        assert got[method]["nll"] == pytest.approx(row["nll"], rel=tol, abs=tol), method
    # the comparison the table states still holds on the recomputed numbers
    for metric in ("mae", "nll"):
        stored_beats = expected["toto-mini"][metric] <= expected["zero"][metric]
        assert (got["toto-mini"][metric] <= got["zero"][metric]) == stored_beats, metric


def test_full_table_rows_for_every_symbol(stored):
    results = stored["results"]
    assert set(results) == {"AAPL", "IBM", "MSFT", "GOOG"}
    for symbol, table in results.items():
        assert {"toto-mini", "toto-mini median", "zero", "last", "mean20", "zero+vol20"} <= set(table), symbol
        assert all(np.isfinite(row["nll"]) and row["mae"] > 0 for row in table.values()), symbol


def test_percent_changes_follow_the_legacy_rules():
    r = evaluate_mini.percent_changes(np.array([100.0, 110.0, 0.0, 5.0, np.nan, 4.0]))
    # 100->110: +10%; 110->0: -100%; 0->5: zero previous price gives 0; NaN on either side gives 0
    np.testing.assert_array_equal(r, [0.1, -1.0, 0.0, 0.0, 0.0])


def test_naive_points_by_hand():
    returns = np.arange(30, dtype=np.float64)
    points = evaluate_mini.naive_points(returns, np.array([20, 29]))
    np.testing.assert_array_equal(points["zero"], [0.0, 0.0])
    np.testing.assert_array_equal(points["last"], [19.0, 28.0])
    np.testing.assert_allclose(points["mean20"], [9.5, 18.5])  # mean of 0..19 and of 9..28
    with pytest.raises(ValueError, match="20 past returns"):
        evaluate_mini.naive_points(returns, np.array([5]))


def test_mixture_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    shape = (3, 2, 1, 5)

    def rand(*size):
        return torch.rand(*size, generator=g, dtype=torch.float64)

    weights = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), -1)
    df, loc, scale = 2 + 5 * rand(shape), rand(shape) - 0.5, 0.1 + rand(shape)
    s_loc, s_scale = rand(3, 2) - 0.5, 0.5 + rand(3, 2)
    params = tm.MixtureParams(weights, df, loc, scale, s_loc, s_scale)
    x = torch.randn(3, 2, 1, generator=g, dtype=torch.float64)
    base = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=weights), torch.distributions.StudentT(df, loc, scale)
    )
    data_space = torch.distributions.TransformedDistribution(
        base, [torch.distributions.AffineTransform(s_loc[..., None], s_scale[..., None])]
    )
    got = evaluate_mini.mixture_log_prob(params, x)
    torch.testing.assert_close(got, data_space.log_prob(x), rtol=1e-10, atol=1e-10)


def test_mixture_median_splits_the_probability_in_half():
    torch.manual_seed(0)
    shape = (2, 1, 1, 6)
    weights = torch.softmax(torch.randn(shape), -1)
    df, loc, scale = 2 + 5 * torch.rand(shape), torch.randn(shape), 0.2 + torch.rand(shape)
    s_loc, s_scale = torch.tensor([[0.01], [-0.02]]), torch.tensor([[0.3], [0.5]])
    params = tm.MixtureParams(weights, df, loc, scale, s_loc, s_scale)
    median = evaluate_mini.mixture_median(params)  # (2, 1, 1), data space
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=weights.double()),
        torch.distributions.StudentT(df.double(), loc.double(), scale.double()),
    )
    draws = s_loc.double()[..., None] + s_scale.double()[..., None] * mixture.sample((200_000,))
    below = (draws < median).double().mean(0)
    # 200k draws: the standard error of a fraction near 1/2 is ~0.0011
    torch.testing.assert_close(below, torch.full_like(below, 0.5), rtol=0, atol=0.006)
    # one component: the median is its location
    one = tm.MixtureParams(*(t[..., :1] for t in (torch.ones(shape), df, loc, scale)), s_loc, s_scale)
    expected = s_loc.double()[..., None] + s_scale.double()[..., None] * loc[..., 0].double()
    torch.testing.assert_close(evaluate_mini.mixture_median(one), expected, rtol=1e-12, atol=1e-12)


def test_training_script_is_reproducible_from_its_seed(tmp_path):
    train_mini = _load_tool("train_mini")
    tiny = [
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--embed-dim",
        "16",
        "--layers",
        "2",
        "--heads",
        "2",
        "--mlp",
        "32",
        "--steps-per-patch",
        "2",
        "--eval-every",
        "3",
        "--val-stride",
        "60",
        "--seed",
        "7",
    ]
    threads = torch.get_num_threads()  # main() sets its own thread count; keep the session's
    try:
        for run in ("a", "b"):
            assert train_mini.main([*tiny, "--out", str(tmp_path / run)]) == 0
    finally:
        torch.set_num_threads(threads)
    first, second = ((tmp_path / run / "model.safetensors").read_bytes() for run in ("a", "b"))
    assert first == second
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert record["history"][-1]["step"] == 3 and np.isfinite(record["best"]["val_nll"])
    reloaded = load_model(tmp_path / "a")
    assert reloaded.config.embed_dim == 16 and reloaded.config.k_components == 24


def test_toto_mini_is_the_default_model():
    info = tm.default_model_info()
    assert info["name"] == "toto-mini"
