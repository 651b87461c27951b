"""Time the official toto-ts forecaster on given contexts (one call per context, as the classic loop).

Run with an interpreter that has toto-ts installed (see bench/README.md); it does not import
totowalk, so it also runs from a separate virtual environment::

    python official_worker.py --checkpoint DIR --contexts contexts.npz --calls 2 \
        --num-samples 128 --samples-per-batch 32 --device cpu

Prints one JSON object: ``per_call_s`` (mean over the timed calls), ``times_s``, ``sample_mean``
and ``sample_std`` per timed context (the forecast's samples), ``toto_version``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings


def time_official(
    checkpoint: str, contexts: list, num_samples: int, samples_per_batch: int, device: str = "cpu"
) -> dict:
    """One ``TotoForecaster.forecast`` call per context, prediction_length 1, timed each.

    Parameters
    ----------
    checkpoint : directory with model.safetensors + config.json (``tw.save_checkpoint``)
    contexts : list of 1-D float32 numpy arrays
    num_samples, samples_per_batch : as the classic loop passes them (128 and 32)
    device : torch device name

    Returns
    -------
    dict (see the module docstring)
    """
    from importlib.metadata import version

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from toto.data.util.dataset import MaskedTimeseries
        from toto.inference.forecaster import TotoForecaster
        from toto.model.toto import Toto

        model = Toto.load_from_checkpoint(checkpoint, map_location=device).to(device).eval()
        forecaster = TotoForecaster(model.model)

        def call(values):
            series = torch.from_numpy(values).reshape(1, 1, -1).to(device)
            batch = MaskedTimeseries(
                series=series,
                padding_mask=torch.ones_like(series, dtype=torch.bool),
                id_mask=torch.zeros_like(series, dtype=torch.int),
                timestamp_seconds=torch.zeros_like(series, dtype=torch.int),
                time_interval_seconds=torch.ones(1, 1, dtype=torch.int, device=device),
            )
            with torch.inference_mode():
                forecast = forecaster.forecast(
                    batch, prediction_length=1, num_samples=num_samples, samples_per_batch=samples_per_batch
                )
            samples = forecast.samples.reshape(-1).double()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return samples

        call(contexts[0][-64:])  # warm-up: first-call allocations and lazy initialisation
        times, means, stds = [], [], []
        for values in contexts:
            start = time.perf_counter()
            samples = call(values)
            times.append(time.perf_counter() - start)
            means.append(float(samples.mean()))
            stds.append(float(samples.std()))
    return {
        "per_call_s": sum(times) / len(times),
        "times_s": times,
        "sample_mean": means,
        "sample_std": stds,
        "toto_version": version("toto-ts"),
        "torch_version": torch.__version__,
    }


def main(argv=None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--contexts", required=True, help="npz file with arrays c0, c1, ...")
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--samples-per-batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    with np.load(args.contexts) as data:
        contexts = [data[f"c{i}"].astype(np.float32) for i in range(min(args.calls, len(data.files)))]
    result = time_official(args.checkpoint, contexts, args.num_samples, args.samples_per_batch, args.device)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
