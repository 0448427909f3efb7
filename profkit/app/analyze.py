"""`profkit analyze`: a trace, capture folder or analysis summary -> analysis -> HTML report and JSON summary.

Reports are named after what they describe: a capture folder's after its run (``<run>.report.html`` and
``<run>.summary.json`` in the run folder, torch.profiler and nsys runs alike), any other input's after its file
(``trace.report.html`` next to ``trace.json.gz``). An input folder that is not writable (a read-only or shared
corpus) sends them to the current folder, saying so. A capture folder whose reports are already there is not
analyzed again unless ``force``: the reports are named and kept.

A folder that is not a capture folder but holds traces or capture folders (the ranks of one job, the runs of a
sweep) is analyzed item by item in parallel processes (:mod:`profkit.app.analyze_folder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from profkit.app import DETAIL_EVENTS
from profkit.app.inputs import TraceInput, analyze_input, default_report_base, resolve_input
from profkit.errors import ProfkitError
from profkit.jsonio import check_outputs, output_folder, write_text
from profkit.model.analysis import AnalysisSummary
from profkit.naming import safe_component

if TYPE_CHECKING:
    from profkit.analysis import AnalysisResult
    from profkit.parsers.tables import TraceTables

REPORT_SUFFIX = ".report.html"
SUMMARY_SUFFIX = ".summary.json"


class AnalyzeOutputs(msgspec.Struct):
    result: AnalysisResult | None  # None only when existing reports were kept and no summary holds the analysis
    html: Path | None = None
    json: Path | None = None
    kept: tuple[Path, ...] = ()  # of ``html`` and ``json``, those already there: kept, not written again
    notes: list[str] = []  # where the outputs went, when not beside the input


def report_base(source: TraceInput) -> Path:
    """The name of ``source``'s reports without suffix, beside it: ``run/<run>`` for a capture folder (the run's
    name, whichever profiler made it), else the input file's name without its trace suffix."""
    if source.metadata is not None and source.analysis is None:
        folder = source.trace.parent
        return folder / safe_component(folder.resolve().name, max_len=120)
    return default_report_base(source.trace)


def output_paths(
    source: TraceInput, html: Path | None, json_path: Path | None, write_html: bool, write_json_summary: bool
) -> tuple[Path | None, Path | None, str | None]:
    """Where the report and summary of ``source`` go: the paths given, else beside the input (the current folder
    when the input's folder is not writable); and the note saying so, if it came to that."""
    note = None
    if (write_html and html is None) or (write_json_summary and json_path is None):
        base = report_base(source)
        folder, note = output_folder(base.parent, "the reports")
        base = folder / base.name
        html = html or (base.with_name(base.name + REPORT_SUFFIX) if write_html else None)
        if json_path is None and write_json_summary:
            json_path = base.with_name(base.name + SUMMARY_SUFFIX)
    return html, json_path, note


def analyze_source(
    source: TraceInput,
    html: Path | None,
    json_path: Path | None,
    force: bool,
    tables: TraceTables | None = None,
    detail_events: int | None = DETAIL_EVENTS,
) -> AnalyzeOutputs:
    """Analyze one resolved input (``tables`` when already parsed) and write its outputs; ``detail_events`` as
    :data:`~profkit.app.DETAIL_EVENTS`."""
    check_outputs((html, json_path), source.files, force)
    result = analyze_input(source, tables, detail_events)
    outputs = AnalyzeOutputs(result)
    if html is not None:
        from profkit.report import analysis_html  # jinja2 and the templates: not loaded without a report to write

        outputs.html = write_text(html, analysis_html(result), force)
    if json_path is not None:
        outputs.json = AnalysisSummary(result=result).write(json_path, force)
    return outputs


def _stored_analysis(json_path: Path | None, html: Path | None) -> AnalysisResult | None:
    """The analysis a kept summary holds (the one given, else the one a capture wrote beside its report)."""
    from profkit.model import sniff_kind
    from profkit.model.analysis import load_analysis

    if json_path is None and html is not None and html.name.endswith(REPORT_SUFFIX):
        json_path = html.with_name(html.name[: -len(REPORT_SUFFIX)] + SUMMARY_SUFFIX)
    if json_path is None or not json_path.is_file() or sniff_kind(json_path) != AnalysisSummary.KIND:
        return None
    try:
        return load_analysis(json_path)
    except ProfkitError:  # a summary this version cannot read: the paths are named all the same
        return None


def _newer_than(output: Path, trace: Path) -> bool:
    """``output`` exists and was written after ``trace`` (a report of an older trace is not kept)."""
    try:
        return output.is_file() and output.stat().st_mtime >= trace.stat().st_mtime
    except OSError:
        return False


def analyze_path(
    path: Path,
    html: Path | None = None,
    json_path: Path | None = None,
    write_html: bool = True,
    write_json_summary: bool = False,
    force: bool = False,
    keep_existing: bool = False,
    detail_events: int | None = DETAIL_EVENTS,
) -> AnalyzeOutputs:
    """Analyze ``path`` and write its reports. ``keep_existing``: a capture folder whose default reports all exist
    (written after its trace) is not analyzed again without ``force``: they are named in the outputs, as ``kept``;
    when only some are there, the others are written."""
    source = resolve_input(path)
    defaults = html is None and json_path is None
    html, json_path, note = output_paths(source, html, json_path, write_html, write_json_summary)
    notes = [note] if note else []
    kept: tuple[Path, ...] = ()
    if keep_existing and defaults and not force and source.metadata is not None and source.analysis is None:
        kept = tuple(p for p in (html, json_path) if p is not None and _newer_than(p, source.trace))
    if kept and len(kept) == (html is not None) + (json_path is not None):  # all there: nothing to redo
        return AnalyzeOutputs(_stored_analysis(json_path, html), html, json_path, kept, notes)
    outputs = analyze_source(
        source, None if html in kept else html, None if json_path in kept else json_path, force, None, detail_events
    )
    outputs.html, outputs.json, outputs.kept, outputs.notes = html, json_path, kept, notes
    return outputs
