"""Models on the Hugging Face hub: ids, the local cache, the official file names.

Both model families (Toto, Kronos) publish a folder with ``config.json`` and ``model.safetensors``;
a hub id ``owner/name`` is read from the local cache first and downloaded only when
huggingface_hub (the optional ``hub`` extra) is installed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import CheckpointError

__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "HUB_ID", "CheckpointError", "hf_cache_dir", "resolve_hub"]

CHECKPOINT_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub finds it (HF_HUB_CACHE, HF_HOME, XDG)."""
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


def resolve_hub(repo_id: str) -> tuple[Path, Path]:
    """(weights, config) of a hub model: its cached snapshot, else a download when huggingface_hub is
    installed; else a CheckpointError saying where to put the files."""
    cache = hf_cache_dir()
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
