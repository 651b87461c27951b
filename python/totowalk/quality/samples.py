"""Sample-count study: how far a backtest run with S seeded Monte Carlo draws lands from the exact estimator.

The transformer forward depends on neither S nor the seed, so every unique context's predicted
mixture is computed once, in a backtest with the exact estimator (which also gives the reference
values and the predictive std). Each (S, seed) then only draws from those mixtures, with the
engine's own stream keys (the draws ``ForecastEngine(model, num_samples=S, seed=seed)`` makes), and
reruns the strategies through :func:`backtest`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..backtest.forecast.forecasters import DEFAULT_AGGREGATE
from ..backtest.inputs.windows import skipped_warning
from ..backtest.report.text import mae_by_key, strategy_table
from ..backtest.run import backtest
from ..engine.result import ForecastResult
from ..model.head import MixtureParams

__all__ = ["DEFAULT_GRID", "DEFAULT_SEEDS", "SampleStudy", "sample_study"]

DEFAULT_GRID = tuple(32 << i for i in range(8))  # 32, 64, ..., 4096
DEFAULT_SEEDS = 5
_BAND = "band"  # the strategies' second input; it is drawn from the same samples as the point forecast
_STD = "std"
_PARAM_FIELDS = ("weights", "df", "loc", "scale", "scaler_loc", "scaler_scale")


@dataclass
class SampleStudy:
    """Outcome of :func:`sample_study`.

    Attributes
    ----------
    table : DataFrame, one row per S: ``num_samples``, ``seeds``, ``flip_rate`` (share of (unique
        context, seed) whose signal sign differs from the exact one), ``abs_error_std`` (mean
        |sampled - exact| of the aggregate over the predictive std), ``mae`` (mean over seeds of the
        backtest's MAE against realised values), ``mae_change_pct`` (vs the exact run),
        ``sample_seconds`` (drawing and reducing every unique context once; the fastest seed, the one
        least disturbed by other work on the machine) and
        ``<strategy>_return_sd`` (standard deviation over seeds of the strategy's mean return)
    per_seed : DataFrame, one row per (S, seed) with the same figures (``<strategy>_return`` itself)
    exact : dict: the exact run's ``mae``, ``returns`` per strategy, ``contexts`` (unique contexts),
        ``backtest_seconds`` (its whole backtest: forwards, exact statistics, strategies) and
        ``exact_seconds`` (the exact aggregate and band alone, on the stored mixtures)
    settings : dict of the study's settings
    """

    table: pd.DataFrame
    per_seed: pd.DataFrame
    exact: dict
    settings: dict = field(default_factory=dict)


def sample_study(
    prices,
    engine,
    *,
    grid=DEFAULT_GRID,
    seeds=DEFAULT_SEEDS,
    symbols=None,
    num_simulations: int = 10,
    profile: str = "clean",
    aggregate: str = DEFAULT_AGGREGATE,
    progress: bool = False,
    **backtest_options,
) -> SampleStudy:
    """Run the backtest once with the exact estimator and once per (S, seed) with S draws.

    Parameters
    ----------
    prices, symbols, num_simulations, profile, aggregate, **backtest_options
        As :func:`backtest` (e.g. ``is_crypto``, ``fee``, ``spread``).
    engine : ForecastEngine
        Its model, device and sampling backend are used; its estimator, S and seed are not.
    grid : sequence of int
        Sample counts S (each >= 2: a band needs two draws).
    seeds : int or sequence of int
        The seeds themselves, or their number (seeds 0, 1, ...).
    progress : bool
        tqdm bars for the exact pass and over the (S, seed) runs.
    """
    grid = _check_grid(grid)
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds: at least one seed is needed")
    run = dict(
        symbols=symbols, num_simulations=num_simulations, profile=profile, aggregate=aggregate, **backtest_options
    )
    cache = _MixtureCache(engine, aggregate)

    started = time.perf_counter()
    exact_bt = backtest(prices, engine=_ExactPass(engine, cache), progress=progress, **run)
    backtest_seconds = time.perf_counter() - started
    cache.freeze()
    exact = {
        "mae": _mae(exact_bt),
        "returns": _returns(exact_bt),
        "contexts": cache.size,
        "backtest_seconds": backtest_seconds,
        "exact_seconds": cache.time_exact(),
    }

    rows = []
    from tqdm.auto import tqdm

    with tqdm(
        total=len(grid) * len(seed_list), desc="samples x seeds", unit="run", disable=not progress, leave=False
    ) as bar:
        for num_samples in grid:
            for seed in seed_list:
                bar.set_postfix(S=num_samples, seed=seed)
                sampler = _Sampler(cache, num_samples, seed)
                bt = backtest(prices, engine=sampler, progress=False, **run)
                rows.append(
                    {
                        "num_samples": num_samples,
                        "seed": seed,
                        **cache.compare(sampler.point),
                        "mae": _mae(bt),
                        "sample_seconds": sampler.seconds,
                        **{f"{name}_return": value for name, value in _returns(bt).items()},
                    }
                )
                bar.update(1)
    per_seed = pd.DataFrame(rows)
    settings = {
        "grid": grid,
        "seeds": seed_list,
        "num_simulations": int(num_simulations),
        "profile": profile,
        "aggregate": aggregate,
        "symbols": list(exact_bt.settings["symbols"]),
        "device": str(engine.device),
        "sampling_backend": engine.sampling_backend,
    }
    skipped = exact_bt.settings.get("skipped")
    if skipped:  # insufficient_history="skip" left symbols out: every run of the study leaves the same out
        settings["skipped"] = skipped
        settings["warnings"] = [skipped_warning(skipped, num_simulations, profile)]
    return SampleStudy(table=_per_sample_count(per_seed, exact), per_seed=per_seed, exact=exact, settings=settings)


def _check_grid(grid) -> list:
    values = [int(s) for s in grid]
    if not values or any(s < 2 for s in values):
        raise ValueError(f"grid: sample counts must be >= 2 (the band needs two draws), got {list(grid)}")
    return sorted(set(values))


def _mae(bt) -> float:
    """The backtest's MAE against realised values, pooled over keys (each key has as many steps)."""
    return float(mae_by_key(bt).mean())


def _returns(bt) -> dict:
    """Mean return per strategy as the backtest's report states it (legacy: window mean; clean:
    the daily walk-forward series)."""
    table = strategy_table(bt)
    column = "mean_return" if "mean_return" in table else "return"
    return {str(name): float(value) for name, value in table[column].items()}


def _per_sample_count(per_seed: pd.DataFrame, exact: dict) -> pd.DataFrame:
    strategies = list(exact["returns"])
    out = []
    for num_samples, part in per_seed.groupby("num_samples", sort=True):
        mae = float(part["mae"].mean())
        row = {
            "num_samples": int(num_samples),
            "seeds": int(len(part)),
            "flip_rate": float(part["flip_rate"].mean()),
            "abs_error_std": float(part["abs_error_std"].mean()),
            "mae": mae,
            "mae_change_pct": 100.0 * (mae / exact["mae"] - 1.0),
            "sample_seconds": float(part["sample_seconds"].min()),
        }
        for name in strategies:  # one seed has no spread to measure
            values = part[f"{name}_return"]
            row[f"{name}_return_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out.append(row)
    return pd.DataFrame(out)


class _MixtureCache:
    """Each unique context's predicted mixture, exact aggregate and predictive std, by stream key."""

    def __init__(self, engine, aggregate: str):
        self.engine, self.aggregate = engine, aggregate
        self.names = list(dict.fromkeys([aggregate, _BAND, _STD]))
        self.index: dict = {}
        self._parts: list = []

    def stream_keys(self, contexts) -> np.ndarray:
        """(N,) uint64 keys the engine's sampler uses for these contexts (content hashes)."""
        return self.engine.stream_keys(contexts)

    def add(self, contexts, res: ForecastResult) -> None:
        keys = self.stream_keys(contexts)
        fresh = np.array([k not in self.index for k in keys.tolist()])
        for k in keys[fresh].tolist():
            self.index.setdefault(k, len(self.index))
        # keep first occurrences only, in index order (duplicates within a call share a key)
        _, first = np.unique(keys[fresh], return_index=True)
        take = np.flatnonzero(fresh)[np.sort(first)]
        p = res.params
        self._parts.append(
            {
                "keys": keys[take],
                "exact": res.stats[self.aggregate][take, 0],
                "std": res.stats[_STD][take, 0],
                **{f: getattr(p, f)[take] for f in _PARAM_FIELDS},
            }
        )

    def freeze(self) -> None:
        parts = self._parts
        joined = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        order = np.array([self.index[k] for k in joined["keys"].tolist()])
        assert np.array_equal(order, np.arange(len(order))), "cache rows out of key order"
        self.size = len(order)
        self.exact, self.std = joined["exact"], joined["std"]
        self.params = MixtureParams(**{f: torch.as_tensor(joined[f]) for f in _PARAM_FIELDS}).to(self.engine.device)
        self.keys = joined["keys"]

    def rows(self, contexts) -> tuple:
        keys = self.stream_keys(contexts)
        try:
            return np.array([self.index[k] for k in keys.tolist()]), keys
        except KeyError:
            raise ValueError("a context the exact pass did not forecast") from None

    def time_exact(self) -> float:
        """Seconds the exact estimator takes for the study's aggregate and band on the stored mixtures."""
        names = list(dict.fromkeys([self.aggregate, _BAND]))
        started = time.perf_counter()
        self.engine.reduce_mixtures(self.params, names)
        return time.perf_counter() - started

    def compare(self, point: np.ndarray) -> dict:
        """Sign flips and error in predictive-std units of one run's aggregate against the exact one."""
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.abs(point - self.exact) / self.std
        return {
            "flip_rate": float(np.mean(np.sign(point) != np.sign(self.exact))),
            "abs_error_std": float(np.nanmean(np.where(np.isfinite(err), err, np.nan))),
        }


class _ExactPass:
    """Engine stand-in for the reference run: the real engine with the exact estimator, every
    result's mixtures kept in the cache."""

    estimator, num_samples, seed, model = "exact", None, None, None

    def __init__(self, engine, cache: _MixtureCache):
        self.engine, self.cache, self.device = engine, cache, engine.device

    def forecast(self, contexts, prediction_length: int = 1, aggregate=("mean",)) -> ForecastResult:
        names = list(dict.fromkeys([*([aggregate] if isinstance(aggregate, str) else aggregate), *self.cache.names]))
        res = self.engine.forecast(contexts, prediction_length=prediction_length, aggregate=names, estimator="exact")
        self.cache.add(contexts, res)
        return res


class _Sampler:
    """Engine stand-in for one (S, seed): draws from the cached mixtures instead of running the model."""

    estimator, model = "sampled", None

    def __init__(self, cache: _MixtureCache, num_samples: int, seed: int):
        self.cache, self.num_samples, self.seed = cache, int(num_samples), int(seed)
        self.point = np.full(cache.size, np.nan)
        self.seconds = 0.0

    def forecast(self, contexts, prediction_length: int = 1, aggregate=("mean",)) -> ForecastResult:
        if prediction_length != 1:
            raise ValueError("the sample study forecasts one step")
        rows, keys = self.cache.rows(contexts)
        engine = self.cache.engine
        started = time.perf_counter()
        chosen = self.cache.params.index(torch.as_tensor(rows, device=engine.device))
        out = engine.sample_mixtures(chosen, keys, aggregate, num_samples=self.num_samples, seed=self.seed)
        self.seconds += time.perf_counter() - started
        self.point[rows] = out[self.cache.aggregate][:, 0]
        return ForecastResult(stats=out, num_unique=len(np.unique(rows)))
