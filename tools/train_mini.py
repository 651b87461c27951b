"""Train "toto-mini", a small Toto-architecture model, on the bundled daily returns (CPU).

Data: the legacy percent-change series of Open, High, Low and Close of AAPL, IBM and MSFT
(split-adjusted), each key its own univariate series -- the backtest forecasts one key at a time.
Gradient steps use returns dated up to 2009-12-31; the 2010 returns are a validation set
(next-step NLL, whole-history contexts, as the backtest uses the model) that picks the
checkpoint. Nothing after 2010-12-31 is read.

Objective: the mixture's negative log-likelihood, as Toto's pretraining lays it out: the output at
patch p, de-normalised with patch p's causal scaler statistics, predicts the 64 values of patch
p+1. Each batch scores step 0 of the next patch (what next-step forecasts use; half the loss)
plus ``--steps-per-patch - 1`` random later steps (the other half), so every un-embedding row is
trained at a fraction of the cost of all 64. The head's component scales start near the data's
normalised spread (``init_head_scales``).

Each batch holds windows of one length (random, 192 .. min(3328, fit period) steps; the fit
period is ~2,470 steps) left-padded to whole patches, so the padding the model sees is the
padding a real context gets (< 1 patch).

Reproducible from ``--seed`` (same threads, same torch build). Run:
``nohup .venv/bin/python tools/train_mini.py > /tmp/train_mini.log 2>&1 &``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_mini import KEYS, TRAIN_END, TRAIN_SYMBOLS, WEIGHTS_DIR, left_pad, load_returns

FIT_END = "2009-12-31"  # gradient steps see returns up to here; 2010 is validation
MIN_WINDOW, MAX_WINDOW = 192, 3328
NEXT_STEP_WEIGHT = 0.5  # share of the loss on step 0 of each predicted patch


def training_series() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per symbol: the four keys' returns up to TRAIN_END, (4, N) float32, and the 2010 positions."""
    series, val_targets = [], []
    for symbol in TRAIN_SYMBOLS:
        returns = load_returns(symbol)
        returns = returns[returns.index <= pd.Timestamp(TRAIN_END)]
        series.append(returns[list(KEYS)].to_numpy(np.float32).T)
        val_targets.append(np.flatnonzero(returns.index > pd.Timestamp(FIT_END)))
    return series, val_targets


def sample_batch(series, fit_lengths, batch_size, patch, rng, augment=True) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of one random length, ending at random points inside the fit period.

    With ``augment`` each window is multiplied by a random factor: a log-uniform magnitude in
    [1/2, 2] (other volatility levels) and a random sign, so the few series cannot simply be
    memorised.

    Returns values (B, 1, W) float32 and padding_mask (B, 1, W) bool, W a multiple of ``patch``.
    """
    longest = min(MAX_WINDOW, min(fit_lengths))
    length = int(rng.integers(MIN_WINDOW, longest + 1))
    windows = []
    for _ in range(batch_size):
        i = int(rng.integers(len(series)))
        key = int(rng.integers(series[i].shape[0]))
        end = int(rng.integers(length, fit_lengths[i] + 1))
        window = series[i][key, end - length : end]
        if augment:
            window = window * np.float32(rng.choice([-1.0, 1.0]) * 2.0 ** rng.uniform(-1.0, 1.0))
        windows.append(window)
    return left_pad(windows, patch)


def sequence_distribution(model, values, padding_mask, steps, dropout=0.0):
    """Mixture parameters of chosen steps of the next patch, after every patch of the window.

    Parameters
    ----------
    values, padding_mask : (B, 1, W) float32 / bool, left-padded, S = W / P patches
    steps : (n,) long, steps 0..P-1 of the next patch to evaluate (un-embedding only those
        rows keeps the cost of the head proportional to n, not P)
    dropout : float
        Training-only dropout on each layer's attention and MLP outputs (the inference model
        has none; with p = 0 this is exactly TotoModel's computation).

    Returns
    -------
    log_weights, df, loc, scale : (B, 1, S-1, n, K) in normalised space; entry [.., p, j, :]
        predicts ``values[..., (p + 1) * P + steps[j]]``.
    scaler_loc, scaler_scale : (B, 1, S-1, 1), patch p's statistics (they de-normalise its outputs).
    """
    patch, d = model.config.patch_size, model.config.embed_dim
    normalised, s_loc, s_scale, _ = model._scale(values, padding_mask, None, None)
    x = model._embed(normalised)  # (B, 1, S, d)
    rope = model.rotary.full_tables(x.shape[2], x.device)
    # TotoModel._backbone keeps only the last patch; training needs every patch's output.
    for layer in model.layers:
        normed = layer.norm1(x)
        if layer.spacewise:
            attended = layer.attention(normed, None)  # one variate: no group mask
        else:
            attended, _, _ = layer.attention(normed, rope, last_query_only=False)
        # TransformerLayer.finish, with dropout on both branches
        x = x + F.dropout(attended, dropout, training=dropout > 0)
        x = x + F.dropout(layer.mlp(layer.norm2(x)), dropout, training=dropout > 0)
    # un-embedding rows are laid out (step, feature): keep the chosen steps' rows
    weight = model.unembed.weight.view(patch, d, d)[steps]  # (n, d_out, d_in)
    bias = model.unembed.bias.view(patch, d)[steps]  # (n, d)
    features = torch.einsum("bvsi,noi->bvsno", x[:, :, :-1], weight) + bias  # (B, 1, S-1, n, d)
    _, df, loc, scale = model.head(features)
    log_w = F.log_softmax(model.head.mixture_weights(features), dim=-1)  # log(softmax) safely
    # patch p's statistics de-normalise its outputs; the last patch has no targets in the window
    return log_w, df, loc, scale, s_loc[..., :-1, None], s_scale[..., :-1, None]


def nll_loss(model, values, padding_mask, steps, dropout=0.0) -> torch.Tensor:
    """Mean normalised NLL over real targets; ``steps[0]`` must be 0 (the next step), which
    gets weight NEXT_STEP_WEIGHT, the other chosen steps share the rest."""
    patch = model.config.patch_size
    log_w, df, loc, scale, s_loc, s_scale = sequence_distribution(model, values, padding_mask, steps, dropout)
    target = (_targets(values, patch, steps) - s_loc) / s_scale
    real = _targets(padding_mask, patch, steps)
    comp = torch.distributions.StudentT(df, loc, scale, validate_args=False)
    nll = -torch.logsumexp(log_w + comp.log_prob(target.unsqueeze(-1)), dim=-1)
    nll = torch.where(real, nll, torch.zeros((), dtype=nll.dtype))
    step0 = nll[..., 0].sum() / real[..., 0].sum().clamp_min(1)
    others = nll[..., 1:].sum() / real[..., 1:].sum().clamp_min(1)
    return NEXT_STEP_WEIGHT * step0 + (1 - NEXT_STEP_WEIGHT) * others


def _targets(series: torch.Tensor, patch: int, steps: torch.Tensor) -> torch.Tensor:
    """(B, 1, S * P) -> (B, 1, S-1, n): the chosen steps of patches 1 .. S-1."""
    return series.unflatten(-1, (-1, patch))[..., 1:, :][..., steps]


def sample_steps(patch, count, rng) -> torch.Tensor:
    """Step 0 plus ``count - 1`` distinct random later steps of the predicted patch."""
    later = rng.choice(np.arange(1, patch), size=count - 1, replace=False)
    return torch.tensor([0, *sorted(later.tolist())], dtype=torch.long)


@torch.no_grad()
def validation_nll(model, series, val_targets, stride: int = 1) -> float:
    """Mean next-step NLL (data space) over the 2010 days, whole-history contexts."""
    from evaluate_mini import model_forecasts

    model.eval()
    total, count = 0.0, 0
    for s, targets in zip(series, val_targets):
        logp = model_forecasts(model, s.astype(np.float64), targets[::stride])["log_prob"]
        total -= logp.sum()
        count += logp.size
    return total / count


@torch.no_grad()
def init_head_scales(model, series, min_scale: float) -> float:
    """Start the mixture's component scales around the data's normalised spread.

    Daily returns (std ~0.02) normalised by the scaler (``sqrt(var + min_scale)`` ~ 0.32) have a
    spread of ~0.06, while a fresh head puts every component at softplus(0) ~ 0.69: the scale
    biases would need thousands of steps to walk there. Spread the K components' scales
    log-uniformly from 1/3 to 4 times the typical normalised std, so mixture weights can pick a
    volatility regime from the start. Returns that typical std.
    """
    fit = np.concatenate([s.ravel() for s in series]).astype(np.float64)
    typical = float(fit.std() / math.sqrt(fit.var() + min_scale))
    k = model.config.k_components
    target = typical * torch.logspace(math.log10(1 / 3), math.log10(4), k)
    model.head.scale_proj.bias.copy_(torch.log(torch.expm1(target)))  # inverse softplus
    model.head.scale_proj.weight.mul_(0.1)  # small input dependence at first
    return typical


def learning_rate(step, total, peak, warmup):
    """Linear warm-up then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--mlp", type=int, default=384)
    parser.add_argument(
        "--steps-per-patch",
        type=int,
        default=8,
        help="forecast steps of each next patch in the loss: step 0 + random others",
    )
    parser.add_argument("--dropout", type=float, default=0.1, help="training-only dropout")
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random sign and scale (1/2..2) per window",
    )
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument(
        "--val-stride", type=int, default=1, help="validate on every n-th 2010 day (1 = all; larger for smoke tests)"
    )
    parser.add_argument("--max-minutes", type=float, default=25.0, help="stop early past this wall time")
    parser.add_argument(
        "--threads", type=int, default=1, help="intra-op threads; 1 is fastest on a shared, oversubscribed machine"
    )
    parser.add_argument("--out", default=str(WEIGHTS_DIR))
    args = parser.parse_args(argv)

    from totowalk.model import TotoConfig, build_model, save_checkpoint

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    config = TotoConfig.preset("toto-open-base-1.0").replace(
        embed_dim=args.embed_dim,
        num_layers=args.layers,
        num_heads=args.heads,
        mlp_hidden_dim=args.mlp,
        spacewise_every_n_layers=args.layers,
        k_components=24,
        dropout=0.0,
    )
    model = build_model(config, seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config {config}\nparameters {n_params:,}", flush=True)

    series, val_targets = training_series()
    fit_lengths = [int(v[0]) for v in val_targets]  # positions before the first 2010 day
    typical = init_head_scales(model, [s[:, :n] for s, n in zip(series, fit_lengths)], config.min_scale)
    print(f"typical normalised std {typical:.4f}", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    best = {"val_nll": float("inf"), "step": -1}
    history = []
    start = time.time()
    for step in range(args.steps):
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr, warmup=100)
        values, mask = sample_batch(series, fit_lengths, args.batch_size, config.patch_size, rng, args.augment)
        steps = sample_steps(config.patch_size, args.steps_per_patch, rng)
        loss = nll_loss(model, values, mask, steps, args.dropout)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        minutes = (time.time() - start) / 60
        last = step + 1 == args.steps or minutes > args.max_minutes
        if (step + 1) % args.eval_every == 0 or last:
            val = validation_nll(model, series, val_targets, args.val_stride)
            history.append({"step": step + 1, "train_loss": float(loss.detach()), "val_nll": val, "minutes": minutes})
            print(f"step {step + 1} loss {float(loss.detach()):.4f} val_nll {val:.4f} {minutes:.1f} min", flush=True)
            if val < best["val_nll"]:
                best = {"val_nll": val, "step": step + 1}
                model.eval()
                save_checkpoint(model, out)
        if last:
            break

    summary = (
        f"seed {args.seed}, AdamW lr {args.lr} wd {args.weight_decay}, dropout {args.dropout}, "
        f"{'sign/scale augmentation, ' if args.augment else ''}batch {args.batch_size} windows "
        f"of {MIN_WINDOW}..{min(MAX_WINDOW, min(fit_lengths))} steps, {step + 1} steps in {minutes:.1f} min on "
        f"{args.threads} CPU threads; checkpoint = best 2010 validation NLL {best['val_nll']:.4f} "
        f"at step {best['step']}"
    )
    record = {
        "summary": summary,
        "config_summary": {
            "d": config.embed_dim,
            "layers": config.num_layers,
            "heads": config.num_heads,
            "mlp": config.mlp_hidden_dim,
            "K": config.k_components,
        },
        "args": vars(args),
        "parameters": n_params,
        "best": best,
        "history": history,
        "data": {"symbols": TRAIN_SYMBOLS, "keys": KEYS, "fit_end": FIT_END, "validation_end": TRAIN_END},
    }
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    print(summary, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
