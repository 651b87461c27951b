"""Build, load and save Toto models (official safetensors + config.json layout)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import keys
from .config import PRESETS, TotoConfig
from .hub import CHECKPOINT_FILE, CONFIG_FILE, HUB_ID, CheckpointError, resolve_hub
from .identity import record_source
from .quantized_format import split_quantized_tensors
from .toto import TotoModel

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def build_model(config: TotoConfig | str, seed: int = 0, device: str | torch.device | None = None) -> TotoModel:
    """A model with random weights (tests and benchmarks only), eval mode, fp32.

    ``config`` may be a ``TotoConfig`` or a preset name. The global RNG state is left untouched.
    """
    if isinstance(config, str):
        config = TotoConfig.preset(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TotoModel(config)
    return model.to(device).eval() if device is not None else model.eval()


@dataclass
class Checkpoint:
    """Weights as read: an fp32 model on the CPU, where they came from, and stored int8 values."""

    model: TotoModel
    weights_path: Path
    stored_int8: dict | None = None
    """``{our module name: (qweight (N, K) int8, scale (N,))}`` of an int8 checkpoint, else None;
    ``model`` then holds their dequantization."""


def read_checkpoint(spec: str | os.PathLike, config: TotoConfig | None = None) -> Checkpoint:
    """Read Toto weights into an fp32 model (eval mode, CPU); no precision is applied here.

    Users call ``totowalk.load_model``, which adds the device, the precision and the quality
    gate's warning on top of this.

    Parameters
    ----------
    spec : str or path
        A preset name with shipped weights (``totowalk/model/weights/<name>/``), a directory
        holding ``model.safetensors`` + ``config.json``, a ``.safetensors`` file (its
        ``config.json`` next to it, or ``config``), or a Hugging Face hub id such as
        ``"Datadog/Toto-Open-Base-1.0"`` resolved in the local HF cache (downloaded only when
        ``huggingface_hub`` is installed and the hub is reachable).
    config : TotoConfig, optional
        Use this configuration instead of reading ``config.json``.
    """
    weights_path, config_path = resolve_checkpoint(spec)
    config_json = json.loads(config_path.read_text()) if config_path is not None and config_path.is_file() else None
    if config is None:
        if config_json is None:
            raise CheckpointError(
                f"no {CONFIG_FILE} next to {weights_path}; put the official {CONFIG_FILE} there or pass config="
            )
        config = TotoConfig.from_official_json(config_json, source=str(config_path))
    with torch.device("meta"):
        model = TotoModel(config)
    official, stored_int8 = load_file(str(weights_path)), None
    if config_json is not None and "quantization" in config_json:  # an int8 checkpoint (totowalk quantize)
        official, stored_int8 = split_quantized_tensors(official, config_json["quantization"], str(weights_path))
    state = _ours_from_official(official, model, source=str(weights_path))
    model.load_state_dict(state, strict=True, assign=True)
    model = _materialise_buffers(model).float().eval()
    record_source(model, weights_path, int8_checkpoint=stored_int8 is not None)
    return Checkpoint(model, weights_path, stored_int8)


def save_checkpoint(model: TotoModel, directory: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` (official key names, fused MLP layout) and ``config.json``.

    The directory loads back with ``totowalk.load_model`` and with the official ``Toto.load_from_checkpoint``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        keys.to_official(name): t.detach().to("cpu").contiguous().clone() for name, t in model.state_dict().items()
    }
    save_file(tensors, str(directory / CHECKPOINT_FILE), metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(json.dumps(model.config.to_official_json(), indent=2) + "\n")
    return directory


# -- resolution --------------------------------------------------------------------------


def resolve_checkpoint(spec: str | os.PathLike) -> tuple[Path, Path | None]:
    """(weights file, config file or None) for a model spec (see ``read_checkpoint``)."""
    text = os.fspath(spec)
    bundled = WEIGHTS_DIR / text
    if "/" not in text and os.sep not in text and (bundled / CHECKPOINT_FILE).is_file():
        return bundled / CHECKPOINT_FILE, bundled / CONFIG_FILE  # weights shipped in the package
    if text in PRESETS:
        raise CheckpointError(
            f"preset {text!r} has no shipped weights (looked in {bundled}); for random weights use "
            f"totowalk.build_model(TotoConfig.preset({text!r}), seed=0)"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        weights = path / CHECKPOINT_FILE
        if not weights.is_file():
            raise CheckpointError(f"directory {path} has no {CHECKPOINT_FILE}")
        return weights, path / CONFIG_FILE
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path} is not a .safetensors file")
        return path, path.parent / CONFIG_FILE
    if HUB_ID.match(text) and not text.endswith(".safetensors"):
        return resolve_hub(text)
    shipped = sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / CHECKPOINT_FILE).is_file())
    raise CheckpointError(
        f"cannot load model {text!r}: not a bundled model ({', '.join(shipped)}), not an existing file "
        "or directory, and not a hub id like 'Datadog/Toto-Open-Base-1.0' (random weights: "
        f"random:NAME with NAME one of {', '.join(sorted(PRESETS) + shipped)})"
    )


# -- state dict translation --------------------------------------------------------------


def _ours_from_official(official: dict[str, torch.Tensor], model: TotoModel, source: str) -> dict[str, torch.Tensor]:
    """Rename official tensors to our names and check names and shapes against ``model``."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unexpected = []
    for official_key, tensor in official.items():
        if keys.is_ignored(official_key):
            continue
        ours = keys.to_ours(official_key)
        if ours is None or ours not in expected:
            unexpected.append(official_key)
            continue
        if ours in state:
            raise CheckpointError(f"{source}: tensors {origin[ours]!r} and {official_key!r} both fill {ours!r}")
        if tuple(tensor.shape) != expected[ours]:
            raise CheckpointError(
                f"{source}: tensor {official_key!r} has shape {tuple(tensor.shape)} but the config needs "
                f"{expected[ours]} (check config.json against the weights)"
            )
        state[ours] = tensor.to(torch.float32)
        origin[ours] = official_key
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensors {sorted(unexpected)}")
    missing = [keys.to_official(name) for name in expected if name not in state]
    if missing:
        raise CheckpointError(f"{source}: missing tensors {missing}")
    return state


def _materialise_buffers(model: TotoModel) -> TotoModel:
    """Recreate the derived (non-persistent) rotary buffers that the meta build left empty."""
    cfg = model.config
    fresh = type(model.rotary)(cfg.head_dim, cfg.rope_theta, cfg.xpos_scale_base)
    model.rotary = fresh
    return model
