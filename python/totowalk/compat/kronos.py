"""Drop-in for the Kronos reference's ``KronosPredictor`` (kronos-model-arch 0.1.0, ``model/kronos.py``),
backed by :class:`~totowalk.kronos.KronosEngine` (KRONOS_SEMANTICS §4).

Code written against the reference::

    from model import Kronos, KronosTokenizer, KronosPredictor
    predictor = KronosPredictor(model, tokenizer, device="cuda:0", max_context=512)
    pred_df = predictor.predict(df, x_timestamp, y_timestamp, pred_len=120, T=1.0, top_p=0.9, sample_count=1)

swaps its predictor by importing ``KronosPredictor`` from here. ``model`` and ``tokenizer`` are
ours (:func:`totowalk.kronos.load_kronos`) or the reference's modules, whose weights are copied once
into ours (the two share the published state-dict layout).

What is the reference's, unchanged:

* the input: a DataFrame with ``open, high, low, close`` (lower case); ``volume`` missing -> volume
  and amount are 0 (an ``amount`` column given without ``volume`` is overwritten, as the reference
  does); ``amount`` missing -> volume x the mean of the four prices; NaN refused;
* float32 per-column normalisation with the population std + 1e-5, clipping to +-clip, the time
  features (minute, hour, weekday, day, month) of ``x_timestamp`` and ``y_timestamp``;
* sampling: temperature, then top-k (which, when > 0, replaces top-p), else top-p; the coarse
  token, then the fine one given it; a window of ``max_context`` tokens sliding once full; the mean
  of the decoded last ``pred_len`` rows over ``sample_count`` paths, de-normalised;
* the output: a float32 DataFrame with columns ``open, high, low, close, volume, amount`` indexed
  by ``y_timestamp``; ``predict_batch`` returns one such frame per input, in order.

What differs (each a strict improvement or a documented choice):

* Randomness: the reference draws from torch's global generator; here the engine's counter-based
  stream. With ``seed=None`` (the default) each call takes its stream seed from torch's global
  generator, so ``torch.manual_seed(s)`` makes calls reproducible, as with the reference; with an
  integer ``seed`` the draws depend only on (seed, the context's content, the settings). Either way
  a series' forecast does not depend on the other series of its batch: ``predict_batch`` equals
  ``predict`` of each frame alone (under the same torch seed). Two identical frames in one batch get
  identical draws (the reference's would be independent).
* ``predict_batch`` accepts series of different lengths (the reference requires equal ones): the
  engine forecasts each context on its own.
* Errors are clearer and come earlier: they name the frame, column and row (NaN, infinite or
  non-numeric values), and a timestamp count that does not match the rows or ``pred_len`` is
  refused by ``predict`` too (the reference fails deep in the model or in pandas). Infinite values
  are refused (the reference would return NaN). A frame needs at least 2 rows (the engine's floor);
  ``pred_len`` must not exceed ``max_context`` (the reference fails then too, in pandas).
* Timestamps may be a datetime Series, a DatetimeIndex or anything ``pandas.to_datetime`` reads
  (the reference needs a Series with ``.dt``); NaT is refused.
* ``verbose`` (a progress bar) and ``use_kv_cache`` (of later reference versions) are accepted and
  ignored: the engine always shares the context's keys and values across paths.
* ``device=None`` means ``cuda:0`` where CUDA is available, else the CPU (the reference's default
  ``"cuda:0"`` fails on a machine without a GPU).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

import numpy as np
import pandas as pd
import torch

from ..devices import resolve_device
from ..kronos import (
    FEATURES,
    KronosConfig,
    KronosEngine,
    KronosInput,
    KronosModel,
    KronosTokenizer,
    KronosTokenizerConfig,
    load_kronos,
)
from ..kronos.frames import time_features

__all__ = ["KronosPredictor"]

PRICE_COLUMNS = ["open", "high", "low", "close"]
# where a reference module keeps each constructor argument when it has no saved config
_TOKENIZER_ATTRIBUTES = {
    "n_enc_layers": ("n_enc_layers", "enc_layers"),
    "n_dec_layers": ("n_dec_layers", "dec_layers"),
    **{name: (name, f"tokenizer.bsq.{name}", f"tokenizer.{name}") for name in ("beta", "gamma0", "gamma", "zeta")},
    "group_size": ("group_size", "tokenizer.bsq.group_size", "tokenizer.group_size"),
}


def _attribute(module, dotted: str):
    value = module
    for part in dotted.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _reference_config(module, cls, aliases: dict):
    """The constructor arguments of a reference module: its Hub mixin's saved config, else its attributes."""
    data = {}
    for saved in (getattr(module, "_hub_mixin_config", None), getattr(module, "config", None)):
        if isinstance(saved, Mapping):
            data.update({k: v for k, v in saved.items() if k not in data})
    for f in fields(cls):
        if f.name not in data:
            for dotted in aliases.get(f.name, (f.name,)):
                value = _attribute(module, dotted)
                if value is not None and not isinstance(value, torch.nn.Module):
                    data[f.name] = value
                    break
    return cls.from_dict(data, where=f"{type(module).__name__} given to KronosPredictor")


def _as_ours(module, ours: type, config_cls: type, what: str, aliases: dict):
    """``module`` itself when it is ours; a reference module's weights copied into ours otherwise."""
    if isinstance(module, ours):
        return module
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"KronosPredictor: {what} must be a totowalk {ours.__name__} (totowalk.kronos.load_kronos) or the "
            f"reference's module, got {type(module).__name__}"
        )
    config = _reference_config(module, config_cls, aliases)
    converted = ours(config)
    state, expected = module.state_dict(), converted.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        problem = (
            f"lacks tensor {missing[0]!r}"
            if missing
            else f"has unexpected tensor {extra[0]!r}"
            if extra
            else f"tensor {wrong[0]!r} has shape {tuple(state[wrong[0]].shape)}, not {tuple(expected[wrong[0]].shape)}"
        )
        raise ValueError(f"KronosPredictor: the {what} ({type(module).__name__}) is not a Kronos {what}: it {problem}")
    converted.load_state_dict({k: v.detach().to(expected[k].dtype) for k, v in state.items()}, strict=True)
    first = next(module.parameters(), None)
    if first is not None:
        converted.to(device=first.device, dtype=first.dtype)
    return converted.eval()


def _stamps(value, what: str, where: str) -> pd.DatetimeIndex:
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}{what} must be timestamps (a datetime Series or DatetimeIndex): {exc}") from None
    if stamps.hasnans:
        raise ValueError(f"{where}{what} has a missing timestamp (NaT) at position {int(np.argmax(stamps.isna()))}")
    return stamps


def _check_settings(pred_len, T, top_k, top_p, sample_count, max_context: int) -> tuple:
    if isinstance(pred_len, bool) or not isinstance(pred_len, (int, np.integer)) or not 1 <= pred_len <= max_context:
        raise ValueError(f"pred_len must be an integer in 1..max_context ({max_context}), got {pred_len!r}")
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"T (the sampling temperature) must be a positive number, got {T!r}")
    if isinstance(sample_count, bool) or not isinstance(sample_count, (int, np.integer)) or sample_count < 1:
        raise ValueError(f"sample_count must be an integer >= 1, got {sample_count!r}")
    top_k = 0 if top_k is None else int(top_k)
    top_p = 1.0 if top_p is None else float(top_p)
    return int(pred_len), float(T), top_k, top_p, int(sample_count)


class KronosPredictor:
    """The reference's ``KronosPredictor`` over the batched :class:`KronosEngine`.

    Parameters
    ----------
    model, tokenizer
        Ours (:func:`totowalk.kronos.load_kronos`) or the reference's ``Kronos`` and ``KronosTokenizer``
        (their weights are copied into ours once, on the device and in the dtype they are in).
    device : str or torch.device, optional
        Where to run; default ``cuda:0`` when CUDA is available, else the CPU.
    max_context : int
        Tokens the model sees at most (the window slides once full); default 512, as the reference.
    clip : float
        Normalised inputs are clipped to [-clip, clip]; default 5, as the reference.
    seed : int, optional
        Seed of the sampling stream. None (default): drawn from torch's global generator at each
        call, so ``torch.manual_seed`` governs reproducibility, as with the reference.
    """

    price_cols = PRICE_COLUMNS
    vol_col = "volume"
    amt_vol = "amount"
    time_cols = ["minute", "hour", "weekday", "day", "month"]

    def __init__(self, model, tokenizer, device=None, max_context: int = 512, clip: float = 5, *, seed=None):
        if device is None:
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        self.device = resolve_device(device)
        if isinstance(max_context, bool) or not isinstance(max_context, (int, np.integer)) or max_context < 2:
            raise ValueError(f"max_context must be an integer >= 2, got {max_context!r}")
        if not np.isfinite(clip) or clip <= 0:
            raise ValueError(f"clip must be a positive number, got {clip!r}")
        if seed is not None and not 0 <= int(seed) < 2**63:
            raise ValueError(f"seed must be None or an integer in [0, 2**63), got {seed!r}")
        net = _as_ours(model, KronosModel, KronosConfig, "model", {})
        tok = _as_ours(tokenizer, KronosTokenizer, KronosTokenizerConfig, "tokenizer", _TOKENIZER_ATTRIBUTES)
        bits = (net.config.s1_bits, net.config.s2_bits)
        if bits != (tok.config.s1_bits, tok.config.s2_bits):
            raise ValueError(
                f"KronosPredictor: the model uses s1/s2 bits {bits}, the tokenizer "
                f"{(tok.config.s1_bits, tok.config.s2_bits)}: they are not a pair"
            )
        self.model, self.tokenizer = net.to(self.device).eval(), tok.to(self.device).eval()
        self.max_context, self.clip = int(max_context), float(clip)
        self.seed = None if seed is None else int(seed)

    @classmethod
    def from_pretrained(cls, model, tokenizer=None, device=None, max_context: int = 512, clip: float = 5, *, seed=None):
        """Load the checkpoints with :func:`totowalk.kronos.load_kronos` (folders or Hub ids in the
        local cache) and wrap them."""
        net, tok = load_kronos(model, tokenizer)
        return cls(net, tok, device=device, max_context=max_context, clip=clip, seed=seed)

    # -- inputs ---------------------------------------------------------------------------------

    def _features(self, df, where: str) -> np.ndarray:
        """(L, 6) float32 in FEATURES order, filled and checked as the reference does."""
        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"{where}expected a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in self.price_cols if c not in df.columns]
        if missing:
            lower = {str(c).lower(): c for c in df.columns}
            hint = [f"{lower[c]!r} -> {c!r}" for c in missing if c in lower]
            raise ValueError(
                f"{where}missing price column(s) {missing}: Kronos needs {self.price_cols} (lower case), "
                f"found {[str(c) for c in df.columns]}" + (f"; rename {', '.join(hint)}" if hint else "")
            )
        df = df.copy()
        if self.vol_col not in df.columns:  # the reference zeroes both, even an amount column given
            df[self.vol_col] = 0.0
            df[self.amt_vol] = 0.0
        if self.amt_vol not in df.columns:
            df[self.amt_vol] = df[self.vol_col] * df[self.price_cols].mean(axis=1)
        columns = list(FEATURES)
        values = df[columns]
        if values.columns.duplicated().any():
            raise ValueError(f"{where}duplicate column(s) {sorted(set(values.columns[values.columns.duplicated()]))}")
        null = values.isnull().to_numpy()
        if null.any():
            row, col = (int(i) for i in np.argwhere(null)[0])
            raise ValueError(
                f"{where}NaN in price or volume columns: column {columns[col]!r}, row {row} "
                f"(index {df.index[row]!r}); {int(null.sum())} NaN value(s) in all"
            )
        try:
            x = values.values.astype(np.float32)
        except (TypeError, ValueError):
            for name in columns:
                try:
                    np.asarray(values[name].values).astype(np.float32)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{where}column {name!r} is not numeric: {exc}") from None
            raise
        bad = ~np.isfinite(x)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{where}infinite value (or one beyond float32) in column {columns[col]!r}, row {row} "
                f"(index {df.index[row]!r})"
            )
        if len(x) < 2:
            raise ValueError(f"{where}Kronos needs at least 2 rows of history, got {len(x)}")
        return x

    def _input(self, df, x_timestamp, y_timestamp, pred_len: int, where: str) -> KronosInput:
        x = self._features(df, where)
        x_stamps = _stamps(x_timestamp, "x_timestamp", where)
        y_stamps = _stamps(y_timestamp, "y_timestamp", where)
        if len(x_stamps) != len(x):
            raise ValueError(
                f"{where}x_timestamp has {len(x_stamps)} entries but the DataFrame has {len(x)} rows: "
                "one timestamp per row"
            )
        if len(y_stamps) != pred_len:
            raise ValueError(f"{where}y_timestamp has {len(y_stamps)} entries, pred_len is {pred_len}: they must match")
        return KronosInput(x=x, x_stamp=time_features(x_stamps), y_stamp=time_features(y_stamps))

    def _frame(self, mean: np.ndarray, y_timestamp) -> pd.DataFrame:
        index = y_timestamp if isinstance(y_timestamp, (pd.Series, pd.Index)) else pd.DatetimeIndex(y_timestamp)
        return pd.DataFrame(mean.astype(np.float32), columns=list(FEATURES), index=index)

    # -- forecasts ------------------------------------------------------------------------------

    def engine(self, T: float = 1.0, top_k: int = 0, top_p: float = 0.9, sample_count: int = 1) -> KronosEngine:
        """The engine a call with these settings runs on (its seed: ``seed``, or one drawn from torch's
        global generator)."""
        seed = self.seed if self.seed is not None else int(torch.randint(0, 2**62, (1,)).item())
        return KronosEngine(
            self.model,
            self.tokenizer,
            temperature=T,
            top_k=top_k,
            top_p=top_p,
            sample_count=sample_count,
            max_context=self.max_context,
            clip=self.clip,
            seed=seed,
            device=self.device,
        )

    def predict(
        self,
        df,
        x_timestamp,
        y_timestamp,
        pred_len,
        T=1.0,
        top_k=0,
        top_p=0.9,
        sample_count=1,
        verbose=True,
        use_kv_cache=False,
    ) -> pd.DataFrame:
        """Mean forecast of the ``pred_len`` rows after ``df``: a DataFrame (pred_len, 6) indexed by
        ``y_timestamp``. ``predict_batch`` of this one frame."""
        return self._predict([df], [x_timestamp], [y_timestamp], pred_len, T, top_k, top_p, sample_count, single=True)[
            0
        ]

    def predict_batch(
        self,
        df_list,
        x_timestamp_list,
        y_timestamp_list,
        pred_len,
        T=1.0,
        top_k=0,
        top_p=0.9,
        sample_count=1,
        verbose=True,
        use_kv_cache=False,
    ) -> list[pd.DataFrame]:
        """:meth:`predict` of every frame, in one engine call; a list of DataFrames in input order.
        Frames may differ in length; each ``y_timestamp`` has ``pred_len`` entries."""
        lists = (df_list, x_timestamp_list, y_timestamp_list)
        if not all(isinstance(v, (list, tuple)) for v in lists):
            raise ValueError(
                "df_list, x_timestamp_list, y_timestamp_list must be lists or tuples, got "
                + ", ".join(type(v).__name__ for v in lists)
            )
        if not len(df_list) == len(x_timestamp_list) == len(y_timestamp_list):
            raise ValueError(
                f"df_list, x_timestamp_list, y_timestamp_list must have the same length, got "
                f"{len(df_list)}, {len(x_timestamp_list)}, {len(y_timestamp_list)}"
            )
        return self._predict(df_list, x_timestamp_list, y_timestamp_list, pred_len, T, top_k, top_p, sample_count)

    def _predict(self, dfs, xs, ys, pred_len, T, top_k, top_p, sample_count, single: bool = False) -> list:
        pred_len, T, top_k, top_p, sample_count = _check_settings(
            pred_len, T, top_k, top_p, sample_count, self.max_context
        )
        inputs = [
            self._input(df, x, y, pred_len, "" if single else f"DataFrame at index {i}: ")
            for i, (df, x, y) in enumerate(zip(dfs, xs, ys))
        ]
        if not inputs:
            return []
        result = self.engine(T, top_k, top_p, sample_count).forecast(inputs, pred_len=pred_len)
        return [self._frame(mean, y) for mean, y in zip(result.mean, ys)]
