"""What the default model is, for ``totowalk info``."""

from __future__ import annotations

from .checkpoint import CHECKPOINT_FILE, WEIGHTS_DIR


def default_model_info() -> dict:
    """``{"name", "source"}`` of the model used when none is given.

    No weights ship with the package yet; once a preset's weights are placed under
    ``totowalk/model/weights/<preset>/`` the first such preset is reported.
    """
    if WEIGHTS_DIR.is_dir():
        for preset_dir in sorted(WEIGHTS_DIR.iterdir()):
            if (preset_dir / CHECKPOINT_FILE).is_file():
                return {"name": preset_dir.name, "source": str(preset_dir)}
    return {"name": None, "source": "no bundled weights yet; pass --model"}
