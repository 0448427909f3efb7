"""The library functions behind each CLI command: inputs -> parse -> analyze -> write reports.

Each returns what it wrote so the CLI can print it; none prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profkit.analysis import AnalysisResult, analyze_tables
from profkit.analysis.compare import ComparisonResult, compare_results
from profkit.capture.settings import CaptureSettings
from profkit.capture.torch_capture import METADATA_FILE, TRACE_FILE, CaptureProgress, RunRecord, run_capture
from profkit.environment import document_header
from profkit.errors import ProfkitError
from profkit.jsonio import check_writable, read_json, write_json
from profkit.parsers import load_trace
from profkit.report import analysis_html, comparison_html


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
    return analyze_tables(load_trace(source.trace), run=source.metadata, label=source.label)


def default_report_base(trace: Path) -> Path:
    """``run/trace.json.gz`` -> ``run/trace`` (reports go next to their input)."""
    name = trace.name
    for suffix in (".json.gz", ".json", ".gz", ".sqlite", ".nsys-rep", ".qdrep"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return trace.with_name(name)


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
    for target in (html, json_path):
        if target is not None:
            check_writable(target, force)
    result = analyze_input(source)
    outputs = AnalyzeOutputs(result)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(analysis_html(result), encoding="utf-8")
        outputs.html = html
    if json_path is not None:
        outputs.json = write_json(json_path, {**document_header("profkit.analysis"), **result.to_dict()})
    return outputs


@dataclass
class CompareOutputs:
    comparison: ComparisonResult
    html: Path
    json: Path | None = None


def default_compare_base(a: TraceInput, b: TraceInput, folder: Path) -> Path:
    def slug(source: TraceInput) -> str:
        if source.metadata:
            return str(source.metadata.get("dtype") or source.trace.parent.name)
        return default_report_base(source.trace).name

    return folder / f"compare_{slug(a)}_vs_{slug(b)}"


def compare_paths(
    path_a: Path,
    path_b: Path,
    html: Path | None = None,
    json_path: Path | None = None,
    write_json_summary: bool = False,
    force: bool = False,
    allow_different_setups: bool = False,
    out_dir: Path | None = None,
) -> CompareOutputs:
    a, b = resolve_input(path_a), resolve_input(path_b)
    base = default_compare_base(a, b, out_dir or Path.cwd())
    html = html or base.with_suffix(".html")
    if json_path is None and write_json_summary:
        json_path = base.with_suffix(".json")
    for target in (html, json_path):
        if target is not None:
            check_writable(target, force)
    comparison = compare_results(analyze_input(a), analyze_input(b), a.label, b.label)
    if comparison.setup_differences and not allow_different_setups:
        raise ProfkitError(
            "refusing to compare runs from different setups ("
            + "; ".join(comparison.setup_differences)
            + "): pass --force to compare anyway"
        )
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(comparison_html(comparison, str(a.trace), str(b.trace)), encoding="utf-8")
    outputs = CompareOutputs(comparison, html)
    if json_path is not None:
        outputs.json = write_json(json_path, {**document_header("profkit.comparison"), **comparison.to_dict()})
    return outputs


@dataclass
class CaptureOutputs:
    runs: list[RunRecord]
    reports: list[AnalyzeOutputs] = field(default_factory=list)
    comparisons: list[CompareOutputs] = field(default_factory=list)


def capture_and_report(
    settings: CaptureSettings, progress: CaptureProgress | None = None, analyze: bool = True
) -> CaptureOutputs:
    """Capture every dtype; analyze each run; with two or more dtypes, compare each against the first."""
    runs = run_capture(settings, progress)
    outputs = CaptureOutputs(runs)
    if not analyze:
        return outputs
    for run in runs:
        outputs.reports.append(analyze_path(run.folder, write_json_summary=True, force=settings.force))
    if len(runs) >= 2:
        first = runs[0]
        for other in runs[1:]:
            outputs.comparisons.append(
                compare_paths(
                    first.folder,
                    other.folder,
                    write_json_summary=True,
                    force=settings.force,
                    out_dir=settings.out,
                )
            )
    return outputs
