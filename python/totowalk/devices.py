"""Turn a user's device argument into a ``torch.device`` that can run, or a clear error; and the
host's cores, which the run's "auto" choices (host workers, the outputs process) depend on."""

from __future__ import annotations

import os

import torch

__all__ = ["SPARE_CORES", "DeviceError", "host_cores", "resolve_device", "to_device_async"]

# From this many cores a host has some to spare beside a run's own process (its forecast and
# strategies keep 2 busy: bench/RESULTS.md): the run's "auto" choices start processes only there.
SPARE_CORES = 4


def host_cores() -> int:
    """The cores this process may run on (its affinity where the system says, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class DeviceError(ValueError):
    """A device that does not exist here (no CUDA build, no GPU, index out of range, bad name)."""


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """``None`` stays ``None`` (the caller's default); anything else must be usable on this machine.

    Raises
    ------
    DeviceError
        Naming what was asked for, what this machine has, and the way out.
    """
    if device is None:
        return None
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "cuda":
        if torch.version.cuda is None:
            raise DeviceError(
                f"device {str(device)!r}: this torch ({torch.__version__}) is built without CUDA; "
                "install a CUDA build of torch or use device 'cpu'"
            )
        count = torch.cuda.device_count()
        if count == 0:
            raise DeviceError(
                f"device {str(device)!r}: torch {torch.__version__} sees no CUDA device "
                "(no GPU, driver or CUDA_VISIBLE_DEVICES); use device 'cpu'"
            )
        if resolved.index is not None and resolved.index >= count:
            raise DeviceError(f"device {str(device)!r}: only {count} CUDA device(s) here (cuda:0..cuda:{count - 1})")
    elif resolved.type not in ("cpu", "meta"):
        raise DeviceError(f"device {str(device)!r}: totowalk runs on 'cpu' or 'cuda'")
    return resolved


def to_device_async(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device`` without stalling the host: a host tensor bound for a GPU goes
    through pinned memory and a non-blocking copy. (A plain ``.to("cuda")`` of pageable memory
    waits for every kernel queued on the stream, so the card idles while the host queues the
    next ones.) torch's pinned-memory cache keeps the staging buffer until the copy is done."""
    if tensor.device == device or device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
