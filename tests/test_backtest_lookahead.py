"""No look-ahead: perturbing every price after row t changes no forecast whose context ends at or
before t, and no strategy output of a simulation whose data ends at or before t."""

import numpy as np
import pandas as pd
import pytest
from test_backtest_api import mean5, prices

from totowalk.backtest import backtest


def perturbed_after(frame, t, seed=99):
    out = frame.copy()
    rng = np.random.default_rng(seed)
    tail = out.index[t + 1 :]
    factor = np.exp(rng.normal(0, 0.05, (len(tail), 1)))
    out.loc[tail, ["Open", "High", "Low", "Close"]] *= factor  # keeps High >= Open, Close >= Low
    return out


def assert_no_look_ahead(run, frame, t, window_rows):
    base = run(frame)
    moved = run(perturbed_after(frame, t))
    f0, f1 = base.forecasts, moved.forecasts
    early = (f0["context_end"] <= t).to_numpy()
    assert early.any() and (~early).any()
    np.testing.assert_array_equal(f1["prediction"].to_numpy()[early], f0["prediction"].to_numpy()[early])
    np.testing.assert_array_equal(f1["band"].to_numpy()[early], f0["band"].to_numpy()[early])
    assert (f1["prediction"].to_numpy()[~early] != f0["prediction"].to_numpy()[~early]).any()

    done = base.simulations["simulation"].map(lambda k: window_rows(k) - 1 <= t).to_numpy()
    assert done.any() and (~done).any()
    numeric = [c for c in base.simulations.columns if c not in ("symbol", "date")]
    pd.testing.assert_frame_equal(moved.simulations.loc[done, numeric], base.simulations.loc[done, numeric])
    later = moved.simulations.loc[~done, "simple_strategy_return"].to_numpy()
    assert (later != base.simulations.loc[~done, "simple_strategy_return"].to_numpy()).any()


@pytest.mark.parametrize("profile,drop", [("legacy", 1), ("clean", 0)])
def test_deterministic_forecaster_has_no_look_ahead(profile, drop):
    frame = prices(70, 21)
    t = 64

    def run(f):
        return backtest(f, symbol="S", num_simulations=8, forecaster=mean5, profile=profile)

    assert_no_look_ahead(run, frame, t, lambda k: 70 - drop - k)


@pytest.mark.parametrize("profile,drop", [("legacy", 1), ("clean", 0)])
def test_engine_with_random_tiny_model_has_no_look_ahead(profile, drop):
    from totowalk.engine import ForecastEngine
    from totowalk.model import TotoConfig, build_model

    engine = ForecastEngine(build_model(TotoConfig.preset("toto-tiny"), seed=0), num_samples=32, seed=3)
    frame = prices(50, 22)
    t = 45

    def run(f):
        return backtest(f, symbol="S", num_simulations=5, engine=engine, profile=profile)

    assert_no_look_ahead(run, frame, t, lambda k: 50 - drop - k)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("profile,drop", [("legacy", 1), ("clean", 0)])
def test_prefix_shared_forecasts_have_no_look_ahead(profile, drop, share):
    # 90 simulations: more context ends per key than a patch holds, so one forward (over a context
    # that reaches past t) serves shorter contexts that end before t: their forecasts must not move.
    from totowalk.engine import ForecastEngine
    from totowalk.model import TotoConfig, build_model

    engine = ForecastEngine(
        build_model(TotoConfig.preset("toto-tiny"), seed=0), num_samples=32, seed=3, share_prefixes=share
    )
    shared_batches = []
    plain = engine._shared_forward
    engine._shared_forward = lambda *args: shared_batches.append(1) or plain(*args)
    frame = prices(260, 23)
    t = 200

    def run(f):
        return backtest(f, symbol="S", num_simulations=90, engine=engine, profile=profile)

    assert_no_look_ahead(run, frame, t, lambda k: 260 - drop - k)
    assert bool(shared_batches) == share
