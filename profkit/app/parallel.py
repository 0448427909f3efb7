"""Worker processes for the parsers: large traces are decoded block by block on every usable core.

Parsers never start processes (:mod:`profkit.parsers.registry`); they take a ``BlockMapper`` and this module
supplies one. Workers are forked (they start in milliseconds with the modules already imported), ignore Ctrl-C
(the parent alone is interrupted, and ends them) and take SIGTERM's default action; at most two blocks per worker
wait, so memory stays bounded however large the file.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from profkit.parsers.registry import BlockMapper

#: blocks queued or being decoded per worker
BACKLOG_PER_WORKER = 2


def decode_workers() -> int:
    """One worker per usable core, but none inside a worker process (a folder of traces is already analyzed one
    trace per core) or while other threads run (forking them is unsafe)."""
    if multiprocessing.parent_process() is not None or threading.active_count() > 1:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _worker_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not profkit's handler, which raises


def ordered_map(function: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """``function(item)`` for each item, computed by ``workers`` forked processes, yielded in the items' order.

    Items are taken only as the backlog allows. A worker's exception is raised here; closing the generator (or
    any exception, Ctrl-C included) ends the workers at once.
    """
    # Ctrl-C reaches the whole process group: workers ignore it from the moment they are forked
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_signals)
    finally:
        signal.signal(signal.SIGINT, interrupt)
    try:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.apply_async(function, (item,)))
            while len(pending) >= BACKLOG_PER_WORKER * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    finally:
        pool.terminate()  # done, failed or interrupted: nothing left is worth waiting for
        pool.join()


def block_mapper(workers: int | None = None) -> BlockMapper | None:
    """A mapper over ``workers`` processes (default: :func:`decode_workers`), or None when one process is all."""
    workers = decode_workers() if workers is None else workers
    return partial(ordered_map, workers=workers) if workers > 1 else None
