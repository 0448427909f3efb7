"""A vs B: total, per-stage and per-step speedup, category mix, one-sided ops, findings (and which of A's findings
disappeared, appeared or persisted in B, with what they predicted against the measured change).

Speedup is ``A time / B time``: above 1 means B is faster, below 1 means B is slower.

Both totals are measured the same way (the *basis*): the pipeline wall time when both traces have profkit
ranges, else the GPU active window when both have GPU activity, else the CPU operator self time when neither
has any. Two traces with no such time in common are refused (:class:`NoSharedBasis`): a GPU window against a CPU
operator sum is no speedup. Stage rows need ranges on both sides, step rows steps on both sides. A trace
compared with itself (the same file, a copy, or its summary) is compared, and the verdict says so.
"""

from __future__ import annotations

from typing import Any

import msgspec

from profkit.analysis.findings import Finding, evaluate_comparison
from profkit.analysis.findings.facts import speed_phrase
from profkit.analysis.operators import StageMixRow
from profkit.analysis.stats import Summary, summarize
from profkit.analysis.summary import AnalysisResult
from profkit.errors import ProfkitError
from profkit.model.compat import settings_differences, setup_differences
from profkit.model.quality import QualityBrief


class DeltaRow(msgspec.Struct):
    key: str
    a_us: float | None
    b_us: float | None
    speedup: float | None


class MixRow(msgspec.Struct):
    category: str
    a_us: float
    a_share: float
    b_us: float
    b_share: float


class AlignedRow(msgspec.Struct):
    """The same stage and kind of work on both sides (kernel names differ between, e.g., FP32 and FP16)."""

    stage: str
    category: str
    a_us: float
    b_us: float
    speedup: float | None
    a_count: int
    b_count: int
    a_tensor_core: float | None  # share of the row's time on tensor cores
    b_tensor_core: float | None


class OneSided(msgspec.Struct):
    name: str
    category: str
    total_us: float


class FindingChange(msgspec.Struct):
    """One trace finding (rule and scope) on either side: its severity and impact in A and in B."""

    rule: str
    scope: str
    title: str  # B's title when it persisted or appeared, else A's
    severity_a: str | None
    severity_b: str | None
    impact_a_ms: float | None
    impact_b_ms: float | None
    share_a: float | None  # impact as a share of that side's wall time
    share_b: float | None
    method: str = ""
    estimate: bool = False


class FindingsDiff(msgspec.Struct):
    """A's findings against B's, and what the ones that disappeared predicted against the measured change."""

    disappeared: list[FindingChange]  # in A, not in B
    appeared: list[FindingChange]  # in B, not in A
    persisted: list[FindingChange]
    predicted_ms: float  # A's recoverable time of the findings that disappeared (sum, capped at A's total)
    predicted_share: float  # of A's total
    measured_ms: float  # A total - B total on the comparison's basis: positive when B is faster
    measured_share: float  # of A's total
    sentence: str = ""  # predicted vs measured, in words (the predicted_vs_measured finding)


class ComparisonResult(msgspec.Struct):
    label_a: str
    label_b: str
    total: DeltaRow
    total_basis: str
    verdict: str
    stages: list[DeltaRow]
    steps: list[DeltaRow]
    step_speedup: Summary | None
    mix_kind: str  # gpu_kernels | cpu_ops | mixed
    mix: list[MixRow]
    only_in_a: list[OneSided]
    only_in_b: list[OneSided]
    tensor_core_share: tuple[float | None, float | None]
    gpu_busy: DeltaRow | None  # GPU busy time (union) of each side, when both have GPU activity
    stage_gpu: list[DeltaRow]  # GPU busy time launched by each stage
    aligned: list[AlignedRow]  # by stage and category
    aligned_kind: str  # what the aligned times are: GPU kernel time | CPU operator self time
    setting_differences: list[tuple[str, Any, Any]]
    setup_differences: list[str]
    findings: list[Finding] = []
    notes: list[str] = []
    findings_diff: FindingsDiff | None = None
    quality: QualityBrief | None = None  # images against A's (capture --dtype a,b; profkit.quality)

    def to_dict(self) -> dict[str, Any]:
        """JSON builtins of every field (``msgspec.convert`` turns them back into an equal result)."""
        return msgspec.to_builtins(self)


WALL_TIME = "pipeline wall time"
GPU_WINDOW = "GPU active window"
CPU_SELF_TIME = "CPU operator self time"
#: The note (and verdict) of a comparison whose two sides are one trace.
SAME_TRACE = "A and B are the same trace: every difference is zero by construction, so this says nothing"


class NoSharedBasis(ProfkitError):
    """The two sides have no time measured the same way (one GPU trace without ranges, one CPU-only trace)."""

    def __init__(self, label_a: str, label_b: str, a: AnalysisResult, b: AnalysisResult) -> None:
        super().__init__(
            f"cannot compare {label_a} ({_measures(a)}) with {label_b} ({_measures(b)}): no time is measured the "
            "same way on both sides; compare traces that both have profkit ranges, both have GPU activity, or "
            "both have CPU operators only"
        )


def _measures(result: AnalysisResult) -> str:
    """What one side can be timed by, for the refusal."""
    parts = ["profkit ranges" if result.view.has_ranges else "no profkit ranges"]
    if result.gpu is not None:
        parts.append("GPU activity")
    elif result.cpu_ops.total_us > 0:
        parts.append("CPU operators only")
    else:
        parts.append("no GPU or CPU operator time")
    return ", ".join(parts)


def shared_basis(a: AnalysisResult, b: AnalysisResult) -> str | None:
    """The one way both sides' totals are measured, or ``None`` when they share none."""
    if a.view.has_ranges and b.view.has_ranges:
        return WALL_TIME
    if a.gpu is not None and b.gpu is not None:
        return GPU_WINDOW
    if a.gpu is None and b.gpu is None and a.cpu_ops.total_us > 0 and b.cpu_ops.total_us > 0:
        return CPU_SELF_TIME
    return None


def total_on(result: AnalysisResult, basis: str) -> float:
    """One side's total time on ``basis`` (a value of :func:`shared_basis`)."""
    if basis == WALL_TIME:
        return result.view.total_us
    if basis == GPU_WINDOW:
        return result.gpu.window_us if result.gpu is not None else 0.0
    return result.cpu_ops.total_us


def same_trace(a: AnalysisResult, b: AnalysisResult) -> bool:
    """Whether both analyses are of one trace (the same file, a copy of it, or its summary): every count and
    every time equal. Two separate runs never agree to the last bit on all of them."""
    return (
        a.trace.source_format == b.trace.source_format
        and a.trace.event_count == b.trace.event_count
        and a.trace.counts == b.trace.counts
        and a.view == b.view
        and a.gpu == b.gpu
        and a.cpu_ops.total_us == b.cpu_ops.total_us
        and a.stage_mix == b.stage_mix
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def compare_results(a: AnalysisResult, b: AnalysisResult, label_a: str = "", label_b: str = "") -> ComparisonResult:
    """A against B on their shared basis; raises :class:`NoSharedBasis` when they have none."""
    label_a = label_a or a.label
    label_b = label_b or b.label
    basis = shared_basis(a, b)
    if basis is None:
        raise NoSharedBasis(label_a, label_b, a, b)
    both_ranges = basis == WALL_TIME
    a_total, b_total = total_on(a, basis), total_on(b, basis)
    total = DeltaRow("total", a_total, b_total, _ratio(a_total, b_total))
    identical = same_trace(a, b)
    verdict = (
        f"{SAME_TRACE} ({label_a} vs {label_b}, {basis})"
        if identical
        else f"{label_b} is {speed_phrase(total.speedup)} {label_a} ({basis})"
    )

    stages = []
    if both_ranges:
        a_stages = {s.stage: s.wall_us for s in a.view.stages}
        b_stages = {s.stage: s.wall_us for s in b.view.stages}
        for stage in dict.fromkeys([*a_stages, *b_stages]):
            stages.append(
                DeltaRow(
                    stage, a_stages.get(stage), b_stages.get(stage), _ratio(a_stages.get(stage), b_stages.get(stage))
                )
            )

    both_steps = bool(a.view.steps) and bool(b.view.steps)  # steps on one side only: nothing to match
    a_steps = {(s.call, s.step): s.wall_us for s in a.view.steps} if both_steps else {}
    b_steps = {(s.call, s.step): s.wall_us for s in b.view.steps} if both_steps else {}
    steps = [
        DeltaRow(
            f"{call}:{step}" if call else str(step),
            a_steps.get((call, step)),
            b_steps.get((call, step)),
            _ratio(a_steps.get((call, step)), b_steps.get((call, step))),
        )
        for call, step in sorted(set(a_steps) | set(b_steps))
    ]
    step_speedup = summarize([row.speedup for row in steps if row.speedup is not None])

    if a.kernels is not None and b.kernels is not None:
        mix_a, mix_b, mix_kind = a.kernels, b.kernels, "gpu_kernels"
    elif a.kernels is None and b.kernels is None:
        mix_a, mix_b, mix_kind = a.cpu_ops, b.cpu_ops, "cpu_ops"
    else:
        mix_a, mix_b, mix_kind = a.primary, b.primary, "mixed"
    cats_a = {c.category: c for c in mix_a.categories}
    cats_b = {c.category: c for c in mix_b.categories}
    mix = [
        MixRow(
            category,
            cats_a[category].total_us if category in cats_a else 0.0,
            cats_a[category].share if category in cats_a else 0.0,
            cats_b[category].total_us if category in cats_b else 0.0,
            cats_b[category].share if category in cats_b else 0.0,
        )
        for category in dict.fromkeys([*cats_a, *cats_b])
    ]
    mix.sort(key=lambda row: -(row.a_us + row.b_us))

    names_a = {r.name: r for r in mix_a.rows}
    names_b = {r.name: r for r in mix_b.rows}
    only_a = [OneSided(r.name, r.category, r.total_us) for n, r in names_a.items() if n not in names_b]
    only_b = [OneSided(r.name, r.category, r.total_us) for n, r in names_b.items() if n not in names_a]

    aligned, aligned_kind = _align(a, b)
    gpu_busy = None
    stage_gpu: list[DeltaRow] = []
    if a.gpu is not None and b.gpu is not None:
        gpu_busy = DeltaRow("GPU busy", a.gpu.busy_us, b.gpu.busy_us, _ratio(a.gpu.busy_us, b.gpu.busy_us))
        gpu_a = {s.stage: s.gpu_busy_us for s in a.view.stages if s.gpu_busy_us is not None}
        gpu_b = {s.stage: s.gpu_busy_us for s in b.view.stages if s.gpu_busy_us is not None}
        stage_gpu = [
            DeltaRow(stage, gpu_a.get(stage), gpu_b.get(stage), _ratio(gpu_a.get(stage), gpu_b.get(stage)))
            for stage in dict.fromkeys([*gpu_a, *gpu_b])
        ]
    both_runs = a.run is not None and b.run is not None
    result = ComparisonResult(
        label_a=label_a,
        label_b=label_b,
        total=total,
        total_basis=basis,
        verdict=verdict,
        stages=stages,
        steps=steps,
        step_speedup=step_speedup,
        mix_kind=mix_kind,
        mix=mix,
        only_in_a=only_a[:15],
        only_in_b=only_b[:15],
        tensor_core_share=(a.gpu.tensor_core_share if a.gpu else None, b.gpu.tensor_core_share if b.gpu else None),
        gpu_busy=gpu_busy,
        stage_gpu=stage_gpu,
        aligned=aligned,
        aligned_kind=aligned_kind,
        setting_differences=settings_differences(a.run, b.run) if both_runs else [],
        setup_differences=setup_differences(a.run, b.run) if both_runs else [],
        notes=list(dict.fromkeys([*([SAME_TRACE] if identical else []), *a.notes, *b.notes])),
    )
    result.findings_diff = findings_diff(a.findings, b.findings, a_total, b_total)
    result.findings = evaluate_comparison(result, a, b)
    verdict_finding = next((f for f in result.findings if f.rule == "predicted_vs_measured"), None)
    if verdict_finding is not None:
        result.findings_diff.sentence = f"{verdict_finding.title}. {verdict_finding.evidence}"
    return result


def _change(a: Finding | None, b: Finding | None) -> FindingChange:
    either = b or a
    assert either is not None
    impact = (b.impact if b else None) or (a.impact if a else None)
    return FindingChange(
        rule=either.rule,
        scope=either.scope,
        title=either.title,
        severity_a=a.severity.value if a else None,
        severity_b=b.severity.value if b else None,
        impact_a_ms=a.impact.recoverable_ms if a and a.impact else None,
        impact_b_ms=b.impact.recoverable_ms if b and b.impact else None,
        share_a=a.impact.share if a and a.impact else None,
        share_b=b.impact.share if b and b.impact else None,
        method=impact.method if impact else "",
        estimate=impact.estimate if impact else False,
    )


def findings_diff(a: list[Finding], b: list[Finding], a_total_us: float, b_total_us: float) -> FindingsDiff:
    """Which of A's findings (by rule and scope) disappeared in B, which appeared, which persisted; the recoverable
    time A's disappeared findings predicted against the measured change of the total."""
    by_a = {(f.rule, f.scope): f for f in reversed(a)}  # a rule hits once per scope; else its first hit stands
    by_b = {(f.rule, f.scope): f for f in reversed(b)}
    gone = [_change(f, None) for key, f in by_a.items() if key not in by_b]
    new = [_change(None, f) for key, f in by_b.items() if key not in by_a]
    kept = [_change(by_a[key], f) for key, f in by_b.items() if key in by_a]
    gone.sort(key=lambda c: -(c.impact_a_ms or 0.0))
    new.sort(key=lambda c: -(c.impact_b_ms or 0.0))
    kept.sort(key=lambda c: -max(c.impact_a_ms or 0.0, c.impact_b_ms or 0.0))
    a_total_ms = a_total_us / 1000
    predicted = min(sum(c.impact_a_ms or 0.0 for c in gone), a_total_ms)
    measured = (a_total_us - b_total_us) / 1000
    return FindingsDiff(
        disappeared=gone,
        appeared=new,
        persisted=kept,
        predicted_ms=predicted,
        predicted_share=predicted / a_total_ms if a_total_ms else 0.0,
        measured_ms=measured,
        measured_share=measured / a_total_ms if a_total_ms else 0.0,
    )


def _tensor_core_share(row: StageMixRow | None) -> float | None:
    if row is None or row.tensor_core_us is None or not row.total_us:
        return None
    return row.tensor_core_us / row.total_us


def _align(a: AnalysisResult, b: AnalysisResult) -> tuple[list[AlignedRow], str]:
    """Stage x category time of both sides, matched on (stage, category), largest first."""
    if (a.gpu is None) != (b.gpu is None):
        return [], "not comparable (one side has GPU kernels, the other only CPU operators)"
    kind = "GPU kernel and copy time" if a.gpu is not None else "CPU operator self time"
    rows_a = {(m.stage, m.category): m for m in a.stage_mix}
    rows_b = {(m.stage, m.category): m for m in b.stage_mix}
    aligned = []
    for key in dict.fromkeys([*rows_a, *rows_b]):
        ma, mb = rows_a.get(key), rows_b.get(key)
        a_us = ma.total_us if ma else 0.0
        b_us = mb.total_us if mb else 0.0
        aligned.append(
            AlignedRow(
                key[0],
                key[1],
                a_us,
                b_us,
                _ratio(a_us, b_us) if a_us else None,
                ma.count if ma else 0,
                mb.count if mb else 0,
                _tensor_core_share(ma),
                _tensor_core_share(mb),
            )
        )
    aligned.sort(key=lambda row: -(row.a_us + row.b_us))
    return aligned, kind
