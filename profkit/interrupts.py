"""SIGTERM handled like Ctrl-C, so a run stopped by ``timeout``, ``docker stop`` or SLURM keeps what it measured.

Python turns SIGINT into ``KeyboardInterrupt``; :func:`sigterm_as_interrupt` makes SIGTERM raise
:class:`~profkit.errors.Terminated`, a ``KeyboardInterrupt``, so the same code paths keep the partial results
(bench trials, capture metadata and traces). A second SIGTERM while those are being written ends the process at
once, as SIGTERM normally does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from profkit.errors import Terminated


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the next SIGTERM is not caught: no run can block it
    raise Terminated()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`~profkit.errors.Terminated` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
