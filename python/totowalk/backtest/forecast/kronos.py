"""Kronos in a backtest (KRONOS_SEMANTICS §1, §5): its diagnostic column of the legacy rows, or
the forecaster of every price key.

* The column ``kronos_expected_move_pct``: for every simulation the classic loop hands Kronos the
  simulation's frame, its newest row included, forecasts 7 rows of it and records the Close
  forecast's step-7-over-step-6 return. Without a Kronos model the column is 0.0, and the report
  says Kronos was not run.
* The forecaster (``tw.backtest(prices, kronos=...)`` with no Toto engine; CLI
  ``--model kronos:DIR``). Legacy: as the classic loop when Kronos is a symbol's selected model:
  one 7-step forecast from each simulation's whole frame, whose step returns r_1..r_7 stand in for
  the seven walk-forward one-step predictions of each key. They forecast the 7 rows *after* the
  frame but are compared with the frame's last 7 rows: the classic defect, reproduced and warned
  about. Clean: walk-forward one-step forecasts like Toto's: for every step, Kronos sees the rows
  up to that step's context end only and forecasts the next row; each distinct context end is
  forecast once. Each such forecast whose outcome the data holds is scored as the empirical
  distribution of its sampled paths (their exact CRPS and mid-point PIT; seed-dependent, as the
  paths are): the run's calibration block, as an exact Toto run's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ...kronos import KronosEngine, load_kronos
from ...kronos.engine import FEATURES, PRECISIONS
from ...kronos.frames import kronos_input_from_frame, kronos_step_returns, path_step_returns
from ...scoring.proper import sample_crps, sample_pit

__all__ = [
    "KRONOS_MISALIGNED_WARNING",
    "KRONOS_NOT_RUN",
    "KRONOS_STEPS",
    "as_kronos",
    "describe_kronos",
    "kronos_moves",
    "kronos_predictions",
]

KRONOS_STEPS = 7
KRONOS_NOT_RUN = "not run: kronos_expected_move_pct is 0.0 (pass kronos= / --kronos DIR to fill it)"
_CLOSE = FEATURES.index("close")
KRONOS_MISALIGNED_WARNING = (
    "legacy profile with Kronos as the forecaster: each key's seven predictions are the step returns of one "
    "7-step Kronos forecast of the rows after the frame, compared with the frame's last 7 rows (the classic "
    "loop's misalignment, KRONOS_SEMANTICS §5); use --profile clean for walk-forward one-step Kronos forecasts"
)


def as_kronos(kronos, tokenizer=None, *, device=None, precision: str = "fp32") -> KronosEngine | None:
    """None, a :class:`KronosEngine`, or a checkpoint spec (folder or Hugging Face id, see
    :func:`totowalk.load_kronos`) loaded on ``device`` (default CPU) with the classic parameters,
    its blocks computing at ``precision`` (fp32, bf16 or fp16: :class:`KronosEngine`)."""
    if kronos is None or isinstance(kronos, KronosEngine):
        return kronos
    if isinstance(kronos, (str, Path)):
        if precision not in PRECISIONS:
            raise ValueError(f"Kronos runs at {', '.join(PRECISIONS)}; got precision {precision!r}")
        model, tok = load_kronos(kronos, tokenizer, device=device)
        engine = KronosEngine(model, tok, precision=precision)
        engine.spec = str(kronos)
        return engine
    raise ValueError(
        f"kronos must be None, a KronosEngine or a checkpoint folder / hub id, got {type(kronos).__name__}"
    )


def _weights_digest(*modules) -> str:
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def describe_kronos(engine: KronosEngine | None, hash_weights: bool = False) -> dict | None:
    """What of Kronos changes the run's numbers (the resume fingerprint uses it)."""
    if engine is None:
        return None
    info = {
        "spec": getattr(engine, "spec", None),
        **engine.settings,
        "parameters": sum(p.numel() for p in engine.model.parameters()),
    }
    if engine.precision != "fp32":  # named only when reduced: an fp32 run's fingerprint stays as it was
        info["precision"] = engine.precision
    if hash_weights:
        info["weights_sha256"] = _weights_digest(engine.model, engine.tokenizer)
    return info


def kronos_moves(series: list, engine: KronosEngine, bar=None) -> np.ndarray:
    """``kronos_expected_move_pct`` of every (symbol, simulation) row, in run order: the Close
    forecast's r_7 from each simulation's whole frame (its newest row included)."""
    out = []
    for s in series:
        inputs = [
            kronos_input_from_frame(
                s.frame.iloc[: int(n)], lookback=engine.max_context, pred_len=KRONOS_STEPS, symbol=s.symbol
            )
            for n in s.layout.window_rows
        ]
        for items, found in _forecasts(engine, inputs, KRONOS_STEPS):
            for item, mean in zip(items, found.mean):
                out.append(kronos_step_returns(mean[:, _CLOSE], item.x[-1, _CLOSE])[-1])
            if bar is not None:
                bar.update(len(items))
    return np.asarray(out, dtype=np.float64)


def _forecasts(engine: KronosEngine, inputs: list, pred_len: int, paths: bool = False):
    """``(items, forecast)`` of ``inputs`` a batch of contexts at a time (the engine runs contexts of
    one length together; a batch at a time keeps the progress moving); ``paths``: with the sampled
    paths."""
    size = max(1, int(getattr(engine, "context_batch", 1)))
    for start in range(0, len(inputs), size):
        items = inputs[start : start + size]
        yield items, engine.forecast(items, pred_len=pred_len, return_paths=paths)


def _column(key: str) -> int:
    return FEATURES.index(key.lower())


def kronos_predictions(series: list, arrays, keys, engine, profile: str, bar=None, score: bool = True) -> tuple:
    """``({key: (R, 7) float32}, scores)``: the predictions of every row of ``arrays`` (run order), and
    in the clean profile with ``score`` ``{"pit": {key: (R, 7)}, "crps": {key: (R, 7)}}``: each slot's
    one-step forecast scored against its outcome as its sampled paths' empirical distribution (NaN
    where the data holds no outcome); None otherwise."""
    out = {key: np.zeros((arrays.num_rows, KRONOS_STEPS), np.float32) for key in keys}
    scored = score and profile != "legacy"
    scores = {n: {k: np.full(out[k].shape, np.nan) for k in keys} for n in ("pit", "crps")} if scored else None
    row = 0
    for s in series:
        k_count = s.layout.num_simulations
        if profile == "legacy":
            inputs = [
                kronos_input_from_frame(
                    s.frame.iloc[: int(n)], lookback=engine.max_context, pred_len=KRONOS_STEPS, symbol=s.symbol
                )
                for n in s.layout.window_rows
            ]
            k = 0
            for items, found in _forecasts(engine, inputs, KRONOS_STEPS):
                for item, mean in zip(items, found.mean):
                    for key in keys:
                        c = _column(key)
                        out[key][row + k] = kronos_step_returns(mean[:, c], item.x[-1, c])
                    k += 1
                if bar is not None:
                    bar.update(len(items))
        else:
            ends = s.layout.context_ends  # (K, 7): the last row each step's context may use
            distinct = np.unique(ends)
            inputs = [
                kronos_input_from_frame(
                    s.frame.iloc[: int(end) + 1], lookback=engine.max_context, pred_len=1, symbol=s.symbol
                )
                for end in distinct
            ]
            done = 0
            for items, found in _forecasts(engine, inputs, 1, paths=scored):
                for n, (end, item) in enumerate(zip(distinct[done : done + len(items)], items)):
                    where = ends == end
                    for key in keys:
                        c = _column(key)
                        step = kronos_step_returns(found.mean[n][:, c], item.x[-1, c])[0]
                        out[key][row : row + k_count][where] = step
                        outcome = s.pct[key][end + 1] if end + 1 < len(s.pct[key]) else np.nan
                        if scored and np.isfinite(outcome):
                            draws = path_step_returns(found.paths[n][:, 0, c], item.x[-1, c])[None, :]
                            scores["pit"][key][row : row + k_count][where] = sample_pit(draws, [outcome])[0]
                            scores["crps"][key][row : row + k_count][where] = sample_crps(draws, [outcome])[0]
                    if bar is not None:
                        bar.update(int(where.sum()))
                done += len(items)
        row += k_count
    return out, scores
