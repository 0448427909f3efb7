"""`profkit analyze`: a trace, capture folder or analysis summary -> analysis -> HTML report and JSON summary.

A folder that is not a capture folder but holds traces or capture folders (the ranks of one job, the runs of a
sweep) is analyzed item by item in parallel processes (:mod:`profkit.app.analyze_folder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from profkit.analysis import AnalysisResult
from profkit.app.inputs import TraceInput, analyze_input, default_report_base, resolve_input
from profkit.jsonio import check_outputs, write_text
from profkit.model.analysis import AnalysisSummary
from profkit.report import analysis_html

if TYPE_CHECKING:
    from profkit.parsers.tables import TraceTables


@dataclass
class AnalyzeOutputs:
    result: AnalysisResult
    html: Path | None = None
    json: Path | None = None


def output_paths(
    source: TraceInput, html: Path | None, json_path: Path | None, write_html: bool, write_json_summary: bool
) -> tuple[Path | None, Path | None]:
    """Where the report and summary of ``source`` go: the paths given, else next to the trace."""
    base = default_report_base(source.trace)
    html = html or (base.with_name(base.name + ".report.html") if write_html else None)
    if json_path is None and write_json_summary:
        json_path = base.with_name(base.name + ".summary.json")
    return html, json_path


def analyze_source(
    source: TraceInput,
    html: Path | None,
    json_path: Path | None,
    force: bool,
    tables: TraceTables | None = None,
) -> AnalyzeOutputs:
    """Analyze one resolved input (``tables`` when already parsed) and write its outputs."""
    check_outputs((html, json_path), source.files, force)
    result = analyze_input(source, tables)
    outputs = AnalyzeOutputs(result)
    if html is not None:
        outputs.html = write_text(html, analysis_html(result), force)
    if json_path is not None:
        outputs.json = AnalysisSummary(result=result).write(json_path, force)
    return outputs


def analyze_path(
    path: Path,
    html: Path | None = None,
    json_path: Path | None = None,
    write_html: bool = True,
    write_json_summary: bool = False,
    force: bool = False,
) -> AnalyzeOutputs:
    source = resolve_input(path)
    html, json_path = output_paths(source, html, json_path, write_html, write_json_summary)
    return analyze_source(source, html, json_path, force)
