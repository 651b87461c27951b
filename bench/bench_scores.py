"""What exact scoring costs beside the forecast it scores: one run, one machine, both sides.

W2's count of contexts (24,576 one-step forecasts) is drawn from the bundled symbols' returns of
the four price keys, as a backtest forecasts them: the last days of each long history, each forecast from all the returns before it (exact estimator).
Then the same results are scored three ways: ``ForecastResult.scores`` (the extension's C++ loop on
the host, what a backtest's calibration block uses) and the vectorised torch path on ``--device``
(the one a device would run); with ``--stats`` also the Triton kernels of the exact statistics and
scores on ``--device`` against the host loop. Prints the times, their ratios to the forecast, the machine and
the commit.

    python bench/bench_scores.py --contexts 24576 --device cpu
    python bench/bench_scores.py --contexts 24576 --device cuda --model random:toto-open-base-1.0   # W2's model
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from totowalk.data import datasets
from totowalk.engine.forecast_engine import ForecastEngine
from totowalk.loading import resolve_model
from totowalk.precision.convert import convert_precision
from totowalk.provenance import git_commit, machine_description, today
from totowalk.scoring.proper import mixture_scores

HISTORY = 500  # returns every context has at least


def contexts(count: int) -> tuple:
    """(series, ends, outcomes): ``count`` walk-forward contexts over the bundled returns of every key."""
    returns = []
    for symbol in datasets.list():
        frame = datasets.load(symbol)
        for key in ("Close", "High", "Low", "Open"):
            prices = frame[key].to_numpy(np.float64)
            if len(prices) > HISTORY + 100:
                returns.append(prices[1:] / prices[:-1] - 1.0)
    room = np.array([len(r) - HISTORY for r in returns])
    share = np.minimum(room, np.ceil(count * room / room.sum()).astype(int))
    series, ends, outcomes = [], [], []
    left = count
    for r, n in zip(returns, share):
        n = int(min(n, left))
        if n <= 0:
            continue
        targets = np.arange(len(r) - n, len(r))
        series.append(r)
        ends.append(targets)
        outcomes.append(r[targets])
        left -= n
    if left > 0:
        raise SystemExit(f"the bundled data hold {count - left} contexts with {HISTORY} returns before them")
    return series, ends, np.concatenate(outcomes)


def _scores_seconds(result, actual, device, backend: str = "torch") -> tuple:
    """Seconds of the exact scores of every row by ``backend`` on ``device``, and the CRPS (host)."""
    p = result.params
    params = [
        torch.as_tensor(a[:, 0, 0], dtype=torch.float64, device=device) for a in (p.weights, p.df, p.loc, p.scale)
    ]
    affine = [torch.as_tensor(a[:, 0], dtype=torch.float64, device=device) for a in (p.scaler_loc, p.scaler_scale)]
    y = torch.as_tensor(actual, dtype=torch.float64, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = mixture_scores(*params, *affine, y, backend=backend)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out["crps"].cpu()


STAT_LEVELS = [0.1, 0.4, 0.6, 0.9]  # what the backtest's default aggregates (trimmed_mean_10, band) solve for


def _summary_seconds(result, device, backend: str) -> tuple:
    """Seconds of the exact statistics (mean, std, quantiles, partials) of every row by ``backend``
    ("native": the host loop; "triton": the fused kernel on ``device``), and the quantiles."""
    from totowalk.kernels.mixture_exact import mixture_summary

    p = result.params
    params = [
        torch.as_tensor(a[:, 0, 0], dtype=torch.float64, device=device) for a in (p.weights, p.df, p.loc, p.scale)
    ]
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = mixture_summary(*params, STAT_LEVELS, backend=backend)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out[2].cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=24576, help="forecasts to make and score")
    parser.add_argument("--model", default="toto-mini")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--stats",
        action="store_true",
        help="also time the exact statistics and scores: the Triton kernels against the host loop",
    )
    parser.add_argument("--precision", default="fp32", help="the forecast's model precision (W2 on a card: fp16)")
    parser.add_argument(
        "--statistics-backend", default="auto", help="where the forecast's exact statistics run (the engine's)"
    )
    parser.add_argument(
        "--skip-torch", action="store_true", help="leave out the vectorised torch scores (slow on every device)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    random = args.model.startswith("random:")  # W2's own model on a card: random:toto-open-base-1.0
    model = resolve_model(args.model, args.device, allow_random=random).model
    model = convert_precision(model, args.precision, args.device).eval()
    engine = ForecastEngine(model, estimator="exact", device=args.device, statistics_backend=args.statistics_backend)
    series, ends, actual = contexts(args.contexts)
    times = {"forecast": [], "scores": [], "torch": [], "stats_native": [], "stats_triton": [], "scores_triton": []}
    agreement = crps_agreement = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = engine.forecast_walk_forward(series, ends, prediction_length=1, aggregate=("mean",))
        if device.type == "cuda":
            torch.cuda.synchronize()
        times["forecast"].append(time.perf_counter() - start)
        start = time.perf_counter()
        result.scores(actual[:, None])
        times["scores"].append(time.perf_counter() - start)
        if not args.skip_torch:
            times["torch"].append(_scores_seconds(result, actual, device)[0])
        if args.stats:
            seconds, host = _summary_seconds(result, torch.device("cpu"), "native")
            times["stats_native"].append(seconds)
            _summary_seconds(result, device, "triton")  # compiles the kernel on the first call
            seconds, kernel = _summary_seconds(result, device, "triton")
            times["stats_triton"].append(seconds)
            width = (host[:, -1] - host[:, 0]).abs()
            agreement = float(((kernel - host).abs().amax(1) / width).max())
            _, host_crps = _scores_seconds(result, actual, torch.device("cpu"), "native")
            _scores_seconds(result, actual, device, "triton")  # compiles the kernel on the first call
            seconds, kernel_crps = _scores_seconds(result, actual, device, "triton")
            times["scores_triton"].append(seconds)
            crps_agreement = float(((kernel_crps - host_crps).abs() / host_crps.abs()).max())
    best = {k: min(v) for k, v in times.items() if v}
    f = best["forecast"]
    print(f"{today()} {git_commit()} {machine_description(device)}, torch threads {torch.get_num_threads()}")
    torch_path = (
        f"; torch path on {device.type} {best['torch']:.3f} s = {best['torch'] / f:.2f}x" if "torch" in best else ""
    )
    print(
        f"model {args.model} ({args.precision}; statistics {args.statistics_backend}), {len(actual)} contexts "
        f"(best of {args.repeats}): forecast {f:.3f} s; exact scores on the host (extension) {best['scores']:.3f} s "
        f"= {best['scores'] / f:.2f}x{torch_path}"
    )

    if args.stats:
        print(
            f"exact statistics of {len(actual)} rows ({len(STAT_LEVELS)} quantiles and partials each): host loop "
            f"{best['stats_native'] * 1e3:.2f} ms, Triton kernel on {device.type} {best['stats_triton'] * 1e3:.2f} ms "
            f"= {best['stats_native'] / best['stats_triton']:.2f}x; quantiles agree to {agreement:.1e} of the 10-90 % width"
        )
        print(
            f"exact scores of {len(actual)} rows: host loop {best['scores'] * 1e3:.2f} ms, Triton kernel on {device.type} "
            f"{best['scores_triton'] * 1e3:.2f} ms = {best['scores'] / best['scores_triton']:.2f}x, "
            f"{best['scores_triton'] / f:.3f}x the forecast; CRPS agrees to {crps_agreement:.1e} relative"
        )


if __name__ == "__main__":
    main()
