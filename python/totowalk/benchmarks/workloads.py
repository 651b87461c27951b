"""Named benchmark workloads: their price frames and the forecast requests they make.

W1 is the classic run (LEGACY_SEMANTICS §1.2): one daily series of 1,460 rows, 10 simulations,
4 keys x 7 walk-forward one-step forecasts, 128 samples. W2 is a universe of 24 series x 250
simulations x 4 keys. Requests come from the backtest's own plan (``ForecastPlan``), so the
benchmark forecasts exactly the contexts ``tw.backtest`` asks for.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backtest.forecast.plan import ForecastPlan, SymbolSeries
from ..backtest.inputs.windows import PRICE_KEYS, window_layout
from ..data import datasets

BASE_PRESET = "toto-open-base-1.0"
W1_SYMBOL = "IBM"
W1_ROWS = 1460
W2_SERIES = 24
W2_ROWS = 1460
W2_STRIDE = 300  # rows between the starts of two windows cut from one bundled series


@dataclass(frozen=True)
class WorkloadSpec:
    """What a named workload runs.

    Attributes
    ----------
    name : str
    preset : model preset (random weights, seed 0)
    num_simulations : K windows per series
    num_samples : S draws per forecast (the classic loop's 128)
    samples_per_batch : context copies per model call of the classic loop (32)
    description : one line for reports
    """

    name: str
    preset: str
    num_simulations: int
    num_samples: int = 128
    samples_per_batch: int = 32
    description: str = ""


WORKLOADS = {
    "W1": WorkloadSpec(
        "W1",
        BASE_PRESET,
        10,
        description=(
            f"{W1_SYMBOL} first {W1_ROWS} daily rows, 10 simulations x 4 keys x 7 one-step forecasts, 128 samples"
        ),
    ),
    "W1-small": WorkloadSpec(
        "W1-small",
        "toto-tiny",
        2,
        description=("W1 on the toto-tiny preset with 2 simulations (CI smoke run; asserts nothing about speed)"),
    ),
    "W2": WorkloadSpec(
        "W2",
        BASE_PRESET,
        250,
        description=(f"{W2_SERIES} series x 250 simulations x 4 keys x 7 one-step forecasts, 128 samples"),
    ),
}


def w1_frames(rows: int = W1_ROWS, symbol: str = W1_SYMBOL) -> dict:
    """``{symbol: first rows of the bundled daily series}``."""
    frame = datasets.load(symbol)
    if len(frame) < rows:
        raise ValueError(f"bundled symbol {symbol!r} has {len(frame)} rows; W1 needs {rows}")
    return {symbol: frame.iloc[:rows]}


def w2_frames(num_series: int = W2_SERIES, rows: int = W2_ROWS, stride: int = W2_STRIDE) -> dict:
    """``num_series`` deterministic series cut from the bundled data.

    Windows of ``rows`` consecutive daily rows, starting at row offsets 0, stride, 2 stride, ...;
    offsets are taken in turn across the bundled symbols long enough for a window (alphabetical
    order), until ``num_series`` windows exist. With the defaults: AAPL, IBM and MSFT (3,270 rows)
    at offsets 0, 300, ..., 1800 and GOOG (2,148 rows) at 0, 300, 600; FB (196 rows) is too short.
    Each series is named ``SYMBOL@offset``.
    """
    loaded = {s: datasets.load(s) for s in sorted(datasets.list())}
    usable = {s: f for s, f in loaded.items() if len(f) >= rows}
    frames, offset = {}, 0
    while len(frames) < num_series:
        fitting = [s for s, f in usable.items() if offset + rows <= len(f)]
        if not fitting:
            raise ValueError(
                f"the bundled data yields only {len(frames)} windows of {rows} rows at stride {stride}; "
                f"asked for {num_series}"
            )
        for s in fitting[: num_series - len(frames)]:
            frames[f"{s}@{offset}"] = usable[s].iloc[offset : offset + rows]
        offset += stride
    return frames


def forecast_plan(frames: dict, num_simulations: int, profile: str = "legacy") -> ForecastPlan:
    """The backtest's deduplicated plan of forecast requests for these frames."""
    series = [
        SymbolSeries.build(name, frame, window_layout(len(frame), num_simulations, profile, symbol=name))
        for name, frame in frames.items()
    ]
    return ForecastPlan(series, PRICE_KEYS)


def unique_contexts(plan: ForecastPlan) -> list:
    """One float32 context per distinct request, in plan order."""
    return [plan.context(i) for i in range(len(plan))]


def classic_call_contexts(plan: ForecastPlan) -> list:
    """The contexts of the classic loop's calls, one per (series, simulation, key, step) slot.

    The classic loop calls the forecaster for every slot in this order (series, simulation,
    key, step) with no cache: ``len(series) * K * 4 * 7`` calls.
    """
    return [plan.context(int(i)) for i in plan.slot_request.reshape(-1)]


def num_classic_calls(plan: ForecastPlan) -> int:
    """``rows x keys x 7`` calls of the classic loop."""
    return int(plan.slot_request.size)
