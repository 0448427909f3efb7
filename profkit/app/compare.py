"""`profkit compare`: two runs (traces, capture folders or analysis summaries) -> comparison -> HTML and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profkit.analysis.compare import ComparisonResult, compare_results
from profkit.app.inputs import TraceInput, analyze_input, default_report_base, resolve_input
from profkit.errors import SetupMismatch
from profkit.jsonio import check_outputs, write_text
from profkit.model.comparison import ComparisonDocument
from profkit.model.compat import isolation_warning
from profkit.naming import safe_component
from profkit.report import comparison_html


@dataclass
class CompareOutputs:
    comparison: ComparisonResult
    html: Path
    json: Path | None = None


def default_compare_base(a: TraceInput, b: TraceInput, folder: Path) -> Path:
    """``folder/compare_<A>_vs_<B>``: each side named by its dtype or file, as one safe file-name part."""

    def slug(source: TraceInput) -> str:
        if source.metadata is not None:
            name = source.metadata.dtype or source.trace.parent.name
        else:
            name = default_report_base(source.trace).name
        return safe_component(name, max_len=60)

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
    html = html or base.with_name(base.name + ".html")  # not with_suffix: a dot in a name is not a suffix
    if json_path is None and write_json_summary:
        json_path = base.with_name(base.name + ".json")
    check_outputs((html, json_path), (*a.files, *b.files), force)
    comparison = compare_results(analyze_input(a), analyze_input(b), a.label, b.label)
    if comparison.setup_differences and not allow_different_setups:
        raise SetupMismatch("refusing to compare runs from different setups", comparison.setup_differences)
    warning = isolation_warning(comparison.setting_differences)
    if warning is not None and warning not in comparison.notes:  # more than the one setting under test differs
        comparison.notes.append(warning)
    report = comparison_html(comparison, str(a.trace), str(b.trace))
    outputs = CompareOutputs(comparison, write_text(html, report, force))
    if json_path is not None:
        outputs.json = ComparisonDocument(result=comparison).write(json_path, force)
    return outputs
