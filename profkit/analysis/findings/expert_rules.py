"""The Nsight Systems expert rules: low GPU utilization, GPU starvation, host syncs, sync and pageable copies."""

from __future__ import annotations

from profkit.analysis.findings.context import Context
from profkit.analysis.findings.facts import PINNED_COPY_GB_PER_S, pageable_excess_us
from profkit.analysis.findings.model import Row, Severity
from profkit.analysis.findings.registry import Hit, trace_rule
from profkit.analysis.findings.thresholds import THRESHOLDS
from profkit.analysis.timeline import CAUSE_SHORT, ApiCall

_SHOWN_CALLS = 4  # API calls listed in the evidence
_SHOWN_GAPS = 3


def stage_counts(by_stage: dict[str, int]) -> str:
    """``{"denoise": 4, "vae": 1}`` -> ``"denoise 4, vae 1"`` (largest first)."""
    if not by_stage:
        return "no stage ranges in the trace"
    return ", ".join(f"{stage} {count}" for stage, count in sorted(by_stage.items(), key=lambda kv: -kv[1]))


def top_stage(calls: list[ApiCall]) -> str:
    """The stage where most of ``calls`` happened (``run`` when none is known)."""
    stages: dict[str, int] = {}
    for call in calls:
        for stage, count in call.by_stage.items():
            stages[stage] = stages.get(stage, 0) + count
    return max(stages, key=stages.get) if stages else "run"


def _call_rows(calls: list[ApiCall]) -> list[Row]:
    return [
        {"name": c.name, "count": c.count, "total_ms": c.total_us / 1000, "stages": stage_counts(c.by_stage)}
        for c in calls[:_SHOWN_CALLS]
    ]


_CALL_ROW = "{name} ×{count} ({total_ms:.2f} ms; {stages})"


def _idle_ms(ctx: Context, cause: str) -> float:
    """GPU idle time (ms) in the analysed window whose gap has ``cause`` (``host``, ``after_sync`` ...)."""
    if ctx.gaps is None:
        return 0.0
    return sum(c.total_us for c in ctx.gaps.by_cause if c.key == cause) / 1000


@trace_rule(
    severity=Severity.WARNING,
    thresholds=("low_gpu_utilization",),
    impact="GPU idle time waiting on the host to launch ({host_idle_ms:.2f} ms): an upper bound of what feeding "
    "the GPU faster recovers",
    title="The GPU is busy only {utilization:.0%} of the time",
    evidence="busy {busy_ms:.2f} ms (union over {streams:n|stream}) of [[the {pipeline_ms:.2f} ms pipeline call]]"
    "[[a {window_ms:.2f} ms window (first to last GPU activity)]]; {idle_gaps} idle gaps, the largest "
    "{largest_gap_ms:.2f} ms; {short_kernel_share:.0%} of kernels are shorter than 10 us."
    "[[ GPU busy per stage wall time: {rows}.]]",
    next_step="The host is not feeding the GPU fast enough: use CUDA graphs / torch.compile(mode='reduce-overhead'), "
    "a larger batch, and remove host syncs (.item(), .cpu()) from the loop.",
    row="{stage} {utilization:.0%}",
    row_sep=", ",
)
def low_gpu_utilization(ctx: Context) -> Hit | None:
    gpu = ctx.gpu
    if gpu is None:
        return None
    bar = THRESHOLDS["low_gpu_utilization"]
    staged = [s.gpu_busy_us for s in ctx.view.stages if s.gpu_busy_us is not None]
    if ctx.view.has_ranges and staged and ctx.view.total_us > 0:
        # diffusion runs: how much of the pipeline call the GPU spent working
        utilization = min(sum(staged) / ctx.view.total_us, 1.0)
        window = {"pipeline_ms": ctx.view.total_us / 1000}
    else:
        utilization = gpu.utilization
        window = {"window_ms": gpu.window_us / 1000}
    if utilization >= bar:
        return None
    low_stages: list[Row] = [
        {"stage": s.stage, "utilization": s.gpu_utilization}
        for s in ctx.view.stages
        if s.stage != "other" and s.gpu_utilization is not None and s.wall_us > 0 and s.gpu_utilization < bar
    ]
    return Hit(
        numbers={
            "utilization": utilization,
            **window,
            "busy_ms": gpu.busy_us / 1000,
            "streams": gpu.streams,
            "idle_gaps": gpu.idle_gap_count,
            "largest_gap_ms": gpu.largest_gap_us / 1000,
            "short_kernel_share": gpu.short_kernel_share,
            "host_idle_ms": _idle_ms(ctx, "host"),
        },
        rows=low_stages,
        recoverable_ms=_idle_ms(ctx, "host"),
    )


@trace_rule(
    severity=Severity.WARNING,
    thresholds=("starvation_share_warning",),
    impact="the length of the long idle gaps ({starvation_ms:.2f} ms): an upper bound, the host work in them "
    "still has to happen somewhere",
    title="The GPU sat idle for {gaps} gaps of {threshold_ms:.2f} ms or more",
    evidence="{starvation_ms:.2f} ms in long gaps, {share:.0%} of the {window_ms:.2f} ms GPU window ({gap_scope}). "
    "Largest: {rows}.",
    next_step="See what the host does in those gaps (CPU operators, Python, I/O, synchronizations) and move it off "
    "the critical path or overlap it with GPU work.",
    row="{length_ms:.2f} ms at {start_ms:.2f} ms ([[{where}, ]]{cause})",
)
def gpu_starvation(ctx: Context) -> Hit | None:
    gaps = ctx.gaps
    if gaps is None or not gaps.starvation_count or not gaps.window_us:
        return None
    share = gaps.starvation_us / gaps.window_us
    if share < THRESHOLDS["starvation_share_warning"]:
        return None
    rows: list[Row] = [
        {
            "length_ms": g.length_us / 1000,
            "start_ms": g.start_us / 1000,
            "where": "" if g.where == "trace" else g.where,
            "cause": CAUSE_SHORT.get(g.cause, g.cause),
        }
        for g in gaps.largest[:_SHOWN_GAPS]
        if g.length_us >= gaps.starvation_threshold_us
    ]
    return Hit(
        numbers={
            "gaps": gaps.starvation_count,
            "threshold_ms": gaps.starvation_threshold_us / 1000,
            "starvation_ms": gaps.starvation_us / 1000,
            "share": share,
            "window_ms": gaps.window_us / 1000,
        },
        labels={"gap_scope": gaps.scope},
        rows=rows,
        recoverable_ms=gaps.starvation_us / 1000,
    )


_SYNC_IMPACT = (
    "host time blocked in the calls ({blocked_ms:.2f} ms), at most the GPU idle that follows syncs "
    "({idle_after_sync_ms:.2f} ms)"
)


@trace_rule(
    severity=Severity.WARNING,
    thresholds=("sync_time_share_warning",),
    impact=_SYNC_IMPACT,
    title="The host waited on the GPU in {calls:n|synchronization call}",
    evidence="{rows}. {blocked_ms:.2f} ms of host time blocked ({share:.1%} of the analysed window); while the host "
    "waits, it queues no new work: the GPU sat idle {idle_after_sync_ms:.2f} ms after syncs.",
    variants={
        "gpu_kept_busy": {
            "title": "The host waited on the GPU in {calls:n|synchronization call} (the GPU barely idled after them)",
            "evidence": "{rows}. {blocked_ms:.2f} ms of host time blocked ({share:.1%} of the analysed window), but "
            "the GPU idled only {idle_after_sync_ms:.2f} ms after syncs: the host caught up before the queue "
            "drained.",
        }
    },
    next_step="Find what forces the sync (tensor.item(), .cpu(), .tolist(), printing a CUDA tensor, "
    "torch.cuda.synchronize() in the loop, data-dependent shapes) and move it out of the hot loop (in a diffusion "
    "run: the denoise loop).",
    row=_CALL_ROW,
)
def host_sync_calls(ctx: Context) -> Hit | None:
    """Nsight Systems 'CUDA synchronization' rule: calls that block the host until the GPU is done."""
    if ctx.blocking is None:
        return None
    calls = [c for c in ctx.blocking.calls if c.kind == "sync"]
    if ctx.view.has_ranges:
        calls = [c for c in calls if sum(n for stage, n in c.by_stage.items() if stage != "outside pipeline")]
    if not calls:
        return None
    total = sum(c.total_us for c in calls)
    share = total / ctx.window_us if ctx.window_us else 0.0
    idle_ms = _idle_ms(ctx, "after_sync")
    # the GPU "drains and idles" only when the idle after syncs is real: at least the share the rule warns at
    idles = idle_ms * 1000 >= THRESHOLDS["sync_time_share_warning"] * ctx.window_us
    return Hit(
        numbers={
            "calls": sum(c.count for c in calls),
            "blocked_ms": total / 1000,
            "share": share,
            "idle_after_sync_ms": idle_ms,
        },
        rows=_call_rows(calls),
        scope=top_stage(calls),
        variant=None if idles else "gpu_kept_busy",
        recoverable_ms=min(total / 1000, idle_ms),
    )


@trace_rule(
    severity=Severity.WARNING,
    impact=_SYNC_IMPACT,
    title="{calls} synchronous memcpy/memset API calls",
    evidence="{rows}. A synchronous copy or set blocks the host until the GPU has finished all earlier work.",
    next_step="Use the async variants on a stream (tensor.to(device, non_blocking=True) from pinned memory, "
    "torch.zeros(..., device=...) instead of building on the host and copying).",
    row=_CALL_ROW,
)
def synchronous_memcpy_memset(ctx: Context) -> Hit | None:
    """Nsight Systems 'synchronous memcpy/memset' rule."""
    if ctx.blocking is None:
        return None
    calls = [c for c in ctx.blocking.calls if c.kind in ("memcpy_sync", "memset_sync")]
    if not calls:
        return None
    blocked_ms, idle_ms = sum(c.total_us for c in calls) / 1000, _idle_ms(ctx, "after_sync")
    return Hit(
        numbers={"calls": sum(c.count for c in calls), "blocked_ms": blocked_ms, "idle_after_sync_ms": idle_ms},
        rows=_call_rows(calls),
        scope=top_stage(calls),
        recoverable_ms=min(blocked_ms, idle_ms),
    )


@trace_rule(
    severity=Severity.WARNING,
    impact="their GPU copy time ({copy_ms:.2f} ms) minus the same {bytes:bytes} at an assumed pinned rate of "
    "{pinned_gb_per_s:.0f} GB/s",
    estimate=True,
    title="{copies} copies use pageable host memory",
    evidence="{copies} memcpys between the GPU and pageable (not pinned) host memory, {bytes:bytes}, "
    "{copy_ms:.2f} ms of GPU copy time (by stage: {stages}). The driver stages them through a pinned buffer and "
    "the calls block the host, even the Async ones.",
    next_step="Pin the host buffers (tensor.pin_memory(), DataLoader(pin_memory=True)) and copy with "
    "non_blocking=True, or keep the data on the GPU.",
)
def pageable_memcpy(ctx: Context) -> Hit | None:
    """Nsight Systems 'pageable memory' rule: async copies to or from pageable host memory are synchronous."""
    blocking = ctx.blocking
    if blocking is None or not blocking.pageable_copies:
        return None
    calls = [c for c in blocking.calls if c.kind == "pageable_copy"]
    return Hit(
        numbers={
            "copies": blocking.pageable_copies,
            "bytes": blocking.pageable_bytes,
            "copy_ms": blocking.pageable_us / 1000,
            "pinned_gb_per_s": PINNED_COPY_GB_PER_S,
        },
        labels={"stages": stage_counts(calls[0].by_stage) if calls else "not correlated to launches"},
        scope=top_stage(calls),
        recoverable_ms=pageable_excess_us(blocking.pageable_us, blocking.pageable_bytes) / 1000,
    )
