"""What the default model is, for ``totowalk info``."""

from __future__ import annotations

from .checkpoint import CHECKPOINT_FILE, WEIGHTS_DIR
from .resolve import DEFAULT_MODEL


def default_model_info() -> dict:
    """``{"name", "source"}`` of the model used when none is given."""
    folder = WEIGHTS_DIR / DEFAULT_MODEL
    if (folder / CHECKPOINT_FILE).is_file():
        return {
            "name": DEFAULT_MODEL,
            "source": f"bundled in the package: {folder} (trained by tools/train_mini.py; see EVALUATION.md there)",
        }
    return {"name": None, "source": f"bundled weights missing: expected {folder / CHECKPOINT_FILE}"}
