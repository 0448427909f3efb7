"""`profkit compare`: two runs (traces, capture folders or analysis summaries) -> comparison -> HTML and JSON.

The outputs are named after both runs (:func:`compare_name`: the model and settings they share, then what
differs) and go beside them when they live in one folder (a capture's ``--out``), else in the current folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from profkit.analysis.compare import ComparisonResult, compare_results
from profkit.app.analyze import report_base
from profkit.app.inputs import TraceInput, analyze_input, resolve_input
from profkit.errors import SetupMismatch
from profkit.jsonio import check_outputs, output_folder, write_text
from profkit.model.capture import METADATA_FILE
from profkit.model.comparison import ComparisonDocument
from profkit.model.compat import isolation_warning
from profkit.naming import safe_component
from profkit.report import comparison_html


@dataclass
class CompareOutputs:
    comparison: ComparisonResult
    html: Path
    json: Path | None = None
    notes: list[str] = field(default_factory=list)  # where the outputs went, when not beside the runs


def compare_name(name_a: str, name_b: str) -> str:
    """``compare_<shared>_<A>_vs_<B>_<shared>``: two run names (``tiny-sd_fp32_10steps_64x64_b1``) as one safe file
    name that keeps the model and settings both share and says what differs, in run-name order."""
    if name_a == name_b:
        return safe_component(f"compare_{name_a}_vs_{name_b}", max_len=180)
    a, b = name_a.split("_"), name_b.split("_")
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = [part for part in ("_".join(a[head : len(a) - tail]), "vs", "_".join(b[head : len(b) - tail])) if part]
    parts = [*a[:head], *middle, *a[len(a) - tail :]]
    return safe_component("_".join(["compare", *parts]), max_len=180)


def side_name(source: TraceInput) -> str:
    """What names one side: a capture's run name from its metadata (model, dtype, settings, knobs), else the
    input's file name without its suffixes."""
    metadata = source.metadata
    if metadata is not None and metadata.settings is not None:
        from profkit.capture.settings import run_name

        s = metadata.settings
        name = run_name(s.model, metadata.dtype or "run", s.steps, s.height, s.width, s.batch, s.knobs.tag)
    else:
        name = report_base(source).name
    return safe_component(name, max_len=120)


def _home(source: TraceInput) -> Path:
    """The folder a run lives in: a capture folder's parent (the capture's ``--out``), else the input's folder."""
    folder = source.trace.parent
    if source.metadata is not None and (folder / METADATA_FILE).is_file():
        return folder.parent
    return folder


def default_compare_base(a: TraceInput, b: TraceInput, folder: Path | None = None) -> tuple[Path, str | None]:
    """``folder/compare_...`` (see :func:`compare_name`): by default beside the two runs when they live in one
    folder (runs of one capture), else in the current folder; never in a folder that is not writable (then the
    current folder, and the note saying so)."""
    name_a, name_b = side_name(a), side_name(b)
    if name_a == name_b:  # the same run name in two places: the folders tell them apart
        name_a, name_b = f"{_home(a).resolve().name}-{name_a}", f"{_home(b).resolve().name}-{name_b}"
    note = None
    if folder is None:
        homes = {_home(a).resolve(), _home(b).resolve()}
        folder, note = output_folder(homes.pop(), "the comparison") if len(homes) == 1 else (Path.cwd(), None)
    return folder / compare_name(name_a, name_b), note


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
    base, note = default_compare_base(a, b, out_dir)
    given = html is not None and (json_path is not None or not write_json_summary)
    html = html or base.with_name(base.name + ".html")  # not with_suffix: a dot in a name is not a suffix
    if json_path is None and write_json_summary:
        json_path = base.with_name(base.name + ".json")
    check_outputs((html, json_path), (*a.files, *b.files), force)
    result_a, result_b = analyze_input(a), analyze_input(b)
    comparison = compare_results(result_a, result_b, a.label, b.label)
    if comparison.setup_differences and not allow_different_setups:
        raise SetupMismatch("refusing to compare runs from different setups", comparison.setup_differences)
    warning = isolation_warning(comparison.setting_differences)
    if warning is not None and warning not in comparison.notes:  # more than the one setting under test differs
        comparison.notes.append(warning)
    report = comparison_html(comparison, str(a.trace), str(b.trace), result_a, result_b)
    outputs = CompareOutputs(comparison, write_text(html, report, force), notes=[note] if note and not given else [])
    if json_path is not None:
        outputs.json = ComparisonDocument(result=comparison).write(json_path, force)
    return outputs
