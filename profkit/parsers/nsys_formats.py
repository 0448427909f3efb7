"""The Nsight Systems formats, registered without importing their reader (:mod:`profkit.parsers.nsys`, loaded with
its first export): a Kineto trace is analyzed without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from profkit.parsers.registry import TraceFormat, register
from profkit.parsers.tables import TraceTables

SQLITE_MAGIC = b"SQLite format 3\x00"


def looks_like_sqlite(head: bytes) -> bool:
    return head.startswith(SQLITE_MAGIC)


def _load(path: Path, **options: Any) -> TraceTables:
    from profkit.parsers.nsys import load_nsys_sqlite

    return load_nsys_sqlite(path, **options)


NSYS_SQLITE = register(
    TraceFormat(
        "nsys",
        suffixes=(".sqlite", ".sqlite3", ".db"),
        sniff=looks_like_sqlite,
        load=_load,
        limits_detail=True,
    )
)
#: a report as nsys writes it; the app layer exports it to SQLite (``nsys export``) before parsing
NSYS_REPORT = register(
    TraceFormat(
        "nsys-report",
        suffixes=(".nsys-rep", ".qdrep"),
        convert_hint="an Nsight Systems report must be exported to SQLite before parsing "
        "(nsys export --type sqlite REPORT, then read the .sqlite)",
    )
)
