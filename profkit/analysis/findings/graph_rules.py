"""Rules of CUDA graphs in the denoise loop: idle between graph replays (a launch-bound loop without graphs is
``launch_bound_denoise``, which says when the trace has no graph launches)."""

from __future__ import annotations

from profkit.analysis.findings.context import Context
from profkit.analysis.findings.model import Impact, Severity
from profkit.analysis.findings.registry import Hit, trace_rule
from profkit.analysis.findings.thresholds import THRESHOLDS


def _impact(recoverable_us: float, ctx: Context, method: str) -> Impact:
    window = ctx.window_us
    return Impact(recoverable_ms=recoverable_us / 1000, share=recoverable_us / window if window else 0.0, method=method)


@trace_rule(
    severity=Severity.WARNING,
    scope="denoise",
    thresholds=("graph_idle_share",),
    title="The denoiser runs as CUDA graphs, but the GPU idles {idle_ms:.2f} ms between replays",
    evidence="{launches} cudaGraphLaunch replays ran {replay_share:.0%} of the GPU busy time; between consecutive "
    "replays the GPU is idle {idle_ms:.2f} ms in {gaps} gaps ({idle_share:.0%} of the pipeline). In between, the "
    "host waits in {sync_calls} {sync_call} calls[[ from {sync_op}]][[ in the {sync_range} range]].",
    next_step="The next replay waits for that sync: avoid reading tensors on the host inside the step (.item() on a "
    "timestep or sigma in the scheduler; keep scheduler state on the CPU or compile the scheduler step too), so "
    "the host can queue the next replay while the GPU runs.",
)
def idle_between_graph_replays(ctx: Context) -> Hit | None:
    graphs = ctx.graphs
    if graphs is None or not graphs.launches or not graphs.gaps_between or not ctx.window_us:
        return None
    idle_share = graphs.idle_between_us / ctx.window_us
    if idle_share < THRESHOLDS["graph_idle_share"]:
        return None
    return Hit(
        numbers={
            "launches": graphs.launches,
            "replay_share": graphs.replay_share,
            "idle_ms": graphs.idle_between_us / 1000,
            "gaps": graphs.gaps_between,
            "idle_share": idle_share,
            "sync_calls": sum(graphs.sync_calls_between.values()),
        },
        labels={
            "sync_call": graphs.sync_call or "synchronizing",
            "sync_op": graphs.sync_op,
            "sync_range": graphs.sync_range,
        },
        impact=_impact(
            graphs.idle_between_us, ctx, "GPU idle between consecutive graph replays (what removing the sync recovers)"
        ),
    )
