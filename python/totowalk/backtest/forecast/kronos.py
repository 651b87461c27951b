"""Kronos' diagnostic column of the legacy rows, ``kronos_expected_move_pct`` (KRONOS_SEMANTICS §1, §5).

For every simulation the classic loop hands Kronos the simulation's frame, its newest row included,
forecasts 7 rows of it and records the Close forecast's step-7-over-step-6 return. Without a Kronos
model the column is 0.0, and the report says Kronos was not run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ...kronos import KronosEngine, load_kronos
from ...kronos.engine import FEATURES
from ...kronos.frames import kronos_input_from_frame, kronos_step_returns

__all__ = ["KRONOS_NOT_RUN", "KRONOS_STEPS", "as_kronos", "describe_kronos", "kronos_moves"]

KRONOS_STEPS = 7
KRONOS_NOT_RUN = "not run: kronos_expected_move_pct is 0.0 (pass kronos= / --kronos DIR to fill it)"
_CLOSE = FEATURES.index("close")


def as_kronos(kronos, tokenizer=None) -> KronosEngine | None:
    """None, a :class:`KronosEngine`, or a checkpoint spec (folder or Hugging Face id, see
    :func:`totowalk.load_kronos`) loaded with the classic parameters."""
    if kronos is None or isinstance(kronos, KronosEngine):
        return kronos
    if isinstance(kronos, (str, Path)):
        model, tok = load_kronos(kronos, tokenizer)
        engine = KronosEngine(model, tok)
        engine.spec = str(kronos)
        return engine
    raise ValueError(f"kronos must be None, a KronosEngine or a checkpoint folder / hub id, got {type(kronos).__name__}")


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
    info = {"spec": getattr(engine, "spec", None), **engine.settings,
            "parameters": sum(p.numel() for p in engine.model.parameters())}
    if hash_weights:
        info["weights_sha256"] = _weights_digest(engine.model, engine.tokenizer)
    return info


def kronos_moves(series: list, engine: KronosEngine, bar=None) -> np.ndarray:
    """``kronos_expected_move_pct`` of every (symbol, simulation) row, in run order: the Close
    forecast's r_7 from each simulation's whole frame (its newest row included)."""
    out = []
    for s in series:
        inputs = [kronos_input_from_frame(s.frame.iloc[: int(n)], lookback=engine.max_context, pred_len=KRONOS_STEPS,
                                          symbol=s.symbol) for n in s.layout.window_rows]
        for item in inputs:
            mean = engine.forecast([item], pred_len=KRONOS_STEPS).mean[0]
            out.append(kronos_step_returns(mean[:, _CLOSE], item.x[-1, _CLOSE])[-1])
            if bar is not None:
                bar.update(1)
    return np.asarray(out, dtype=np.float64)
