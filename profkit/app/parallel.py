"""Worker processes for the parsers: large traces are decoded block by block on every usable core.

Parsers never start processes (:mod:`profkit.parsers.registry`); they take a ``BlockMapper`` and this module
supplies one. Workers are forked (they start in milliseconds with the modules already imported), ignore Ctrl-C
(the parent alone is interrupted, and ends them) and take SIGTERM's default action; at most two blocks per worker
wait, so memory stays bounded however large the file.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from profkit.errors import EXIT_RUN_FAILED, ProfkitError
from profkit.parsers.registry import BlockMapper

if TYPE_CHECKING:  # the process pool is imported when a trace is large enough to use it
    from concurrent.futures import Future, ProcessPoolExecutor

#: blocks queued or being decoded per worker
BACKLOG_PER_WORKER = 2


def decode_workers() -> int:
    """One worker per usable core, but none inside a worker process (a folder of traces is already analyzed one
    trace per core), while other threads run (forking them is unsafe) or where processes cannot be forked."""
    # a worker has multiprocessing imported (forked from a parent that had): not imported, not a worker
    processes = sys.modules.get("multiprocessing")
    if (processes is not None and processes.parent_process() is not None) or threading.active_count() > 1:
        return 1
    if not hasattr(os, "fork"):  # Windows
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _worker_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not profkit's handler, which raises


def ordered_map(function: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """``function(item)`` for each item, computed by ``workers`` forked processes, yielded in the items' order.

    Items are taken only as the backlog allows. A worker's exception is raised here, and a worker that died (killed,
    out of memory) is one :class:`ProfkitError`, never a wait; closing the generator (or any exception, Ctrl-C
    included) ends the workers at once.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_signals)
    pending: deque[Future[Any]] = deque()
    forked = finished = False
    try:
        for item in items:
            pending.append(_submit(pool, function, item, first=not forked))
            forked = True
            while len(pending) >= BACKLOG_PER_WORKER * workers:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
        finished = True
    finally:
        _end(pool, finished)


def _submit(pool: ProcessPoolExecutor, function: Callable[[Any], Any], item: Any, first: bool) -> Future[Any]:
    if not first:
        return pool.submit(function, item)
    # the first submit forks the workers; Ctrl-C reaches the whole process group, so they ignore it from birth
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return pool.submit(function, item)
    finally:
        signal.signal(signal.SIGINT, interrupt)


def _result(future: Future[Any]) -> Any:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool:
        raise ProfkitError(
            "a worker process decoding the trace ended abruptly (killed, or out of memory)", EXIT_RUN_FAILED
        ) from None


def _end(pool: ProcessPoolExecutor, finished: bool) -> None:
    if not finished:  # failed or interrupted: the blocks being decoded are not worth waiting for
        for worker in list((getattr(pool, "_processes", None) or {}).values()):
            worker.terminate()
    # the executor's own thread reaps the workers (one reaper: a second one would leave stale process records)
    pool.shutdown(wait=True, cancel_futures=True)


def block_mapper(workers: int | None = None) -> BlockMapper | None:
    """A mapper over ``workers`` processes (default: :func:`decode_workers`), or None when one process is all."""
    workers = decode_workers() if workers is None else workers
    return partial(ordered_map, workers=workers) if workers > 1 else None
