"""Typed documents: round trips on real data, version-1 files, refusals, the kind registry, comparability."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import orjson
import pytest

from profkit.analysis.compare import compare_results
from profkit.app.compare import compare_paths
from profkit.app.inputs import analyze_input, resolve_input
from profkit.errors import ProfkitError
from profkit.model import DOCUMENT_KINDS, document_class, load_document, sniff_kind
from profkit.model.analysis import AnalysisSummary, load_analysis
from profkit.model.base import LEGACY_VERSION, Document
from profkit.model.capture import CaptureMetadata, DeviceInfo
from profkit.model.comparison import ComparisonDocument, load_comparison
from profkit.model.compat import baseline_differences, settings_differences, setup_differences
from tests.conftest import REPO, corpus_dir, run_cli

TRACES = REPO / "traces"
FP32 = TRACES / "tiny-sd_fp32_4steps_64x64_b1"
FP16 = TRACES / "tiny-sd_fp16_4steps_64x64_b1"
V1 = REPO / "tests" / "data" / "v1"
H100 = corpus_dir().parent / "h100"


def _h100_runs() -> list[Path]:
    return sorted(p for p in H100.glob("tiny-*") if (p / "metadata.json").is_file()) if H100.is_dir() else []


def _metadata_files() -> list[Path]:
    return [FP32 / "metadata.json", FP16 / "metadata.json", *(run / "metadata.json" for run in _h100_runs())]


def _without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in keys}


# ---------------------------------------------------------------- capture metadata


@pytest.mark.parametrize("path", _metadata_files(), ids=lambda p: p.parent.name)
def test_capture_metadata_round_trips_and_keeps_the_version_1_shape(path: Path) -> None:
    original = orjson.loads(path.read_bytes())
    assert original["schema_version"] == LEGACY_VERSION
    metadata = CaptureMetadata.load(path)
    assert CaptureMetadata.from_json(metadata.to_json()) == metadata
    assert metadata.device.name == original["device"]["name"] and metadata.settings.steps > 0
    written = metadata.to_builtins()
    # the same JSON object, except settings an older profkit wrote and this one no longer has
    assert _without(written, "settings") == _without(original, "settings")
    known = {key: value for key, value in original["settings"].items() if key in written["settings"]}
    assert {key: written["settings"][key] for key in known} == known


def test_capture_metadata_types_are_checked_with_the_field_named(tmp_path: Path) -> None:
    data = orjson.loads((FP32 / "metadata.json").read_bytes())
    data["settings"]["steps"] = "four"
    bad = tmp_path / "metadata.json"
    bad.write_bytes(orjson.dumps(data))
    with pytest.raises(ProfkitError, match=r"invalid profkit.capture document: .*\$\.settings\.steps"):
        CaptureMetadata.load(bad)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("precision", {"cudnn_allow_tf32": [True]}, "$.precision[...]"),
        ("attention_processors", {"unet:AttnProcessor2_0": "eight"}, "$.attention_processors[...]"),
        ("components", {"unet": {"role": "denoiser"}}, "$.components[...]"),
        ("device", "cuda", "$.device"),
        ("timing_seconds", {"warmup_calls": "1.0"}, "$.timing_seconds.warmup_calls"),
        ("notes", "a note", "$.notes"),
    ],
)
def test_every_nested_metadata_value_is_typed(field: str, value: Any, where: str, tmp_path: Path) -> None:
    """Down to the leaves: no report or template ever receives a list where a switch belongs, a string for a part."""
    data = orjson.loads((FP32 / "metadata.json").read_bytes())
    data[field] = value
    bad = tmp_path / "metadata.json"
    bad.write_bytes(orjson.dumps(data))
    with pytest.raises(ProfkitError) as raised:
        CaptureMetadata.load(bad)
    assert str(raised.value).startswith(f"{bad}: invalid profkit.capture document: ") and where in str(raised.value)


def test_metadata_without_settings_still_analyzes_and_renders(tmp_path: Path) -> None:
    from profkit.app.analyze import analyze_path

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "trace.json.gz").write_bytes((FP32 / "trace.json.gz").read_bytes())
    data = orjson.loads((FP32 / "metadata.json").read_bytes())
    (folder / "metadata.json").write_bytes(orjson.dumps({**data, "settings": None}))
    outputs = analyze_path(folder)
    assert outputs.result.run.settings is None and "Precision switches" in outputs.html.read_text()


# ---------------------------------------------------------------- analysis and comparison


def _analysis_inputs() -> list[Path]:
    return [FP32, FP32 / "trace.json.gz", *_h100_runs()[:1]]


@pytest.mark.parametrize("path", _analysis_inputs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_analysis_summary_loads_back_equal(path: Path, tmp_path: Path) -> None:
    result = analyze_input(resolve_input(path))
    assert result.run is not None and result.run.dtype in ("fp32", "fp16")
    document = AnalysisSummary(result=result)
    assert AnalysisSummary.from_json(document.to_json()) == document
    written = document.write(tmp_path / "trace.summary.json")
    assert load_analysis(written) == result
    data = orjson.loads(written.read_bytes())
    assert (data["schema_version"], data["kind"]) == (AnalysisSummary.VERSION, "profkit.analysis")
    assert data["run"]["kind"] == "profkit.capture"  # the run inside is a whole capture document


def test_comparison_loads_back_equal(tmp_path: Path) -> None:
    comparison = compare_results(analyze_input(resolve_input(FP32)), analyze_input(resolve_input(FP16)))
    assert comparison.setting_differences == [("dtype", "fp32", "fp16")]
    document = ComparisonDocument(result=comparison)
    assert ComparisonDocument.from_json(document.to_json()) == document
    assert load_comparison(document.write(tmp_path / "c.json")) == comparison


def test_version_1_files_written_before_typed_documents_still_load() -> None:
    fp32, fp16 = load_analysis(V1 / "tiny-sd_fp32.summary.json"), load_analysis(V1 / "tiny-sd_fp16.summary.json")
    assert fp32.run is not None and fp32.run.dtype == "fp32" and fp32.label == "tiny-sd fp32"
    assert len(fp32.view.steps) == 4 and fp32.findings
    old = load_comparison(V1 / "compare_fp32_vs_fp16.json")
    assert CaptureMetadata.load(V1 / "capture_tiny-sd_fp32.metadata.json") == resolve_input(FP32).metadata
    # the old files hold the same numbers this profkit computes from the traces
    now = compare_results(analyze_input(resolve_input(FP32)), analyze_input(resolve_input(FP16)))
    assert (old.verdict, old.total, old.steps, old.stages) == (now.verdict, now.total, now.steps, now.stages)
    from_old_summaries = compare_results(fp32, fp16)
    assert (from_old_summaries.verdict, from_old_summaries.total) == (now.verdict, now.total)


def test_compare_takes_analysis_summaries_without_the_traces(tmp_path: Path) -> None:
    summaries = []
    for run in (FP32, FP16):
        summary = AnalysisSummary(result=analyze_input(resolve_input(run)))
        summaries.append(summary.write(tmp_path / f"{run.name}.summary.json"))
    from_traces = compare_paths(FP32, FP16, out_dir=tmp_path / "traces").comparison
    from_summaries = compare_paths(*summaries, out_dir=tmp_path / "summaries")
    assert from_summaries.comparison == from_traces
    assert from_summaries.html.name == "compare_tiny-sd_fp32_vs_fp16_4steps_64x64_b1.html"  # model and settings


def test_inputs_that_are_other_documents_or_newer_versions_are_refused(tmp_path: Path) -> None:
    comparison = tmp_path / "c.json"
    comparison.write_bytes((V1 / "compare_fp32_vs_fp16.json").read_bytes())
    with pytest.raises(ProfkitError, match=r"is a profkit.comparison document, not a trace"):
        resolve_input(comparison)
    future = tmp_path / "future.summary.json"
    future.write_bytes(
        (V1 / "tiny-sd_fp32.summary.json").read_bytes().replace(b'"schema_version": 1', b'"schema_version": 99', 1)
    )
    with pytest.raises(ProfkitError, match=r"version 99 was written by a newer profkit"):
        resolve_input(future)
    with pytest.raises(ProfkitError, match=r"not a profkit profkit.analysis document \(kind is 'profkit.comparison'\)"):
        AnalysisSummary.load(comparison)


def test_a_foreign_metadata_json_is_ignored_and_a_future_one_refused(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "trace.json.gz").write_bytes((FP32 / "trace.json.gz").read_bytes())
    (folder / "metadata.json").write_text('{"tool": "something else"}')
    assert resolve_input(folder).metadata is None
    data = orjson.loads((FP32 / "metadata.json").read_bytes())
    (folder / "metadata.json").write_bytes(orjson.dumps({**data, "schema_version": 99}))
    with pytest.raises(ProfkitError, match="version 99"):
        resolve_input(folder)


@pytest.mark.slow
def test_cli_compares_summaries_like_traces_and_refuses_bad_documents(tmp_path: Path) -> None:
    for run in (FP32, FP16):
        done = run_cli("analyze", str(run), "--no-html", "--json-out", str(tmp_path / f"{run.name}.summary.json"))
        assert done.returncode == 0, done.stderr
    a, b = (tmp_path / f"{run.name}.summary.json" for run in (FP32, FP16))
    outputs = {}
    for name, pair in (("traces", (FP32, FP16)), ("summaries", (a, b))):
        out = tmp_path / f"{name}.json"
        done = run_cli("compare", *map(str, pair), "-o", str(tmp_path / f"{name}.html"), "--json-out", str(out))
        assert done.returncode == 0, done.stderr
        outputs[name] = _without(orjson.loads(out.read_bytes()), "created_at")
    assert outputs["summaries"] == outputs["traces"]
    future = tmp_path / "future.summary.json"
    future.write_bytes(a.read_bytes().replace(b'"schema_version": 1', b'"schema_version": 99', 1))
    for bad, message in ((future, "version 99"), (tmp_path / "traces.json", "profkit.comparison document")):
        done = run_cli("compare", str(bad), str(b), "-o", str(tmp_path / "bad.html"))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert lines[0].startswith("profkit: error:") and message in lines[0]


# ---------------------------------------------------------------- registry and versions


def test_every_kind_loads_through_the_registry() -> None:
    for path, kind in (
        (FP32 / "metadata.json", "profkit.capture"),
        (V1 / "tiny-sd_fp32.summary.json", "profkit.analysis"),
        (V1 / "compare_fp32_vs_fp16.json", "profkit.comparison"),
    ):
        assert sniff_kind(path) == kind
        document = load_document(path)
        assert kind == document.KIND and isinstance(document, document_class(kind))
    assert set(DOCUMENT_KINDS) >= {"profkit.capture", "profkit.analysis", "profkit.comparison"}
    assert sniff_kind(FP32 / "trace.json.gz") is None
    with pytest.raises(ProfkitError, match=r"unknown profkit document kind 'profkit\.nope'"):
        document_class("profkit.nope")


class _Toy(Document, frozen=True, kw_only=True):
    """A kind at version 3 that reads version 2 (renamed field) but not version 1."""

    KIND: ClassVar[str] = "profkit.test-toy"
    VERSION: ClassVar[int] = 3
    MIGRATIONS: ClassVar[dict] = {2: lambda body: {**_without(body, "old"), "new": body["old"]}}

    new: int


def test_older_versions_migrate_and_too_old_or_too_new_ones_are_refused() -> None:
    assert _Toy.from_builtins({"schema_version": 2, "kind": _Toy.KIND, "old": 5}).new == 5
    with pytest.raises(ProfkitError, match="version 1 is too old for this profkit"):
        _Toy.from_builtins({"schema_version": 1, "kind": _Toy.KIND, "old": 5})
    with pytest.raises(ProfkitError, match="version 4 was written by a newer profkit"):
        _Toy.from_builtins({"schema_version": 4, "kind": _Toy.KIND, "new": 5})


# ---------------------------------------------------------------- comparability


def _setup(**changes: Any) -> CaptureMetadata:
    base = CaptureMetadata.load(FP32 / "metadata.json")
    return msgspec.structs.replace(base, **changes)


def test_one_checked_metadata_list_decides_comparability() -> None:
    base = _setup()
    assert setup_differences(base, base) == []
    other_device = _setup(device=DeviceInfo(type="cuda", name="NVIDIA H100 80GB HBM3"))
    assert setup_differences(base, other_device) == [
        "device.type: cpu vs cuda",
        "device.name: AMD EPYC vs NVIDIA H100 80GB HBM3",
    ]
    newer = _setup(environment=msgspec.structs.replace(base.environment, torch="9.9.9"))
    assert setup_differences(base, newer) == ["environment.torch: 2.13.0+cpu vs 9.9.9"]
    # settings are the experiment of a comparison, not a reason to refuse it ...
    more_steps = _setup(settings=msgspec.structs.replace(base.settings, steps=8), dtype="fp16")
    assert setup_differences(base, more_steps) == []
    assert settings_differences(base, more_steps) == [("dtype", "fp32", "fp16"), ("steps", 4, 8)]
    # ... but a regression gate needs the same work, and says which side is which
    assert baseline_differences(base, more_steps) == ["setting steps: 4 (baseline) vs 8 (now)"]
    assert baseline_differences(base, newer) == ["environment.torch: 2.13.0+cpu (baseline) vs 9.9.9 (now)"]


def test_bench_results_use_the_same_list() -> None:
    import msgspec

    from profkit.analysis.bench.summary import baseline_differences as bench_differences
    from tests.benchbuilder import bench_result

    result = bench_result()
    assert bench_differences(result, result) == []
    newer = msgspec.structs.replace(
        result,
        environment={**result.environment, "torch": "9.9.9"},
        settings=msgspec.structs.replace(result.settings, steps=result.settings.steps * 2),
    )
    steps = result.settings.steps
    assert bench_differences(newer, result) == [
        f"environment.torch: {result.environment['torch']} (baseline) vs 9.9.9 (now)",
        f"setting steps: {steps} (baseline) vs {steps * 2} (now)",
    ]


@pytest.mark.slow
def test_nsys_child_writes_the_document_and_the_parent_completes_it(tmp_path: Path, capsys) -> None:
    """The nsys capture's two halves without nsys: the child's metadata, then what the parent adds."""
    from profkit.capture.nsys.child import record
    from profkit.capture.nsys.runner import add_nsys_outputs
    from profkit.capture.settings import CaptureSettings

    settings = CaptureSettings(steps=2, warmup=1, out=tmp_path, device="cpu")
    folder = tmp_path / "run"
    folder.mkdir()
    request = tmp_path / "request.json"
    request.write_bytes(
        orjson.dumps(
            {
                "settings": settings.as_dict(),
                "dtype": "fp32",
                "device": "cpu",
                "folder": str(folder),
                "nsys": {"path": "nsys", "version": "2099.1", "args": ["--sample=none"]},
                "umask": 0o027,
            }
        )
    )
    from profkit import jsonio

    saved = os.umask(0)  # as nsys starts its target: the child must restore the user's umask from the request
    try:
        record(request)
    finally:
        jsonio.set_umask(saved)
    assert (folder / "images").stat().st_mode & 0o777 == 0o750
    assert (folder / "images" / "image_000.png").stat().st_mode & 0o777 == 0o640
    assert (folder / "metadata.json").stat().st_mode & 0o777 == 0o640
    assert capsys.readouterr().out.count("@@profkit-step") == 2
    child = CaptureMetadata.load(folder / "metadata.json")
    assert (
        child.profiler is not None and child.profiler.tool == "nsys" and child.profiler.nsys_args == ["--sample=none"]
    )
    assert child.files.trace is None and child.files.images == ["images/image_000.png"]
    assert len(child.timing_seconds.warmup_calls) == 1 and child.timing_seconds.recorded_call_under_nsys
    done = add_nsys_outputs(folder, folder / "run.sqlite", folder / "run.nsys-rep", ranges=9)
    assert CaptureMetadata.load(folder / "metadata.json") == done
    assert (done.files.trace, done.files.nsys_report, done.profiler.profkit_ranges_recorded) == (
        "run.sqlite",
        "run.nsys-rep",
        9,
    )
    assert done.label == "tiny-sd fp32 (nsys)" and done.trace_file == "run.sqlite"
    assert msgspec.structs.replace(done, files=child.files, profiler=child.profiler) == child
