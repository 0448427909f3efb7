"""Trace files that must be converted before parsing: an Nsight Systems report -> its SQLite export.

Parsers never run programs; the app layer turns an ``.nsys-rep`` / ``.qdrep`` into the ``.sqlite`` that
:mod:`profkit.parsers.nsys` reads (reusing an export next to the report when it is newer) before parsing.
"""

from __future__ import annotations

from pathlib import Path

from profkit.errors import ProfkitError
from profkit.parsers.nsys import NSYS_REPORT
from profkit.parsers.registry import detect_format


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


def parsable_trace(path: Path) -> Path:
    """``path`` itself, or for an Nsight Systems report the SQLite export to parse instead."""
    path = Path(path)
    if detect_format(path) is NSYS_REPORT:
        return sqlite_for_report(path)
    return path
