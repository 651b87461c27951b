"""CUDA graphs of the model's forward, one per (input shapes, horizon).

Launching the ~100 kernels of a forward one by one costs more than running them for small
buckets on a GPU; a captured graph replays them with one launch. A graph is tied to its input
buffers, so each call copies the staged batch into the graph's static inputs, replays, and clones
the (small) parameter outputs before the next replay can overwrite them. Shapes come from the
engine's buckets (rows x variates x padded length; for a prefix-shared batch also the padded
number of readouts and their width per row), so a run needs one graph per distinct shape. CUDA
only: the engine uses the eager forward on other devices.
"""

from __future__ import annotations

import dataclasses

import torch

__all__ = ["CapturedCall", "ForwardGraphs"]


class CapturedCall:
    """``function(*inputs)`` captured for one set of input shapes and dtypes.

    Parameters
    ----------
    function : callable of CUDA tensors returning a dataclass of tensors (MixtureParams)
    inputs : tuple of Tensor
        Example inputs: they fix the graph's shapes, dtypes and device (their values do not matter).
    warmup : int
        Eager runs on a side stream before capture (lazy initialisation must not be captured).
    """

    def __init__(self, function, inputs: tuple, warmup: int = 2):
        self.static_inputs = tuple(x.clone() for x in inputs)
        device = inputs[0].device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                function(*self.static_inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_outputs = function(*self.static_inputs)

    def __call__(self, *inputs):
        """Replay on new inputs of the captured shapes; returns fresh output tensors."""
        for static, value in zip(self.static_inputs, inputs):
            static.copy_(value)
        self.graph.replay()
        outputs = {
            f.name: getattr(self.static_outputs, f.name).clone() for f in dataclasses.fields(self.static_outputs)
        }
        return type(self.static_outputs)(**outputs)


class ForwardGraphs:
    """Captured forwards of one model, keyed by their input shapes and horizon; captured on first use."""

    def __init__(self, model):
        self.model = model
        self._graphs: dict = {}

    def __len__(self) -> int:
        return len(self._graphs)

    def __call__(self, values: torch.Tensor, mask: torch.Tensor, horizon: int):
        """``model.forecast_params(values, mask, None, horizon)``, replayed."""

        def forward(v, m):
            return self.model.forecast_params(v, m, None, horizon=horizon)

        return self._replay(("forecast_params", int(horizon)), forward, (values, mask))

    def shared(
        self,
        values: torch.Tensor,
        mask: torch.Tensor,
        rows: torch.Tensor,
        positions: torch.Tensor,
        slot: torch.Tensor,
        grid: torch.Tensor,
        horizon: int,
    ):
        """``model.forecast_params_at(values, mask, rows, positions, horizon, layout=(slot, grid))``,
        replayed (a prefix-shared batch: readouts at chosen patches of each row)."""

        def forward(v, m, r, p, s, g):
            return self.model.forecast_params_at(v, m, r, p, horizon=horizon, layout=(s, g))

        return self._replay(("forecast_params_at", int(horizon)), forward, (values, mask, rows, positions, slot, grid))

    def _replay(self, name: tuple, function, inputs: tuple):
        key = name + tuple(tuple(x.shape) for x in inputs)
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._graphs[key] = CapturedCall(function, inputs)
        return graph(*inputs)
