"""Trace files -> :class:`~profkit.parsers.tables.TraceTables`, through a registry of formats.

Each parser module registers its format (name, suffixes, content sniff) with
:mod:`profkit.parsers.registry`; importing this package registers the built-in ones: Kineto JSON
(:mod:`~profkit.parsers.kineto`) and Nsight Systems SQLite (:mod:`~profkit.parsers.nsys_formats`, which also
names the ``.nsys-rep`` report as a format to export first; its reader :mod:`~profkit.parsers.nsys` is imported with
the first export read).
"""

from __future__ import annotations

from profkit.parsers import kineto, nsys_formats  # noqa: F401  (importing them registers their formats)
from profkit.parsers.registry import TraceFormat, detect_format, load_trace, trace_suffixes
from profkit.parsers.tables import SCHEMAS, TraceInfo, TraceTables

__all__ = ["SCHEMAS", "TraceFormat", "TraceInfo", "TraceTables", "detect_format", "load_trace", "trace_suffixes"]
