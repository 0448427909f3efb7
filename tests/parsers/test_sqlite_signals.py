"""Ctrl-C during a long SQLite statement stops it at once and reads as Ctrl-C, not as a database error."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from profkit.parsers import nsys
from profkit.parsers.sqlite_signals import SignalGuard, responsive
from tests.nsysbuilder import nsys_diffusion

#: a statement that runs for minutes unless stopped
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT count(*) FROM c"


def _interrupt_soon() -> threading.Timer:
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_a_signal_stops_a_statement_but_the_sqlite3_module_reports_a_database_error() -> None:
    connection = responsive(sqlite3.connect(":memory:"))
    timer = _interrupt_soon()
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):  # the KeyboardInterrupt is dropped
        connection.execute(ENDLESS).fetchone()
    timer.join()


def test_the_guard_raises_the_signal_s_own_exception() -> None:
    connection = responsive(sqlite3.connect(":memory:"))
    timer = _interrupt_soon()
    with pytest.raises(KeyboardInterrupt), SignalGuard() as guard:
        connection.execute(ENDLESS).fetchone()
    timer.join()
    assert isinstance(guard.raised, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_ctrl_c_in_a_long_statement_of_the_nsys_reader_is_ctrl_c(tmp_path: Path, monkeypatch) -> None:
    path = nsys_diffusion(steps=2).write(tmp_path / "small.sqlite")
    query = nsys._query

    def slow_query(connection: sqlite3.Connection, *args):  # as a GROUP BY over a huge table would be
        connection.execute(ENDLESS).fetchone()
        return query(connection, *args)

    monkeypatch.setattr(nsys, "_query", slow_query)
    timer = _interrupt_soon()
    with pytest.raises(KeyboardInterrupt):  # not "profkit: error: cannot read ..." nor minutes later
        nsys.load_nsys_sqlite(path)
    timer.join()
