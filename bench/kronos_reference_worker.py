"""Times the reference KronosPredictor.predict (kronos-model-arch) on given inputs; run in the
reference's own venv by bench_kronos.py. Reads a JSON job on stdin, prints one JSON line."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
import torch
from model.kronos import Kronos, KronosPredictor, KronosTokenizer


def main() -> None:
    job = json.load(sys.stdin)
    torch.set_num_threads(job["threads"])
    folder = job["checkpoint"]
    tokenizer = KronosTokenizer.from_pretrained(f"{folder}/tokenizer").eval()
    model = Kronos.from_pretrained(f"{folder}/model").eval()
    predictor = KronosPredictor(model, tokenizer, device="cpu", max_context=job["max_context"], clip=job["clip"])
    data = np.load(job["inputs"])
    seconds = []
    for i in range(job["count"]):
        x = data[f"x{i}"]
        frame = pd.DataFrame(x, columns=["open", "high", "low", "close", "volume", "amount"])
        x_time = pd.Series(pd.to_datetime(data[f"t{i}"]))
        y_time = pd.Series(pd.to_datetime(data[f"f{i}"]))
        start = time.perf_counter()
        with torch.no_grad():
            predictor.predict(
                frame,
                x_time,
                y_time,
                pred_len=len(y_time),
                T=job["temperature"],
                top_k=job["top_k"],
                top_p=job["top_p"],
                sample_count=job["sample_count"],
                verbose=False,
            )
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
