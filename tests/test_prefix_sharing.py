"""Walk-forward prefix sharing: a context read out of a longer context's forward equals its own
forward up to float rounding; grouping, the scaler-clamp guard, readout bookkeeping and the API."""

import numpy as np
import pytest
import torch

from totowalk import load_model
from totowalk.engine import ForecastEngine
from totowalk.engine.inputs import normalize_contexts
from totowalk.engine.plan import plan_forecast, split_batch
from totowalk.engine.prefix_sharing import ScalerSettings, group_prefixes
from totowalk.model import TotoConfig, build_model

AGGREGATES = ("mean", "trimmed_mean_10", "band", "median", "std")
PARAMS = ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale")


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    return build_model(TotoConfig.preset("toto-tiny"), seed=0)


@pytest.fixture(scope="module")
def mini():
    return load_model("toto-mini")


def _walk(length, seed, variates=None):
    rng = np.random.default_rng(seed)
    shape = (length,) if variates is None else (variates, length)
    return np.cumsum(rng.standard_normal(shape), axis=-1) * 0.5 + 3.0


def _compare(model, contexts, estimator="exact", horizon=2, rel=1e-5):
    kwargs = dict(prediction_length=horizon, aggregate=AGGREGATES, estimator=estimator)
    shared = ForecastEngine(model, num_samples=64, seed=1).forecast(contexts, **kwargs)
    alone = ForecastEngine(model, num_samples=64, seed=1, share_prefixes=False).forecast(contexts, **kwargs)
    for field in PARAMS:
        a, b = getattr(shared.params, field), getattr(alone.params, field)
        # relative, with a floor of 0.1 (mixture locations near 0 in the scaler's normalised units)
        worst = np.max(np.abs(a - b) / np.maximum(np.abs(b), 0.1))
        assert worst <= rel, (field, worst)
    std = alone.stats["std"]
    for name in AGGREGATES:
        assert np.max(np.abs(shared.stats[name] - alone.stats[name]) / std) < 1e-4, name
    return shared, alone


@pytest.mark.parametrize("model_name", ["tiny", "mini"])
def test_shared_equals_separate_forwards(model_name, request):
    model = request.getfixturevalue(model_name)
    series = _walk(900, 1)
    # Groups of 1 to 16 members, the whole series as a member, ends in arbitrary order with
    # duplicates, a context shorter than one patch and one of exactly one patch.
    ends = [900, 900 - 64, 900 - 128] + [700 - 64 * k for k in range(16)] + [5, 69, 133, 64, 128, 899, 836]
    rng = np.random.default_rng(2)
    ends = list(rng.permutation(ends)) + [900, 5]
    shared, alone = _compare(model, [series[:e] for e in ends])
    assert shared.num_unique == alone.num_unique == len(set(ends))
    assert shared.info["model_batches"] < alone.info["model_batches"]


def test_shared_equals_separate_forwards_at_the_base_preset():
    # W2's model (random weights), uni- and multivariate, a group of 4 and a context under one patch
    base = build_model(TotoConfig.preset("toto-open-base-1.0"), seed=0)
    series = _walk(400, 15)
    _compare(base, [series[:e] for e in (400, 336, 272, 208, 30)])
    multi = _walk(300, 16, variates=2)
    _compare(base, [multi[:, :e] for e in (300, 236, 100)])


def test_sampled_estimator_keeps_the_same_streams(mini):
    series = _walk(600, 3)
    contexts = [series[:e] for e in (600, 536, 472, 408, 100)]
    shared, alone = _compare(mini, contexts, estimator="sampled")
    # Same content keys, parameters equal to rounding: the draws agree to rounding too.
    s = ForecastEngine(mini, num_samples=32, seed=4).forecast(contexts, return_samples=True)
    a = ForecastEngine(mini, num_samples=32, seed=4, share_prefixes=False).forecast(contexts, return_samples=True)
    assert np.max(np.abs(s.samples - a.samples)) < 1e-4 * np.max(np.abs(a.samples))


def test_multivariate_series_share_too(tiny):
    series = _walk(500, 5, variates=3)
    contexts = [series[:, :e] for e in (500, 436, 372, 308, 20)]
    shared, _ = _compare(tiny, contexts)
    assert shared.stats["mean"].shape == (5, 3, 2)


def test_grouping_by_prefix_and_patch_alignment():
    settings = ScalerSettings(64, 0.1, True, 10.0)
    a, b = _walk(400, 6)[None], _walk(400, 7)[None]
    unique = [a[:, :400], a[:, :336], a[:, :272], a[:, :300], b[:, :336], b[:, :400], a[:, :17], a[:, :16]]
    groups, alone = group_prefixes(unique, settings)
    found = sorted(sorted(int(m) for m in g.members) for g in groups)
    assert found == [[0, 1, 2, 7], [4, 5]]
    assert sorted(alone.tolist()) == [3, 6]  # 300 and 17 are not congruent to 400 (mod 64); 16 is
    group = next(g for g in groups if g.root == 0)
    # root 400 values = 7 patches (48 padding values); 336 ends at patch 5, 272 at patch 4.
    assert dict(zip(group.members.tolist(), group.positions.tolist())) == {0: 6, 1: 5, 2: 4, 7: 0}


def test_clamp_guard_forecasts_a_member_alone(tiny):
    # Quiet values, then a jump so large that the whole series' global std makes the scaler clamp
    # the early patch scales, while the quiet prefix's own std does not: that prefix may not share.
    rng = np.random.default_rng(8)
    series = np.concatenate([rng.standard_normal(900) * 0.01, rng.standard_normal(128) * 1e12])
    settings = ScalerSettings.from_config(tiny.config)
    unique = [series[None, :1028], series[None, :900]]
    groups, alone = group_prefixes(unique, settings)
    assert len(groups) == 0 and sorted(alone.tolist()) == [0, 1]
    # ... while an ordinary series of the same lengths does share.
    calm = _walk(1028, 9)
    assert len(group_prefixes([calm[None, :1028], calm[None, :900]], settings)[0]) == 1
    contexts = [series[:1028], series[:900]]
    shared = ForecastEngine(tiny, seed=1, estimator="exact").forecast(contexts, aggregate=("mean",))
    alone_res = ForecastEngine(tiny, seed=1, estimator="exact", share_prefixes=False).forecast(
        contexts, aggregate=("mean",)
    )
    np.testing.assert_array_equal(shared.stats["mean"], alone_res.stats["mean"])


def _clamp_inactive(values, length, root_length, settings, margin=1e-6):
    """Reference guard, straight from the definition: every patch scale of the member (patches
    ending after c = length, length - p, ... values) within the clamp bounds of both the member's
    and the root's global scale."""
    p, spread = settings.patch_size, 10.0**settings.scale_factor_exponent
    x = values.astype(np.float64)
    ends = np.arange(length, 0, -p)
    scales = np.array([np.sqrt(x[:, :c].var(axis=1, ddof=1 if c > 1 else 0) + settings.min_scale) for c in ends])
    for n in (length, root_length):
        g = np.sqrt(x[:, :n].var(axis=1) + settings.min_scale)
        lower, upper = np.maximum(settings.min_scale, g / spread), g * spread
        if not ((scales >= lower * (1 + margin)).all() and (scales <= upper * (1 - margin)).all()):
            return False
    return True


def test_grouping_properties_on_random_families():
    # Families sharing a constant start (a context can be a prefix of two longer ones), copies and
    # views, two variates, and tails large enough to make the scaler clamp bind.
    rng = np.random.default_rng(11)
    settings = ScalerSettings(16, 0.1, True, 4.0)
    refused = 0
    for _ in range(40):
        unique = []
        for _ in range(int(rng.integers(1, 4))):
            total, variates = int(rng.integers(5, 300)), int(rng.integers(1, 3))
            x = np.cumsum(rng.standard_normal((variates, total)), axis=1)
            if rng.random() < 0.4:
                x[:, : total // 3] = 1.0
            if rng.random() < 0.4:
                x[:, -5:] *= 1e6
            for end in sorted(set(rng.integers(1, total + 1, size=int(rng.integers(1, 25))).tolist())):
                view = x[:, :end]
                unique.append(view.copy() if rng.random() < 0.5 else view)
        unique = [
            u
            for i, u in enumerate(unique)
            if u.shape[0] == unique[0].shape[0]
            and not any(v.shape == u.shape and np.array_equal(v, u) for v in unique[:i])
        ]  # deduplicated, one V
        groups, alone = group_prefixes(unique, settings)
        seen = sorted(alone.tolist() + [int(m) for g in groups for m in g.members])
        assert seen == list(range(len(unique)))  # every context exactly once
        for g in groups:
            root = unique[g.root]
            total = root.shape[1]
            pad = -(-total // 16) * 16 - total
            assert g.members[0] == g.root and len(g.members) >= 2
            for member, position in zip(g.members, g.positions):
                length = unique[member].shape[1]
                assert length % 16 == total % 16 and length <= total
                np.testing.assert_array_equal(root[:, :length], unique[member])
                assert position == (pad + length) // 16 - 1
                assert member == g.root or _clamp_inactive(root, length, total, settings)
        refused += sum(
            any(
                v.shape[1] > u.shape[1] and v.shape[1] % 16 == u.shape[1] % 16 and np.array_equal(v[:, : u.shape[1]], u)
                for v in unique
            )
            for u in (unique[i] for i in alone)
        )
    assert refused > 0  # the guard was exercised: some contexts with a partner were kept alone


def test_split_batch_keeps_readouts_with_their_rows():
    series = [_walk(700, s) for s in range(3)]
    contexts = normalize_contexts([s[:e] for s in series for e in (700, 636, 572)])
    plan = plan_forecast(contexts, 64, 1 << 20, share_prefixes=ScalerSettings(64, 0.1, True, 10.0))
    (batch,) = plan.batches
    assert batch.readout is not None and len(batch.members) == 3 and sorted(batch.served.tolist()) == list(range(9))
    first, second = split_batch(batch)
    for part in (first, second):
        assert part.readout.rows.max() < len(part.members)
        for ctx, row in zip(part.readout.contexts, part.readout.rows):
            root = plan.unique_series[part.members[row]]
            assert np.array_equal(root[:, : plan.unique_series[ctx].shape[-1]], plan.unique_series[ctx])
    assert sorted(np.concatenate([first.served, second.served]).tolist()) == list(range(9))


def test_token_budget_and_oom_style_splits_do_not_change_shared_results(tiny):
    series = _walk(800, 10)
    contexts = [series[:e] for e in (800, 736, 672, 608, 300, 236)]
    whole = ForecastEngine(tiny, estimator="exact").forecast(contexts, aggregate=AGGREGATES)
    split = ForecastEngine(tiny, estimator="exact", max_batch_tokens=1).forecast(contexts, aggregate=AGGREGATES)
    for name in AGGREGATES:
        np.testing.assert_array_equal(split.stats[name], whole.stats[name])


def test_forecast_walk_forward_equals_forecast_on_slices(mini):
    series = {"a": _walk(500, 11), "b": _walk(450, 12)}
    ends = {"a": [500, 436, 90, 436], "b": [450, 386]}
    engine = ForecastEngine(mini, estimator="exact")
    res = engine.forecast_walk_forward(series, ends, aggregate=("mean", "band"))
    direct = engine.forecast([series[n][:e] for n in series for e in ends[n]], aggregate=("mean", "band"))
    for name in ("mean", "band"):
        np.testing.assert_array_equal(res.stats[name], direct.stats[name])
    with pytest.raises(ValueError, match="series 'b': end 1 is 451"):
        engine.forecast_walk_forward(series, {"a": [10], "b": [12, 451]})
    for ends_b, shown in (
        ([12, True], "end 1 is True"),
        ([3.0], "end 0 is 3.0"),
        (np.array([5, 0]), "end 1 is 0"),
        ([12, "x"], "end 1 is 'x'"),
        ([[1, 2]], "ends must be a 1-D sequence"),
    ):
        with pytest.raises(ValueError, match=f"series 'b': {shown}"):
            engine.forecast_walk_forward(series, {"a": [10], "b": ends_b})
    with pytest.raises(ValueError, match="same names"):
        engine.forecast_walk_forward(series, {"a": [10]})
    bad = dict(series, b=np.where(np.arange(450) == 7, np.nan, series["b"]))
    with pytest.raises(ValueError, match="series 'b': non-finite value nan at"):
        engine.forecast_walk_forward(bad, ends)
    with pytest.raises(ValueError, match="mix univariate and"):
        engine.forecast_walk_forward({"a": series["a"], "m": np.stack([series["a"]] * 2)}, {"a": [9], "m": [9]})


def test_walk_forward_families_need_no_comparisons_and_match_the_list_form(mini, monkeypatch):
    # Multivariate too; sampled, so equal streams are checked (content keys do not depend on the form).
    from totowalk.engine import prefix_sharing

    series = [_walk(700, 13, variates=2), _walk(640, 14, variates=2)]
    ends = [[700 - 64 * k for k in range(6)] + [333, 700], [640, 576, 100]]
    engine = ForecastEngine(mini, num_samples=32, seed=5)
    listed = engine.forecast([s[:, :e] for s, es in zip(series, ends) for e in es], aggregate=AGGREGATES)

    def compared(*args):
        raise AssertionError("walk-forward families were compared value by value")

    monkeypatch.setattr(prefix_sharing, "_is_prefix", compared)
    walked = engine.forecast_walk_forward(series, ends, aggregate=AGGREGATES)
    assert walked.num_unique == listed.num_unique == 10
    for name in AGGREGATES:
        np.testing.assert_allclose(walked.stats[name], listed.stats[name], rtol=1e-6, atol=1e-6)


def test_a_wider_readout_layout_changes_no_readout(tiny):
    # CUDA graphs fix the readouts per row to a power of two; the unused query slots must not
    # touch the real ones.
    from totowalk.model.layers import readout_layout

    series = torch.as_tensor(_walk(64 * 6, 3), dtype=torch.float32)
    values = torch.stack([series, series.flip(0)])[:, None]
    mask = torch.ones_like(values, dtype=torch.bool)
    rows, positions = torch.tensor([0, 0, 1, 0, 1]), torch.tensor([5, 2, 4, 0, 5])
    with torch.inference_mode():
        default = tiny.forecast_params_at(values, mask, rows, positions, horizon=3)
        wide = tiny.forecast_params_at(
            values, mask, rows, positions, horizon=3, layout=readout_layout(rows, positions, 2, width=8)
        )
    for field in PARAMS:
        torch.testing.assert_close(getattr(wide, field), getattr(default, field), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="width 2 is below the 3 readouts"):
        readout_layout(rows, positions, 2, width=2)


class _EagerGraphs:
    """Stands in for ForwardGraphs off CUDA: the same calls, run eagerly, recording their shapes."""

    def __init__(self, model):
        self.model, self.shapes = model, []

    def __call__(self, values, mask, horizon):
        return self.model.forecast_params(values, mask, None, horizon=horizon)

    def shared(self, values, mask, rows, positions, slot, grid, horizon):
        self.shapes.append((tuple(rows.shape), tuple(grid.shape)))
        return self.model.forecast_params_at(values, mask, rows, positions, horizon=horizon, layout=(slot, grid))


def test_the_cuda_graph_padding_of_shared_batches_changes_no_result(tiny):
    # The graph path pads readouts to a power of two and widens each row's readout slots; run
    # eagerly here (the replay itself is checked on CUDA in test_engine_cuda_graphs.py).
    series = _walk(900, 4)
    contexts = [series[:e] for e in [900 - 64 * k for k in range(10)] + [700, 636, 30]]  # 12 readouts -> 16
    eager = ForecastEngine(tiny, num_samples=64, seed=1).forecast(contexts, prediction_length=2, aggregate=AGGREGATES)
    engine = ForecastEngine(tiny, num_samples=64, seed=1)
    engine._graphs = _EagerGraphs(tiny)
    padded = engine.forecast(contexts, prediction_length=2, aggregate=AGGREGATES)
    # two buckets (roots of 11 and 15 patches, each padded to 8 model rows): 2 readouts -> 8 (the
    # padding repeats the last one: 8 in one row), and 10 -> 16 (10 + 6 in one row -> 16 slots)
    assert sorted(engine._graphs.shapes) == [((8,), (8, 8)), ((16,), (8, 16))]
    for field in PARAMS:
        np.testing.assert_allclose(getattr(padded.params, field), getattr(eager.params, field), rtol=1e-6, atol=1e-7)
    for name in AGGREGATES:
        np.testing.assert_allclose(padded.stats[name], eager.stats[name], rtol=1e-6, atol=1e-7)
