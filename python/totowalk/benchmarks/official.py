"""The official toto-ts forecaster as a baseline: in this process when importable, else in a venv.

toto-ts pins its own dependencies, so it usually lives in a separate virtual environment
(bench/README.md shows how to make one at /tmp/refvenv). The same random weights reach it through
``tw.save_checkpoint``; contexts travel in an npz file; ``official_worker.py`` times the calls.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..model import save_checkpoint
from . import official_worker

DEFAULT_VENV_PYTHON = "/tmp/refvenv/bin/python"
PYTHON_ENV = "TOTOWALK_TOTO_TS_PYTHON"


def find_official(python: str | None = None) -> str | None:
    """How to run toto-ts: ``"in-process"``, the path of a python that has it, or None.

    Order: the ``python`` argument, ``$TOTOWALK_TOTO_TS_PYTHON``, this interpreter, /tmp/refvenv.
    """
    if python:
        return python if _has_toto(python) else None
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV] if _has_toto(os.environ[PYTHON_ENV]) else None
    if importlib.util.find_spec("toto") is not None:
        return "in-process"
    return DEFAULT_VENV_PYTHON if _has_toto(DEFAULT_VENV_PYTHON) else None


def _has_toto(python: str) -> bool:
    if not Path(python).is_file():
        return False
    probe = subprocess.run(
        [python, "-c", "import toto.inference.forecaster"], capture_output=True, timeout=300, check=False
    )
    return probe.returncode == 0


def time_official_calls(
    model, contexts: list, num_samples: int, samples_per_batch: int, device: str, runner: str, timeout_s: float = 1800
) -> dict:
    """Time one official forecaster call per context (see ``official_worker.time_official``).

    Parameters
    ----------
    model : totowalk TotoModel whose weights the official model loads
    contexts : list of 1-D float32 arrays, one call each
    runner : ``"in-process"`` or the path of a python with toto-ts
    """
    with tempfile.TemporaryDirectory(prefix="totowalk-bench-") as tmp:
        checkpoint = save_checkpoint(model, Path(tmp) / "checkpoint")
        if runner == "in-process":
            return official_worker.time_official(str(checkpoint), contexts, num_samples, samples_per_batch, device)
        contexts_file = Path(tmp) / "contexts.npz"
        np.savez(contexts_file, **{f"c{i}": np.asarray(c, np.float32) for i, c in enumerate(contexts)})
        cmd = [
            runner,
            official_worker.__file__,
            "--checkpoint",
            str(checkpoint),
            "--contexts",
            str(contexts_file),
            "--calls",
            str(len(contexts)),
            "--num-samples",
            str(num_samples),
            "--samples-per-batch",
            str(samples_per_batch),
            "--device",
            device,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"toto-ts baseline failed ({' '.join(cmd[:2])}): {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


__all__ = ["DEFAULT_VENV_PYTHON", "PYTHON_ENV", "find_official", "time_official_calls"]
