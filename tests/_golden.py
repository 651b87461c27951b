"""The legacy goldens (values computed by running the classic code), copied from shared/golden/.

They live in the repository so every checkout (and CI) runs the golden tests; nothing is skipped.
"""

import json
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _decode(value):
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def load_golden(name: str):
    """Parse ``tests/golden/<name>`` with the non-finite strings turned into floats."""
    with open(GOLDEN_DIR / name) as fh:
        return _decode(json.load(fh))
