"""The run's two large tables, and the forecast plots of its first symbols, written by a separate
process while the run computes its later chunks.

At universe scale the files written after the run take a large share of it: 500 symbols x 250
simulations on 2 cores wrote their tables in 4.7 s and their plots in 5.3 s after a 45 s backtest,
and on a card, whose forecast of the same run takes a few seconds, they would be most of the run.
Each chunk's rows are in the run's folder as soon as they are made (the resume journal's parts,
backtest/forecast/store.py), so another process can read them there, append them to the final
tables and draw the forecast plots of the symbols among the first ``plot_symbols`` while the run
goes on. This process only sends it the parts' file names (``backtest(on_part=...)``): none of the
writing takes this process' GIL or its cores.

:func:`.files.write_outputs` given the writer (``background=``) waits for it and moves its files
into place; the files hold the bytes ``write_outputs`` writes itself, because they are made by the
same code (:class:`.files.TableFile`, :func:`.plots.plot_forecast_rows`) from the same parts in the
same order (tests/test_background_outputs.py). Anything unexpected (the process died or failed, a
chunk it was not told of, another folder, format or plot count asked of ``write_outputs``) and
``write_outputs`` writes everything itself, as without it, after a warning.

The process starts with the first part of a run of several chunks ("auto": on a host of
:data:`...devices.SPARE_CORES` cores or more; "on": whenever told of a part; "off": never). It imports totowalk
(torch included) as any spawned process does: about two seconds of one core and 300 MB, which
a run of one chunk or a 2-core host would pay without gaining (bench/RESULTS.md).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ... import devices
from ...memory import release_free_memory
from ..forecast.store import read_part
from ..forecast.tables import TABLES, StoredPart
from .files import TableFile, partial_of, settings_table_format, table_file, table_format
from .html import MAX_FORECAST_CHARTS
from .plots import forecast_plot_name, plot_forecast_rows

__all__ = ["BackgroundOutputs", "WHEN", "Written"]

WHEN = ("auto", "on", "off")
_POLL_S = 0.5  # how often a wait checks that the process is still alive


@dataclass
class Written:
    """What the process wrote: partial files, moved into place by ``write_outputs``."""

    tables: dict[str, TableFile]  # {table name: its finished partial file}
    plots: list[tuple[Path, Path]] = field(default_factory=list)  # (partial, final) in run order
    seconds: float = 0.0  # the process' own CPU seconds
    peak_rss_mib: float = 0.0  # the process' peak resident memory

    def commit_tables(self) -> list[Path]:
        """Move the tables into place (simulations, forecasts)."""
        return [self.tables[name].commit() for name in TABLES]

    def commit_plots(self) -> list[Path]:
        """Move the plots into place, in run order."""
        for partial, final in self.plots:
            os.replace(partial, final)
        return [final for _, final in self.plots]


class BackgroundOutputs:
    """A writer process for the run writing into ``out_dir``: pass :meth:`part_saved` as
    ``backtest(on_part=...)``, then this object to ``write_outputs(background=...)``; call
    :meth:`close` when done (or interrupted): it stops the process and removes its partial files."""

    def __init__(self, out_dir, tables: str = "auto", plot_symbols: int | None = MAX_FORECAST_CHARTS, when="auto"):
        if when not in WHEN:
            raise ValueError(f"when must be one of {WHEN}, got {when!r}")
        self.out = Path(out_dir)
        self.asked, self.plot_symbols, self.when = tables, plot_symbols, when
        self.format: str | None = None
        self.told: list[int] = []  # the chunk indices sent, in order
        self.failure: str | None = None
        self._process = self._commands = self._replies = None

    # -- the run's side ----------------------------------------------------------------------

    def part_saved(self, part: StoredPart) -> None:
        """``backtest``'s ``on_part``: start the process on the first part where it pays, then send
        it each part's files."""
        if self.failure is not None or (self._process is None and not self._start(part)):
            return
        try:
            self._commands.put((part.index, list(part.symbols), {n: str(p) for n, p in part.files.items()}))
            self.told.append(part.index)
        except (OSError, ValueError) as err:  # the queue is gone: write_outputs writes everything
            self.failure = f"could not send chunk {part.index}: {err}"

    def _start(self, part: StoredPart) -> bool:
        if part.index != 0 or self.when == "off" or self.told:
            return False  # a writer starts with the run's first part, or not at all
        if self.when == "auto" and (part.chunks < 2 or devices.host_cores() < devices.SPARE_CORES):
            return False
        self.format = settings_table_format(part.settings, self.asked)[0]
        self._spawn(part)
        return True

    def _spawn(self, part: StoredPart) -> None:
        context = multiprocessing.get_context("spawn")  # nothing of this process' threads or card
        self._commands, self._replies = context.Queue(), context.Queue()
        self._process = context.Process(
            target=_write,
            args=(
                self._commands,
                self._replies,
                str(self.out),
                self.format,
                self.plot_symbols,
                part.settings["profile"],
            ),
            name="totowalk-outputs",
            daemon=True,  # never outlives the run
        )
        self._process.start()

    # -- write_outputs' side ------------------------------------------------------------------

    def finish(self, result, out_dir, tables: str, plot_symbols, bar=None) -> Written | None:
        """Wait for the process to write every part it was sent; its files, or None (with a
        warning where it was started) when ``write_outputs`` must write them itself."""
        if self._process is None:
            return None
        reason = self._mismatch(result, out_dir, tables, plot_symbols) or self.failure
        written = None
        if reason is None:
            written, reason = self._wait(bar)
        if written is None:
            warnings.warn(f"the outputs process' files are not used ({reason}); writing them here", stacklevel=3)
            self.close()
        return written

    def _mismatch(self, result, out_dir, tables, plot_symbols) -> str | None:
        chunks = [index for index, _ in getattr(getattr(result, "tables", None), "chunks", [])]
        if Path(out_dir).resolve() != self.out.resolve():
            return f"it wrote into {self.out}, not {out_dir}"
        fmt = table_format(result, tables)[0]
        if fmt != self.format:
            return f"it wrote {self.format} tables, not {fmt}"
        if plot_symbols != self.plot_symbols:
            return f"it drew the plots of {self.plot_symbols} symbols, not {plot_symbols}"
        if chunks != self.told:
            return f"it was sent chunks {self.told[:5]}..., the result has {chunks[:5]}..."
        return None

    def _wait(self, bar) -> tuple[Written | None, str | None]:
        self._commands.put(None)  # no more parts: finish the files
        while True:
            try:
                message = self._replies.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._process.is_alive():
                    return None, f"it stopped with exit code {self._process.exitcode}"
                continue
            kind, body = message
            if kind == "part":
                if bar is not None:
                    bar.update(1)
            elif kind == "done":
                self._process.join()
                self._process = None
                return body, None
            else:
                return None, f"it failed: {body}"

    def close(self) -> None:
        """Stop the process if it runs (an interrupted or failed run) and remove its partial files."""
        process, self._process = self._process, None
        if process is not None:
            if process.is_alive():
                process.terminate()
                self._commands.cancel_join_thread()  # what it was not sent is dropped: exit does not wait on it
            process.join(timeout=10)
        if self.format is not None:
            for pattern in (f"*.{self.format}.partial", "forecast_vs_actual_*.png.partial"):
                for path in self.out.glob(pattern):
                    path.unlink(missing_ok=True)


def _write(commands, replies, out: str, fmt: str, plot_symbols: int | None, profile: str) -> None:
    """The process: each part sent, appended to the tables (and its first symbols' plots drawn),
    until None; then the files' names back, or the failure's traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's process handles Ctrl-C, and stops this one
    folder = Path(out)
    try:
        files = {name: table_file(folder, name, fmt) for name in TABLES}
        plots: list[tuple[Path, Path]] = []
        while (message := commands.get()) is not None:
            index, symbols, parts = message
            for name in TABLES:
                stored, table = read_part(Path(parts[name]), table=True, packed=True)
                if stored != symbols:
                    raise RuntimeError(f"{parts[name]} holds symbols {stored[:3]}..., not {symbols[:3]}...")
                files[name].append(table)
                if name == "forecasts":
                    table = table.frame()
                    for symbol in symbols:
                        if plot_symbols is not None and len(plots) >= plot_symbols:
                            break
                        final = folder / forecast_plot_name(symbol)
                        plots.append((partial_of(final), final))
                        plot_forecast_rows(table[table["symbol"] == symbol], symbol, profile, plots[-1][0])
                del table
                release_free_memory()
            replies.put(("part", index))
        for table in files.values():
            table.close()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        peak = usage.ru_maxrss / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)
        replies.put(("done", Written(files, plots, usage.ru_utime + usage.ru_stime, peak)))
    except Exception:  # anything at all: the run's process writes the files itself
        replies.put(("error", traceback.format_exc(limit=4)))
