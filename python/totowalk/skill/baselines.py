"""Classical forecast baselines, fitted walk-forward with no look-ahead.

Each baseline turns a series of one-step fractional changes ``returns`` (``r[i] = p[i]/p[i-1] - 1``)
into a predictive distribution of ``returns[t]`` for every target index ``t``, computed from
``returns[:t - horizon + 1]`` only (horizon 1: the day before; horizon h: h - 1 days further back):

``random_walk``
    No change: the empirical distribution of the trailing returns, demeaned (zero drift; the
    samples' mean, the point forecast, is zero up to rounding, about 1e-18).
``garch_t``
    Constant mean, GARCH(1,1) variance and Student-t innovations, fitted with ``arch`` on all the
    returns before a refit point; between refits the parameters stay fixed while the conditional
    variance keeps being filtered through every return before the target. Beyond one step the
    variance is its expectation ``omega (1 + p + ... + p^(h-2)) + p^(h-1) v`` (``p = alpha + beta``)
    and the shape stays a Student-t with the fitted degrees of freedom: the usual analytic forecast,
    an approximation of the true h-step law (a mixture over variance paths).
``ets``
    ``statsforecast``'s AutoETS (no seasonality) fitted on at most the last 1000 returns before a
    refit point; between refits the fitted model is run forward over the returns before the target
    and forecasts ``horizon`` steps, of which the last is taken.

``arch`` and ``statsforecast`` are optional (``pip install 'totowalk[baselines]'``) and imported
only when their baseline runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import require_extra

__all__ = ["BASELINES", "MIN_HISTORY", "NEEDS", "Predictive", "forecast_baseline", "installed_baselines"]

BASELINES = ("random_walk", "garch_t", "ets")  # order = how reports list them
NEEDS = {"garch_t": "arch", "ets": "statsforecast"}  # the package of each optional baseline (totowalk[baselines])


def installed_baselines() -> tuple:
    """The baselines whose packages are installed, in :data:`BASELINES` order."""
    import importlib.util

    return tuple(b for b in BASELINES if b not in NEEDS or importlib.util.find_spec(NEEDS[b]) is not None)


# Fewest past returns a target needs: a fitted model needs enough data to estimate it at all.
MIN_HISTORY = {"random_walk": 30, "garch_t": 100, "ets": 100}

ETS_MAX_HISTORY = 1000  # ETS fits on a trailing window of at most this many returns (bounds the time per fit)
GARCH_SCALE = 100.0  # arch's optimizer is tuned for percent returns, not fractions
_Z80 = 1.2815515655446004  # standard normal quantile at 0.9: half-width of the central 80 % interval in sds
_ARCH_BACKCAST_WEIGHT, _ARCH_BACKCAST_LENGTH = 0.94, 75  # arch's start for the variance recursion


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare fields, not Predictives
class Predictive:
    """One-step predictive distributions of n targets, one of two forms:
    a location-scale Student-t (loc, scale, df; df = inf means normal), or an empirical sample (samples (n, S)).

    Student-t form: ``loc`` (n,) the centre and mean, ``scale`` (n,) > 0 the scale (not the standard
    deviation, which is ``scale * sqrt(df / (df - 2))``), ``df`` (n,) degrees of freedom > 2 or inf.
    Sample form: ``samples`` (n, S), row i equally weighted draws for target i.
    """

    loc: np.ndarray | None = None
    scale: np.ndarray | None = None
    df: np.ndarray | None = None
    samples: np.ndarray | None = None

    def __post_init__(self):
        student_t = (self.loc, self.scale, self.df)
        if self.samples is not None:
            if any(part is not None for part in student_t):
                raise ValueError("a Predictive holds either samples or loc, scale and df, not both")
            if np.ndim(self.samples) != 2:
                raise ValueError(f"samples must be 2-D (targets, draws), got shape {np.shape(self.samples)}")
        elif any(part is None for part in student_t):
            raise ValueError("a Student-t Predictive needs all of loc, scale and df")
        elif not (np.ndim(self.loc) == 1 and np.shape(self.loc) == np.shape(self.scale) == np.shape(self.df)):
            raise ValueError(
                f"loc, scale and df must be 1-D of one length, got shapes "
                f"{np.shape(self.loc)}, {np.shape(self.scale)}, {np.shape(self.df)}"
            )

    def mean(self) -> np.ndarray:
        """The point forecast of each target: ``loc``, or the mean of its samples."""
        return np.asarray(self.loc) if self.samples is None else np.asarray(self.samples).mean(axis=1)


def forecast_baseline(
    name: str,
    returns: np.ndarray,
    targets: np.ndarray,
    *,
    window: int = 250,
    refit_every: int = 20,
    progress: Callable[[int], object] | None = None,
    horizon: int = 1,
) -> Predictive:
    """Predictive distributions of ``returns[t]`` for each ``t`` in ``targets`` by the baseline ``name``.

    ``targets`` are strictly ascending indices into ``returns``; the forecast of target ``t`` uses
    ``returns[:t - horizon + 1]`` only (its context), and each context needs ``MIN_HISTORY[name]``
    returns.

    ``window`` is random_walk's sample size: the last ``min(window, targets[0])`` returns before each
    target (one size for every target, so the first target's history bounds it). The fitted
    baselines refit every ``refit_every`` targets, the first fit at the first target; garch_t fits
    on all returns before the refit point, ets on at most the last 1000. ``progress(k)`` is called
    with the number of targets each step finished (for a progress bar).
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    horizon = int(horizon)
    # the one-step machinery below forecasts returns[e] from returns[:e]: e is each target's context end
    returns, targets = _checked_inputs(name, returns, np.asarray(targets) - (horizon - 1), window, refit_every)
    if name == "random_walk":  # independent days: every horizon has the same law
        predictive = _random_walk(returns, targets, window)
        if progress is not None and len(targets):
            progress(len(targets))
        return predictive
    if name == "garch_t":
        arch = require_extra(NEEDS[name], "baselines", f"the {name} baseline")
        return _garch_t(arch, returns, targets, refit_every, progress, horizon)
    require_extra(NEEDS[name], "baselines", f"the {name} baseline")
    from statsforecast.models import AutoETS

    return _ets(AutoETS, returns, targets, refit_every, progress, horizon)


# -- inputs ----------------------------------------------------------------------------------


def _checked_inputs(name, returns, targets, window, refit_every) -> tuple[np.ndarray, np.ndarray]:
    """``returns`` as float64 and ``targets`` as int64, or a ValueError that says what is wrong."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 1:
        raise ValueError(f"returns must be 1-D, got shape {returns.shape}")
    targets = np.asarray(targets)
    if targets.ndim != 1 or (targets.size and not np.issubdtype(targets.dtype, np.integer)):
        raise ValueError(
            f"targets must be a 1-D array of integer indices, got {targets.dtype} of shape {targets.shape}"
        )
    targets = targets.astype(np.int64)
    if int(window) != window or window < 2:
        raise ValueError(f"window must be an integer of at least 2, got {window!r}")
    if int(refit_every) != refit_every or refit_every < 1:
        raise ValueError(f"refit_every must be a positive integer, got {refit_every!r}")
    if not targets.size:
        return returns, targets
    if np.any(np.diff(targets) <= 0):
        raise ValueError("targets must be strictly ascending")
    if targets[-1] >= len(returns):
        raise ValueError(f"target {targets[-1]} is past the end of returns (length {len(returns)})")
    first, needed = int(targets[0]), MIN_HISTORY[name]
    if first < needed:  # ascending: the first target has the shortest history
        raise ValueError(
            f"the {name} baseline needs at least {needed} past returns before each target; "
            f"target {first} has {max(first, 0)}"
        )
    bad = np.flatnonzero(~np.isfinite(returns[: targets[-1]]))
    if bad.size:
        raise ValueError(f"returns[{bad[0]}] is {returns[bad[0]]}, but the forecasts need finite past returns")
    return returns, targets


def _blocks(count: int, refit_every: int) -> Iterator[slice]:
    """Consecutive slices of ``refit_every`` targets (the last one shorter): one fit each."""
    for start in range(0, count, refit_every):
        yield slice(start, min(start + refit_every, count))


# -- random walk -----------------------------------------------------------------------------


def _random_walk(returns: np.ndarray, targets: np.ndarray, window: int) -> Predictive:
    """Row i: ``returns[t-S:t]`` minus its mean, ``S = min(window, targets[0])`` for every target."""
    if not targets.size:
        return Predictive(samples=np.empty((0, 0)))
    size = min(window, int(targets[0]))
    trailing = np.lib.stride_tricks.sliding_window_view(returns, size)[targets - size]  # a copy: row i = returns[t-S:t]
    return Predictive(samples=trailing - trailing.mean(axis=1, keepdims=True))


# -- GARCH(1,1)-t ----------------------------------------------------------------------------


def _garch_t(
    arch, returns: np.ndarray, targets: np.ndarray, refit_every: int, progress, horizon: int = 1
) -> Predictive:
    """Student-t forecasts of a constant-mean GARCH(1,1)-t model, refit every ``refit_every`` targets."""
    scaled = GARCH_SCALE * returns
    loc, scale, df = (np.empty(len(targets)) for _ in range(3))
    params = None
    for block in _blocks(len(targets), refit_every):
        block_targets = targets[block]
        params = _fit_garch_t(arch, scaled[: block_targets[0]], previous=params)
        mu, omega, alpha, beta, nu = params
        # variance[t] depends on scaled[:t] only, so one pass up to the block's last target serves all of it
        variance = _garch_variance(scaled[: block_targets[-1]] - mu, omega, alpha, beta)[block_targets]
        persistence = alpha + beta  # E[v(t+1) | t] = omega + persistence v(t): h - 1 more steps
        variance = omega * sum(persistence**i for i in range(horizon - 1)) + persistence ** (horizon - 1) * variance
        loc[block] = mu / GARCH_SCALE
        # arch's t has unit variance; the location-scale t with scale s has variance s^2 nu / (nu - 2)
        scale[block] = np.sqrt(variance * (nu - 2.0) / nu) / GARCH_SCALE
        df[block] = nu
        if progress is not None:
            progress(len(block_targets))
    return Predictive(loc=loc, scale=scale, df=df)


def _fit_garch_t(arch, history: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """(mu, omega, alpha, beta, nu) fitted on ``history`` (percent returns); a failed or non-converged
    fit keeps ``previous`` where there is one."""
    model = arch.arch_model(history, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    # arch warns (and with show_warning=False edits the global warning filters): keep both in here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = model.fit(disp="off", show_warning=False)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
            if previous is None:
                raise ValueError(f"the garch_t fit on the first {len(history)} returns failed: {err}") from err
            return previous
    params = result.params.to_numpy(dtype=np.float64)
    usable = result.convergence_flag == 0 and np.all(np.isfinite(params)) and params[4] > 2.0
    return params if usable or previous is None else previous


def _garch_variance(resids: np.ndarray, omega: float, alpha: float, beta: float) -> np.ndarray:
    """Conditional variances ``v[0..n]`` of a GARCH(1,1): ``v[i]`` is the variance of the i-th
    residual given ``resids[:i]``, so ``v[n]`` is the forecast past the end.

    The recursion is arch's (``arch_model(...).forecast(params, start=...)`` gives the same values):
    it starts from arch's backcast, an exponentially weighted mean of the first 75 squared
    residuals. Written out here so that each value provably uses only the residuals before it
    (arch's forecast also clips the variances to bounds computed from the whole sample given).
    """
    squared = resids**2
    weights = _ARCH_BACKCAST_WEIGHT ** np.arange(min(_ARCH_BACKCAST_LENGTH, len(resids)))
    backcast = float(np.sum(squared[: len(weights)] * (weights / weights.sum())))
    # v[i] = omega + alpha * e[i-1]^2 + beta * v[i-1], with e[-1]^2 = v[-1] = backcast
    innovations = np.concatenate(([omega + (alpha + beta) * backcast], omega + alpha * squared))
    variance = np.empty_like(innovations)
    previous = 0.0
    for i, innovation in enumerate(innovations.tolist()):  # a first-order filter, sequential by nature
        previous = innovation + beta * previous
        variance[i] = previous
    return variance


# -- ETS -------------------------------------------------------------------------------------


def _ets(
    auto_ets, returns: np.ndarray, targets: np.ndarray, refit_every: int, progress, horizon: int = 1
) -> Predictive:
    """Normal forecasts of AutoETS, refit every ``refit_every`` targets on at most the last 1000 returns."""
    loc, scale = np.empty(len(targets)), np.empty(len(targets))
    model = None
    for block in _blocks(len(targets), refit_every):
        block_targets = targets[block]
        start = max(0, int(block_targets[0]) - ETS_MAX_HISTORY)
        model = _fit_ets(auto_ets, returns[start : block_targets[0]], previous=model)
        for i, target in zip(range(block.start, block.stop), block_targets):
            # forward keeps the fitted parameters and initial state (set at `start`) and reruns the
            # smoothing over returns[start:target]: the level and the residual variance see every return
            forecast = model.forward(y=returns[start:target], h=horizon, level=[80])
            loc[i] = forecast["mean"][-1]
            scale[i] = (forecast["hi-80"][-1] - forecast["lo-80"][-1]) / (2.0 * _Z80)
        if progress is not None:
            progress(len(block_targets))
    return Predictive(loc=loc, scale=scale, df=np.full(len(targets), np.inf))


def _fit_ets(auto_ets, history: np.ndarray, previous):
    """AutoETS (no seasonality) fitted on ``history``; a failed fit keeps ``previous`` where there is one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return auto_ets(season_length=1).fit(history)
        except Exception as err:  # statsforecast raises a bare Exception when no ETS model can be fitted
            if previous is None:
                raise ValueError(f"the ets fit on {len(history)} returns failed: {err}") from err
            return previous
