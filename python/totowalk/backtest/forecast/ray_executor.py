"""Scale-out on Ray: chunks of symbols, or a chunk's forecaster batches, spread over worker actors.

A run of many symbols (at least as many chunks of symbols as workers) sends each chunk whole to a
worker, which forecasts it and evaluates its strategies (``evaluate_chunks``); only the chunk's
tables come back, in run order, at most two per worker in flight. A run of a few symbols instead
spreads each chunk's forecaster batches over the workers (``compute_forecasts``), as below, and
evaluates locally.

Each worker is a Ray actor holding the run's forecaster (engine and settings sent once through
the object store; the weights too when they were built in memory, while a model loaded from a file
is loaded by each worker from that file, its digest checked), kept warm for every chunk it is
given. The chunks are the local run's own (``ForecastPlan.batches``: each series-key's walk-forward contexts stay together, so prefix
sharing still happens inside a chunk); the driver hands a chunk to whichever worker is free, so
the load balances itself, persists each result as it arrives (``out_dir`` / resume work as in a
local run) and fills the same arrays the strategies read: every output is the local code's. The
engine is batch-invariant, so the results equal a local run's bit for bit on CPU.

A worker that dies is restarted by Ray (``max_restarts``) and its unfinished chunk re-run
(``max_task_retries``); a chunk whose retries are exhausted goes to another worker.

The workers stay warm between ``backtest`` calls (``keep_warm``, the default): a call whose
forecaster is the one the workers already hold (the same engine object, with the same settings and
weights identity as ``describe()`` reports them) reuses them, so neither the actors nor the model
are created or shipped again. Warm workers keep their resources reserved until ``close()``, the end
of a ``with RayExecutor() as ex:`` block, or the executor being dropped. (An engine whose weights
are changed in place keeps its identity: call ``close()`` after such a change.) An executor that
starts new workers first gives back those another executor of this process keeps warm.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field

from ...errors import require_extra
from .plan import check_chunk_result, chunk_request, known_forecasts, run_request

__all__ = ["RayExecutor", "shipped"]


def _ray():
    return require_extra("ray", "ray", "Scale-out on Ray (executor=RayExecutor(), --ray)")


# Executors of this process holding warm workers: one that starts new workers first gives the
# others' back, so a warm executor never holds the resources another one waits for.
_WARM = weakref.WeakSet()


class _Worker:
    """The actor's body: one forecaster, many chunks."""

    def __init__(self, forecaster, threads: int):
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.forecaster = forecaster.restore() if isinstance(forecaster, _ByReference) else forecaster

    def evaluate(self, evaluate, series, context):
        """One chunk of symbols forecast and evaluated here: ``evaluate(series, forecaster, **context)``
        returns ``(part, seconds)``: its tables and its seconds per phase; only those travel back."""
        start = time.perf_counter()
        part, seconds = evaluate(series, self.forecaster, **context)
        return part, seconds, time.perf_counter() - start, f"{socket.gethostname()}:{os.getpid()}"

    def forecast(self, request):
        """``request``: a list of contexts, or ``(series, ends, outcomes)`` walk-forward requests for a
        forecaster that takes them (each series travels once, not once per context): plan.chunk_request."""
        start = time.perf_counter()
        found = run_request(self.forecaster, request)
        return found, time.perf_counter() - start, f"{socket.gethostname()}:{os.getpid()}"


@dataclass(eq=False)  # identity, not field equality: each executor owns its workers
class RayExecutor:
    """Run a backtest's forecasts on Ray workers (``tw.backtest(..., executor=RayExecutor())``).

    Parameters
    ----------
    address : None starts a local Ray (or joins the one this process already started); "auto" or
        "ray://host:port" / "host:port" joins a cluster started with ``ray start``
    num_workers : worker actors (default: one per GPU with gpus_per_worker > 0, else one per
        cpus_per_worker CPUs of the cluster)
    gpus_per_worker, cpus_per_worker : resources each worker reserves (its torch threads =
        cpus_per_worker)
    max_restarts : how often Ray restarts a worker that died (its chunk is then re-run)
    keep_warm : keep the workers, and the forecaster they hold, for the next call (see the module
        docstring); False gives them back after every call
    ship_weights : send the model's weights through the object store. By default a model
        ``load_model`` read from a file is not sent: each worker loads the same file (the driver's
        path, else the spec it was named by: a hub id or bundled preset), refused unless its sha256
        is the driver's. Models built in memory are always sent.
    """

    address: str | None = None
    num_workers: int | None = None
    gpus_per_worker: float = 0
    cpus_per_worker: int = 1
    max_restarts: int = 2
    keep_warm: bool = True
    ship_weights: bool = False
    workers: list = field(default_factory=list, repr=False)  # per-worker timings of the last run
    actors: list = field(default_factory=list, repr=False)
    _after_chunk = None  # test hook: called as hook(executor, worker_index, chunks_done_by_it)
    _warm: tuple | None = field(default=None, repr=False)  # (forecaster key, its engine) the actors hold

    def describe(self) -> dict:
        return {
            "kind": "ray",
            "address": self.address,
            "num_workers": self.num_workers,
            "gpus_per_worker": self.gpus_per_worker,
            "cpus_per_worker": self.cpus_per_worker,
        }

    def _connect(self):
        ray = _ray()
        if not ray.is_initialized():
            options = {"include_dashboard": False, "ignore_reinit_error": True, "log_to_driver": False}
            if self.address is None:
                ray.init(**options)
            else:
                ray.init(address=self.address, **options)
        return ray

    def _worker_count(self, ray) -> int:
        if self.num_workers is not None:
            if int(self.num_workers) < 1:
                raise ValueError(f"num_workers must be >= 1, got {self.num_workers}")
            return int(self.num_workers)
        resources = ray.cluster_resources()
        if self.gpus_per_worker:
            return max(1, int(resources.get("GPU", 0) // self.gpus_per_worker))
        return max(1, int(resources.get("CPU", 1) // max(1, self.cpus_per_worker)))

    def worker_count(self) -> int:
        """How many workers a run gets (starting Ray, or joining the cluster, if need be)."""
        return self._worker_count(self._connect())

    def compute_forecasts(self, plan, forecaster, *, max_batch: int, done=None, on_batch=None, progress=None):
        """:func:`..plan.compute_forecasts` with the batches run on the workers; same results."""
        found, todo = known_forecasts(plan, forecaster, done)
        chunks = list(plan.batches(max_batch, todo))
        if not chunks:
            return found
        with self._session(forecaster) as (ray, warm):
            run = _ChunkRun(self, ray, plan, chunks, forecaster, found, on_batch, progress, ship=not warm)
            run.start(self._worker_count(ray), reuse=warm)
            run.drain()
        return found

    def evaluate_chunks(self, evaluate, chunks: list, forecaster, context: dict):
        """Each chunk of symbols (``[(index, series)]``) forecast and evaluated whole on a worker with
        ``evaluate(series, forecaster, **context) -> (part, seconds)``; yields ``(index, part,
        seconds)`` in chunk order. Only the chunks' tables travel back, at most two per worker in
        flight, so the driver holds a bounded number whatever the universe."""
        with self._session(forecaster) as (ray, warm):
            run = _PartRun(self, ray, evaluate, chunks, forecaster, context, ship=not warm)
            run.start(self._worker_count(ray), reuse=warm)
            yield from run.results()

    @contextmanager
    def _session(self, forecaster):
        """The workers for ``forecaster``: the warm ones when they hold it, else new ones. Kept for the
        run's next chunk of symbols when the work succeeds; :meth:`end_run` gives them back unless
        ``keep_warm``."""
        ray = self._connect()
        count = self._worker_count(ray)
        key = _forecaster_key(forecaster)
        warm = self._warm is not None and self._warm[0] == key and len(self.actors) == count
        if not warm:
            for other in list(_WARM):  # their workers' resources may be the ones these need
                other.close()
            self.close()
        finished = False
        try:
            yield ray, warm
            finished = True
        finally:
            if finished:
                self._warm = (key, getattr(forecaster, "engine", forecaster))  # the engine kept alive: ids stay unique
                _WARM.add(self)
            else:
                self.close()

    def end_run(self) -> None:
        """The backtest call is over: its workers go back to the cluster unless they stay warm."""
        if not self.keep_warm:
            self.close()

    def close(self) -> None:
        """Give the workers' resources back (a later call starts new ones)."""
        if self.actors:
            ray = _ray()
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
        self.actors, self._warm = [], None
        _WARM.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _ByReference:
    """A forecaster travelling without its weights: each worker loads them from the file the driver
    loaded (:class:`...loading.ModelReference`, digest checked) and puts them into the engine."""

    def __init__(self, forecaster, reference):
        self.forecaster, self.reference = forecaster, reference

    def restore(self):
        engine = self.forecaster.engine
        restored = copy.copy(self.forecaster)
        restored.engine = engine.with_model(self.reference.load(device=engine.device))
        return restored


def shipped(forecaster, ship_weights: bool = False):
    """What goes through the object store to the workers: ``forecaster`` itself, or, for an engine
    whose model was loaded from a weights file still in place, the forecaster without the model and
    the file's reference (:class:`_ByReference`), unless ``ship_weights``."""
    engine = getattr(forecaster, "engine", None)
    model = getattr(engine, "model", None)
    if ship_weights or model is None or not hasattr(engine, "without_model"):
        return forecaster
    from ...loading import model_reference

    reference = model_reference(model)
    if reference is None:  # built in memory (random weights, a user's module): only its tensors say what it is
        return forecaster
    light = copy.copy(forecaster)
    light.engine = engine.without_model()
    return _ByReference(light, reference)


def _forecaster_key(forecaster) -> tuple:
    """What makes two forecasters interchangeable on a worker: the same engine (or function) object
    with the same settings and weights identity (``describe()``: a loaded model's file digest)."""
    describe = getattr(forecaster, "describe", None)
    settings = json.dumps(describe() if describe else {}, sort_keys=True, default=str)
    scoring = getattr(forecaster, "score_outcomes", None), getattr(forecaster, "score_backend", None)
    return id(getattr(forecaster, "engine", forecaster)), settings, scoring


class _ChunkRun:
    """One compute_forecasts call: chunks handed to free workers in plan order, results in place."""

    def __init__(self, executor: RayExecutor, ray, plan, chunks, forecaster, found, on_batch, progress, ship=True):
        self.executor, self.ray, self.plan, self.chunks = executor, ray, plan, chunks
        self.found, self.on_batch, self.progress = found, on_batch, progress
        self.actor_class = ray.remote(_Worker).options(
            num_cpus=executor.cpus_per_worker,
            num_gpus=executor.gpus_per_worker,
            max_restarts=executor.max_restarts,
            max_task_retries=executor.max_restarts,
        )
        self.forecaster = forecaster
        # the forecaster reaches each node once (its weights only where the workers cannot load them
        # from the driver's file); warm workers hold it already
        self.shared = ray.put(shipped(forecaster, executor.ship_weights)) if ship else None
        self.pending = list(range(len(chunks)))[::-1]  # a stack: popped in plan order
        self.running, self.failures = {}, {}

    def _new_worker(self):
        if self.shared is None:  # a warm worker died: this call ships the forecaster after all
            self.shared = self.ray.put(shipped(self.forecaster, self.executor.ship_weights))
        return self.actor_class.remote(self.shared, self.executor.cpus_per_worker)

    def start(self, count: int, reuse: bool = False) -> None:
        ex = self.executor
        if not reuse:
            ex.actors = [self._new_worker() for _ in range(count)]
        ex.workers = [{"worker": i, "host": None, "chunks": 0, "contexts": 0, "seconds": 0.0} for i in range(count)]
        for worker in range(count):
            self.submit(worker)

    def submit(self, worker: int) -> None:
        if self.pending:
            c = self.pending.pop()
            request, idx = chunk_request(self.plan, self.forecaster, self.chunks[c])
            self.running[self.executor.actors[worker].forecast.remote(request)] = (worker, c, idx)

    def _collected(self, task, worker: int, c: int):
        """The result of ``task`` (chunk ``c`` on ``worker``); None when the worker died after Ray's
        own restarts and retries: the chunk then goes back to the queue, on a new worker."""
        try:
            return self.ray.get(task)
        except self.ray.exceptions.RayActorError:
            self.failures[c] = self.failures.get(c, 0) + 1
            if self.failures[c] > self.executor.max_restarts:
                raise
            self.executor.actors[worker] = self._new_worker()
            self.pending.append(c)
            self.submit(worker)
            return None

    def drain(self) -> None:
        ex, ray = self.executor, self.ray
        while self.running:
            ready, _ = ray.wait(list(self.running), num_returns=1)
            worker, c, idx = self.running.pop(ready[0])
            result = self._collected(ready[0], worker, c)
            if result is None:
                continue
            part, seconds, host = result
            check_chunk_result(self.plan, idx, part)
            self.found.put(idx, part)
            stats = ex.workers[worker]
            stats.update(
                host=host,
                chunks=stats["chunks"] + 1,
                contexts=stats["contexts"] + len(idx),
                seconds=stats["seconds"] + seconds,
            )
            if self.on_batch is not None:
                self.on_batch(idx, part)
            if self.progress is not None:
                self.progress.update(len(idx))
            self.submit(worker)
            if ex._after_chunk is not None:
                ex._after_chunk(ex, worker, stats["chunks"])


class _PartRun(_ChunkRun):
    """One evaluate_chunks call: chunks of symbols handed to free workers in run order, each chunk's
    part yielded in run order; a worker whose result waits for an earlier chunk's gets no new work
    past two per worker, which bounds what the driver holds."""

    def __init__(self, executor, ray, evaluate, chunks, forecaster, context, ship=True):
        super().__init__(executor, ray, None, chunks, forecaster, None, None, None, ship=ship)
        self.evaluate, self.context = evaluate, context
        self.ready, self.idle = {}, []  # chunk position -> (part, seconds, worker stats); workers left waiting

    def submit(self, worker: int) -> None:
        if self.pending and len(self.ready) + len(self.running) < 2 * len(self.executor.actors):
            c = self.pending.pop()
            _, series = self.chunks[c]
            task = self.executor.actors[worker].evaluate.remote(self.evaluate, series, self.context)
            self.running[task] = (worker, c, None)
        else:
            self.idle.append(worker)

    def results(self):
        ex, ray = self.executor, self.ray
        for position, (index, series) in enumerate(self.chunks):
            while position not in self.ready:
                ready, _ = ray.wait(list(self.running), num_returns=1)
                worker, c, _ = self.running.pop(ready[0])
                result = self._collected(ready[0], worker, c)
                if result is None:
                    continue
                part, seconds, wall, host = result
                stats = ex.workers[worker]
                contexts = int(seconds.pop("contexts", 0))
                stats.update(
                    host=host,
                    chunks=stats["chunks"] + 1,
                    contexts=stats["contexts"] + contexts,
                    seconds=stats["seconds"] + wall,
                )
                self.ready[c] = (part, seconds)
                self.submit(worker)
                if ex._after_chunk is not None:
                    ex._after_chunk(ex, worker, stats["chunks"])
            part, seconds = self.ready.pop(position)
            yield index, part, seconds
            waiting, self.idle = self.idle, []
            for worker in waiting:
                self.submit(worker)
