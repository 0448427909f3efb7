"""Compare of findings (issue 11, point 6): which of A's findings disappeared in B, which appeared, which
persisted (impact A -> B), and whether the measured change matches what A's findings predicted."""

from __future__ import annotations

import os

import msgspec
import pytest
from rich.console import Console

from profkit.analysis.compare import ComparisonResult, FindingsDiff, compare_results, findings_diff
from profkit.analysis.findings import THRESHOLDS, Finding, Impact, RuleKind, Severity, rules
from profkit.analysis.findings.context import ComparisonContext
from profkit.analysis.summary import AnalysisResult
from profkit.app.inputs import analyze_input, resolve_input
from profkit.model.comparison import ComparisonDocument
from profkit.parsers import load_trace
from profkit.report.html import comparison_html
from profkit.report.terminal import print_comparison
from tests.analysis.test_impact_h100 import FP16_64, FP32_64, H100, _pandas, _wall_us


@pytest.fixture(scope="module")
def pair() -> tuple[AnalysisResult, AnalysisResult, ComparisonResult]:
    if not (H100 / FP32_64 / "trace.json.gz").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real H100 captures not found at {H100}")
        pytest.skip(f"real H100 captures not found at {H100}")
    a = analyze_input(resolve_input(H100 / FP32_64))
    b = analyze_input(resolve_input(H100 / FP16_64))
    return a, b, compare_results(a, b, "fp32", "fp16")


def _impact(result: AnalysisResult, rule: str) -> float:
    finding = next(f for f in result.findings if f.rule == rule)
    assert finding.impact is not None
    return finding.impact.recoverable_ms


def test_fp32_vs_fp16_lists_disappeared_appeared_and_persisted_findings(pair) -> None:
    a, b, comparison = pair
    diff = comparison.findings_diff
    assert diff is not None
    rules_a, rules_b = {f.rule for f in a.findings}, {f.rule for f in b.findings}
    assert {c.rule for c in diff.disappeared} == rules_a - rules_b == {"fp32_gemm_without_tf32", "attention_not_flash"}
    assert {c.rule for c in diff.appeared} == rules_b - rules_a
    assert "step_variance" in {c.rule for c in diff.appeared}
    assert {c.rule for c in diff.persisted} == rules_a & rules_b
    assert len(diff.disappeared) == 4  # TF32 + attention not flash in text encoder, denoise and VAE (one per scope)
    launch = next(c for c in diff.persisted if c.rule == "launch_bound_denoise")
    assert launch.impact_a_ms == _impact(a, "launch_bound_denoise")
    assert launch.impact_b_ms == _impact(b, "launch_bound_denoise")
    assert launch.severity_a == launch.severity_b == "critical"
    for gone in diff.disappeared:
        assert gone.impact_b_ms is None and gone.severity_b is None and gone.estimate


def test_predicted_vs_measured_on_fp32_vs_fp16(pair) -> None:
    a, _, comparison = pair
    diff = comparison.findings_diff
    a_wall = _wall_us(_pandas(load_trace(H100 / FP32_64 / "trace.json.gz")))
    b_wall = _wall_us(_pandas(load_trace(H100 / FP16_64 / "trace.json.gz")))
    gone = {"fp32_gemm_without_tf32", "attention_not_flash"}  # A's findings that disappeared in B
    predicted = sum(f.impact.recoverable_ms for f in a.findings if f.rule in gone)
    assert diff.predicted_ms == pytest.approx(predicted)
    assert diff.predicted_share == pytest.approx(predicted * 1000 / a_wall)
    assert diff.measured_ms == pytest.approx((a_wall - b_wall) / 1000)
    assert diff.measured_ms < 0  # fp16 at 64x64 is launch-bound and measured slower
    finding = next(f for f in comparison.findings if f.rule == "predicted_vs_measured")
    assert finding.title == (
        f"fp16 is {-diff.measured_ms:.2f} ms slower although the findings of fp32 that disappeared "
        f"({len(diff.disappeared)}) predicted "
        f"{predicted:.2f} ms recoverable"
    )
    assert f"{a_wall / 1000:.2f} ms → {b_wall / 1000:.2f} ms" in finding.evidence
    assert "fp32_gemm_without_tf32" in finding.evidence and "attention_not_flash" in finding.evidence
    assert diff.sentence.startswith(finding.title)


def test_reverse_compare_sees_the_tf32_finding_appear(pair) -> None:
    a, b, _ = pair
    reverse = compare_results(b, a, "fp16", "fp32").findings_diff
    assert "fp32_gemm_without_tf32" in {c.rule for c in reverse.appeared}
    assert "step_variance" in {c.rule for c in reverse.disappeared}


def _verdict(comparison: ComparisonResult, a: AnalysisResult, b: AnalysisResult, diff: FindingsDiff) -> str | None:
    rule = next(r for r in rules(RuleKind.COMPARISON) if r.id == "predicted_vs_measured")
    hit = rule.check(ComparisonContext(msgspec.structs.replace(comparison, findings_diff=diff), a, b))
    return hit.variant


def _finding(rule: str, ms: float | None) -> Finding:
    impact = Impact(recoverable_ms=ms, share=ms / 100, method="m") if ms is not None else None
    return Finding(rule=rule, severity=Severity.WARNING, title=rule, evidence="", next_step="", impact=impact)


def test_prediction_verdicts(pair) -> None:
    a, b, comparison = pair
    tolerance = THRESHOLDS["prediction_match_tolerance"]
    before = [_finding("launch", 40.0), _finding("kept", 5.0), _finding("caveat", None)]

    def verdict(after: list[Finding], a_total_us: float, b_total_us: float) -> str | None:
        return _verdict(comparison, a, b, findings_diff(before, after, a_total_us, b_total_us))

    kept = [_finding("kept", 4.0), _finding("caveat", None)]
    assert verdict(kept, 100_000, 62_000) is None  # predicted 40 ms, measured 38 ms: matches
    assert verdict(kept, 100_000, 100_000 - 40_000 * (1 - tolerance) + 1_000) == "short"
    assert verdict(kept, 100_000, 100_000 - 40_000 * (1 + tolerance) - 1_000) == "more"
    assert verdict(kept, 100_000, 110_000) == "other_way"
    assert verdict([_finding("launch", 40.0), _finding("kept", 4.0)], 100_000, 90_000) == "none"  # no estimate
    nothing_gone = findings_diff(before, [*before, _finding("new", 3.0)], 100_000, 90_000)
    rule = next(r for r in rules(RuleKind.COMPARISON) if r.id == "predicted_vs_measured")
    assert rule.check(ComparisonContext(msgspec.structs.replace(comparison, findings_diff=nothing_gone), a, b)) is None
    diff = findings_diff(before, kept, 100_000, 62_000)
    assert [c.rule for c in diff.disappeared] == ["launch"] and diff.predicted_ms == 40.0
    assert diff.measured_share == pytest.approx(0.38)
    # the estimates of several findings overlap: their sum is capped at A's total
    capped = findings_diff([_finding("x", 80.0), _finding("y", 70.0)], [], 100_000, 50_000)
    assert capped.predicted_ms == 100.0 and capped.predicted_share == 1.0


def test_findings_diff_round_trips_and_renders(pair) -> None:
    _, _, comparison = pair
    document = ComparisonDocument(result=comparison)
    loaded = ComparisonDocument.from_json(document.to_json())
    assert loaded == document and loaded.result.findings_diff == comparison.findings_diff
    page = comparison_html(comparison, "a", "b")
    assert 'id="findings-diff"' in page and "disappeared" in page and "persisted" in page
    assert comparison.findings_diff.sentence.split(".")[0] in page
    assert "(estimate)" in page  # the TF32 estimate is labelled
    console = Console(record=True, width=160)
    print_comparison(comparison, console)
    text = console.export_text()
    assert "Findings A -> B" in text and "gone" in text and "new" in text
    assert f"{comparison.findings_diff.disappeared[0].impact_a_ms:.2f} info" in text
