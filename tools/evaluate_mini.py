"""Held-out evaluation of the bundled "toto-mini" model against naive forecasts.

Every number is a next-step forecast of a daily percent change (the legacy definition,
``(P_t - P_{t-1}) / P_{t-1}``) of Open, High, Low or Close, made from all the returns before the
target day (the whole history, as the backtest feeds it). Held-out targets: 2011-01-01 ..
2013-03-01, for the training symbols (AAPL, IBM, MSFT; trained on returns up to 2010-12-31) and
for GOOG, which the model never saw.

Forecasts compared
------------------
* ``toto-mini``: point = the mixture's analytic mean (``MixtureParams.expected()``); NLL = the
  mixture's exact log density of the realised return (data space, after the scaler).
  ``toto-mini median``: point = the mixture's exact median (same NLL).
* ``zero``: no change; ``last``: the previous return; ``mean20``: the mean of the previous 20
  returns. Their NLL uses a Laplace distribution centred on the point forecast, with scale fitted
  (maximum likelihood: the mean absolute error) on that symbol and key's returns up to 2010-12-31.
* ``zero+vol20``: zero change with a Laplace scale equal to the mean absolute return of the
  previous 20 days (a volatility-adaptive density baseline; its MAE is the zero forecast's).

A second table scores the same held-out days the way ``totowalk evaluate`` does: the model's exact
CRPS against a random walk, GARCH(1,1)-t and AutoETS fitted walk-forward (``totowalk.skill``, needs
``totowalk[baselines]``), with calibration, direction and Diebold-Mariano tests.

Run: ``.venv/bin/python tools/evaluate_mini.py`` (writes EVALUATION.md and evaluation.json into
the weights folder). ``tests/test_mini_model.py`` recomputes the IBM slice stored in the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from totowalk.backtest.inputs.windows import percent_changes as backtest_percent_changes

KEYS = ("Open", "High", "Low", "Close")
TRAIN_SYMBOLS = ("AAPL", "IBM", "MSFT")
UNSEEN_SYMBOLS = ("GOOG",)
TRAIN_END = "2010-12-31"
HELD_OUT = ("2011-01-01", "2013-03-01")
# The slice the unit test recomputes: the first 100 held-out days of IBM, all four keys.
TEST_SLICE = {"symbol": "IBM", "first_day": 0, "days": 100}
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "python/totowalk/model/weights/toto-mini"


def percent_changes(prices: np.ndarray) -> np.ndarray:
    """Legacy percent changes of one price column, without the leading placeholder.

    ``r[i] = (p[i+1] - p[i]) / p[i]``; a zero previous price, NaN or inf gives 0.0. (N,) -> (N-1,).
    """
    return backtest_percent_changes(prices)[1:]


def load_returns(symbol: str) -> pd.DataFrame:
    """Daily percent changes of the four price keys of one bundled symbol (split-adjusted).

    Returns a frame indexed by the date of the later bar, columns ``KEYS``, float64.
    """
    from totowalk import datasets

    frame = datasets.load(symbol)  # adjusted by Adj Close: no split jumps
    return pd.DataFrame({key: percent_changes(frame[key].to_numpy()) for key in KEYS}, index=frame.index[1:])


def held_out_positions(index: pd.DatetimeIndex) -> np.ndarray:
    """Row positions of the held-out target days in a returns index."""
    start, end = (pd.Timestamp(d) for d in HELD_OUT)
    return np.flatnonzero((index >= start) & (index <= end))


# ---------------------------------------------------------------- naive forecasts


def naive_points(returns: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Point forecasts of the naive methods for each target position.

    Parameters
    ----------
    returns : (N,) float64
    targets : (M,) int, each >= 20: forecast ``returns[t]`` from ``returns[:t]``.

    Returns
    -------
    dict name -> (M,) float64
    """
    if targets.min() < 20:
        raise ValueError(f"naive forecasts need 20 past returns; first target position is {targets.min()}")
    windows = np.lib.stride_tricks.sliding_window_view(returns, 20)  # windows[i] = returns[i:i+20]
    return {
        "zero": np.zeros(len(targets)),
        "last": returns[targets - 1],
        "mean20": windows[targets - 20].mean(axis=1),
    }


def laplace_nll(actual: np.ndarray, point: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """Negative log density of a Laplace(point, scale) at ``actual`` (elementwise)."""
    return np.log(2.0 * scale) + np.abs(actual - point) / scale


def naive_table(returns: np.ndarray, targets: np.ndarray, train_targets: np.ndarray) -> dict:
    """MAE and Laplace NLL of each naive method on ``targets`` (scales fitted on ``train_targets``).

    Returns dict name -> {"abs_err": (M,), "nll": (M,)}.
    """
    actual = returns[targets]
    fitted = naive_points(returns, train_targets)
    points = naive_points(returns, targets)
    out = {}
    for name, point in points.items():
        scale = np.mean(np.abs(returns[train_targets] - fitted[name]))
        out[name] = {"abs_err": np.abs(actual - point), "nll": laplace_nll(actual, point, scale)}
    windows = np.lib.stride_tricks.sliding_window_view(np.abs(returns), 20)
    vol = np.maximum(windows[targets - 20].mean(axis=1), 1e-6)  # floor: a flat 20-day window
    out["zero+vol20"] = {"abs_err": np.abs(actual), "nll": laplace_nll(actual, 0.0, vol)}
    return out


# ---------------------------------------------------------------- the model


def mixture_log_prob(params, actual: torch.Tensor) -> torch.Tensor:
    """Log density, in data space, of a Student-T mixture forecast at the realised values.

    Parameters
    ----------
    params : MixtureParams with weights, df, loc, scale (B, V, H, K) in normalised space and
        scaler_loc, scaler_scale (B, V).
    actual : (B, V, H) realised values in data space.

    Returns
    -------
    (B, V, H) float64 log density (includes the ``-log scaler_scale`` Jacobian).
    """
    f64 = {k: getattr(params, k).double() for k in ("weights", "df", "loc", "scale")}
    s_loc = params.scaler_loc.double()[..., None]
    s_scale = params.scaler_scale.double()[..., None]
    y = (actual.double() - s_loc) / s_scale
    comp = torch.distributions.StudentT(f64["df"], f64["loc"], f64["scale"], validate_args=False)
    log_mix = torch.logsumexp(torch.log(f64["weights"]) + comp.log_prob(y[..., None]), dim=-1)
    return log_mix - torch.log(s_scale)


def mixture_median(params, iterations: int = 60) -> torch.Tensor:
    """Median, in data space, of a Student-T mixture forecast (bisection on the exact CDF).

    The median lies between the smallest and the largest component location (each component's
    CDF is <= 1/2 below its location and >= 1/2 above), so that interval brackets it.

    Returns
    -------
    (B, V, H) float64.
    """
    from scipy.special import stdtr  # Student-T CDF, vectorised

    w, df, loc, scale = (getattr(params, k).double().numpy() for k in ("weights", "df", "loc", "scale"))
    lo, hi = loc.min(-1), loc.max(-1)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = (w * stdtr(df, (mid[..., None] - loc) / scale)).sum(-1) < 0.5
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    median = torch.from_numpy(0.5 * (lo + hi))
    return params.scaler_loc.double()[..., None] + params.scaler_scale.double()[..., None] * median


def left_pad(contexts: list[np.ndarray], patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad equal-patch-count contexts to a common multiple of ``patch``.

    Returns values (B, 1, T) float32 and padding_mask (B, 1, T) bool (True = real value).
    """
    width = patch * max(math.ceil(len(c) / patch) for c in contexts)
    values = torch.zeros(len(contexts), 1, width, dtype=torch.float32)
    mask = torch.zeros(len(contexts), 1, width, dtype=torch.bool)
    for i, c in enumerate(contexts):
        values[i, 0, width - len(c) :] = torch.tensor(np.asarray(c, dtype=np.float32))
        mask[i, 0, width - len(c) :] = True
    return values, mask


@torch.no_grad()
def model_forecasts(model, series: np.ndarray, targets: np.ndarray, max_batch: int = 256):
    """Next-step mixture mean, median and log density per target, whole history as context.

    Contexts are bucketed by patch count (padding a context with extra all-pad patches changes
    Toto's output), so each result equals a separate call.

    Parameters
    ----------
    model : TotoModel
    series : (V, N) float64, V independent series of the same length (e.g. the four keys).
    targets : (M,) int: forecast ``series[:, t]`` from ``series[:, :t]`` (float32 context).

    Returns
    -------
    dict with "mean", "median", "log_prob", each (V, M) float64.
    """
    patch = model.config.patch_size
    V = series.shape[0]
    out = {name: np.empty((V, len(targets))) for name in ("mean", "median", "log_prob")}
    buckets: dict[int, list] = {}
    for j in range(len(targets)):
        for v in range(V):
            buckets.setdefault(math.ceil(targets[j] / patch), []).append((v, j))
    for items in buckets.values():
        for start in range(0, len(items), max_batch):
            chunk = items[start : start + max_batch]
            rows, cols = np.array(chunk).T
            values, mask = left_pad([series[v, : targets[j]] for v, j in chunk], patch)
            params = model.forecast_params(values, mask, horizon=1)
            actual = torch.from_numpy(series[rows, targets[cols]]).reshape(-1, 1, 1)
            out["log_prob"][rows, cols] = mixture_log_prob(params, actual)[:, 0, 0].numpy()
            out["mean"][rows, cols] = params.expected()[:, 0, 0].double().numpy()
            out["median"][rows, cols] = mixture_median(params)[:, 0, 0].numpy()
    return out


def model_table(model, returns: pd.DataFrame, targets: np.ndarray) -> dict:
    """Absolute errors and NLL (each (4, M)) of the model's mean and median forecasts."""
    series = returns[list(KEYS)].to_numpy().T
    got = model_forecasts(model, series, targets)
    actual = series[:, targets]
    return {
        "toto-mini": {"abs_err": np.abs(actual - got["mean"]), "nll": -got["log_prob"]},
        "toto-mini median": {"abs_err": np.abs(actual - got["median"]), "nll": -got["log_prob"]},
    }


# ---------------------------------------------------------------- the table


def evaluate_symbol(model, symbol: str, targets: np.ndarray | None = None) -> dict:
    """Per-method mean MAE and NLL over the four keys for one symbol.

    ``targets`` defaults to every held-out day. Returns
    ``{method: {"mae": float, "nll": float, "n": int, "per_key": {key: {"mae", "nll"}}}}``.
    """
    returns = load_returns(symbol)
    if targets is None:
        targets = held_out_positions(returns.index)
    train_targets = np.flatnonzero(returns.index <= pd.Timestamp(TRAIN_END))
    train_targets = train_targets[train_targets >= 20]
    rows: dict[str, dict] = {m: {"abs_err": [], "nll": []} for m in ("zero", "last", "mean20", "zero+vol20")}
    for key in KEYS:
        r = returns[key].to_numpy()
        for name, vals in naive_table(r, targets, train_targets).items():
            rows[name]["abs_err"].append(vals["abs_err"])
            rows[name]["nll"].append(vals["nll"])
    rows = {name: {k: np.stack(v) for k, v in cols.items()} for name, cols in rows.items()}
    if model is not None:
        rows.update(model_table(model, returns, targets))
    return {
        name: {
            "mae": float(vals["abs_err"].mean()),
            "nll": float(vals["nll"].mean()),
            "n": int(vals["abs_err"].size),
            "per_key": {
                key: {"mae": float(vals["abs_err"][i].mean()), "nll": float(vals["nll"][i].mean())}
                for i, key in enumerate(KEYS)
            },
        }
        for name, vals in rows.items()
    }


def slice_targets(symbol: str = TEST_SLICE["symbol"]) -> np.ndarray:
    """The target positions of the slice that tests/test_mini_model.py recomputes."""
    held = held_out_positions(load_returns(symbol).index)
    first = TEST_SLICE["first_day"]
    return held[first : first + TEST_SLICE["days"]]


def markdown(results: dict, meta: dict) -> str:
    lines = [
        "# toto-mini: held-out evaluation",
        "",
        (
            f"Next-step forecasts of daily percent changes of Open, High, Low and Close, "
            f"{HELD_OUT[0]} .. {HELD_OUT[1]}, context = all earlier returns of the same series. "
            f"Trained on {', '.join(TRAIN_SYMBOLS)} up to {TRAIN_END}; GOOG never seen. "
            "MAE and NLL are means over the four keys and all held-out days (NLL in nats, of the "
            "return as a fraction; lower is better)."
        ),
        "",
        "* toto-mini: point forecast = the mixture's analytic mean; NLL = the mixture's log density.",
        ("* toto-mini median: the same forecast, point = the mixture's exact median (bisection on its CDF; same NLL)."),
        (
            "* zero / last / mean20: zero change, previous change, mean of the previous 20 changes; "
            "NLL from a Laplace centred on the point with scale fitted on the same series up to "
            "2010-12-31."
        ),
        "* zero+vol20: zero change, Laplace scale = mean absolute change of the previous 20 days.",
        "",
        "| symbol | days | method | MAE | NLL |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for symbol, table in results.items():
        for name, row in table.items():
            tag = f"{symbol} (unseen)" if symbol in UNSEEN_SYMBOLS else symbol
            lines.append(f"| {tag} | {row['n'] // len(KEYS)} | {name} | {row['mae']:.6f} | {row['nll']:.4f} |")
    lines += [
        "",
        "Relative to the naive forecasts (negative NLL difference = the model's density is better):",
        "",
        ("| symbol | toto-mini MAE / zero MAE | toto-mini median MAE / zero MAE | toto-mini NLL - best naive NLL |"),
        "| --- | ---: | ---: | ---: |",
    ]
    for symbol, table in results.items():
        naive = {m: r for m, r in table.items() if not m.startswith("toto-mini")}
        best = min(naive, key=lambda m: naive[m]["nll"])
        zero_mae = table["zero"]["mae"]
        lines.append(
            f"| {symbol} | {table['toto-mini']['mae'] / zero_mae:.4f} | "
            f"{table['toto-mini median']['mae'] / zero_mae:.4f} | "
            f"{table['toto-mini']['nll'] - naive[best]['nll']:+.4f} ({best}) |"
        )
    lines += [
        "",
        (
            f"Model: {meta['parameters']:,} parameters, {meta['config']}. Training: {meta['training']}. "
            "The checkpoint was chosen on 2010 validation NLL only; the held-out period was not used "
            "for any choice."
        ),
        "",
        "Reproduce: `python tools/train_mini.py` (defaults = this run) then `python tools/evaluate_mini.py`.",
        "",
    ]
    return "\n".join(lines)


def skill_summary(model, days: int) -> pd.DataFrame:
    """``totowalk evaluate``'s summary of the last ``days`` returns (the held-out period) of every symbol."""
    from totowalk.data import datasets
    from totowalk.engine.forecast_engine import ForecastEngine
    from totowalk.skill.evaluate import engine_scores, evaluate

    frames = {s: datasets.load(s, adjust="adj_close") for s in TRAIN_SYMBOLS + UNSEEN_SYMBOLS}
    engine = ForecastEngine(model, estimator="exact")
    keys = ("Close", "High", "Low", "Open")
    return evaluate(frames, engine_scores(engine), model_label="toto-mini", keys=keys, days=days).summary


def skill_markdown(summary: pd.DataFrame, days: int) -> str:
    """The forecast-skill section of EVALUATION.md, numbers first, then what they say."""
    model = summary[summary["model"] == "toto-mini"]
    from totowalk.skill.page import format_p as _p

    walk = summary[summary["model"] == "random_walk"].set_index(["symbol", "key"])
    lines = [
        "",
        "## Forecast skill against classical baselines",
        "",
        f"The same {days} held-out days per series, scored as `totowalk evaluate` scores them: the model's "
        "exact CRPS (lower is better, return units) against a random walk (zero change, the last 250 returns "
        "demeaned), GARCH(1,1)-t (arch) and AutoETS (statsforecast), both refit every 20 days on the past only. "
        "DM: Diebold-Mariano statistic of the model's daily CRPS minus the baseline's (negative = model better) "
        "and its p-value; coverage: share of days inside the central 80 % interval; KS p: the PIT's "
        "Kolmogorov-Smirnov test against uniform; hit: share of days the predictive mean had the change's sign "
        "(binomial p against a coin).",
        "",
        "| symbol | key | CRPS | random walk CRPS | skill | DM vs random walk | DM vs GARCH-t | DM vs ETS "
        "| 80 % coverage | KS p | hit (p) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for _, row in model.iterrows():
        name = row["symbol"] + (" (unseen)" if row["symbol"] in UNSEEN_SYMBOLS else "")
        reference = walk.loc[(row["symbol"], row["key"]), "crps"]
        tests = " | ".join(f"{row[f'dm_{b}']:+.2f} ({_p(row[f'dm_{b}_p'])})" for b in ("random_walk", "garch_t", "ets"))
        lines.append(
            f"| {name} | {row['key']} | {row['crps']:.6f} | {reference:.6f} | {100 * row['crps_skill']:+.2f} % | "
            f"{tests} | {100 * row['coverage_80']:.1f} % | {_p(row['pit_ks_p'])} | "
            f"{100 * row['hit_rate']:.1f} % ({_p(row['hit_rate_p'])}) |"
        )
    better = model[(model["dm_random_walk"] < 0) & (model["dm_random_walk_p"] < 0.05)]
    worse = model[(model["dm_random_walk"] > 0) & (model["dm_random_walk_p"] < 0.05)]
    garch = model[(model["dm_garch_t"] > 0) & (model["dm_garch_t_p"] < 0.05)]
    miscalibrated = model[model["pit_ks_p"] < 0.01]
    skilled = model[(model["hit_rate"] > 0.5) & (model["hit_rate_p"] < 0.05)]
    lines += [
        "",
        f"In words: the model's CRPS is within {100 * model['crps_skill'].abs().max():.1f} % of the random walk's "
        f"on every series; it is significantly better (DM p < 0.05) on {len(better)} of {len(model)} and "
        f"significantly worse on {len(worse)}; GARCH-t scores significantly better than the model on {len(garch)}. "
        f"Its 80 % intervals covered {100 * model['coverage_80'].min():.1f} to {100 * model['coverage_80'].max():.1f} "
        f"% of days, and its PIT is miscalibrated at the 1 % level on {len(miscalibrated)} of {len(model)} series. "
        f"Its direction beats a coin (p < 0.05) on {len(skilled)} of {len(model)} series. As a trading signal on "
        "these days it carries no measurable edge over a random walk.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(WEIGHTS_DIR), help="checkpoint directory")
    parser.add_argument(
        "--out", default=None, help="where to write EVALUATION.md/evaluation.json (default: the checkpoint directory)"
    )
    args = parser.parse_args(argv)
    from totowalk import load_model

    torch.set_num_threads(1)  # fastest on a shared, oversubscribed machine; see train_mini.py
    model = load_model(args.weights)
    out = Path(args.out or args.weights)
    results = {s: evaluate_symbol(model, s) for s in TRAIN_SYMBOLS + UNSEEN_SYMBOLS}
    slice_result = evaluate_symbol(model, TEST_SLICE["symbol"], slice_targets())
    training_file = Path(args.weights) / "training.json"
    training = json.loads(training_file.read_text()) if training_file.exists() else {}
    meta = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": ", ".join(f"{k}={v}" for k, v in training.get("config_summary", {}).items()) or "n/a",
        "training": training.get("summary", "see training.json"),
    }
    payload = {
        "held_out": HELD_OUT,
        "train_end": TRAIN_END,
        "keys": KEYS,
        "point_forecast": {"toto-mini": "mixture analytic mean", "toto-mini median": "mixture median"},
        "naive_nll": "Laplace centred on the point, scale = mean absolute error up to 2010-12-31 "
        "(zero+vol20: mean absolute change of the previous 20 days)",
        "results": results,
        "test_slice": {**TEST_SLICE, "results": slice_result},
    }
    days = len(held_out_positions(load_returns("IBM").index))
    skill = skill_summary(model, days)
    payload["skill"] = json.loads(skill.to_json(orient="records"))
    (out / "evaluation.json").write_text(json.dumps(payload, indent=1) + "\n")
    text = markdown(results, meta) + skill_markdown(skill, days)
    (out / "EVALUATION.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
