"""Shared pytest setup.

- Without a CUDA device, Triton kernels run in Triton's CPU interpreter; TRITON_INTERPRET must be
  set before anything imports triton, hence here, first.
- Tests marked ``cuda`` skip where no CUDA device is usable.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none available)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
