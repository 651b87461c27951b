"""KronosEngine: the reference predictor's forecasts (KRONOS_SEMANTICS.md §4) without its waste.

The reference repeats each context ``sample_count`` times, tokenizes every copy and, at every
generated step, runs the whole window for every path. The distribution of its output only depends
on the paths' token draws, so here:

* each context is normalised and tokenized once;
* at step i the window is the context tokens from its (sliding) start, which every path shares,
  followed by the path's own i generated tokens. The shared part is run once (batch 1) and its
  keys/values cached; only paths with distinct generated prefixes are run on top of that cache
  (at a low temperature many of the paths coincide). The cache is rebuilt at every step because the
  window slides: a cached state is exact only for the window it was computed in;
* the final window is decoded the same way: the shared context part once, each distinct path's
  generated tokens on top (the tokenizer's decoder is causal too);
* contexts of one length run together, ``context_batch`` (16) at a time: the tokenizer, the
  shared part of every step's window and the decoder's context part are one batch of contexts
  (no padding: a batch holds one length). The contexts' distinct path prefixes then run
  ``path_contexts`` contexts at a time, each row on top of its own context's cache (a group
  index into the batch's caches): the whole batch at once on a GPU (one launch sequence per
  step, not one per context), one context at a time on a CPU (batching them is no faster there,
  measured). Batched, a context's numbers are the same up to float rounding (the products'
  shapes change with the batch; with one torch thread the tests find the bits equal);
  ``context_batch=1`` runs each context alone;
* every draw reads the counter-based Philox stream at (seed, context content, step, path), so a
  path's tokens do not depend on which other contexts or paths share its batch;
* ``precision="bf16"`` / ``"fp16"``: the model's and the decoder's transformer blocks compute in
  that type (autocast), everything else stays float32: the tokenizer's encoder (a context's token
  ids do not move with the precision), the embeddings, the residual stream, the norms, both token
  heads (a 16-bit logit divided by the temperature 0.152 would move the probabilities by tens of
  percent) and the decoder's head. The draws read the same stream as float32, so the two differ only
  where a probability moved across a draw, and by the decoder's rounding; a test holds the mean
  forecast's change to less than the Monte Carlo noise floor (float32 with another seed).

What stays as the reference: float32 normalisation with the population std + 1e-5 and clipping,
temperature then top-k (or top-p) filtering, s1 then s2 given s1, the mean over paths of the
decoded last ``pred_len`` rows, de-normalised.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..kernels.stream import request_keys
from .sampling import S1_DRAW, S2_DRAW, draw_tokens, filtered_probabilities

__all__ = ["DEFAULT_CONTEXT_BATCH", "FEATURES", "PRECISIONS", "KronosEngine", "KronosForecast", "KronosInput"]

FEATURES = ("open", "high", "low", "close", "volume", "amount")
DEFAULT_CONTEXT_BATCH = 16  # contexts of one length whose shared windows run as one batch
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # the blocks' compute type


@dataclass(frozen=True)
class KronosInput:
    """One context: ``x`` (L, 6) raw features in :data:`FEATURES` order (not normalised), ``x_stamp``
    (L, 5) and ``y_stamp`` (pred_len, 5) time features: minute, hour, weekday, day, month."""

    x: np.ndarray
    x_stamp: np.ndarray
    y_stamp: np.ndarray


@dataclass
class KronosForecast:
    """``mean`` (N, pred_len, 6) float64, original units; ``paths`` (N, S, pred_len, 6) when asked;
    ``token_passes``: tokens run through the model and the tokenizer's decoder (the work done)."""

    mean: np.ndarray
    paths: np.ndarray | None = None
    token_passes: int = 0
    info: dict = field(default_factory=dict)


def _content_key(item: KronosInput, settings: tuple) -> np.uint64:
    h = hashlib.blake2b(repr(settings).encode(), digest_size=8)
    for array in (item.x, item.x_stamp, item.y_stamp):
        a = np.ascontiguousarray(array, dtype=np.float32)
        h.update(np.asarray(a.shape, dtype=np.int64).tobytes())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), dtype="<u8")[0]


class KronosEngine:
    """Kronos forecasts with the classic parameters by default (KRONOS_SEMANTICS.md §2)."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        temperature: float = 0.152,
        top_k: int = 20,
        top_p: float = 0.83,
        sample_count: int = 192,
        max_context: int = 232,
        clip: float = 1.85,
        seed: int = 0,
        device=None,
        context_batch: int = DEFAULT_CONTEXT_BATCH,
        precision: str = "fp32",
        path_contexts: int | None = None,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"Kronos precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        self.precision, self._compute = precision, PRECISIONS[precision]
        if sample_count < 1 or max_context < 2 or temperature <= 0:
            raise ValueError("sample_count must be >= 1, max_context >= 2 and temperature > 0")
        if context_batch < 1:
            raise ValueError(f"context_batch must be >= 1, got {context_batch}")
        self.context_batch = int(context_batch)
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        if path_contexts is None:  # see the module docstring
            path_contexts = 1 if self.device.type == "cpu" else None
        if path_contexts is not None and path_contexts < 1:
            raise ValueError(f"path_contexts must be >= 1 or None, got {path_contexts}")
        self.path_contexts = path_contexts
        self.model, self.tokenizer = model.to(self.device).eval(), tokenizer.to(self.device).eval()
        self.temperature, self.top_k, self.top_p = float(temperature), int(top_k), float(top_p)
        self.sample_count, self.max_context, self.clip, self.seed = (
            int(sample_count),
            int(max_context),
            float(clip),
            int(seed),
        )

    @property
    def settings(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "sample_count": self.sample_count,
            "max_context": self.max_context,
            "clip": self.clip,
            "seed": self.seed,
        }

    def forecast(self, inputs, pred_len: int = 7, return_paths: bool = False) -> KronosForecast:
        """Mean forecast of the next ``pred_len`` rows of every context (see the module docstring).
        Contexts of one length run together, up to ``context_batch`` at a time."""
        pred_len = int(pred_len)
        if not 1 <= pred_len <= self.max_context:
            raise ValueError(f"pred_len must be in 1..max_context ({self.max_context}), got {pred_len}")
        inputs = list(inputs)
        for n, item in enumerate(inputs):
            self._check(item, pred_len, n)
        means, paths, passes = [None] * len(inputs), [None] * len(inputs), 0
        with torch.inference_mode():
            for batch in self._batches(inputs):
                prepared = [self._prepare(inputs[n], pred_len) for n in batch]
                decoded, work = self._sample_batch(
                    np.stack([p[0] for p in prepared]),
                    np.stack([inputs[n].x_stamp for n in batch]),
                    np.stack([inputs[n].y_stamp for n in batch]),
                    torch.stack([p[3] for p in prepared]),
                )
                passes += work
                for n, (_, mean, std, _), rows in zip(batch, prepared, decoded):
                    average = rows.mean(axis=0)  # float32, as the reference's np.mean over paths
                    scale = std + np.float32(1e-5)
                    means[n] = (average * scale + mean).astype(np.float64)
                    if return_paths:
                        paths[n] = rows * scale + mean
        empty = np.zeros((0, pred_len, len(FEATURES)))
        return KronosForecast(
            mean=np.stack(means) if means else empty,
            paths=(np.stack(paths) if paths else empty[:, None]) if return_paths else None,
            token_passes=passes,
        )

    def _batches(self, inputs: list) -> list:
        """Indices of ``inputs`` in batches of one context length, at most ``context_batch`` each."""
        lengths = {}
        for n, item in enumerate(inputs):
            lengths.setdefault(len(item.x), []).append(n)
        size = self.context_batch
        return [group[i : i + size] for group in lengths.values() for i in range(0, len(group), size)]

    @staticmethod
    def _check(item: KronosInput, pred_len: int, n: int) -> None:
        x = np.asarray(item.x)
        if x.ndim != 2 or x.shape[1] != len(FEATURES) or x.shape[0] < 2:
            raise ValueError(f"context {n}: x must be (L >= 2, 6) in the order {', '.join(FEATURES)}; got {x.shape}")
        if np.asarray(item.x_stamp).shape != (x.shape[0], 5) or np.asarray(item.y_stamp).shape != (pred_len, 5):
            raise ValueError(f"context {n}: x_stamp must be ({x.shape[0]}, 5) and y_stamp ({pred_len}, 5)")
        if not np.isfinite(x).all():
            row = int(np.argwhere(~np.isfinite(x))[0][0])
            raise ValueError(f"context {n}: non-finite feature at row {row}")

    def _prepare(self, item: KronosInput, pred_len: int) -> tuple:
        """(normalised and clipped x, mean, std, stream keys) of one context."""
        x = np.asarray(item.x, dtype=np.float32)
        mean, std = np.mean(x, axis=0), np.std(x, axis=0)  # float32, as the reference
        normed = np.clip((x - mean) / (std + np.float32(1e-5)), -self.clip, self.clip)
        key = request_keys(np.array([_content_key(item, tuple(self.settings.items()))], dtype=np.uint64), pred_len)[0]
        return normed, mean, std, key

    @torch.inference_mode()
    def sample_paths(self, normed: np.ndarray, x_stamp, y_stamp, key: torch.Tensor) -> tuple[np.ndarray, int]:
        """Decoded sample paths (S, pred_len, 6) of one normalised, clipped context, in normalised
        units, and the token passes; ``key`` (pred_len,) int64: the stream key of each step."""
        decoded, passes = self._sample_batch(
            np.asarray(normed)[None], np.asarray(x_stamp)[None], np.asarray(y_stamp)[None], key[None]
        )
        return decoded[0], passes

    def _sample_batch(self, normed: np.ndarray, x_stamp, y_stamp, keys: torch.Tensor) -> tuple[np.ndarray, int]:
        """:meth:`sample_paths` of G contexts of one length at once: ``normed`` (G, L, 6), ``x_stamp``
        (G, L, 5), ``y_stamp`` (G, pred_len, 5), ``keys`` (G, pred_len). The windows' shared parts
        (tokenizer, model and decoder over the context tokens) run as one batch of G; the contexts'
        distinct path prefixes run ``path_contexts`` contexts at a time, each row on top of its own
        context's cache (a group index: a context's keys are not copied per path). Returns
        (G, S, pred_len, 6) and the passes."""
        net, tok, dev = self.model, self.tokenizer, self.device
        groups, length = normed.shape[0], normed.shape[1]
        pred_len = y_stamp.shape[1]
        keys = keys.to(dev)  # the draws' counters live where the paths are (request_keys makes them on the host)
        stamp = torch.from_numpy(np.concatenate([x_stamp, y_stamp], axis=1).astype(np.float32)).to(dev)
        c1, c2 = tok.encode(torch.from_numpy(np.asarray(normed, dtype=np.float32)).to(dev))  # once, not per path
        count, step = self.sample_count, self.path_contexts or groups
        # every path of every context, context-major: row g * S + s is context g's path s
        context = torch.arange(groups, device=dev).repeat_interleave(count)
        g1 = torch.zeros(groups * count, pred_len, dtype=torch.long, device=dev)
        g2 = torch.zeros_like(g1)
        passes = 0
        for i in range(pred_len):
            start = max(0, length + i - self.max_context)  # the window slides once full
            shared_hidden, past = net.hidden(c1[:, start:], c2[:, start:], stamp[:, start:length], None, self._compute)
            passes += groups * (length - start)
            for lo in range(0, groups, step):  # contexts whose paths run together (see path_contexts)
                part, rows = slice(lo, lo + step), slice(lo * count, (lo + step) * count)
                mine = [(k[part], v[part]) for k, v in past]
                passes += self._step(
                    i,
                    shared_hidden[part],
                    mine,
                    stamp[part],
                    length,
                    keys[part, i],
                    context[rows] - lo,
                    g1[rows],
                    g2[rows],
                )
        # decode the final window: the shared context parts once, each distinct path on top of its own
        start = max(0, length + pred_len - self.max_context)
        _, caches = tok.decode_cached(c1[:, start:], c2[:, start:], None, self._compute)
        passes += groups * (length - start)
        decoded = []
        for lo in range(0, groups, step):
            rows = slice(lo * count, (lo + step) * count)
            tokens = torch.cat([context[rows, None] - lo, g1[rows], g2[rows]], 1)
            generated, inverse = torch.unique(tokens, dim=0, return_inverse=True)
            grouped = [(k[lo : lo + step], v[lo : lo + step], generated[:, 0]) for k, v in caches]
            out, _ = tok.decode_cached(
                generated[:, 1 : 1 + pred_len], generated[:, 1 + pred_len :], grouped, self._compute
            )
            passes += len(generated) * pred_len
            decoded.append(out[inverse].float().cpu().numpy())
        decoded = np.concatenate(decoded)
        return decoded.reshape(groups, count, pred_len, decoded.shape[-1]), passes

    def _step(self, i: int, shared_hidden, past, stamp, length: int, keys, context, g1, g2) -> int:
        """Draw step ``i``'s tokens of every path into ``g1``, ``g2`` (G * S, pred_len; ``context``:
        each row's context, ``keys`` (G,): their stream keys at this step). All contexts' distinct
        generated prefixes run as one batch, each on top of its context's window cache. Returns the
        passes."""
        net, count = self.model, self.sample_count
        path_ids = torch.arange(count, device=self.device)
        own, passes = None, 0
        if i:
            prefixes, inverse = torch.unique(
                torch.cat([context[:, None], g1[:, :i], g2[:, :i]], 1), dim=0, return_inverse=True
            )
            group = prefixes[:, 0]  # each distinct prefix's context
            own, _ = net.hidden(
                prefixes[:, 1 : 1 + i],
                prefixes[:, 1 + i :],
                stamp[group, length : length + i],
                past=[(k, v, group) for k, v in past],
                compute_dtype=self._compute,
            )
            passes = len(prefixes) * i
            last = own[:, -1]
        else:  # no generated token yet: each context's window alone
            inverse, group = context, torch.arange(shared_hidden.shape[0], device=self.device)
            last = shared_hidden[:, -1]
        probs1 = filtered_probabilities(net.s1_logits(last), self.temperature, self.top_k, self.top_p)
        s1 = draw_tokens(probs1[inverse], self.seed, keys, path_ids, S1_DRAW)
        pairs, pair_of = torch.unique(torch.stack([inverse, s1], 1), dim=0, return_inverse=True)
        logits2 = net.s2_logits_last_shared(shared_hidden, own, pairs[:, 0], pairs[:, 1:2], group[pairs[:, 0]])
        probs2 = filtered_probabilities(logits2, self.temperature, self.top_k, self.top_p)
        g1[:, i], g2[:, i] = s1, draw_tokens(probs2[pair_of], self.seed, keys, path_ids, S2_DRAW)
        return passes
