"""Where and when a benchmark ran: machine description, git commit, date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import torch


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
    """Short commit of the checkout the package runs from, or ``unknown``.

    ``+dirty`` marks uncommitted changes to tracked code (python/, csrc/, CMakeLists.txt), which
    the timed code may include.
    """
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10, cwd=here)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "python", "csrc", "CMakeLists.txt"],
                               capture_output=True, text=True, timeout=10, cwd=here.parent.parent.parent)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def today() -> str:
    """UTC date, ISO format."""
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()
