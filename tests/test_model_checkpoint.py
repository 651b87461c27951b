"""Checkpoint building, loading, saving and their error paths (totowalk.model.checkpoint)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from totowalk import load_model
from totowalk.model import (
    CheckpointError,
    TotoConfig,
    TotoModel,
    build_model,
    default_model_info,
    save_checkpoint,
)

REF_DIR = Path(__file__).resolve().parent / "fixtures" / "toto_ref"
OFFICIAL_CONFIG_KEYS = {
    "patch_size",
    "stride",
    "embed_dim",
    "num_layers",
    "num_heads",
    "mlp_hidden_dim",
    "dropout",
    "spacewise_every_n_layers",
    "spacewise_first",
    "scaler_cls",
    "output_distribution_classes",
    "output_distribution_kwargs",
    "use_memory_efficient_attention",
    "stabilize_with_global",
    "scale_factor_exponent",
}


@pytest.fixture(scope="module")
def tiny() -> TotoModel:
    return build_model(TotoConfig.preset("toto-tiny"), seed=0)


def copy_reference(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(REF_DIR / name, target)
    return target


def rewrite_weights(directory: Path, edit) -> None:
    tensors = load_file(str(directory / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(directory / "model.safetensors"))


def test_base_preset_has_the_official_parameter_count():
    with torch.device("meta"):
        model = TotoModel(TotoConfig.preset("toto-open-base-1.0"))
    assert sum(p.numel() for p in model.parameters()) == 151_306_080
    assert model.config.layer_is_spacewise() == [False] * 11 + [True]


def test_build_model_is_seeded_eval_fp32_and_leaves_global_rng_alone():
    before = torch.random.get_rng_state()
    a, b = build_model("toto-tiny", seed=5), build_model("toto-tiny", seed=5)
    c = build_model("toto-tiny", seed=6)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not a.training and all(p.dtype == torch.float32 for p in a.parameters())
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.unembed.weight, c.unembed.weight)


def test_save_load_round_trip_is_exact(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config == tiny.config
    for name, tensor in tiny.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    values = torch.randn(2, 2, 128)
    mask = torch.ones_like(values, dtype=torch.bool)
    a, b = tiny.forecast_params(values, mask, horizon=3), loaded.forecast_params(values, mask, horizon=3)
    assert torch.equal(a.loc, b.loc) and torch.equal(a.weights, b.weights)


def test_saved_files_use_official_names_and_config_keys(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert set(config) == OFFICIAL_CONFIG_KEYS
    assert config["output_distribution_kwargs"] == {"k_components": tiny.config.k_components}
    assert TotoConfig.from_official_json(config) == tiny.config
    names = set(load_file(str(tmp_path / "model.safetensors")))
    assert "model.transformer.layers.0.mlp.0.w12.weight" in names
    assert "model.transformer.layers.2.attention.wQKV.weight" in names
    assert "model.output_distribution.mixture_weights.bias" in names
    assert "model.patch_embed.projection.weight" in names
    assert all(name.startswith("model.") for name in names)


def test_unfused_and_fused_layouts_load_the_same_weights(tmp_path):
    """ref_a stores mlp.0/mlp.2, ref_b stores mlp.0.w12/mlp.0.w3 plus a rotary freqs buffer."""
    for name in ("ref_a", "ref_b"):
        official = load_file(str(REF_DIR / name / "model.safetensors"))
        model = load_model(REF_DIR / name)
        w12 = model.layers[1].mlp.w12.weight
        stored = official.get(
            "model.transformer.layers.1.mlp.0.weight", official.get("model.transformer.layers.1.mlp.0.w12.weight")
        )
        assert torch.equal(w12, stored)
    assert "model.transformer.rotary_emb.freqs" in load_file(str(REF_DIR / "ref_b" / "model.safetensors"))


def test_loads_a_bare_safetensors_file_with_config_beside_it():
    model = load_model(REF_DIR / "ref_a" / "model.safetensors")
    assert model.config.num_layers == 3


def test_missing_tensor_is_named(tmp_path):
    directory = copy_reference("ref_a", tmp_path)
    rewrite_weights(directory, lambda t: t.pop("model.unembed.bias"))
    with pytest.raises(CheckpointError, match=r"missing tensors \['model\.unembed\.bias'\]"):
        load_model(directory)


def test_unexpected_tensor_is_named(tmp_path):
    directory = copy_reference("ref_a", tmp_path)
    rewrite_weights(directory, lambda t: t.update({"model.extra_head.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"unexpected tensors \['model\.extra_head\.weight'\]"):
        load_model(directory)


def test_extra_layer_is_unexpected(tmp_path):
    directory = copy_reference("ref_a", tmp_path)
    rewrite_weights(directory, lambda t: t.update({"model.transformer.layers.7.norm1.scale": torch.ones(32)}))
    with pytest.raises(CheckpointError, match=r"layers\.7\.norm1\.scale"):
        load_model(directory)


def test_shape_mismatch_names_tensor_and_both_shapes(tmp_path):
    directory = copy_reference("ref_a", tmp_path)
    rewrite_weights(directory, lambda t: t.update({"model.unembed.bias": torch.zeros(5)}))
    with pytest.raises(
        CheckpointError, match=r"'model\.unembed\.bias' has shape \(5,\) but the config needs \(2048,\)"
    ):
        load_model(directory)


def test_config_mismatch_is_reported_as_shape_error(tmp_path):
    directory = copy_reference("ref_a", tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["mlp_hidden_dim"] = 96
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match=r"mlp\.0\.(bias|weight)' has shape \(128,( 32)?\) but the config needs \(192,( 32)?\)"
    ):
        load_model(directory)


def test_both_mlp_layouts_in_one_file_is_an_error(tmp_path):
    directory = copy_reference("ref_a", tmp_path)
    rewrite_weights(
        directory,
        lambda t: t.update(
            {"model.transformer.layers.0.mlp.0.w12.weight": t["model.transformer.layers.0.mlp.0.weight"].clone()}
        ),
    )
    with pytest.raises(CheckpointError, match=r"both fill 'layers\.0\.mlp\.w12\.weight'"):
        load_model(directory)


def test_missing_config_json(tmp_path):
    shutil.copy(REF_DIR / "ref_a" / "model.safetensors", tmp_path / "weights.safetensors")
    with pytest.raises(CheckpointError, match="no config.json next to"):
        load_model(tmp_path / "weights.safetensors")
    # ... unless the config is given
    assert load_model(tmp_path / "weights.safetensors", config=load_model(REF_DIR / "ref_a").config)


def test_unsupported_config_variant_names_the_key(tmp_path):
    directory = copy_reference("ref_a", tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["scaler_cls"] = "<class 'model.scaler.StdMeanScaler'>"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="scaler_cls"):
        load_model(directory)


def test_directory_without_weights(tmp_path):
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        load_model(tmp_path)


def test_preset_without_shipped_weights_suggests_build_model():
    with pytest.raises(CheckpointError, match=r"preset 'toto-open-base-1.0' has no shipped weights.*build_model"):
        load_model("toto-open-base-1.0")


def test_unknown_spec():
    with pytest.raises(
        CheckpointError, match=r"not a bundled model \(toto-mini\).*random:NAME with NAME one of .*toto-mini"
    ):
        load_model("no_such_model_anywhere")


def test_hub_id_missing_from_cache_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", None)  # as if not installed
    with pytest.raises(CheckpointError) as info:
        load_model("Datadog/Toto-Open-Base-1.0")
    message = str(info.value)
    assert str(tmp_path / "hub" / "models--Datadog--Toto-Open-Base-1.0") in message
    assert "huggingface_hub is not installed" in message and "snapshots/<revision>" in message


def test_hub_id_found_in_local_cache(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--Datadog--Toto-Tiny"
    snapshot = repo / "snapshots" / "abc123"
    shutil.copytree(REF_DIR / "ref_b", snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = load_model("Datadog/Toto-Tiny")
    assert model.config.num_layers == 4 and model.config.spacewise_first


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="unknown precision 'fp64'"):
        load_model(REF_DIR / "ref_a", precision="fp64")


def test_config_validation_and_preset_hint():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TotoConfig(embed_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="multiple of spacewise_every_n_layers"):
        TotoConfig(num_layers=5, spacewise_every_n_layers=2)
    with pytest.raises(ValueError, match="Did you mean 'toto-tiny'"):
        TotoConfig.preset("toto-tine")


def test_default_model_info_shape():
    info = default_model_info()
    assert set(info) == {"name", "source"}
    if info["name"] is None:
        assert "pass --model" in info["source"]


def test_loading_a_checkpoint_does_not_import_the_compiler():
    """The meta skeleton's rotary tables are made on the CPU: arithmetic on meta tensors imports
    torch._dynamo (seconds of every model load) for values the load replaces anyway."""
    import subprocess
    import sys

    probe = (
        "import sys, torch\n"
        "before = 'torch._dynamo' in sys.modules\n"
        "from totowalk import load_model\n"
        "model = load_model('toto-mini')\n"
        "print(before, 'torch._dynamo' in sys.modules, model.rotary.inv_freq.device)\n"
    )
    before, after, device = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    if before == "True":
        pytest.skip("this torch imports torch._dynamo with torch itself")
    assert (after, device) == ("False", "cpu")


def test_rotary_tables_are_made_on_the_default_device():
    from totowalk.model.rotary import XPosRotary

    cpu = XPosRotary(64)
    with torch.device("meta"):
        skeleton = XPosRotary(64)
    assert skeleton.inv_freq.device.type == "meta" and skeleton.xpos_base.device.type == "meta"
    assert cpu.inv_freq.device.type == "cpu"
    assert torch.equal(cpu.inv_freq, 1.0 / (10000.0 ** (torch.arange(0, 64, 2).float() / 64)))
