"""What a path given to analyze or compare is: a trace file, a capture folder, or an analysis summary.

A trace comes with the capture metadata of its folder when there is one. An analysis summary (a JSON document
of kind ``profkit.analysis``, recognised by its content) stands for its trace: it is loaded, not re-analyzed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from profkit import naming
from profkit.app import DETAIL_EVENTS
from profkit.errors import ProfkitError
from profkit.jsonio import inside
from profkit.model import sniff_kind
from profkit.model.capture import METADATA_FILE, TRACE_FILE, CaptureMetadata

if TYPE_CHECKING:
    from profkit.analysis import AnalysisResult
    from profkit.parsers.tables import TraceTables

ANALYSIS_KIND = "profkit.analysis"


class TraceInput(msgspec.Struct):
    trace: Path  # the trace file, or the analysis summary that stands for it
    metadata: CaptureMetadata | None
    label: str
    analysis: AnalysisResult | None = None  # already analyzed (an analysis summary was given)
    notes: list[str] = []  # what was ignored (a foreign or missing metadata.json)

    @property
    def files(self) -> tuple[Path, ...]:
        """The files this input reads (no output may replace them)."""
        folder = self.trace.parent
        return (self.trace, folder / METADATA_FILE) if self.metadata is not None else (self.trace,)


def _metadata_of(folder: Path, notes: list[str], capture_folder: bool) -> CaptureMetadata | None:
    """The capture metadata of a folder; a ``metadata.json`` of some other tool is not ours: ignored, with a note.

    ``capture_folder``: the folder itself was given, so a missing ``metadata.json`` is worth a note too.
    """
    path = folder / METADATA_FILE
    if not path.exists():
        if capture_folder:
            notes.append(f"{folder} has no {METADATA_FILE}: run settings not checked")
        return None
    if not path.is_file() or sniff_kind(path) != CaptureMetadata.KIND:
        notes.append(f"{METADATA_FILE} in {folder} is not a profkit capture file: ignored, settings not checked")
        return None
    metadata = CaptureMetadata.load(path, "metadata file")
    source = f"{path}: files"
    for name in (metadata.files.trace, metadata.files.nsys_report, *metadata.files.images):
        if name is not None:
            inside(folder, name, source)  # files named in the metadata stay in their folder
    return metadata


def _from_summary(path: Path) -> TraceInput:
    from profkit.model.analysis import load_analysis

    result = load_analysis(path)
    return TraceInput(path, result.run, result.label, result)


def resolve_input(path: Path) -> TraceInput:
    """A trace file, a capture folder holding its trace (``trace.json.gz`` or an nsys ``.sqlite``) and metadata,
    or an analysis summary."""
    path = Path(path)
    notes: list[str] = []
    if path.is_dir():
        metadata = _metadata_of(path, notes, capture_folder=True)
        trace = path / (metadata.trace_file if metadata else TRACE_FILE)
        if not trace.is_file():
            raise ProfkitError(f"{path}: is a directory without a {trace.name}; pass a trace file or capture folder")
    else:
        kind = sniff_kind(path) if path.is_file() else None
        if kind == ANALYSIS_KIND:
            return _from_summary(path)
        if kind is not None:
            raise ProfkitError(
                f"{path}: is a {kind} document, not a trace: pass a trace file, a capture folder or an analysis "
                f"summary ({ANALYSIS_KIND})"
            )
        trace = path
        metadata = _metadata_of(trace.parent, notes, capture_folder=False) if trace.parent.is_dir() else None
        if metadata is not None and trace.name != metadata.trace_file:
            metadata = None  # a metadata.json that describes another file
    label = metadata.label if metadata else default_report_base(trace).name
    return TraceInput(trace, metadata, label, notes=notes)


def load_tables(source: TraceInput, detail_events: int | None = DETAIL_EVENTS) -> TraceTables:
    """The event tables of an input's trace (an ``.nsys-rep`` exported first); ``detail_events`` as
    :data:`DETAIL_EVENTS` (``None``: every event, however many)."""
    from profkit.app.nsys_export import parsable_trace
    from profkit.app.parallel import block_mapper
    from profkit.parsers import load_trace
    from profkit.parsers.tables import DetailLimit

    detail = DetailLimit(detail_events, naming.PIPELINE) if detail_events is not None else None
    return load_trace(parsable_trace(source.trace), mapper=block_mapper(), detail=detail)


def analyze_input(
    source: TraceInput, tables: TraceTables | None = None, detail_events: int | None = DETAIL_EVENTS
) -> AnalysisResult:
    """The analysis of an input: parsed (or from ``tables`` already parsed) and analyzed, or as stored in its
    summary."""
    if source.analysis is not None:
        return source.analysis
    from profkit.analysis import analyze_tables

    tables = tables or load_tables(source, detail_events)
    result = analyze_tables(tables, run=source.metadata, label=source.label)
    result.notes.extend(note for note in source.notes if note not in result.notes)
    return result


def default_report_base(trace: Path) -> Path:
    """``run/trace.json.gz`` -> ``run/trace`` (reports go next to their input)."""
    name = trace.name
    from profkit.parsers import trace_suffixes

    for suffix in (".summary.json", *trace_suffixes()):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return trace.with_name(name)
