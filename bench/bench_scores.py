"""What exact scoring costs beside the forecast it scores: W2's contexts, one run, one machine.

W2's shape (24 series, 250 simulations, 7 walk-forward steps = 1,000+ distinct contexts per key
after sharing) is approximated by the last N returns of bundled symbols, each a one-step exact
forecast from all the returns before it; then ``ForecastResult.scores`` (exact CRPS, log score,
PIT) on the same results. Prints both times and their ratio, the machine and the commit.

    python bench/bench_scores.py --contexts 24576 --device cpu
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from totowalk.data import datasets
from totowalk.engine.forecast_engine import ForecastEngine
from totowalk.loading import resolve_model
from totowalk.provenance import git_commit, machine_description, today


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=24576, help="forecasts to make and score")
    parser.add_argument("--model", default="toto-mini")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    engine = ForecastEngine(resolve_model(args.model, args.device).model, estimator="exact", device=args.device)
    closes = [datasets.load(symbol)["Close"].to_numpy(np.float64) for symbol in datasets.list()]
    closes = [c for c in closes if len(c) > 2000]  # long histories, as a backtest's
    per = -(-args.contexts // len(closes))
    series, ends, actual = [], [], []
    for close in closes:
        returns = close[1:] / close[:-1] - 1.0
        targets = np.arange(len(returns) - per, len(returns))
        series.append(returns)
        ends.append(targets)
        actual.append(returns[targets])
    actual = np.concatenate(actual)[: args.contexts]
    forecast_s, score_s = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = engine.forecast_walk_forward(series, ends, prediction_length=1, aggregate=("mean",))
        if device.type == "cuda":
            torch.cuda.synchronize()
        forecast_s.append(time.perf_counter() - start)
        trimmed = _first(result, args.contexts)
        start = time.perf_counter()
        trimmed.scores(actual[:, None])
        score_s.append(time.perf_counter() - start)
    f, s = min(forecast_s), min(score_s)
    print(f"{today()} {git_commit()} {machine_description(device)}")
    print(
        f"model {args.model}, {args.contexts} contexts: forecast {f:.3f} s, exact scores {s:.3f} s, "
        f"scores / forecast {s / f:.2f}x (best of {args.repeats})"
    )


def _first(result, count: int):
    """The result's first ``count`` forecasts (the bundled data may give a few more)."""
    import dataclasses

    p = result.params
    params = dataclasses.replace(
        p, **{f: getattr(p, f)[:count] for f in ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale")}
    )
    return dataclasses.replace(result, params=params, stats={k: v[:count] for k, v in result.stats.items()})


if __name__ == "__main__":
    main()
