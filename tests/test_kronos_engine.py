"""KronosEngine: the reference's sampling semantics (filtering fixtures, token draws, decoded-value
distributions against the reference sampler), the prefix cache against a plain recomputation,
batch invariance and input errors."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from totowalk.kernels.stream import request_keys
from totowalk.kronos import KronosEngine, KronosInput, load_kronos
from totowalk.kronos.sampling import draw_tokens, filtered_probabilities

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FIXTURES = Path(__file__).parent / "fixtures" / "kronos"


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURES / "reference_outputs.npz"))


@pytest.fixture(scope="module")
def kronos():
    return load_kronos(FIXTURES)


@pytest.mark.parametrize("name, top_k, top_p", [("topk", 5, 0.83), ("topp", 0, 0.83), ("none", 0, 1.0)])
def test_filtering_matches_the_reference(reference, name, top_k, top_p):
    probs = filtered_probabilities(torch.from_numpy(reference["raw_logits"]), 0.7, top_k, top_p)
    np.testing.assert_allclose(probs.numpy(), reference[f"probs_{name}"], atol=1e-6)
    kept = (reference[f"probs_{name}"] > 0).sum(axis=1)
    assert (kept == 5).all() if name == "topk" else (kept < 16).all() if name == "topp" else (kept == 16).all()


def test_token_draws_follow_the_probabilities(reference):
    probs = torch.from_numpy(reference["probs_topp"][:1]).double().expand(20000, -1)
    key = request_keys(np.array([7], dtype=np.uint64), 1)[0, 0]
    tokens = draw_tokens(probs, 0, key, torch.arange(20000), draw=0).numpy()
    expected = reference["probs_topp"][0]
    counts = np.bincount(tokens, minlength=16)
    assert counts[expected == 0].sum() == 0  # filtered tokens are never drawn
    kept = expected > 0
    assert stats.chisquare(counts[kept], expected[kept] / expected[kept].sum() * 20000).pvalue > 1e-4


def _ks_min_p(engine, reference) -> float:
    p_values = []
    for c in range(2):
        key = request_keys(np.array([c + 11], dtype=np.uint64), 3)[0]
        ours, _ = engine.sample_paths(
            np.clip(reference["x"][c], -1.85, 1.85), reference["stamp"][c], reference["sampler_y_stamp"][c], key
        )
        theirs = reference["sampler_paths"][c]
        for step in range(3):
            for feature in range(6):
                # decoded values are atoms (token pairs); rounding merges an atom's float32 copies
                p_values.append(
                    stats.ks_2samp(np.round(ours[:, step, feature], 4), np.round(theirs[:, step, feature], 4)).pvalue
                )
    return min(p_values)


def test_decoded_paths_have_the_reference_samplers_distribution(kronos, reference):
    net, tok = kronos
    settings = dict(top_k=0, top_p=0.9, sample_count=2000, max_context=20, clip=1.85)
    assert _ks_min_p(KronosEngine(net, tok, temperature=1.0, **settings), reference) > 1e-4  # 36 tests
    # the check has power: a different temperature is told apart
    assert _ks_min_p(KronosEngine(net, tok, temperature=0.5, **settings), reference) < 1e-6


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])  # bench/gpu_check.sh runs this file


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision, share_of_floor", [("bf16", 1.0), ("fp16", 0.25)])
def test_reduced_precision_moves_the_forecast_less_than_drawing_the_paths_again(
    kronos, reference, precision, share_of_floor, device
):
    # Monte Carlo noise floor: the mean path of fp32 with another seed; the precision's deviation:
    # its mean path against fp32's with the same draws. 2,000 paths (ten times the classic 192, so
    # a floor three times finer), the classic temperature, both contexts, 3 steps x 6 features.
    net, tok = (copy.deepcopy(m).to(device) for m in kronos)  # the module fixture stays on the host
    settings = dict(temperature=0.152, top_k=0, top_p=0.9, sample_count=2000, max_context=20, clip=1.85)
    floor, deviation, moved = [], [], []
    for c in range(2):
        key = request_keys(np.array([c + 11], dtype=np.uint64), 3)[0]
        args = (np.clip(reference["x"][c], -1.85, 1.85), reference["stamp"][c], reference["sampler_y_stamp"][c], key)
        full, _ = KronosEngine(net, tok, **settings).sample_paths(*args)
        again, _ = KronosEngine(net, tok, seed=1, **settings).sample_paths(*args)
        reduced, _ = KronosEngine(net, tok, precision=precision, **settings).sample_paths(*args)
        floor.append(np.abs(again.mean(0) - full.mean(0)).mean())
        deviation.append(np.abs(reduced.mean(0) - full.mean(0)).mean())
        moved.append(np.mean(np.abs(reduced - full).max(axis=(1, 2)) > 0.05))  # a token changed, not rounding
    assert np.mean(deviation) < share_of_floor * np.mean(floor), (deviation, floor)
    assert 0 < np.mean(deviation)  # the precision is used
    assert np.mean(moved) < 0.1  # the same draws: few paths change a token


def test_an_unknown_precision_is_refused(kronos):
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16; got 'int8'"):
        KronosEngine(*kronos, precision="int8")


def _greedy_without_cache(net, tok, normed, x_stamp, y_stamp, max_context):
    """The reference's loop for one path with top_k = 1, recomputing each window from scratch."""
    stamp = torch.from_numpy(np.concatenate([x_stamp, y_stamp]).astype(np.float32))[None]
    s1, s2 = tok.encode(torch.from_numpy(normed)[None])
    length = s1.shape[1]
    for i in range(len(y_stamp)):
        start = max(0, length + i - max_context)
        hidden, _ = net.hidden(s1[:, start:], s2[:, start:], stamp[:, start : length + i])
        first = net.s1_logits(hidden[:, -1]).argmax(-1, keepdim=True)
        second = net.s2_logits(hidden, first)[:, -1].argmax(-1, keepdim=True)
        s1, s2 = torch.cat([s1, first], 1), torch.cat([s2, second], 1)
    start = max(0, s1.shape[1] - max_context)
    return tok.decode(s1[:, start:], s2[:, start:])[0, -len(y_stamp) :].numpy()


@pytest.mark.parametrize("max_context", [20, 40])  # a sliding window, and one that never fills
def test_shared_prefix_caching_equals_recomputing_every_window(kronos, reference, max_context):
    net, tok = kronos
    engine = KronosEngine(net, tok, top_k=1, sample_count=4, max_context=max_context)
    normed = np.clip(reference["x"][1], -1.85, 1.85)
    key = request_keys(np.array([3], dtype=np.uint64), 3)[0]
    with torch.no_grad():
        want = _greedy_without_cache(
            net, tok, normed, reference["stamp"][1], reference["sampler_y_stamp"][1], max_context
        )
    got, passes = engine.sample_paths(normed, reference["stamp"][1], reference["sampler_y_stamp"][1], key)
    np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), atol=1e-5)
    # greedy paths coincide: one context part per step plus one path's tokens, not 4 windows per step
    assert passes < 4 * (3 * min(24, max_context) + min(27, max_context))


def _inputs(reference, n):
    rng = np.random.default_rng(n)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (30, 1)), axis=0))
    x = np.hstack(
        [prices, prices * 1.01, prices * 0.99, prices, rng.uniform(1e5, 2e5, (30, 1)), rng.uniform(1e7, 2e7, (30, 1))]
    ).astype(np.float32)
    stamps = np.zeros((33, 5), np.float32)
    stamps[:, 2], stamps[:, 3], stamps[:, 4] = np.arange(33) % 7, np.arange(33) % 28 + 1, 3
    return KronosInput(x, stamps[:30], stamps[30:])


def test_forecasts_do_not_depend_on_the_batch(kronos, reference):
    net, tok = kronos
    engine = KronosEngine(net, tok, temperature=1.0, sample_count=32, max_context=20)
    a, b = _inputs(reference, 1), _inputs(reference, 2)
    both = engine.forecast([a, b], pred_len=3, return_paths=True)
    alone = engine.forecast([b], pred_len=3, return_paths=True)
    np.testing.assert_array_equal(both.mean[1], alone.mean[0])
    np.testing.assert_array_equal(both.paths[1], alone.paths[0])
    assert both.mean.shape == (2, 3, 6) and both.paths.shape == (2, 32, 3, 6)
    np.testing.assert_allclose(both.mean[0], both.paths[0].mean(axis=0), rtol=1e-5)
    # forecasts are in price units, near the last prices of this slowly moving series
    assert np.all(np.abs(both.mean[1][:, 3] / b.x[-1, 3] - 1) < 0.5)
    other_seed = KronosEngine(net, tok, temperature=1.0, sample_count=32, max_context=20, seed=1)
    assert not np.array_equal(other_seed.forecast([b], pred_len=3).mean, alone.mean)


def test_contexts_batched_together_give_each_context_its_own_forecast(kronos, reference):
    # contexts of one length share the windows' batch, others run apart; batched, a context's numbers
    # may differ from its forecast alone only by float rounding (one torch thread here: equal bits)
    net, tok = kronos
    items = [_inputs(reference, n) for n in range(5)]
    short = _inputs(reference, 9)
    short = KronosInput(short.x[:25], short.x_stamp[:25], short.y_stamp)
    mixed = [items[0], short, *items[1:]]
    settings = dict(temperature=1.0, sample_count=16, max_context=20)
    alone = KronosEngine(net, tok, context_batch=1, **settings).forecast(mixed, pred_len=3, return_paths=True)
    engine = KronosEngine(net, tok, context_batch=3, **settings)
    assert engine._batches(mixed) == [[0, 2, 3], [4, 5], [1]]
    together = engine.forecast(mixed, pred_len=3, return_paths=True)
    np.testing.assert_allclose(together.paths, alone.paths, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(together.mean, alone.mean, rtol=1e-6)
    assert np.array_equal(together.paths, alone.paths)  # one thread: the same bits
    # the windows' shared parts ran once per batch: fewer passes only through batching would be a bug
    assert together.token_passes == alone.token_passes
    # the paths of several contexts in one batch (a GPU's default; 2 splits a batch of 3 unevenly)
    for path_contexts in (2, 16):
        paths_together = KronosEngine(net, tok, context_batch=3, path_contexts=path_contexts, **settings)
        out = paths_together.forecast(mixed, pred_len=3, return_paths=True)
        assert np.array_equal(out.paths, alone.paths) and out.token_passes == alone.token_passes
    with pytest.raises(ValueError, match="path_contexts"):
        KronosEngine(net, tok, path_contexts=0)
    with pytest.raises(ValueError, match="context_batch"):
        KronosEngine(net, tok, context_batch=0)


def test_bad_inputs_are_refused(kronos, reference):
    net, tok = kronos
    engine = KronosEngine(net, tok, sample_count=2, max_context=20)
    good = _inputs(reference, 1)
    with pytest.raises(ValueError, match="x must be"):
        engine.forecast([KronosInput(good.x[:, :5], good.x_stamp, good.y_stamp)], pred_len=3)
    with pytest.raises(ValueError, match="y_stamp"):
        engine.forecast([good], pred_len=4)
    bad = good.x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        engine.forecast([KronosInput(bad, good.x_stamp, good.y_stamp)], pred_len=3)
    with pytest.raises(ValueError, match="pred_len"):
        engine.forecast([good], pred_len=0)


def test_live_reference_greedy_forecast_equals_ours(kronos, reference):
    """With top_k = 1 the reference's forecast is deterministic: ours equals it (skips without the
    reference package; run in its venv with PYTHONPATH=python)."""
    ref = pytest.importorskip("model.kronos")
    net, tok = kronos
    import json

    theirs_tok = ref.KronosTokenizer(**json.loads((FIXTURES / "tokenizer" / "config.json").read_text())).eval()
    theirs_tok.load_state_dict(tok.state_dict())
    theirs = ref.Kronos(**json.loads((FIXTURES / "model" / "config.json").read_text())).eval()
    theirs.load_state_dict(net.state_dict())
    x = torch.clip(torch.from_numpy(reference["x"][:2]), -1.85, 1.85)
    with torch.no_grad():
        want = ref.auto_regressive_inference(
            theirs_tok,
            theirs,
            x,
            torch.from_numpy(reference["stamp"][:2]),
            torch.from_numpy(reference["sampler_y_stamp"]),
            20,
            3,
            clip=1.85,
            T=1.0,
            top_k=1,
            top_p=0.9,
            sample_count=3,
        )[:, -3:]
    engine = KronosEngine(net, tok, top_k=1, sample_count=3, max_context=20)
    for c in range(2):
        ours, _ = engine.sample_paths(
            x[c].numpy(),
            reference["stamp"][c],
            reference["sampler_y_stamp"][c],
            request_keys(np.array([1], dtype=np.uint64), 3)[0],
        )
        np.testing.assert_allclose(ours.mean(axis=0), want[c], atol=1e-5)
