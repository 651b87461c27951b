"""The reference predictor's token sampling, on explicit random streams.

``sample_from_logits`` of kronos-model-arch 0.1.0 divides the logits by the temperature, then
filters: with ``top_k > 0`` it keeps the tokens whose logit is at least the k-th largest and stops
there (``top_p`` is then not applied: the reference returns after top-k); otherwise, with
``top_p < 1``, it keeps the smallest set of most likely tokens whose probability reaches top_p
(the token that crosses it included). Then one draw from the softmax. Here the draw inverts the
cumulative distribution at a uniform from the engine's counter-based Philox stream, so a path's
token depends only on (seed, context, step, path), not on the batch it is computed in.
"""

from __future__ import annotations

import torch

from ..kernels.stream import philox_block

__all__ = ["filtered_probabilities", "draw_tokens"]

S1_DRAW, S2_DRAW = 0, 1  # Philox blocks of one (step, path): the coarse, then the fine token


def filtered_probabilities(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """(N, V) logits -> (N, V) float64 probabilities after the reference's filtering."""
    z = logits.double() / temperature
    vocab = z.shape[-1]
    if top_k > 0:
        k = min(max(int(top_k), 1), vocab)
        threshold = torch.topk(z, k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < threshold, float("-inf"))
    elif top_p < 1.0:
        ordered, order = torch.sort(z, dim=-1, descending=True)
        beyond = torch.cumsum(torch.softmax(ordered, dim=-1), dim=-1) > top_p
        beyond[..., 1:] = beyond[..., :-1].clone()  # keep the token that crosses top_p
        beyond[..., 0] = False
        z = z.masked_fill(beyond.scatter(-1, order, beyond), float("-inf"))
    return torch.softmax(z, dim=-1)


def draw_tokens(
    probabilities: torch.Tensor, seed: int, stream_key: torch.Tensor, paths: torch.Tensor, draw: int
) -> torch.Tensor:
    """One token per row: the inverse CDF at the uniform of block ``draw`` of stream ``stream_key``
    and sample index ``paths[row]``. ``stream_key``: an int64 scalar tensor, or G keys (G,) for
    G x len(paths) rows (stream-major: the rows of key 0's paths first). Zero-probability tokens
    are never drawn."""
    words = philox_block(seed, stream_key.reshape(-1), paths.to(torch.int64), draw)[0].reshape(-1)
    uniform = (words.double() + 0.5) / 2.0**32
    cdf = torch.cumsum(probabilities, dim=-1)
    target = (uniform * cdf[:, -1]).unsqueeze(-1)
    return torch.searchsorted(cdf, target, right=True).clamp_max(probabilities.shape[-1] - 1).squeeze(-1)
