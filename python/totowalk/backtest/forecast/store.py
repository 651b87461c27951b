"""Incremental results of a backtest run in a folder, so an interrupted run can resume.

Layout of a results folder::

    manifest.json            format tag, settings fingerprint, the settings themselves, and the
                             digest of each symbol's prices
    forecast_batches.jsonl   one line per completed forecaster batch: request ids, point, band, and
                             the exact pit and crps of each forecast when the forecaster gives them
    parts/chunk-NNNNN-T.pkl  per completed chunk of symbols and table T (simulations, forecasts): the
                             chunk's symbols, then its rows of that table (.tables.ResultTables)

The forecast journal is append-only and flushed after every line; a crash can leave at most a torn
last line, which resume discards (that batch is recomputed). A part is written whole and then moved
into place, so it is complete or absent; a resumed run reads a chunk's part instead of computing
it. Once a run's outputs are written, :meth:`RunStore.compact` removes both (the final tables hold
everything they held). A folder whose manifest is missing, unreadable or carries another
fingerprint is refused with :class:`RunStoreError`.

Parts are pickles (exact dtypes, fast), with each column whose cells are one-dimensional arrays
of one dtype (the daily values) packed into one flat array and its offsets: a small array a cell
pickles a hundred times slower than its values. A folder is trusted as the code that wrote it is,
so resume only folders you made.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..inputs.frames import float64_columns
from .forecasters import Forecasts

FORMAT = "totowalk-backtest-run"
FORMAT_VERSION = 3  # 3: array cells packed per column; 2: one part file per chunk of symbols (1: a row journal)
MANIFEST = "manifest.json"
FORECASTS = "forecast_batches.jsonl"
PARTS = "parts"


class RunStoreError(RuntimeError):
    """A results folder that cannot be used: corrupt, foreign, or not resumable as asked."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a stored run, carrying how much is saved so the caller can say how to go on."""

    def __init__(self, progress: str, folder):
        super().__init__(f"{progress} in {folder}; resume=True continues")
        self.progress, self.folder = progress, folder


def json_default(value):
    """JSON encoder hook for numpy scalars/arrays and pandas timestamps."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a results journal")


def fingerprint(settings: dict, data_digests: dict) -> str:
    """sha256 over the settings that change results and the digest of each symbol's prices."""
    blob = json.dumps({"settings": settings, "data": data_digests}, sort_keys=True, default=json_default)
    return hashlib.sha256(blob.encode()).hexdigest()


def index_text(index) -> str:
    """``",".join(map(str, index))``, the index's part of :func:`frame_digest` (stored run folders
    hold digests of it); for a date index of whole seconds without time zone, years 1000 to 9999
    (str of each Timestamp is then "YYYY-MM-DD HH:MM:SS"), numpy writes the same text 9x faster."""
    if isinstance(index, pd.DatetimeIndex) and index.tz is None and len(index) and not index.hasnans:
        seconds = index.to_numpy().astype("datetime64[s]")
        years = index.year
        if (seconds == index.to_numpy()).all() and years.min() >= 1000 and years.max() <= 9999:
            return ",".join(np.datetime_as_string(seconds, unit="s").tolist()).replace("T", " ")
    return ",".join(map(str, index))


def frame_digest(frame) -> str:
    """sha256 of a validated price frame's index labels and float64 OHLC(V) values."""
    h = hashlib.sha256()
    h.update(index_text(frame.index).encode())
    columns = list(frame.columns)
    for col, values in zip(columns, float64_columns(frame, columns)):
        h.update(col.encode())
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def _flatten(value, prefix: str = "") -> dict:
    """``{"a.b": leaf}`` of nested dicts, so a difference is named down to the setting."""
    if isinstance(value, dict) and value:
        out = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def settings_differences(stored: dict, now: dict) -> list[str]:
    """``"name was X, now Y"`` for every setting that differs between two runs."""
    a, b = _flatten(stored), _flatten(now)
    missing = object()

    def text(v):
        return "absent" if v is missing else json.dumps(v, default=json_default, sort_keys=True)

    def short(t):  # digests and long lists: enough to tell them apart
        return t if len(t) <= 40 else t[:36] + "…" + t[-1]

    out = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, missing), b.get(key, missing)
        if text(old) != text(new):
            out.append(f"{key} was {short(text(old))}, now {short(text(new))}")
    return out


def data_differences(stored, now) -> list[str]:
    """Symbols whose price digest differs (empty when either side is unknown)."""
    if not isinstance(stored, dict) or not isinstance(now, dict):
        return []
    return [s for s in sorted(set(stored) | set(now)) if stored.get(s) != now.get(s)]


class RunStore:
    """Append-only journal of one run's forecasts and result rows in ``folder``."""

    def __init__(self, folder, fingerprint_hex: str, settings: dict, *, resume: bool, data: dict | None = None):
        self.folder = Path(folder)
        self.fingerprint = fingerprint_hex
        self.data = data  # {symbol: frame digest}, stored so a refusal can name the symbol
        self._journal: list | None = None  # the forecast journal as found at the start, read once
        manifest = self.folder / MANIFEST
        if self.folder.exists() and not self.folder.is_dir():
            raise RunStoreError(f"results path {self.folder} exists and is not a folder")
        existing = self.folder.is_dir() and any(self.folder.iterdir())
        if existing:
            if not resume:
                raise RunStoreError(
                    f"results folder {self.folder} is not empty; pass --resume (resume=True) to "
                    "continue the run stored there, or choose an empty folder"
                )
            self._check_manifest(manifest, settings)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            body = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "fingerprint": fingerprint_hex,
                "settings": settings,
                "data": data,
            }
            tmp = manifest.with_suffix(".tmp")
            tmp.write_text(json.dumps(body, indent=2, default=json_default))
            os.replace(tmp, manifest)

    def _check_manifest(self, manifest: Path, settings: dict) -> None:
        if not manifest.is_file():
            raise RunStoreError(
                f"{self.folder} is not a totowalk results folder (no {MANIFEST}); refusing to resume into it"
            )
        try:
            body = json.loads(manifest.read_text())
        except (OSError, ValueError) as err:
            raise RunStoreError(f"corrupt {manifest}: {err}") from err
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise RunStoreError(
                f"{manifest} is not a totowalk backtest manifest (format "
                f"{body.get('format') if isinstance(body, dict) else None!r})"
            )
        if body.get("format_version") != FORMAT_VERSION:
            raise RunStoreError(
                f"{manifest} has format_version {body.get('format_version')!r}; this totowalk reads {FORMAT_VERSION}"
            )
        if body.get("fingerprint") != self.fingerprint:
            differ = settings_differences(body.get("settings") or {}, settings)
            differ += [f"price data of symbol {s!r}" for s in data_differences(body.get("data"), self.data)]
            what = "; ".join(differ) if differ else "the price data differ"
            raise RunStoreError(
                f"{self.folder} holds a different run ({what}); resume it with the same "
                "settings and data, or choose an empty folder"
            )

    # -- journals ---------------------------------------------------------------------------

    def _read_journal(self, name: str) -> list[dict]:
        path = self.folder / name
        if not path.is_file():
            return []
        text = path.read_text()
        lines = text.split("\n")
        torn = lines.pop()  # text after the last newline: empty, or a line cut by a crash
        out = []
        for number, line in enumerate(lines, 1):
            try:
                out.append(json.loads(line))
            except ValueError as err:
                raise RunStoreError(f"corrupt {path}, line {number}: {err}") from err
        if torn:
            # rewrite without the torn tail so later appends start on a fresh line
            path.write_text("".join(line + "\n" for line in lines))
        return out

    def _append(self, name: str, record: dict) -> None:
        line = json.dumps(record, default=json_default, allow_nan=True)
        with open(self.folder / name, "a") as fh:
            fh.write(line + "\n")
            fh.flush()

    def load_forecasts(self, request_ids: list[str], scored: bool = False) -> tuple[np.ndarray, Forecasts]:
        """Stored results for the given request ids: ``(mask (U,), Forecasts of (U,))``.

        ``scored``: the run scores its forecasts, so a batch stored without its pit and crps counts
        as not done (forecast again, its scores with it)."""
        where = {rid: i for i, rid in enumerate(request_ids)}
        mask = np.zeros(len(request_ids), dtype=bool)
        found = Forecasts.unknown(len(request_ids), scored)
        if self._journal is None:  # batches appended by this process are never asked for again
            self._journal = self._read_journal(FORECASTS)
        for number, rec in enumerate(self._journal, 1):
            fields = self._batch_fields(rec, number, scored)
            if fields is None:
                continue
            ids, values = fields[0], fields[1:]
            rows = np.array([where.get(rid, -1) for rid in ids], dtype=np.int64)
            known = rows >= 0  # a batch of another chunk of symbols
            rows = rows[known]
            values = [np.asarray(v)[known] for v in values]
            mask[rows] = True
            for target, stored in zip((found.point, found.band, found.pit, found.crps), values):
                target[rows] = stored
        return mask, found

    def _batch_fields(self, rec: dict, number: int, scored: bool) -> tuple | None:
        """(ids, point, band[, pit, crps]) of one stored batch; None for an unscored batch of a scored run."""
        names = ("ids", "point", "band") + (("pit", "crps") if scored else ())
        if scored and isinstance(rec, dict) and "pit" not in rec:
            return None
        try:
            fields = tuple(rec[name] for name in names)
            if len({len(f) for f in fields}) != 1:
                raise ValueError(f"{', '.join(names)} differ in length")
        except (KeyError, TypeError, ValueError) as err:
            raise RunStoreError(f"corrupt {self.folder / FORECASTS}, line {number}: {err}") from err
        return fields

    def append_forecasts(self, request_ids: list[str], found: Forecasts) -> None:
        """Persist one completed batch (float32 and float64 values survive the JSON round trip exactly)."""
        record = {
            "ids": list(request_ids),
            "point": [float(x) for x in found.point],
            "band": [float(x) for x in found.band],
        }
        if found.scored:
            record.update(pit=[float(x) for x in found.pit], crps=[float(x) for x in found.crps])
        self._append(FORECASTS, record)

    def part_file(self, index: int, name: str) -> Path:
        """Where chunk ``index``'s part of table ``name`` is (or will be) stored."""
        return self.folder / PARTS / f"chunk-{index:05d}-{name}.pkl"

    def has_part(self, index: int, symbols: list, names) -> bool:
        """Whether chunk ``index`` of exactly these ``symbols`` is stored, every table of ``names``
        (another chunking of the symbols, e.g. a different contexts_per_chunk, is computed again).
        Reads only each file's symbols, not its table."""
        paths = [self.part_file(index, name) for name in names]
        return all(p.is_file() for p in paths) and all(read_part(p)[0] == list(symbols) for p in paths)

    def save_part(self, index: int, symbols: list, tables: dict) -> None:
        """Store chunk ``index``'s ``tables`` ({name: DataFrame}), each written whole, then moved into
        place: its symbols first, then the table, so the symbols read back alone."""
        for name, table in tables.items():
            path = self.part_file(index, name)
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_name(path.name + ".partial")
            with open(tmp, "wb") as fh:
                pickle.dump(list(symbols), fh, protocol=pickle.HIGHEST_PROTOCOL)
                pickle.dump(pack_array_cells(table), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)

    def load_part(self, index: int, symbols: list, name: str, packed: bool = False):
        """Table ``name`` of stored chunk ``index`` (which must hold ``symbols``); ``packed``: as a
        :class:`PackedFrame`, its array cells not unpacked."""
        path = self.part_file(index, name)
        stored, table = read_part(path, table=True, packed=packed)
        if stored != list(symbols):
            raise RunStoreError(f"{path} holds symbols {stored}, not {list(symbols)}")
        return table

    def compact(self) -> None:
        """Remove the forecast journal and the parts once the final tables hold what they held; the
        manifest stays, naming the run."""
        shutil.rmtree(self.folder / PARTS, ignore_errors=True)
        (self.folder / FORECASTS).unlink(missing_ok=True)


def read_part(path: Path, table: bool = False, packed: bool = False) -> tuple:
    """(symbols, table) of a part file (:meth:`RunStore.save_part`); the table None unless asked for,
    a :class:`PackedFrame` where ``packed``."""
    try:
        with open(path, "rb") as fh:
            symbols = pickle.load(fh)
            frame = PackedFrame(*pickle.load(fh)) if table else None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError) as err:
        raise RunStoreError(f"corrupt {path}: {err}; delete it to compute that chunk again") from err
    if not isinstance(symbols, list):
        raise RunStoreError(f"corrupt {path}: not a part of a totowalk run; delete it to compute that chunk again")
    return symbols, (frame.frame() if frame is not None and not packed else frame)


class PackedFrame(NamedTuple):
    """A stored part as :func:`pack_array_cells` left it: ``rest`` (the columns of plain cells) and
    ``packed`` ({column: (position, values, offsets)}). A writer that takes the packed columns as
    they are (Parquet's lists) skips making an array a cell; :meth:`frame` makes them."""

    rest: pd.DataFrame
    packed: dict

    def frame(self) -> pd.DataFrame:
        return unpack_array_cells(self.rest, self.packed)


def pack_array_cells(frame) -> tuple:
    """``(frame, packed)``: ``frame`` without its columns whose every cell is a one-dimensional
    numpy array of one dtype, and ``packed`` {column: (position, values, offsets)} holding them
    (cell i is ``values[offsets[i]:offsets[i + 1]]``)."""
    packed = {}
    for position, column in enumerate(frame.columns):
        cells = frame[column].to_numpy() if frame[column].dtype == object else None
        if cells is None or not len(cells) or not _one_dimensional_arrays(cells):
            continue
        lengths = np.fromiter(map(len, cells), np.int64, count=len(cells))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        packed[column] = (position, np.concatenate(cells), offsets)
    return (frame.drop(columns=list(packed)) if packed else frame), packed


def unpack_array_cells(frame, packed: dict):
    """The frame :func:`pack_array_cells` was given: each packed column back in its place, its cells
    views of one array."""
    if not packed:
        return frame
    frame = frame.copy()
    for column, (position, values, offsets) in sorted(packed.items(), key=lambda item: item[1][0]):
        cells = np.empty(len(offsets) - 1, dtype=object)
        for i, (a, b) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist())):
            cells[i] = values[a:b]  # one at a time: a list of equal arrays would broadcast as 2-D
        frame.insert(position, column, cells)
    return frame


def _one_dimensional_arrays(cells) -> bool:
    first = cells[0]
    if not isinstance(first, np.ndarray) or first.ndim != 1:
        return False
    dtype = first.dtype
    return all(type(c) is np.ndarray and c.ndim == 1 and c.dtype == dtype for c in cells)
