"""CUDA graphs of the model's forward, one per (input shape, horizon).

Launching the ~100 kernels of a forward one by one costs more than running them for small
buckets on a GPU; a captured graph replays them with one launch. A graph is tied to its input
buffers, so each call copies the staged batch into the graph's static inputs, replays, and clones
the (small) parameter outputs before the next replay can overwrite them. Shapes come from the
engine's buckets (rows x variates x padded length), so a run needs one graph per distinct bucket
shape. CUDA only: the engine uses the eager forward on other devices.
"""

from __future__ import annotations

import dataclasses

import torch

__all__ = ["CapturedForward", "ForwardGraphs"]


class CapturedForward:
    """``model.forecast_params(values, mask, None, horizon)`` captured for one input shape.

    Parameters
    ----------
    model : TotoModel on a CUDA device
    values : Tensor (B, V, T) float32, mask : Tensor (B, V, T) bool
        Example inputs: they fix the graph's shape, dtype and device (their values do not matter).
    horizon : int
    warmup : int
        Eager runs on a side stream before capture (lazy initialisation must not be captured).
    """

    def __init__(self, model, values: torch.Tensor, mask: torch.Tensor, horizon: int, warmup: int = 2):
        self.static_values = values.clone()
        self.static_mask = mask.clone()
        device = values.device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                model.forecast_params(self.static_values, self.static_mask, None, horizon=horizon)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_params = model.forecast_params(self.static_values, self.static_mask, None, horizon=horizon)

    def __call__(self, values: torch.Tensor, mask: torch.Tensor):
        """Replay on new inputs of the captured shape; returns fresh MixtureParams tensors."""
        self.static_values.copy_(values)
        self.static_mask.copy_(mask)
        self.graph.replay()
        outputs = {f.name: getattr(self.static_params, f.name).clone()
                   for f in dataclasses.fields(self.static_params)}
        return type(self.static_params)(**outputs)


class ForwardGraphs:
    """Captured forwards of one model, keyed by (values shape, horizon); captured on first use."""

    def __init__(self, model):
        self.model = model
        self._graphs: dict = {}

    def __len__(self) -> int:
        return len(self._graphs)

    def __call__(self, values: torch.Tensor, mask: torch.Tensor, horizon: int):
        key = (tuple(values.shape), int(horizon))
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._graphs[key] = CapturedForward(self.model, values, mask, horizon)
        return graph(values, mask)
