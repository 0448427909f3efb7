"""Caveats: what the trace lacks or how it was taken, read before the numbers (info: they recover no time)."""

from __future__ import annotations

from profkit.analysis.findings.context import Context
from profkit.analysis.findings.facts import half_precision_is_slow
from profkit.analysis.findings.model import Severity
from profkit.analysis.findings.registry import Hit, trace_rule


@trace_rule(
    severity=Severity.INFO,
    title="No profkit ranges in this trace",
    evidence="The trace holds no 'profkit/...' ranges, so stage and step views are not available; the "
    "kernel/operator breakdown below covers the whole trace.",
    next_step="Capture with `profkit capture`, or wrap your pipeline in `profkit.capture.instrument(pipe)` while "
    "profiling.",
)
def no_profkit_ranges(ctx: Context) -> Hit | None:
    return None if ctx.view.has_ranges else Hit()


@trace_rule(
    severity=Severity.INFO,
    title="No GPU activity in the trace",
    evidence="The trace has no GPU kernels, memcpys or memsets: it was captured on CPU or without CUDA "
    "activities. Operator times below are CPU self times.",
    next_step="Capture on a GPU (`--device cuda`) to see kernels, GPU busy time and launch overhead.",
    variants={
        "not_captured": {
            "title": "GPU activity was not captured",
            "evidence": "The Nsight Systems report has no CUDA kernel table: CUDA was not traced (a capture without "
            "--trace=cuda, or on a machine without a GPU). The stage and step views come from NVTX ranges; "
            "the CPU view lists OS runtime calls.",
            "next_step": "Capture on a GPU with `profkit capture --nsys --device cuda` to see kernels, copies and "
            "GPU idle time.",
        }
    },
)
def no_gpu_activity(ctx: Context) -> Hit | None:
    if ctx.gpu is not None:
        return None
    not_captured = any(entry.startswith("GPU kernels") for entry in ctx.info.not_captured)
    return Hit(variant="not_captured" if not_captured else None)


@trace_rule(
    severity=Severity.INFO,
    title="{dtype} measured on a CPU",
    evidence="This CPU has no fast half-precision kernels: fp16/bf16 usually run several times slower than "
    "fp32 here. The numbers are real for this machine, not a prediction for a GPU.",
    next_step="Compare precisions on the GPU you deploy on.",
)
def half_precision_on_cpu(ctx: Context) -> Hit | None:
    if not half_precision_is_slow(ctx.device_type, ctx.dtype):
        return None
    return Hit(labels={"dtype": ctx.dtype or "", "device_type": ctx.device_type or ""})


@trace_rule(
    severity=Severity.INFO,
    title="{skipped_events} trace events were unusable and skipped",
    evidence="{rows}. The rest of the analysis uses the remaining events.",
    next_step="Check how the trace was produced; a truncated or hand-edited trace loses events.",
    row="{count} {reason}",
    row_sep=", ",
)
def skipped_events(ctx: Context) -> Hit | None:
    if not ctx.info.skipped_total:
        return None
    return Hit(
        numbers={"skipped_events": ctx.info.skipped_total},
        rows=[{"reason": reason, "count": count} for reason, count in ctx.info.skipped_events.items()],
    )
