"""numpy arrays as torch CPU tensors for the strategy grids.

The MaxDiff grids are element-wise float work over millions of cells per batch of simulations.
torch runs the same IEEE operations as numpy (so the same bits) on all cores, where numpy uses one.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["cpu_tensor"]


def cpu_tensor(values, dtype=np.float32) -> torch.Tensor:
    """A CPU tensor of ``dtype`` sharing memory with ``values`` where it can (scalars stay 0-d)."""
    array = np.asarray(values, dtype=dtype)
    if any(stride < 0 for stride in array.strides):  # torch takes no negative strides
        array = array.copy()
    return torch.from_numpy(array)
