"""Ctrl-C and SIGTERM during a long SQLite statement: the statement stops at once, the signal's exception is raised.

Python runs signal handlers between bytecodes of the main thread, so one ``GROUP BY`` over 20M rows would delay
Ctrl-C by as long as it runs. A progress handler gives Python a moment every few thousand SQLite instructions: the
signal's handler runs there and raises, which makes SQLite abort the statement; but the sqlite3 module drops an
exception raised in that callback and reports "interrupted" instead. :class:`SignalGuard` wraps the Python-level
handlers of SIGINT and SIGTERM to remember what they raised, so the reader raises that (``KeyboardInterrupt``, or
profkit's ``Terminated``) instead of a database error.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
from types import FrameType, TracebackType
from typing import Any

#: SQLite virtual-machine instructions between two chances for Python to handle a signal (well under a millisecond)
PROGRESS_STEPS = 20_000
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _nothing() -> int:
    return 0  # continue: a pending signal's handler runs on this call, and raises


def responsive(connection: sqlite3.Connection) -> sqlite3.Connection:
    """``connection`` with a progress handler, so that a signal's handler can stop a long statement."""
    connection.set_progress_handler(_nothing, PROGRESS_STEPS)
    return connection


class SignalGuard:
    """While inside: what the Python-level SIGINT/SIGTERM handlers raised, in :attr:`raised` (main thread only)."""

    def __init__(self) -> None:
        self.raised: BaseException | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        try:
            self._previous[signum](signum, frame)
        except BaseException as error:
            self.raised = error
            raise

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                previous = signal.getsignal(signum)
                if callable(previous):  # default or ignored: no Python handler to wrap (the OS acts on its own)
                    self._previous[signum] = previous
                    signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._handle:  # a handler that replaced itself (SIGTERM's) stays replaced
                signal.signal(signum, previous)
        if self.raised is not None and error is not None and error is not self.raised:
            raise self.raised from None  # the statement it stopped reported a database error: the signal's instead
