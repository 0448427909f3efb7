"""`profkit analyze`: a trace, capture folder or analysis summary -> analysis -> HTML report and JSON summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profkit.analysis import AnalysisResult
from profkit.app.inputs import analyze_input, default_report_base, resolve_input
from profkit.jsonio import check_outputs, write_text
from profkit.model.analysis import AnalysisSummary
from profkit.report import analysis_html


@dataclass
class AnalyzeOutputs:
    result: AnalysisResult
    html: Path | None = None
    json: Path | None = None


def analyze_path(
    path: Path,
    html: Path | None = None,
    json_path: Path | None = None,
    write_html: bool = True,
    write_json_summary: bool = False,
    force: bool = False,
) -> AnalyzeOutputs:
    source = resolve_input(path)
    base = default_report_base(source.trace)
    html = html or (base.with_name(base.name + ".report.html") if write_html else None)
    if json_path is None and write_json_summary:
        json_path = base.with_name(base.name + ".summary.json")
    check_outputs((html, json_path), source.files, force)
    result = analyze_input(source)
    outputs = AnalyzeOutputs(result)
    if html is not None:
        outputs.html = write_text(html, analysis_html(result), force)
    if json_path is not None:
        outputs.json = AnalysisSummary(result=result).write(json_path, force)
    return outputs
