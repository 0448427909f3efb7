"""Rules of attention: a stage whose SDPA does not run the flash kernels, with the reason and the fix."""

from __future__ import annotations

from collections.abc import Iterator

from profkit.analysis.findings.context import Context
from profkit.analysis.findings.model import Impact, Severity
from profkit.analysis.findings.registry import Hit, trace_rule
from profkit.analysis.findings.thresholds import THRESHOLDS

_KERNEL_NAME_CHARS = 60


@trace_rule(
    severity=Severity.WARNING,
    scope="run",
    thresholds=("attention_min_share",),
    title="Attention in {stage} runs the {implementation} kernel, not flash ({share:.0%} of the stage's GPU time)",
    evidence="{kernel} ran {calls} times ({attention_ms:.2f} ms of attention kernels, {dtype}). "
    "Likely reason: {reason}.",
    next_step="{fix}. Expected effect (estimate): attention about {fix_speedup:.1f}x faster, "
    "{recoverable_ms:.2f} ms less GPU time.",
)
def attention_not_flash(ctx: Context) -> Iterator[Hit]:
    window = ctx.window_us
    for row in ctx.attention:
        if not row.reason or not row.fix_speedup or row.share < THRESHOLDS["attention_min_share"]:
            continue
        kernel = row.kernel if len(row.kernel) <= _KERNEL_NAME_CHARS else row.kernel[: _KERNEL_NAME_CHARS - 3] + "..."
        yield Hit(
            numbers={
                "share": row.share,
                "calls": row.kernel_calls,
                "attention_ms": row.attention_us / 1000,
                "fix_speedup": row.fix_speedup,
                "recoverable_ms": row.recoverable_us / 1000,
            },
            labels={
                "stage": row.stage,
                "implementation": row.label,
                "kernel": kernel or "no fused kernel",
                "kernel_name": row.kernel,
                "dtype": row.dtype,
                "reason": row.reason,
                "fix": row.fix,
            },
            scope=row.stage if row.stage in ("text_encoder", "denoise", "vae", "other") else None,
            impact=Impact(
                recoverable_ms=row.recoverable_us / 1000,
                share=row.recoverable_us / window if window else 0.0,
                method=f"estimate: attention kernel time x (1 - 1/{row.fix_speedup:.1f}), the assumed speedup of "
                "half-precision flash attention",
                estimate=True,
            ),
        )
