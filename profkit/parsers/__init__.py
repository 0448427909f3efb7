"""Trace files -> :class:`~profkit.parsers.tables.TraceTables`."""

from __future__ import annotations

from pathlib import Path

from profkit.errors import ProfkitError
from profkit.parsers.kineto import load_kineto
from profkit.parsers.tables import SCHEMAS, TraceInfo, TraceTables

__all__ = ["SCHEMAS", "TraceInfo", "TraceTables", "load_trace"]


def load_trace(path: Path) -> TraceTables:
    """Parse a trace file, choosing the parser by its name."""
    path = Path(path)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".sqlite", ".nsys-rep", ".qdrep")):
        raise ProfkitError(f"{path}: Nsight Systems files are not supported yet; use a Kineto .json(.gz)")
    return load_kineto(path)
