"""Trace files that must be converted before parsing: an Nsight Systems report -> its SQLite export.

Parsers never run programs; the app layer turns an ``.nsys-rep`` / ``.qdrep`` into the ``.sqlite`` that
:mod:`profkit.parsers.nsys` reads (reusing an export next to the report when it is newer) before parsing; when the
report's folder is not writable, the export goes to the current folder (where the reports go too).

A report that nsys ran on and could not read (it prints ``Exportation error: ...`` and exits 1) is bad input;
nsys missing, crashing or failing otherwise is a run failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from profkit.errors import EXIT_BAD_INPUT, EXIT_RUN_FAILED, ProfkitError
from profkit.jsonio import output_folder
from profkit.parsers.nsys_formats import NSYS_REPORT
from profkit.parsers.registry import detect_format

if TYPE_CHECKING:
    from profkit.capture.nsys.tool import ToolFailed


def sqlite_for_report(report: Path) -> Path:
    """The SQLite export of an ``.nsys-rep``: reused when newer than the report, else made with nsys."""
    from profkit.capture.nsys.tool import INSTALL_HINT, ToolFailed, export_sqlite, find_nsys

    if not report.is_file():
        raise ProfkitError(f"{report}: no such file")
    sqlite_path = report.with_suffix(".sqlite")
    if sqlite_path.is_file() and sqlite_path.stat().st_mtime >= report.stat().st_mtime:
        return sqlite_path
    folder, _note = output_folder(report.parent)  # a read-only report folder: the export goes where the reports go
    sqlite_path = folder / sqlite_path.name
    if folder != report.parent and sqlite_path.is_file() and sqlite_path.stat().st_mtime >= report.stat().st_mtime:
        return sqlite_path
    try:
        tool = find_nsys()
    except ProfkitError as error:
        raise ProfkitError(
            f"{report}: reading an .nsys-rep needs nsys to export it to SQLite, and nsys was not found: "
            f"{INSTALL_HINT}; or export it elsewhere (nsys export --type sqlite {report.name}) and analyze the .sqlite",
            EXIT_RUN_FAILED,
        ) from error
    try:
        return export_sqlite(tool, report, sqlite_path)
    except ToolFailed as error:
        sqlite_path.unlink(missing_ok=True)  # a partial export must not be reused as newer than the report
        said = _unreadable_report(error)
        if said is None:
            raise
        raise ProfkitError(
            f"{report}: nsys cannot read this report ({said}): not an Nsight Systems report, or a damaged one",
            EXIT_BAD_INPUT,
        ) from error


#: how nsys export (2022.4) starts the line saying it could not read its input
_EXPORT_ERROR = "Exportation error"


def _unreadable_report(error: ToolFailed) -> str | None:
    """What nsys said when it ran and could not read the report; ``None`` for other failures.

    A crash or a kill is not the report's fault: nsys then exits otherwise than 1 (a signal, code >= 128).
    """
    if error.returncode != 1:
        return None
    return next((line.strip() for line in error.lines if line.startswith(_EXPORT_ERROR)), None)


def parsable_trace(path: Path) -> Path:
    """``path`` itself, or for an Nsight Systems report the SQLite export to parse instead."""
    path = Path(path)
    if detect_format(path) is NSYS_REPORT:
        return sqlite_for_report(path)
    return path
