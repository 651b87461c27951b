"""A run's two large tables, in memory or on disk one part per chunk of symbols.

A backtest is evaluated a chunk of symbols at a time (:func:`symbol_chunks`). Each chunk gives its
rows of ``simulations`` (one per (symbol, simulation)) and ``forecasts`` (one per (symbol,
simulation, key, step)). A run without a folder keeps the parts in memory; a run with one has
already saved each part in the folder (the resume journal, :class:`.store.RunStore`), so only the
list of parts is kept here and the tables are read back on demand: memory does not grow with the
number of symbols. Either way the whole table is the parts in run order, one after the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TABLES", "ResultTables", "StoredPart", "contexts_of", "symbol_chunks", "DEFAULT_CHUNK_CONTEXTS"]

TABLES = ("simulations", "forecasts")

# Contexts forecast per chunk of symbols: large enough that the engine's calls stay full and the
# per-chunk overhead (planning, one strategy call, one part file) is small; small enough that a
# chunk's working set (its rows, forecasts and arrays, a few MB a symbol) stays well under the
# model's memory at any universe size, and that the next chunk's forecast can overlap this one's
# host work.
DEFAULT_CHUNK_CONTEXTS = 16384


def contexts_of(series, keys) -> int:
    """Distinct forecast requests of one symbol's series: its distinct context lengths per key."""
    return int(np.unique(np.asarray(series.layout.context_lengths)).size) * len(keys)


def symbol_chunks(series: list, keys, contexts_per_chunk: int = DEFAULT_CHUNK_CONTEXTS) -> list[list]:
    """``series`` cut into runs of consecutive symbols of about ``contexts_per_chunk`` contexts each
    (a symbol is never split: its walk-forward contexts share forwards in the engine, and its
    stateful strategies run over all its days)."""
    if contexts_per_chunk < 1:
        raise ValueError(f"contexts_per_chunk must be >= 1, got {contexts_per_chunk}")
    chunks, current, held = [], [], 0
    for one in series:
        size = contexts_of(one, keys)
        if current and held + size > contexts_per_chunk:
            chunks.append(current)
            current, held = [], 0
        current.append(one)
        held += size
    if current:
        chunks.append(current)
    return chunks


@dataclass(frozen=True)
class StoredPart:
    """A chunk's part, in the run's folder: what ``backtest(on_part=...)`` is told of each chunk,
    in run order, once its part is there (saved, or found stored by a resumed run)."""

    index: int  # the chunk's number, 0 first
    chunks: int  # how many chunks the run has
    symbols: list  # the chunk's symbols, in run order
    files: dict[str, Path]  # {table name: its part file}, read with store.read_part
    settings: dict  # the run's settings (BacktestResult.settings)


class ResultTables:
    """The parts of ``simulations`` and ``forecasts``, in run order.

    ``store``: the run's :class:`.store.RunStore`; parts are then read from its folder (where the
    run saved them) instead of being held here.
    """

    def __init__(self, store=None):
        self.store = store
        self.chunks: list[tuple[int, list]] = []  # (chunk index, its symbols)
        self._held: dict[str, list] = {name: [] for name in TABLES}

    def add(self, index: int, symbols: list, parts: dict) -> None:
        """Record chunk ``index`` (its ``symbols`` and, without a store, its ``parts``)."""
        self.chunks.append((index, list(symbols)))
        if self.store is None:
            for name in TABLES:
                self._held[name].append(parts[name])

    @property
    def symbols(self) -> list:
        return [s for _, symbols in self.chunks for s in symbols]

    def parts(self, name: str, packed: bool = False) -> Iterator:
        """Each chunk's part of table ``name``, in run order (read one at a time from a store);
        ``packed``: a stored part as its :class:`.store.PackedFrame`."""
        if self.store is None:
            yield from self._held[name]
            return
        for index, symbols in self.chunks:
            yield self.store.load_part(index, symbols, name, packed=packed)

    def frame(self, name: str) -> pd.DataFrame:
        """The whole table ``name`` (every part, concatenated)."""
        parts = list(self.parts(name))
        if len(parts) == 1:
            return parts[0].reset_index(drop=True)
        return pd.concat(parts, ignore_index=True)

    def symbol_rows(self, name: str, symbol) -> pd.DataFrame:
        """The rows of table ``name`` for one symbol, read from its chunk's part only."""
        for position, (_, symbols) in enumerate(self.chunks):
            if symbol in symbols:
                part = self._part(name, position)
                return part[part["symbol"] == symbol]
        raise KeyError(f"symbol {symbol!r} is not in this run")

    def _part(self, name: str, position: int) -> pd.DataFrame:
        if self.store is None:
            return self._held[name][position]
        index, symbols = self.chunks[position]
        return self.store.load_part(index, symbols, name)
