"""Kronos checkpoints: the published layout (a folder with ``config.json``, the constructor's
keyword arguments, and ``model.safetensors``, the state dict), from a folder or the local Hugging
Face cache; random-weight checkpoints for tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..model.hub import CHECKPOINT_FILE, CONFIG_FILE, HUB_ID, CheckpointError, resolve_hub
from .config import MODEL_PRESETS, TOKENIZER_PRESETS, KronosConfig, KronosTokenizerConfig
from .model import KronosModel
from .tokenizer import KronosTokenizer

__all__ = ["DEFAULT_TOKENIZER", "load_kronos", "random_kronos", "save_kronos_checkpoint"]

DEFAULT_TOKENIZER = "NeoQuasar/Kronos-Tokenizer-base"


def _files(spec, what: str) -> tuple[Path, Path]:
    path = Path(spec)
    if path.is_dir():
        weights, config = path / CHECKPOINT_FILE, path / CONFIG_FILE
        for f in (config, weights):
            if not f.is_file():
                raise CheckpointError(f"Kronos {what} folder {path} has no {f.name}")
        return weights, config
    if isinstance(spec, str) and HUB_ID.match(spec) and not path.exists():
        return resolve_hub(spec)
    raise CheckpointError(f"Kronos {what} {str(spec)!r} is neither a folder nor a Hugging Face id (owner/name)")


def _read_config(path: Path, cls, what: str):
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Kronos {what} config {path}: {exc}") from exc
    try:
        return cls.from_dict(data, where=f"Kronos {what} {path}")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(str(exc)) from exc


def _fill(module: torch.nn.Module, weights: Path, what: str) -> None:
    state = load_file(str(weights))
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(f"Kronos {what} {weights}: missing tensor {missing[0]!r} ({len(missing)} missing)")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"Kronos {what} {weights}: unexpected tensor {extra[0]!r} ({len(extra)} unexpected)")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"Kronos {what} {weights}: tensor {name!r} has shape {tuple(state[name].shape)}, "
                f"the config needs {tuple(tensor.shape)}"
            )
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def _check_is_kronos(model) -> None:
    """A folder whose config.json is not a Kronos model's (a Toto checkpoint, say) is named as such."""
    config = Path(model) / CONFIG_FILE
    if not config.is_file():
        return
    try:
        keys = set(json.loads(config.read_text()))
    except (OSError, ValueError):
        return  # _read_config reports an unreadable config with its reason
    if not {"s1_bits", "s2_bits"} <= keys:
        shown = ", ".join(sorted(keys)[:6]) + (", ..." if len(keys) > 6 else "")
        raise CheckpointError(
            f"{Path(model).parent if Path(model).name == 'model' else model} is not a Kronos checkpoint: its "
            f"config.json has {shown} (a Kronos model's names s1_bits and s2_bits; a Toto checkpoint is given "
            "with --model / load_model, not --kronos)"
        )


def load_kronos(model, tokenizer=None, *, device=None, dtype=None) -> tuple[KronosModel, KronosTokenizer]:
    """Load a Kronos model and its tokenizer (eval mode).

    Parameters
    ----------
    model : folder or Hugging Face id of the model checkpoint; or a folder holding ``model/`` and
        ``tokenizer/`` subfolders (then ``tokenizer`` may be None)
    tokenizer : folder or Hugging Face id; default: the ``tokenizer/`` subfolder of ``model`` when it
        has one, else ``NeoQuasar/Kronos-Tokenizer-base`` from the local cache
    device, dtype : where and in which floating type to put both (default: CPU, float32)
    """
    root = Path(model)
    if root.is_dir() and (root / "model").is_dir():
        model = root / "model"
        if tokenizer is None and (root / "tokenizer").is_dir():
            tokenizer = root / "tokenizer"
    _check_is_kronos(model)
    default_tokenizer = tokenizer is None
    tokenizer = DEFAULT_TOKENIZER if default_tokenizer else tokenizer
    m_weights, m_config = _files(model, "model")
    try:
        t_weights, t_config = _files(tokenizer, "tokenizer")
    except CheckpointError as err:
        if not default_tokenizer:
            raise
        raise CheckpointError(
            f"{err}; the model has no tokenizer/ beside it: give its tokenizer folder (--kronos-tokenizer DIR on "
            "the command line, tokenizer= in Python)"
        ) from err
    net = KronosModel(_read_config(m_config, KronosConfig, "model"))
    tok = KronosTokenizer(_read_config(t_config, KronosTokenizerConfig, "tokenizer"))
    _fill(net, m_weights, "model")
    _fill(tok, t_weights, "tokenizer")
    bits = net.config.s1_bits, net.config.s2_bits
    if bits != (tok.config.s1_bits, tok.config.s2_bits):
        raise CheckpointError(
            f"Kronos model uses s1/s2 bits {bits}, its tokenizer "
            f"{(tok.config.s1_bits, tok.config.s2_bits)}: they are not a pair"
        )
    for module in (net, tok):
        module.to(device=device, dtype=dtype).eval()
    return net, tok


def save_kronos_checkpoint(module: KronosModel | KronosTokenizer, folder) -> Path:
    """Write ``config.json`` and ``model.safetensors`` in the published layout."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(module.config.to_dict(), indent=2) + "\n")
    save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}, str(folder / CHECKPOINT_FILE))
    return folder


def random_kronos(folder, shape: str = "reduced", seed: int = 0) -> Path:
    """A random-weight Kronos folder (``model/`` and ``tokenizer/``) of a preset shape: "reduced"
    (tests), "small" or "base" (the published shapes, with the base tokenizer). For tests and
    benchmarks only: its forecasts carry no information."""
    model_preset = {"reduced": "reduced", "small": "kronos-small", "base": "kronos-base"}
    if shape not in model_preset:
        raise ValueError(f"shape must be one of {sorted(model_preset)}, got {shape!r}")
    tokenizer_config = TOKENIZER_PRESETS["reduced" if shape == "reduced" else "tokenizer-base"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = KronosModel(MODEL_PRESETS[model_preset[shape]])
        tok = KronosTokenizer(tokenizer_config)
        for module in (net, tok):  # small random weights, so activations stay in range
            for name, p in module.named_parameters():
                if p.requires_grad and p.dim() >= 2:
                    torch.nn.init.normal_(p, std=0.5 / p.shape[-1] ** 0.5)
    folder = Path(folder)
    save_kronos_checkpoint(net, folder / "model")
    save_kronos_checkpoint(tok, folder / "tokenizer")
    return folder
