"""Kronos tokenizer and decoder: parity with the reference (fixtures written by
tools/make_kronos_fixtures.py from kronos-model-arch 0.1.0), published parameter counts, the
prefix cache, checkpoint loading and its errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from totowalk.kronos import KronosModel, KronosTokenizer, load_kronos, random_kronos
from totowalk.kronos.config import MODEL_PRESETS, TOKENIZER_PRESETS
from totowalk.model.checkpoint import CheckpointError

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FIXTURES = Path(__file__).parent / "fixtures" / "kronos"


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURES / "reference_outputs.npz"))


@pytest.fixture(scope="module")
def kronos():
    return load_kronos(FIXTURES)


def _close(got: torch.Tensor, want: np.ndarray, rel: float = 1e-5) -> None:
    got = got.detach().numpy()
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * scale)


def test_tokenizer_ids_and_decoded_values_match_the_reference(kronos, reference):
    _, tok = kronos
    with torch.no_grad():
        s1, s2 = tok.encode(torch.from_numpy(reference["x"]))
        np.testing.assert_array_equal(s1.numpy(), reference["s1"])
        np.testing.assert_array_equal(s2.numpy(), reference["s2"])
        assert len(np.unique(reference["s1"])) > 5  # the fixture exercises many tokens
        _close(tok.decode(s1, s2), reference["decoded"])


def test_model_logits_and_hidden_states_match_the_reference(kronos, reference):
    net, _ = kronos
    s1, s2 = torch.from_numpy(reference["s1"]), torch.from_numpy(reference["s2"])
    with torch.no_grad():
        hidden, _ = net.hidden(s1, s2, torch.from_numpy(reference["stamp"]))
        _close(hidden, reference["hidden"])
        _close(net.s1_logits(hidden), reference["s1_logits"])
        _close(net.s2_logits(hidden, torch.from_numpy(reference["coarse"])), reference["s2_logits"])


def test_a_cached_prefix_gives_the_full_forward(kronos, reference):
    net, tok = kronos
    s1, s2 = torch.from_numpy(reference["s1"]), torch.from_numpy(reference["s2"])
    stamp = torch.from_numpy(reference["stamp"])
    with torch.no_grad():
        full, _ = net.hidden(s1, s2, stamp)
        _, past = net.hidden(s1[:1, :15], s2[:1, :15], stamp[:1, :15])  # one prefix, batch 1
        rest, _ = net.hidden(
            s1[:1, 15:].expand(3, -1), s2[:1, 15:].expand(3, -1), stamp[:1, 15:].expand(3, -1, -1), past=past
        )
        np.testing.assert_allclose(rest.numpy(), full[:1, 15:].expand(3, -1, -1).numpy(), atol=1e-5)
        decoded = tok.decode(s1, s2)
        _, caches = tok.decode_cached(s1[:, :10], s2[:, :10])
        tail, _ = tok.decode_cached(s1[:, 10:], s2[:, 10:], caches)
        np.testing.assert_allclose(tail.numpy(), decoded[:, 10:].numpy(), atol=1e-5)


def test_rows_continuing_different_cached_prefixes_give_each_its_full_forward(kronos, reference):
    # several prefixes cached as one batch; rows (in any order, unequal numbers per prefix) name
    # theirs with a group index: each row's hidden states are those of its whole sequence
    net, _ = kronos
    s1, s2 = torch.from_numpy(reference["s1"]), torch.from_numpy(reference["s2"])
    stamp = torch.from_numpy(reference["stamp"])
    prefixes = s1.shape[0]
    assert prefixes >= 2
    with torch.no_grad():
        full, _ = net.hidden(s1, s2, stamp)
        _, past = net.hidden(s1[:, :15], s2[:, :15], stamp[:, :15])
        group = torch.tensor([1, 0, 1, 1, 0])  # prefix 1 thrice, prefix 0 twice, interleaved
        rest, caches = net.hidden(
            s1[group, 15:], s2[group, 15:], stamp[group, 15:], past=[(k, v, group) for k, v in past]
        )
    np.testing.assert_allclose(rest.numpy(), full[group, 15:].numpy(), atol=1e-5)
    assert caches == [None] * len(caches)  # the prefixes are not copied per row


@pytest.mark.parametrize("preset, expected", [("kronos-base", 102_310_592), ("kronos-small", 24_741_376)])
def test_published_parameter_counts(preset, expected):
    with torch.device("meta"):
        assert sum(p.numel() for p in KronosModel(MODEL_PRESETS[preset]).parameters()) == expected


def test_published_tokenizer_parameter_count():
    with torch.device("meta"):
        tok = KronosTokenizer(TOKENIZER_PRESETS["tokenizer-base"])
    assert sum(p.numel() for p in tok.parameters()) == 3_958_042


def test_random_checkpoint_round_trip(tmp_path):
    folder = random_kronos(tmp_path / "k", seed=3)
    net, tok = load_kronos(folder)
    again, _ = load_kronos(folder / "model", folder / "tokenizer")
    for (name, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert isinstance(tok, KronosTokenizer) and not net.training


def _copy(tmp_path) -> Path:
    target = tmp_path / "k"
    shutil.copytree(FIXTURES, target, ignore=shutil.ignore_patterns("*.npz"))
    return target


def test_loading_errors_name_the_problem(tmp_path):
    target = _copy(tmp_path)
    with pytest.raises(CheckpointError, match="neither a folder nor"):
        load_kronos(tmp_path / "nowhere")
    (target / "model" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        load_kronos(target)
    target = _copy(tmp_path / "b")
    config = json.loads((target / "model" / "config.json").read_text())
    del config["n_layers"]
    (target / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="lacks n_layers"):
        load_kronos(target)
    target = _copy(tmp_path / "c")
    config["n_layers"], config["d_model"] = 2, 64
    (target / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="tensor 'embedding.emb_s1.weight' has shape"):
        load_kronos(target)
    target = _copy(tmp_path / "d")
    config["d_model"], config["n_layers"] = 32, 3
    (target / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="missing tensor 'transformer.2"):
        load_kronos(target)


def test_a_tokenizer_of_other_bits_is_refused(tmp_path):
    folder = random_kronos(tmp_path / "k")
    other = random_kronos(tmp_path / "base", shape="small")
    with pytest.raises(CheckpointError, match="not a pair"):
        load_kronos(folder / "model", other / "tokenizer")


def test_live_reference_forward_on_our_weights(tmp_path):
    """Our random weights loaded into the reference package: the same logits (skips without it)."""
    ref = pytest.importorskip("model.kronos")
    folder = random_kronos(tmp_path / "k", seed=5)
    net, tok = load_kronos(folder)
    config = json.loads((folder / "model" / "config.json").read_text())
    theirs = ref.Kronos(**config).eval()
    theirs.load_state_dict(net.state_dict())
    s1 = torch.randint(0, 16, (2, 12))
    s2 = torch.randint(0, 16, (2, 12))
    stamp = torch.zeros(2, 12, 5)
    with torch.no_grad():
        hidden, _ = net.hidden(s1, s2, stamp)
        want, _ = theirs.decode_s1(s1, s2, stamp)
        np.testing.assert_allclose(net.s1_logits(hidden).numpy(), want.numpy(), atol=1e-5)


def test_live_reference_base_shape_forward():
    """The published Kronos-base and tokenizer shapes, our random weights in the reference: the same
    token ids, s1 logits and decoded values (skips without the reference package)."""
    ref = pytest.importorskip("model.kronos")
    torch.manual_seed(0)
    net = KronosModel(MODEL_PRESETS["kronos-base"]).eval()
    tok = KronosTokenizer(TOKENIZER_PRESETS["tokenizer-base"]).eval()
    theirs = ref.Kronos(**net.config.to_dict()).eval()
    theirs.load_state_dict(net.state_dict())
    theirs_tok = ref.KronosTokenizer(**tok.config.to_dict()).eval()
    theirs_tok.load_state_dict(tok.state_dict())
    x = torch.randn(1, 16, 6)
    stamp = torch.zeros(1, 16, 5)
    with torch.no_grad():
        s1, s2 = tok.encode(x)
        want = theirs_tok.encode(x, half=True)
        assert torch.equal(s1, want[0]) and torch.equal(s2, want[1])
        hidden, _ = net.hidden(s1, s2, stamp)
        logits, _ = theirs.decode_s1(s1, s2, stamp)
        np.testing.assert_allclose(net.s1_logits(hidden).numpy(), logits.numpy(), atol=1e-5 * logits.abs().max().item())
        np.testing.assert_allclose(
            tok.decode(s1, s2).numpy(), theirs_tok.decode([s1, s2], half=True).numpy(), atol=1e-5
        )
