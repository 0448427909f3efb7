"""Findings: the rule registry, the one threshold table, typed findings that round-trip, rules deciding from facts."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import msgspec
import orjson
import pytest
from rich.console import Console

from profkit.analysis import analyze_tables
from profkit.analysis.compare import compare_results
from profkit.analysis.findings import (
    RULE_MODULES,
    THRESHOLDS,
    Finding,
    Impact,
    RuleKind,
    Severity,
    rules,
)
from profkit.analysis.findings.facts import HALF_PRECISION_ON_CPU_NOTE, half_precision_is_slow
from profkit.analysis.findings.registry import rank_key, severity_of
from profkit.analysis.findings.text import Text, render
from profkit.analysis.summary import AnalysisResult
from profkit.app.inputs import analyze_input, resolve_input
from profkit.capture.run import platform_notes
from profkit.parsers import load_trace
from profkit.report.html import analysis_html
from profkit.report.terminal import _findings
from tests.conftest import REPO

TRACES = REPO / "traces"
FP32 = TRACES / "tiny-sd_fp32_4steps_64x64_b1"
FP16 = TRACES / "tiny-sd_fp16_4steps_64x64_b1"
H100 = REPO.parent / "shared" / "corpus" / "h100"


@pytest.fixture(scope="module")
def fp32() -> AnalysisResult:
    return analyze_input(resolve_input(FP32))


@pytest.fixture(scope="module")
def fp16() -> AnalysisResult:
    return analyze_input(resolve_input(FP16))


# ---------------------------------------------------------------- the registry


def test_every_rule_is_registered_under_its_function_name() -> None:
    registered = rules()
    assert [rule.id for rule in registered] == [rule.check.__name__ for rule in registered]
    assert len({rule.id for rule in registered}) == len(registered)
    assert {rule.kind for rule in registered} == {RuleKind.TRACE, RuleKind.COMPARISON}
    # every rule lives in one of the rule modules, and each module holds rules
    modules = {module.__name__ for module in RULE_MODULES}
    assert {rule.check.__module__ for rule in registered} == modules
    # the ids the tests and reports know are rule ids (no function named otherwise)
    ids = {rule.id for rule in registered}
    assert {"no_profkit_ranges", "vae_decode_large", "pageable_memcpy", "synchronous_memcpy_memset"} <= ids
    assert {"overall_speedup", "gpu_vs_wall_speedup", "setup_differs", "platform_note"} <= ids


def _threshold_keys(tree: ast.AST) -> set[str]:
    """The keys of every ``THRESHOLDS["key"]`` read in ``tree``."""
    return {
        node.slice.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "THRESHOLDS"
        and isinstance(node.slice, ast.Constant)
    }


def test_every_threshold_a_rule_reads_is_declared_and_in_the_one_table() -> None:
    declared: set[str] = set()
    for rule in rules():
        assert set(rule.thresholds) <= THRESHOLDS.keys(), rule.id
        read = _threshold_keys(ast.parse(inspect.getsource(rule.check)))
        assert read <= set(rule.thresholds), f"{rule.id} reads undeclared thresholds {read - set(rule.thresholds)}"
        declared |= set(rule.thresholds)
    # helpers of a rule module read only thresholds that a rule of that module declares
    for module in RULE_MODULES:
        module_declared = {
            key for rule in rules() if rule.check.__module__ == module.__name__ for key in rule.thresholds
        }
        assert _threshold_keys(ast.parse(inspect.getsource(module))) <= module_declared, module.__name__
    # every threshold in the table is used by a rule (or by a shared fact: the same-speed tolerance, or by the
    # registry: the severity-from-impact table)
    severity_keys = _threshold_keys(ast.parse(inspect.getsource(severity_of)))
    assert severity_keys == {"impact_critical_share", "impact_warning_share", "impact_floor_ms"}
    assert set(THRESHOLDS) - declared <= {"same_speed_tolerance", *severity_keys}


def test_rule_modules_compare_against_no_number_of_their_own() -> None:
    for module in RULE_MODULES:
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if not isinstance(node, ast.Compare):
                continue
            for operand in (node.left, *node.comparators):
                is_number = isinstance(operand, ast.Constant) and type(operand.value) in (int, float)
                assert not is_number or operand.value == 0, (
                    f"{module.__name__} line {node.lineno}: compares against {operand.value}; put it in THRESHOLDS"
                )


# ---------------------------------------------------------------- the Finding type


def _all_findings(*results: AnalysisResult) -> list[Finding]:
    return [finding for result in results for finding in result.findings]


def test_findings_round_trip_through_json(fp32: AnalysisResult, fp16: AnalysisResult) -> None:
    comparison = compare_results(fp32, fp16)
    findings = [*_all_findings(fp32, fp16), *comparison.findings]
    assert findings and all(isinstance(f.severity, Severity) for f in findings)
    for finding in findings:
        # msgspec both ways, and builtins through orjson (as the reports embed them)
        assert msgspec.convert(msgspec.json.decode(msgspec.json.encode(finding)), Finding) == finding
        assert msgspec.convert(orjson.loads(orjson.dumps(msgspec.to_builtins(finding))), Finding) == finding
    with_everything = Finding(
        rule="r",
        severity=Severity.CRITICAL,
        scope="denoise",
        title="t",
        evidence="e",
        next_step="n",
        numbers={"idle_ms": 1.5, "count": 3},
        labels={"dtype": "fp16"},
        rows=[{"name": "k", "total_ms": 0.25, "count": 2}],
        impact=Impact(recoverable_ms=4.0, share=0.1, method="GPU idle inside steps (upper bound)"),
    )
    data = orjson.loads(orjson.dumps(msgspec.to_builtins(with_everything)))
    assert data["severity"] == "critical" and data["numbers"] == {"idle_ms": 1.5, "count": 3}
    assert msgspec.convert(data, Finding) == with_everything
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**data, "severity": "fatal"}, Finding)


def test_prose_is_rendered_from_the_numbers(fp16: AnalysisResult) -> None:
    by_rule = {f.rule: f for f in fp16.findings}
    dominates = by_rule["denoise_dominates"]
    numbers = dominates.numbers
    assert dominates.title == f"The denoise loop takes {numbers['share']:.0%} of the pipeline"
    assert numbers["steps"] == len(fp16.view.steps) == 4
    assert numbers["denoise_ms"] == pytest.approx(
        next(s for s in fp16.view.stages if s.stage == "denoise").wall_us / 1000
    )
    assert f"{numbers['denoise_ms']:.2f} ms of {numbers['total_ms']:.2f} ms in total" in dominates.evidence
    on_cpu = by_rule["half_precision_on_cpu"]
    assert on_cpu.labels["dtype"] == "fp16" and on_cpu.title == "fp16 measured on a CPU"


def test_findings_are_ordered_by_severity_then_impact_then_rule_order() -> None:
    order = {rule.id: rule.order for rule in rules()}
    results = [analyze_input(resolve_input(path)) for path in (FP16, *sorted(H100.glob("tiny-*")))]
    for result in results:
        keys = [rank_key(f, order[f.rule]) for f in result.findings]
        assert keys == sorted(keys)
        impacts = [f.impact.recoverable_ms for f in result.findings if f.impact]
        assert impacts == sorted(impacts, reverse=True)  # severity follows impact, so impact order holds too
    assert any(len({f.severity for f in r.findings}) > 1 for r in results)


def test_text_templates() -> None:
    values = {"n": 3, "ms": 1.234, "where": "", "speedup": 2.0, "size": 25970}
    assert render("{n} gaps[[ in {where}]], {ms:.2f} ms", values) == "3 gaps, 1.23 ms"
    assert render("[[{delay:.0f} us||n/a]] and {missing:.1f}", values) == "n/a and n/a"
    assert render("B is {speedup:how} A, {size:bytes}", values) == "B is 2.00x faster than A, 25.97 kB"
    assert render("B is {speedup:how} A", {"speedup": 1.01}) == "B is about the same speed as A"
    text = Text("t", "Largest: {rows}.", "n", row="{name} ×{count}", row_sep=", ")
    assert text.render({}, {}, [{"name": "a", "count": 2}, {"name": "b", "count": 1}])[1] == "Largest: a ×2, b ×1."


# ---------------------------------------------------------------- comparison rules decide from typed facts


def test_comparison_findings_of_the_fp32_and_fp16_traces(fp32: AnalysisResult, fp16: AnalysisResult) -> None:
    comparison = compare_results(fp32, fp16)
    found = {f.rule: f for f in comparison.findings}
    assert set(found) == {"overall_speedup", "platform_note", "largest_stage_change", "per_step_speedup"}
    overall = found["overall_speedup"]
    assert overall.numbers["speedup"] == pytest.approx(comparison.total.speedup)
    slower = comparison.total.speedup < THRESHOLDS["slower_speedup"]
    assert overall.severity == (Severity.WARNING if slower else Severity.INFO)
    assert overall.title == comparison.verdict
    assert f"{comparison.total.a_us / 1000:.2f} ms" in overall.evidence
    if slower:  # fp16 on this CPU capture is slower, and the finding says so
        assert "slower than" in comparison.verdict and "made this run slower" in overall.next_step
    steps = found["per_step_speedup"]
    assert steps.numbers["steps"] == 4 and steps.numbers["median"] == pytest.approx(comparison.step_speedup.median)
    # the platform caveat names the side whose dtype is slow on its device
    note = found["platform_note"]
    assert note.severity == Severity.WARNING
    assert note.labels == {"dtype": "fp16", "sides": "B"}
    assert note.evidence.startswith(HALF_PRECISION_ON_CPU_NOTE.format(dtype="fp16"))
    # warnings before infos, each group in rule order
    assert [f.severity.rank for f in comparison.findings] == sorted(f.severity.rank for f in comparison.findings)


def test_the_platform_caveat_comes_from_dtype_and_device_not_from_note_text(
    fp32: AnalysisResult, fp16: AnalysisResult
) -> None:
    no_notes = msgspec.structs.replace(fp16, notes=[])
    assert "platform_note" in {f.rule for f in compare_results(fp32, no_notes).findings}
    run = msgspec.structs.replace(fp16.run, device=msgspec.structs.replace(fp16.run.device, type="cuda"))
    on_gpu = msgspec.structs.replace(fp16, run=run)  # notes still say "slower": they decide nothing
    assert any("slower" in note for note in on_gpu.notes)
    assert "platform_note" not in {f.rule for f in compare_results(fp32, on_gpu).findings}
    # the trace rule reads the same typed facts
    tables = load_trace(FP16 / "trace.json.gz")
    assert "half_precision_on_cpu" in {f.rule for f in analyze_tables(tables, run=fp16.run).findings}
    assert "half_precision_on_cpu" not in {f.rule for f in analyze_tables(tables, run=run).findings}


def test_the_half_precision_fact_is_decided_once() -> None:
    assert half_precision_is_slow("cpu", "fp16") and half_precision_is_slow("cpu", "bf16")
    assert not half_precision_is_slow("cpu", "fp32") and not half_precision_is_slow("cuda:0", "fp16")
    assert platform_notes("cpu", "fp16")[0] == HALF_PRECISION_ON_CPU_NOTE.format(dtype="fp16")
    assert not any("half-precision" in note for note in platform_notes("cpu", "fp32"))
    assert platform_notes("cuda", "fp16") == []


# ---------------------------------------------------------------- renderers


def test_terminal_prints_titles_from_trace_data_literally() -> None:
    console = Console(record=True, width=200, color_system=None)
    title = "[bold]volta_sgemm[/bold] is 50% of GPU kernel time"
    finding = Finding(rule="dominant_category", severity=Severity.WARNING, title=title, evidence="[x]", next_step="")
    _findings(console, [finding])
    text = console.export_text()
    assert f"WARNING  {title}" in text and "[x]" in text


def test_html_findings_show_the_severity_value() -> None:
    finding = Finding(rule="r", severity=Severity.CRITICAL, scope="denoise", title="t", evidence="e", next_step="n")
    result = analyze_input(resolve_input(FP16))
    page = analysis_html(msgspec.structs.replace(result, findings=[finding]))
    assert '<div class="finding critical">' in page and '<span class="sev">critical</span>' in page
    assert "Severity." not in page


@pytest.mark.parametrize("folder", sorted(H100.glob("tiny-*")) if H100.is_dir() else [], ids=lambda p: p.name)
def test_h100_findings_round_trip(folder: Path) -> None:
    result = analyze_input(resolve_input(folder))
    assert result.findings
    for finding in result.findings:
        assert msgspec.convert(orjson.loads(orjson.dumps(msgspec.to_builtins(finding))), Finding) == finding


def test_numpy_and_non_finite_numbers_become_plain_json_numbers() -> None:
    import numpy as np

    from profkit.analysis.findings import Hit, Rule

    rule = Rule(
        "r", RuleKind.TRACE, lambda ctx: None, Text("{n} of {x:.2f}", "e", "n"), Severity.INFO, "run", (), {}, 0
    )
    finding = rule.finding(Hit(numbers={"n": np.int64(2), "x": float("nan"), "s": np.float64(0.5)}))
    assert finding.numbers == {"n": 2, "s": 0.5} and type(finding.numbers["n"]) is int
    assert finding.title == "2 of n/a"
    assert msgspec.convert(msgspec.json.decode(msgspec.json.encode(finding)), Finding) == finding
