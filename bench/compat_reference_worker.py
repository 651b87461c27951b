"""Times toto-ts 0.2.0 for bench_compat.py, in toto-ts's own venv (it does NOT import totowalk).

Reads one JSON line, the job ``{"checkpoint": DIR, "threads": 2, "inputs": "inputs.npz"}``, loads the
model and answers ``{"toto_version": ..., "threads": ...}``; then reads one task per line (so the
caller can alternate its own calls with toto-ts's) and answers each with one line ``{"name": ...,
"seconds": [...]}`` (one wall time per repeat), until stdin closes.

Task kinds (series ``NAME{i}`` are 1-D float32 arrays of ``inputs``):

``batch``
    One ``TotoForecaster.forecast`` call on the series ``rows`` (prefix ``b``) left-padded with
    zeros (``padding_mask`` False) into one (B, 1, T) batch, as a toto-ts user batches series of
    different lengths; ``horizon``, ``num_samples`` (null: the mean path), ``samples_per_batch``,
    ``repeats``. Unless ``warm_up`` is false, one untimed call first (one batch of ``samples_per_batch``
    paths).
``gluonts_loop``
    A naive GluonTS wrapper: for each series ``rows`` (prefix ``g``), one toto-ts call on that
    series alone with ``num_samples`` paths, then its ``quantile_levels`` and mean as a GluonTS
    ``QuantileForecast`` starting one period after the series (``start`` and ``freq`` given). The
    time of the whole loop per repeat, after one untimed call on the first series unless ``warm_up``
    is false.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
import torch

warnings.simplefilter("ignore")

from toto.data.util.dataset import MaskedTimeseries  # noqa: E402
from toto.inference.forecaster import TotoForecaster  # noqa: E402
from toto.model.toto import Toto  # noqa: E402


def masked(values: np.ndarray, mask: np.ndarray) -> MaskedTimeseries:
    """A (B, 1, T) MaskedTimeseries with one id per series and unused timestamps."""
    series = torch.from_numpy(values)
    return MaskedTimeseries(
        series=series,
        padding_mask=torch.from_numpy(mask),
        id_mask=torch.zeros_like(series, dtype=torch.int),
        timestamp_seconds=torch.zeros_like(series, dtype=torch.int),
        time_interval_seconds=torch.ones(series.shape[:2], dtype=torch.int),
    )


def left_padded(series: list) -> MaskedTimeseries:
    length = max(s.size for s in series)
    values = np.zeros((len(series), 1, length), dtype=np.float32)
    mask = np.zeros(values.shape, dtype=bool)
    for row, s in enumerate(series):
        values[row, 0, length - s.size :] = s
        mask[row, 0, length - s.size :] = True
    return masked(values, mask)


def time_batch(forecaster, data, task: dict) -> list:
    inputs = left_padded([data[f"b{i}"] for i in task["rows"]])
    if task.get("warm_up", True):
        warm = task["num_samples"] and task["samples_per_batch"]  # one batch of paths: this shape's first call
        with torch.inference_mode():
            forecaster.forecast(inputs, task["horizon"], num_samples=warm, samples_per_batch=task["samples_per_batch"])
    seconds = []
    for _ in range(task["repeats"]):
        start = time.perf_counter()
        with torch.inference_mode():
            forecast = forecaster.forecast(
                inputs,
                task["horizon"],
                num_samples=task["num_samples"],
                samples_per_batch=task["samples_per_batch"],
            )
        seconds.append(time.perf_counter() - start)
    assert forecast.mean.shape == (len(task["rows"]), 1, task["horizon"])
    return seconds


def time_gluonts_loop(forecaster, data, task: dict) -> list:
    import pandas as pd
    from gluonts.model.forecast import QuantileForecast

    entries = [
        {"start": pd.Period(task["start"], freq=task["freq"]), "target": data[f"g{i}"], "item_id": f"g{i}"}
        for i in task["rows"]
    ]
    levels = torch.tensor(task["quantile_levels"], dtype=torch.float32)
    keys = [str(level) for level in task["quantile_levels"]] + ["mean"]
    horizon = task["horizon"]
    if task.get("warm_up", True):
        warm = np.asarray(entries[0]["target"], dtype=np.float32)[None, None]
        with torch.inference_mode():
            forecaster.forecast(
                masked(warm, np.ones(warm.shape, dtype=bool)), horizon, task["num_samples"], task["samples_per_batch"]
            )
    seconds = []
    for _ in range(task["repeats"]):
        start = time.perf_counter()
        forecasts = []
        for entry in entries:  # one toto-ts call per series, as a naive wrapper does
            target = np.asarray(entry["target"], dtype=np.float32)[None, None]
            with torch.inference_mode():
                forecast = forecaster.forecast(
                    masked(target, np.ones(target.shape, dtype=bool)),
                    horizon,
                    num_samples=task["num_samples"],
                    samples_per_batch=task["samples_per_batch"],
                )
                arrays = torch.cat([forecast.quantile(levels)[:, 0, 0], forecast.mean[0]]).numpy()
            forecasts.append(
                QuantileForecast(
                    forecast_arrays=arrays,
                    start_date=entry["start"] + len(entry["target"]),
                    forecast_keys=keys,
                    item_id=entry["item_id"],
                )
            )
        seconds.append(time.perf_counter() - start)
    assert len(forecasts) == len(entries)
    return seconds


def main() -> None:
    from importlib.metadata import version

    job = json.loads(sys.stdin.readline())
    torch.set_num_threads(job["threads"])
    model = Toto.load_from_checkpoint(job["checkpoint"], map_location="cpu").eval()
    forecaster = TotoForecaster(model.model)
    data = np.load(job["inputs"])
    warm = data[sorted(data.files)[0]][-128:]  # first-call allocations and lazy initialisation
    with torch.inference_mode():
        forecaster.forecast(
            masked(warm[None, None], np.ones((1, 1, warm.size), dtype=bool)), 1, num_samples=8, samples_per_batch=8
        )
    print(json.dumps({"toto_version": version("toto-ts"), "threads": torch.get_num_threads()}), flush=True)
    timers = {"batch": time_batch, "gluonts_loop": time_gluonts_loop}
    for line in sys.stdin:  # one task per line, one result line each, until stdin closes
        task = json.loads(line)
        print(f"toto-ts: {task['name']} ...", file=sys.stderr, flush=True)
        print(json.dumps({"name": task["name"], "seconds": timers[task["kind"]](forecaster, data, task)}), flush=True)


if __name__ == "__main__":
    main()
