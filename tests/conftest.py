"""Shared pytest setup.

- Without a CUDA device, Triton kernels run in Triton's CPU interpreter; TRITON_INTERPRET must be
  set before anything imports triton, hence here, first.
- Tests marked ``cuda`` skip where no CUDA device is usable.
- The run's "auto" choices (host workers, the outputs process) follow the host's cores: the suite
  runs as on CI's 2-core machine, so a test means the same on any host (tests of those choices set
  the cores they mean).
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from totowalk import devices  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def two_host_cores():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(devices, "host_cores", lambda: 2)
        yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none available)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def single_torch_thread():
    """Tiny-model ops are far too small to share out; on a loaded 2-core machine OpenMP threads spin
    against other processes and a call gets ~10x slower. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
