"""Comparison rules (A vs B): overall and per-step speedup, GPU vs wall gains, stage changes, caveats.

They decide from typed facts only: the speedups, the step counts, the setups and each side's dtype and device.
"""

from __future__ import annotations

from collections.abc import Iterator

from profkit.analysis.findings.context import ComparisonContext, run_device_type, run_dtype
from profkit.analysis.findings.facts import HALF_PRECISION_ON_CPU_NOTE, half_precision_is_slow
from profkit.analysis.findings.model import Severity
from profkit.analysis.findings.registry import Hit, comparison_rule
from profkit.analysis.findings.thresholds import THRESHOLDS


def _labels(ctx: ComparisonContext) -> dict[str, str]:
    return {"label_a": ctx.result.label_a, "label_b": ctx.result.label_b}


@comparison_rule(
    severity=Severity.INFO,
    thresholds=("slower_speedup",),
    title="{verdict}",
    evidence="{label_a}: {a_ms:.2f} ms, {label_b}: {b_ms:.2f} ms (speedup {speedup:.2f}x; above 1: {label_b} is "
    "faster).",
    next_step="Keep the faster setting.",
    variants={
        "slower": {"next_step": "{label_b} made this run slower: check the caveats under the verdict for why first."}
    },
)
def overall_speedup(ctx: ComparisonContext) -> Hit | None:
    total = ctx.result.total
    if total.speedup is None:
        return None
    slower = total.speedup < THRESHOLDS["slower_speedup"]
    return Hit(
        numbers={"a_ms": (total.a_us or 0.0) / 1000, "b_ms": (total.b_us or 0.0) / 1000, "speedup": total.speedup},
        labels={**_labels(ctx), "verdict": ctx.result.verdict, "basis": ctx.result.total_basis},
        severity=Severity.WARNING if slower else None,
        variant="slower" if slower else None,
    )


@comparison_rule(
    severity=Severity.INFO,
    thresholds=("host_bound_gpu_speedup", "host_bound_wall_lag"),
    title="GPU busy time: {label_b} is {gpu_speedup:how} {label_a}",
    evidence="GPU busy (union of kernels and copies) {gpu_a_ms:.2f} ms → {gpu_b_ms:.2f} ms; {basis} {a_ms:.2f} ms → "
    "{b_ms:.2f} ms.",
    next_step="GPU and wall time moved together.",
    variants={
        "host_bound": {
            "title": "GPU busy time: {label_b} is {gpu_speedup:how} {label_a}, but wall time only {speedup:.2f}x",
            "next_step": "The GPU work got faster but the host did not keep up: the run is now launch/CPU-bound. "
            "Look at the idle-gap causes of B; CUDA graphs or torch.compile turn the GPU gain into wall time.",
        }
    },
)
def gpu_vs_wall_speedup(ctx: ComparisonContext) -> Hit | None:
    gpu, total = ctx.result.gpu_busy, ctx.result.total
    if gpu is None or gpu.speedup is None or total.speedup is None:
        return None
    host_bound = (
        gpu.speedup > THRESHOLDS["host_bound_gpu_speedup"]
        and total.speedup < gpu.speedup / THRESHOLDS["host_bound_wall_lag"]
    )
    return Hit(
        numbers={
            "gpu_a_ms": (gpu.a_us or 0.0) / 1000,
            "gpu_b_ms": (gpu.b_us or 0.0) / 1000,
            "gpu_speedup": gpu.speedup,
            "a_ms": (total.a_us or 0.0) / 1000,
            "b_ms": (total.b_us or 0.0) / 1000,
            "speedup": total.speedup,
        },
        labels={**_labels(ctx), "basis": ctx.result.total_basis},
        severity=Severity.WARNING if host_bound else None,
        variant="host_bound" if host_bound else None,
    )


@comparison_rule(
    severity=Severity.INFO,
    thresholds=("stage_change_min",),
    title="The {stage} stage changed the most: {label_b} is {speedup:how} {label_a} there",
    evidence="{stage}: {a_ms:.2f} ms → {b_ms:.2f} ms.",
    next_step="Look at its categories below to see which kind of work changed.",
)
def largest_stage_change(ctx: ComparisonContext) -> Hit | None:
    changed = [
        row
        for row in ctx.result.stages
        if row.speedup is not None and row.key != "other" and abs(row.speedup - 1) >= THRESHOLDS["stage_change_min"]
    ]
    if not changed:
        return None
    biggest = max(changed, key=lambda row: abs((row.a_us or 0) - (row.b_us or 0)))
    return Hit(
        numbers={"a_ms": (biggest.a_us or 0) / 1000, "b_ms": (biggest.b_us or 0) / 1000, "speedup": biggest.speedup},
        labels={**_labels(ctx), "stage": biggest.key},
        scope=biggest.key,
    )


@comparison_rule(
    severity=Severity.INFO,
    scope="denoise",
    thresholds=("min_matched_steps",),
    title="Per step, {label_b} is {median:how} {label_a} (median)",
    evidence="Speedup over {steps} matched steps: median {median:.2f}x, min {min:.2f}x, max {max:.2f}x.",
    next_step="A wide min-max range means some steps differ (warm-up, variance): capture with --warmup.",
)
def per_step_speedup(ctx: ComparisonContext) -> Hit | None:
    s = ctx.result.step_speedup
    if not s or s.count < THRESHOLDS["min_matched_steps"]:
        return None
    return Hit(numbers={"steps": s.count, "median": s.median, "min": s.min, "max": s.max}, labels=_labels(ctx))


@comparison_rule(
    severity=Severity.WARNING,
    title="The two runs have different step counts",
    evidence="{label_a}: {a_steps} steps, {label_b}: {b_steps} steps.",
    next_step="Compare per-step numbers, not totals, or capture both with the same --steps.",
)
def step_count_differs(ctx: ComparisonContext) -> Hit | None:
    a_steps, b_steps = len(ctx.a.view.steps), len(ctx.b.view.steps)
    if a_steps == b_steps:
        return None
    return Hit(numbers={"a_steps": a_steps, "b_steps": b_steps}, labels=_labels(ctx))


@comparison_rule(
    severity=Severity.CRITICAL,
    title="The runs come from different setups",
    evidence="{difference}",
    next_step="Re-capture both on the same machine and software, or treat the comparison as indicative only.",
)
def setup_differs(ctx: ComparisonContext) -> Iterator[Hit]:
    for difference in ctx.result.setup_differences:
        yield Hit(labels={"difference": difference})


@comparison_rule(
    severity=Severity.WARNING,
    title="Read this before trusting the numbers",
    evidence=HALF_PRECISION_ON_CPU_NOTE + " (run {sides}).",
    next_step="Measure on the hardware you deploy on.",
)
def platform_note(ctx: ComparisonContext) -> Iterator[Hit]:
    """A side measured where its precision is slow for platform reasons (half precision on a CPU)."""
    slow: dict[str, list[str]] = {}
    for side, analysis in (("A", ctx.a), ("B", ctx.b)):
        dtype = run_dtype(analysis.run)
        if dtype and half_precision_is_slow(run_device_type(analysis.run), dtype):
            slow.setdefault(dtype, []).append(side)
    for dtype, sides in slow.items():
        yield Hit(labels={"dtype": dtype, "sides": " and ".join(sides)})


@comparison_rule(
    severity=Severity.INFO,
    thresholds=("prediction_match_tolerance",),
    title="{label_b} recovered {measured_ms:.2f} ms where the findings of {label_a} that disappeared ({gone}) "
    "predicted {predicted_ms:.2f} ms: the measured change matches the prediction",
    evidence="Predicted: the recoverable time of {gone_rules} in {label_a}, {predicted_ms:.2f} ms "
    "({predicted_share:.1%} of {label_a}'s {basis}); measured: {a_ms:.2f} ms → {b_ms:.2f} ms "
    "({measured_ms:+.2f} ms, {measured_share:+.1%}).",
    next_step="The fix did what its findings said; look at the findings that persisted for the next one.",
    variants={
        "short": {
            "title": "{label_b} recovered {measured_ms:.2f} ms, less than the {predicted_ms:.2f} ms the "
            "findings of {label_a} that disappeared ({gone}) predicted",
            "next_step": "Part of the predicted time was not recovered: the estimates are upper bounds, or another "
            "cost took its place (see the findings that appeared).",
        },
        "more": {
            "title": "{label_b} recovered {measured_ms:.2f} ms, more than the {predicted_ms:.2f} ms the "
            "findings of {label_a} that disappeared ({gone}) predicted",
            "next_step": "More changed than those findings covered: the category and stage tables show where.",
        },
        "other_way": {
            "title": "{label_b} is {slower_ms:.2f} ms slower although the findings of {label_a} that disappeared "
            "({gone}) predicted {predicted_ms:.2f} ms recoverable",
            "next_step": "Something else got slower: see the findings that appeared and the stage changes.",
        },
        "none": {
            "title": "The findings of {label_a} that disappeared in {label_b} ({gone}) carried no time estimate; "
            "measured change {measured_ms:+.2f} ms ({measured_share:+.1%})",
            "evidence": "Nothing was predicted; measured: {a_ms:.2f} ms → {b_ms:.2f} ms on {label_a}'s {basis}.",
            "next_step": "The change is not explained by A's findings: see the findings that appeared or persisted.",
        },
    },
)
def predicted_vs_measured(ctx: ComparisonContext) -> Hit | None:
    """What A's findings that disappeared in B predicted against the measured change of the total."""
    diff = ctx.result.findings_diff
    if diff is None or not diff.disappeared:  # nothing of A went away: nothing predicted to check
        return None
    gone = [c for c in diff.disappeared if c.impact_a_ms is not None]
    predicted, measured = diff.predicted_ms, diff.measured_ms
    if not gone or predicted <= 0:
        variant = "none"
    elif measured <= 0:
        variant = "other_way"
    elif abs(measured - predicted) <= THRESHOLDS["prediction_match_tolerance"] * predicted:
        variant = None
    else:
        variant = "more" if measured > predicted else "short"
    total = ctx.result.total
    return Hit(
        numbers={
            "gone": len(diff.disappeared),
            "predicted_ms": predicted,
            "predicted_share": diff.predicted_share,
            "measured_ms": measured,
            "measured_share": diff.measured_share,
            "slower_ms": -measured,
            "a_ms": (total.a_us or 0.0) / 1000,
            "b_ms": (total.b_us or 0.0) / 1000,
        },
        labels={
            **_labels(ctx),
            "basis": ctx.result.total_basis,
            "gone_rules": ", ".join(c.rule for c in gone) or "none",
        },
        variant=variant,
    )
