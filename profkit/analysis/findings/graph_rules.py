"""Rules of CUDA graphs in the denoise loop: launch-bound steps without graphs, idle between graph replays."""

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
    thresholds=("no_graph_step_idle_share",),
    title="The denoise steps launch every kernel one by one: no CUDA graphs, GPU idle {idle_share:.0%} of the steps",
    evidence="No cudaGraphLaunch in the trace; inside the {steps} step ranges ({steps_ms:.2f} ms) the GPU is idle "
    "{idle_ms:.2f} ms while the host launches {kernels_per_step:.0f} kernels per step.",
    next_step="Capture the denoiser in CUDA graphs: pipe.unet = torch.compile(pipe.unet, mode='reduce-overhead') "
    "(or torch.cuda.graphs by hand) replays each step's kernels with one launch; keep host syncs out of the step.",
)
def launch_bound_without_graphs(ctx: Context) -> Hit | None:
    graphs = ctx.graphs
    if graphs is None or graphs.launches or not graphs.steps_wall_us or not ctx.view.steps:
        return None
    idle_share = graphs.idle_in_steps_us / graphs.steps_wall_us
    if idle_share < THRESHOLDS["no_graph_step_idle_share"]:
        return None
    kernels = sum(step.projection.work_items for step in ctx.view.steps if step.projection is not None)
    return Hit(
        numbers={
            "idle_share": idle_share,
            "steps": len(ctx.view.steps),
            "steps_ms": graphs.steps_wall_us / 1000,
            "idle_ms": graphs.idle_in_steps_us / 1000,
            "kernels_per_step": kernels / len(ctx.view.steps),
        },
        impact=_impact(
            graphs.idle_in_steps_us,
            ctx,
            "GPU idle inside the step ranges: an upper bound of what CUDA graphs / torch.compile can recover",
        ),
    )


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
