"""Build, load and save Toto models (official safetensors + config.json layout)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import keys
from .config import PRESETS, TotoConfig
from .identity import record_source
from .quantized_format import split_quantized_tensors
from .toto import TotoModel

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CHECKPOINT_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be found, or does not match the model it should fill."""


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
    weights_path, config_path = _resolve(spec)
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
    tensors = {keys.to_official(name): t.detach().to("cpu").contiguous().clone() for name, t in model.state_dict().items()}
    save_file(tensors, str(directory / CHECKPOINT_FILE), metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(json.dumps(model.config.to_official_json(), indent=2) + "\n")
    return directory


# -- resolution --------------------------------------------------------------------------


def _resolve(spec: str | os.PathLike) -> tuple[Path, Path | None]:
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
    if _HUB_ID.match(text) and not text.endswith(".safetensors"):
        return _resolve_hub(text)
    shipped = sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / CHECKPOINT_FILE).is_file())
    raise CheckpointError(
        f"cannot load model {text!r}: not a bundled model ({', '.join(shipped)}), not an existing file "
        "or directory, and not a hub id like 'Datadog/Toto-Open-Base-1.0' (random weights: "
        f"random:NAME with NAME one of {', '.join(sorted(PRESETS) + shipped)})"
    )


def _hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _cached_snapshot(repo_dir: Path) -> Path | None:
    """The snapshot of ``refs/main`` (or any complete one) holding both files."""
    snapshots = repo_dir / "snapshots"
    main_ref = repo_dir / "refs" / "main"
    candidates = []
    if main_ref.is_file():
        candidates.append(snapshots / main_ref.read_text().strip())
    if snapshots.is_dir():
        candidates.extend(sorted(snapshots.iterdir()))
    for snapshot in candidates:
        if (snapshot / CHECKPOINT_FILE).is_file() and (snapshot / CONFIG_FILE).is_file():
            return snapshot
    return None


def _resolve_hub(repo_id: str) -> tuple[Path, Path]:
    cache = _hf_cache_dir()
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = _cached_snapshot(repo_dir)
    if snapshot is not None:
        return snapshot / CHECKPOINT_FILE, snapshot / CONFIG_FILE
    reason = "huggingface_hub is not installed"
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        hf_hub_download = None
    if hf_hub_download is not None:
        try:
            weights = hf_hub_download(repo_id, CHECKPOINT_FILE)
            config = hf_hub_download(repo_id, CONFIG_FILE)
            return Path(weights), Path(config)
        except Exception as exc:  # noqa: BLE001 -- offline, unknown repo, auth: all mean "not available here"
            reason = f"download failed ({type(exc).__name__}: {exc})"
    raise CheckpointError(
        f"model {repo_id!r} is not in the local Hugging Face cache (looked in {repo_dir}) and {reason}. "
        f"Download {CHECKPOINT_FILE} and {CONFIG_FILE} from https://huggingface.co/{repo_id} and pass "
        f"their directory to load_model, or place them under {repo_dir}/snapshots/<revision>/"
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
