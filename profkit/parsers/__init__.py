"""Trace files -> :class:`~profkit.parsers.tables.TraceTables`."""

from __future__ import annotations

from pathlib import Path

from profkit.errors import ProfkitError
from profkit.parsers.kineto import load_kineto
from profkit.parsers.tables import SCHEMAS, TraceInfo, TraceTables

__all__ = ["SCHEMAS", "TraceInfo", "TraceTables", "load_trace"]

NSYS_REPORT_SUFFIXES = (".nsys-rep", ".qdrep")


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def sqlite_for_report(report: Path) -> Path:
    """The SQLite export of an ``.nsys-rep``: reused when newer than the report, else made with nsys."""
    from profkit.capture.nsys.tool import INSTALL_HINT, export_sqlite, find_nsys

    if not report.is_file():
        raise ProfkitError(f"{report}: no such file")
    sqlite_path = report.with_suffix(".sqlite")
    if sqlite_path.is_file() and sqlite_path.stat().st_mtime >= report.stat().st_mtime:
        return sqlite_path
    try:
        tool = find_nsys()
    except ProfkitError as error:
        raise ProfkitError(
            f"{report}: reading an .nsys-rep needs nsys to export it to SQLite, and nsys was not found: "
            f"{INSTALL_HINT}; or export it elsewhere (nsys export --type sqlite {report.name}) and analyze the .sqlite"
        ) from error
    return export_sqlite(tool, report, sqlite_path)


def load_trace(path: Path) -> TraceTables:
    """Parse a trace file: Kineto JSON (.json, .json.gz), nsys SQLite (.sqlite) or an nsys report (.nsys-rep)."""
    from profkit.parsers.nsys import load_nsys_sqlite

    path = Path(path)
    if path.name.lower().endswith(NSYS_REPORT_SUFFIXES):
        return load_nsys_sqlite(sqlite_for_report(path))
    if path.name.lower().endswith((".sqlite", ".db", ".sqlite3")) or (path.is_file() and _is_sqlite(path)):
        return load_nsys_sqlite(path)
    return load_kineto(path)
