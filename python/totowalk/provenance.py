"""Where, when and with what a result was made: machine, git commit, date, library versions."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ._version import __version__


def cpu_description() -> str:
    """CPU model name and the cores this process may use, e.g. ``AMD EPYC 7B13, 2 cores``."""
    model = platform.processor() or platform.machine() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            model = names[0]
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def machine_description(device: torch.device) -> str:
    """The GPU card name on CUDA (plus the host CPU), else the CPU description."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (host: {cpu_description()})"
    return cpu_description()


def git_commit() -> str:
    """Short commit of the checkout being benchmarked, or the package version outside a checkout.

    Looks for the git checkout holding this package (editable install), else the current
    directory's (an installed copy run from the repository root, as bench/gpu_check.sh does).
    ``+dirty`` marks uncommitted changes to tracked code (python/, csrc/, CMakeLists.txt).
    """
    for where in (Path(__file__).resolve().parent, Path.cwd()):
        root = _git(["rev-parse", "--show-toplevel"], where)
        if root:
            head = _git(["rev-parse", "--short", "HEAD"], Path(root))
            dirty = _git(
                ["status", "--porcelain", "--untracked-files=no", "--", "python", "csrc", "CMakeLists.txt"], Path(root)
            )
            return (head or "unknown") + ("+dirty" if dirty else "")
    return f"totowalk {__version__} (no git checkout)"  # an installed copy: its version is what is known


def _git(args: list, cwd: Path) -> str:
    """Stripped stdout of a git command, or "" when it fails."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=cwd, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def today() -> str:
    """UTC date, ISO format."""
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def versions() -> dict:
    """The versions a result file records: totowalk and its commit, torch, numpy, pandas, matplotlib."""
    import matplotlib  # only when a result is written

    return {
        "totowalk": __version__,
        "commit": git_commit(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "matplotlib": matplotlib.__version__,
    }
