"""What a path given to analyze or compare is: a trace file or a capture folder, with its metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profkit.analysis import AnalysisResult, analyze_tables
from profkit.app.nsys_export import parsable_trace
from profkit.capture.run import METADATA_FILE, TRACE_FILE
from profkit.errors import ProfkitError
from profkit.jsonio import read_json
from profkit.parsers import load_trace, trace_suffixes


@dataclass
class TraceInput:
    trace: Path
    metadata: dict[str, Any] | None
    label: str


def _metadata_of(folder: Path) -> dict[str, Any] | None:
    path = folder / METADATA_FILE
    if not path.is_file():
        return None
    metadata = read_json(path, "metadata file")
    return metadata if isinstance(metadata, dict) else None


def _trace_named_in(metadata: dict[str, Any] | None) -> str:
    files = (metadata or {}).get("files")
    name = files.get("trace") if isinstance(files, dict) else None
    return name if isinstance(name, str) and name else TRACE_FILE


def resolve_input(path: Path) -> TraceInput:
    """A trace file, or a capture folder holding its trace (``trace.json.gz`` or an nsys ``.sqlite``) and metadata."""
    path = Path(path)
    if path.is_dir():
        metadata = _metadata_of(path)
        trace = path / _trace_named_in(metadata)
        if not trace.is_file():
            raise ProfkitError(f"{path}: is a directory without a {trace.name}; pass a trace file or capture folder")
    else:
        trace = path
        metadata = _metadata_of(trace.parent) if trace.parent.is_dir() else None
        if metadata is not None and trace.name != _trace_named_in(metadata):
            metadata = None  # a metadata.json that describes another file
    if metadata:
        label = f"{metadata.get('model', '?')} {metadata.get('dtype', '?')}"
        if (metadata.get("profiler") or {}).get("tool") == "nsys":
            label += " (nsys)"
    else:
        label = default_report_base(trace).name
    return TraceInput(trace, metadata, label)


def analyze_input(source: TraceInput) -> AnalysisResult:
    return analyze_tables(load_trace(parsable_trace(source.trace)), run=source.metadata, label=source.label)


def default_report_base(trace: Path) -> Path:
    """``run/trace.json.gz`` -> ``run/trace`` (reports go next to their input)."""
    name = trace.name
    for suffix in trace_suffixes():
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return trace.with_name(name)
