"""Forward FLOPs of the Toto model and the machine's measured matrix-multiply ceiling."""

from __future__ import annotations

import torch

from ..engine.inputs import normalize_contexts
from ..engine.plan import plan_forecast
from ..engine.prefix_sharing import ScalerSettings
from .timing import time_call


def forward_flops(config, num_patches: int, num_variates: int = 1, horizon: int = 1) -> int:
    """FLOPs of one next-patch forward of one row, as the engine computes it.

    With d = embed_dim, m = mlp_hidden_dim, p = patch_size, P = num_patches, V = num_variates,
    h = horizon, K = k_components, and one multiply-add counted as 2 FLOPs::

        F = V * [ 2 p d P                                   patch embedding
                + sum over layers but the last of
                    P * 2 (4 d^2 + 3 d m)                   QKV, output, SwiGLU (w12: 2m, w3) linears
                  + 4 P^2 d        (time-wise layer)        Q K^T and A V over all P x P pairs
                  | 4 P V d        (space-wise layer)       per patch over V x V variate pairs
                + last layer, only the last patch kept:
                    time-wise:  P * 2 * 3 d^2 + 2 (d^2 + 3 d m) + 4 P d   (keys/values of all patches)
                    space-wise: 2 (4 d^2 + 3 d m) + 4 V d
                + 2 d (h d) + 2 d (4 K) h ]                 un-embedding of h steps, mixture head

    The time-wise attention term counts the full P x P score matrix, as the math definition of
    attention does (fused kernels skip part of the causal half; attention is under 1 % of the
    FLOPs at W1's sizes, so the reported rate hardly moves). Norms, rotary, softmax and the scaler are
    left out (O(P d) each). A baseline that pushes a context through the model S times executes S
    times these FLOPs (the official forecaster also un-embeds every position: not counted here).

    Parameters
    ----------
    config : totowalk.model.TotoConfig
    num_patches : int
        P = ceil(context length / patch_size).
    num_variates : int
        V variates of the row.
    horizon : int
        Steps un-embedded and evaluated by the head (<= patch_size).

    Returns
    -------
    int
    """
    d, m, p = config.embed_dim, config.mlp_hidden_dim, config.patch_size
    big_p, v, h, k = int(num_patches), int(num_variates), int(horizon), config.k_components
    linears_per_token = 2 * (4 * d * d + 3 * d * m)
    layers = config.layer_is_spacewise()
    total = 2 * p * d * big_p
    for spacewise in layers[:-1]:
        total += big_p * linears_per_token
        total += 4 * big_p * v * d if spacewise else 4 * big_p * big_p * d
    if layers[-1]:
        total += linears_per_token + 4 * v * d
    else:
        total += big_p * 2 * 3 * d * d + 2 * (d * d + 3 * d * m) + 4 * big_p * d
    total += 2 * d * h * d + 2 * d * 4 * k * h
    return v * total


def contexts_flops(config, lengths, horizon: int = 1) -> int:
    """Sum of :func:`forward_flops` over univariate contexts of the given lengths."""
    p = config.patch_size
    return sum(forward_flops(config, -(-int(n) // p), 1, horizon) for n in lengths)


def planned_flops(config, contexts, share_prefixes: bool) -> tuple[int, int]:
    """FLOPs of the forwards the engine runs for univariate ``contexts`` (one call), and their count.

    With prefix sharing one forward over each group's longest member serves the group (its final
    layer evaluated at every member's last patch, a few per cent of a forward: not counted); without,
    one forward per unique context. Horizon one step.
    """
    settings = ScalerSettings.from_config(config) if share_prefixes else None
    plan = plan_forecast(normalize_contexts(contexts), config.patch_size, 1 << 40, share_prefixes=settings)
    forwards = sum(len(batch.members) for batch in plan.batches)
    total = sum(len(batch.members) * forward_flops(config, batch.num_patches) for batch in plan.batches)
    return total, forwards


def gemm_ceiling(
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    m: int = 2048,
    k: int = 768,
    n: int = 3072,
    repeats: int = 5,
) -> dict:
    """Measured matrix-multiply rate of ``torch.matmul`` on an (m, k) x (k, n) product.

    The default shape is the base model's MLP up-projection over 2,048 patch tokens (about 89
    contexts of 23 patches), the engine's largest GEMM. On CUDA the current TF32 setting applies.

    Returns
    -------
    dict with ``gflops`` (achieved GFLOP/s), ``shape``, ``dtype``, ``seconds`` (median per product).
    """
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(k, n, generator=gen).to(device=device, dtype=dtype)
    inner = 1 if device.type == "cpu" else 20  # amortise launch overhead on a GPU

    def products():
        for _ in range(inner):
            torch.matmul(a, b)

    timing, _ = time_call(products, device, repeats=repeats, warmup=1)
    seconds = timing.median_s / inner
    return {
        "gflops": 2.0 * m * k * n / seconds / 1e9,
        "shape": [m, k, n],
        "dtype": str(dtype).replace("torch.", ""),
        "seconds": seconds,
    }
