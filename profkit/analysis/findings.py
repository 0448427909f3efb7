"""Findings: named bottlenecks with the numbers behind them, a severity and a next step.

Each rule is a function of the analysis context; its thresholds live in :data:`THRESHOLDS` so they
can be read (and tuned) in one place. A rule returns ``None`` when it does not apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from profkit.analysis.operators import Breakdown, GpuTime, StageMixRow
from profkit.analysis.pipeline_view import PipelineView
from profkit.analysis.timeline import CAUSE_SHORT, ApiCall, HostBlocking, IdleGaps, LaunchStats
from profkit.parsers.tables import TraceInfo

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

THRESHOLDS: dict[str, float] = {
    "vae_share_warning": 0.25,
    "text_encoder_share_warning": 0.20,
    "other_share_warning": 0.15,
    "first_step_outlier_ratio": 1.5,
    "step_cv_warning": 0.15,
    "low_gpu_utilization": 0.5,
    "fp32_matmul_share_in_half_run": 0.10,
    "dominant_category_share": 0.40,
    "sync_time_share_warning": 0.01,  # host time blocked in sync calls, of the analysed window
    "starvation_share_warning": 0.05,  # long idle gaps, of the GPU window
    "launch_bound_idle_share": 0.30,  # GPU idle share inside the denoise loop
    "launch_bound_idle_critical": 0.60,
    "every_step_share": 0.8,  # "in every step": at least this share of the steps
}


@dataclass
class Finding:
    rule: str
    severity: str  # critical | warning | info
    title: str
    evidence: str
    next_step: str
    scope: str = "run"  # run | text_encoder | denoise | vae | ...


@dataclass
class Context:
    info: TraceInfo
    view: PipelineView
    gpu: GpuTime | None
    kernels: Breakdown | None
    cpu_ops: Breakdown
    run: dict[str, Any] | None  # capture metadata, when the trace came from a profkit capture
    gaps: IdleGaps | None = None
    launches: LaunchStats | None = None
    blocking: HostBlocking | None = None
    stage_mix: list[StageMixRow] = field(default_factory=list)
    cpu_op_names: dict[str, int] = field(default_factory=dict)  # CPU operator name -> count

    @property
    def window_us(self) -> float:
        """The analysed wall time: the pipeline call(s) when known, else the GPU window."""
        if self.view.has_ranges:
            return self.view.total_us
        return self.gpu.window_us if self.gpu else 0.0


def _ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def _bytes(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count:.0f} B"


def _stage(ctx: Context, name: str):
    return next((s for s in ctx.view.stages if s.stage == name), None)


def no_ranges(ctx: Context) -> Finding | None:
    if ctx.view.has_ranges:
        return None
    return Finding(
        "no_profkit_ranges",
        "info",
        "No profkit ranges in this trace",
        "The trace holds no 'profkit/...' ranges, so stage and step views are not available; the "
        "kernel/operator breakdown below covers the whole trace.",
        "Capture with `profkit capture`, or wrap your pipeline in `profkit.capture.instrument(pipe)` while profiling.",
    )


def no_gpu(ctx: Context) -> Finding | None:
    if ctx.gpu is not None:
        return None
    if any(entry.startswith("GPU kernels") for entry in ctx.info.not_captured):
        return Finding(
            "no_gpu_activity",
            "info",
            "GPU activity was not captured",
            "The Nsight Systems report has no CUDA kernel table: CUDA was not traced (a capture without "
            "--trace=cuda, or on a machine without a GPU). The stage and step views come from NVTX ranges; "
            "the CPU view lists OS runtime calls.",
            "Capture on a GPU with `profkit capture --nsys --device cuda` to see kernels, copies and GPU idle time.",
        )
    return Finding(
        "no_gpu_activity",
        "info",
        "No GPU activity in the trace",
        "The trace has no GPU kernels, memcpys or memsets: it was captured on CPU or without CUDA "
        "activities. Operator times below are CPU self times.",
        "Capture on a GPU (`--device cuda`) to see kernels, GPU busy time and launch overhead.",
    )


def dominant_stage(ctx: Context) -> Finding | None:
    denoise = _stage(ctx, "denoise")
    if denoise is None or not ctx.view.step_stats:
        return None
    stats = ctx.view.step_stats
    return Finding(
        "denoise_dominates" if denoise.share >= 0.5 else "denoise_share",
        "info",
        f"The denoise loop takes {denoise.share:.0%} of the pipeline",
        f"{stats.count} steps, median {_ms(stats.median)} per step, {_ms(denoise.wall_us)} of "
        f"{_ms(ctx.view.total_us)} in total.",
        "Speed up the denoiser first: half precision, SDPA/flash attention, torch.compile, fewer steps.",
        "denoise",
    )


def vae_share(ctx: Context) -> Finding | None:
    vae = _stage(ctx, "vae")
    if vae is None or vae.share < THRESHOLDS["vae_share_warning"]:
        return None
    return Finding(
        "vae_decode_large",
        "warning",
        f"VAE takes {vae.share:.0%} of the pipeline",
        f"{_ms(vae.wall_us)} of {_ms(ctx.view.total_us)} in VAE decode/encode "
        f"(threshold {THRESHOLDS['vae_share_warning']:.0%}).",
        "Try a tiny/distilled VAE (TAESD), VAE slicing or tiling for large batches, channels_last, or "
        "compiling vae.decode.",
        "vae",
    )


def text_encoder_share(ctx: Context) -> Finding | None:
    stage = _stage(ctx, "text_encoder")
    if stage is None or stage.share < THRESHOLDS["text_encoder_share_warning"]:
        return None
    return Finding(
        "text_encoder_large",
        "warning",
        f"Text encoding takes {stage.share:.0%} of the pipeline",
        f"{_ms(stage.wall_us)} over {stage.calls} text-encoder calls.",
        "Cache prompt embeddings for repeated prompts (pass prompt_embeds), or run encoders in half precision.",
        "text_encoder",
    )


def other_share(ctx: Context) -> Finding | None:
    other = _stage(ctx, "other")
    if other is None or not ctx.view.has_ranges or other.share < THRESHOLDS["other_share_warning"]:
        return None
    return Finding(
        "time_outside_stages",
        "warning",
        f"{other.share:.0%} of the pipeline is outside named stages",
        f"{_ms(other.wall_us)} is spent in the pipeline call but outside text encoding, denoise steps "
        "and VAE: input checks, latent preparation, image post-processing (PIL conversion).",
        "Look at the CPU operators of that time; return latents or tensors (output_type='pt') when the "
        "caller does not need PIL images.",
        "other",
    )


def first_step_outlier(ctx: Context) -> Finding | None:
    steps = [s for s in ctx.view.steps if s.call == 0]
    if len(steps) < 3:
        return None
    first = steps[0].wall_us
    rest = sorted(s.wall_us for s in steps[1:])
    median_rest = rest[len(rest) // 2]
    ratio = first / median_rest if median_rest else 0.0
    if ratio < THRESHOLDS["first_step_outlier_ratio"]:
        return None
    return Finding(
        "first_step_outlier",
        "warning",
        f"Step 0 is {ratio:.1f}x slower than the median step",
        f"step 0: {_ms(first)}; median of steps 1-{len(steps) - 1}: {_ms(median_rest)}.",
        "A first-step outlier is warm-up: lazy init, cuDNN/Triton autotuning or torch.compile. "
        "Capture with --warmup N so the recorded call is steady-state.",
        "denoise",
    )


def step_variance(ctx: Context) -> Finding | None:
    stats = ctx.view.step_stats
    if stats is None or stats.count < 3 or stats.cv < THRESHOLDS["step_cv_warning"]:
        return None
    return Finding(
        "step_variance",
        "warning",
        f"Step times vary by {stats.cv:.0%} (coefficient of variation)",
        f"min {_ms(stats.min)}, median {_ms(stats.median)}, max {_ms(stats.max)}, std {_ms(stats.std)}.",
        "Steps of a denoise loop do the same work: variance means interference (other processes, "
        "thermal/clock changes, allocator growth, recompilation). Pin the machine and repeat.",
        "denoise",
    )


def low_gpu_utilization(ctx: Context) -> Finding | None:
    gpu = ctx.gpu
    if gpu is None:
        return None
    staged = [s.gpu_busy_us for s in ctx.view.stages if s.gpu_busy_us is not None]
    if ctx.view.has_ranges and staged and ctx.view.total_us > 0:
        # diffusion runs: how much of the pipeline call the GPU spent working
        utilization = min(sum(staged) / ctx.view.total_us, 1.0)
        window = f"the {_ms(ctx.view.total_us)} pipeline call"
    else:
        utilization = gpu.utilization
        window = f"a {_ms(gpu.window_us)} window (first to last GPU activity)"
    if utilization >= THRESHOLDS["low_gpu_utilization"]:
        return None
    low_stages = [
        f"{s.stage} {s.gpu_utilization:.0%}"
        for s in ctx.view.stages
        if s.stage != "other"
        and s.gpu_utilization is not None
        and s.wall_us > 0
        and s.gpu_utilization < THRESHOLDS["low_gpu_utilization"]
    ]
    per_stage = f" GPU busy per stage wall time: {', '.join(low_stages)}." if low_stages else ""
    return Finding(
        "low_gpu_utilization",
        "warning",
        f"The GPU is busy only {utilization:.0%} of the time",
        f"busy {_ms(gpu.busy_us)} (union over {gpu.streams} streams) of {window}; "
        f"{gpu.idle_gap_count} idle gaps, the largest {_ms(gpu.largest_gap_us)}; "
        f"{gpu.short_kernel_share:.0%} of kernels are shorter than 10 us.{per_stage}",
        "The host is not feeding the GPU fast enough: use CUDA graphs / torch.compile(mode='reduce-overhead'), "
        "a larger batch, and remove host syncs (.item(), .cpu()) from the loop.",
    )


def fp32_in_half_run(ctx: Context) -> Finding | None:
    dtype = (ctx.run or {}).get("dtype")
    if ctx.kernels is None or dtype not in ("fp16", "bf16"):
        return None
    matmul = [r for r in ctx.kernels.rows if r.category in ("gemm", "convolution")]
    fp32 = [r for r in matmul if r.precision == "fp32" and not r.tensor_core]
    share = sum(r.total_us for r in fp32) / ctx.kernels.total_us if ctx.kernels.total_us else 0.0
    if share < THRESHOLDS["fp32_matmul_share_in_half_run"]:
        return None
    names = ", ".join(r.name[:60] for r in fp32[:3])
    return Finding(
        "fp32_matmul_in_half_run",
        "warning",
        f"{share:.0%} of GPU time is FP32 GEMM/conv in a {dtype} run",
        f"Kernels without tensor cores whose names say FP32 (a guess from the name): {names}.",
        "Some module stays in FP32 (often the VAE, an upcast, or a norm): check the component dtypes.",
    )


def dominant_category(ctx: Context) -> Finding | None:
    breakdown = ctx.kernels or ctx.cpu_ops
    if not breakdown.categories:
        return None
    top = breakdown.categories[0]
    if top.share < THRESHOLDS["dominant_category_share"] or top.category == "other":
        return None
    what = "GPU kernel time" if breakdown.kind == "gpu_kernels" else "CPU operator self time"
    advice = {
        "convolution": "Convolutions lead: use channels_last memory format and half precision (tensor cores).",
        "gemm": "GEMMs lead: use half precision/TF32 so they run on tensor cores, fuse QKV projections.",
        "attention": "Attention leads: make sure SDPA picks flash or memory-efficient kernels.",
        "normalization": "Normalization leads: fuse it with torch.compile.",
        "elementwise": "Elementwise kernels lead: fuse them with torch.compile.",
        "memcpy": "Copies lead: keep tensors on the device and avoid dtype/device round trips.",
    }
    return Finding(
        "dominant_category",
        "info",
        f"{top.category} is {top.share:.0%} of {what}",
        f"{top.count} {top.category} events, {_ms(top.total_us)} in total.",
        advice.get(top.category, "Look at the top entries of that category below."),
    )


def half_precision_on_cpu(ctx: Context) -> Finding | None:
    run = ctx.run or {}
    if run.get("dtype") not in ("fp16", "bf16") or (run.get("device") or {}).get("type") != "cpu":
        return None
    return Finding(
        "half_precision_on_cpu",
        "warning",
        f"{run['dtype']} measured on a CPU",
        "This CPU has no fast half-precision kernels: fp16/bf16 usually run several times slower than "
        "fp32 here. The numbers are real for this machine, not a prediction for a GPU.",
        "Compare precisions on the GPU you deploy on.",
    )


def skipped_events(ctx: Context) -> Finding | None:
    if not ctx.info.skipped_total:
        return None
    detail = ", ".join(f"{count} {reason}" for reason, count in ctx.info.skipped_events.items())
    return Finding(
        "skipped_events",
        "warning",
        f"{ctx.info.skipped_total} trace events were unusable and skipped",
        detail + ". The rest of the analysis uses the remaining events.",
        "Check how the trace was produced; a truncated or hand-edited trace loses events.",
    )


def _stage_counts(by_stage: dict[str, int]) -> str:
    if not by_stage:
        return "no stage ranges in the trace"
    return ", ".join(f"{stage} {count}" for stage, count in sorted(by_stage.items(), key=lambda kv: -kv[1]))


def _inside_pipeline(by_stage: dict[str, int]) -> int:
    return sum(count for stage, count in by_stage.items() if stage != "outside pipeline")


def host_sync_calls(ctx: Context) -> Finding | None:
    """Nsight Systems 'CUDA synchronization' rule: calls that block the host until the GPU is done."""
    if ctx.blocking is None:
        return None
    calls = [c for c in ctx.blocking.calls if c.kind == "sync"]
    if ctx.view.has_ranges:
        calls = [c for c in calls if _inside_pipeline(c.by_stage)]
    if not calls:
        return None
    total = sum(c.total_us for c in calls)
    share = total / ctx.window_us if ctx.window_us else 0.0
    detail = "; ".join(f"{c.name} ×{c.count} ({_ms(c.total_us)}; {_stage_counts(c.by_stage)})" for c in calls[:4])
    return Finding(
        "host_sync_calls",
        "warning" if share >= THRESHOLDS["sync_time_share_warning"] else "info",
        f"The host waited on the GPU in {sum(c.count for c in calls)} synchronization calls",
        f"{detail}. {_ms(total)} of host time blocked ({share:.1%} of the analysed window); while the host "
        "waits, it queues no new work, so the GPU drains and idles after each one.",
        "Find what forces the sync (tensor.item(), .cpu(), .tolist(), printing a CUDA tensor, torch.cuda.synchronize() "
        "in the loop, data-dependent shapes) and move it out of the hot loop (in a diffusion run: the denoise loop).",
        _top_stage(calls),
    )


def _top_stage(calls: list[ApiCall]) -> str:
    stages: dict[str, int] = {}
    for call in calls:
        for stage, count in call.by_stage.items():
            stages[stage] = stages.get(stage, 0) + count
    return max(stages, key=stages.get) if stages else "run"


def sync_memops(ctx: Context) -> Finding | None:
    """Nsight Systems 'synchronous memcpy/memset' rule."""
    if ctx.blocking is None:
        return None
    calls = [c for c in ctx.blocking.calls if c.kind in ("memcpy_sync", "memset_sync")]
    if not calls:
        return None
    detail = "; ".join(f"{c.name} ×{c.count} ({_ms(c.total_us)}; {_stage_counts(c.by_stage)})" for c in calls[:4])
    return Finding(
        "synchronous_memcpy_memset",
        "warning",
        f"{sum(c.count for c in calls)} synchronous memcpy/memset API calls",
        f"{detail}. A synchronous copy or set blocks the host until the GPU has finished all earlier work.",
        "Use the async variants on a stream (tensor.to(device, non_blocking=True) from pinned memory, "
        "torch.zeros(..., device=...) instead of building on the host and copying).",
        _top_stage(calls),
    )


def pageable_copies(ctx: Context) -> Finding | None:
    """Nsight Systems 'pageable memory' rule: async copies to or from pageable host memory are synchronous."""
    blocking = ctx.blocking
    if blocking is None or not blocking.pageable_copies:
        return None
    calls = [c for c in blocking.calls if c.kind == "pageable_copy"]
    stages = _stage_counts(calls[0].by_stage) if calls else "not correlated to launches"
    return Finding(
        "pageable_memcpy",
        "warning",
        f"{blocking.pageable_copies} copies use pageable host memory",
        f"{blocking.pageable_copies} memcpys between the GPU and pageable (not pinned) host memory, "
        f"{_bytes(blocking.pageable_bytes)}, {_ms(blocking.pageable_us)} of GPU copy time (by stage: {stages}). "
        "The driver stages them through a pinned buffer and the calls block the host, even the Async ones.",
        "Pin the host buffers (tensor.pin_memory(), DataLoader(pin_memory=True)) and copy with non_blocking=True, "
        "or keep the data on the GPU.",
        _top_stage(calls),
    )


def gpu_starvation(ctx: Context) -> Finding | None:
    """Nsight Systems 'GPU gaps' rule: long stretches where no GPU work runs."""
    gaps = ctx.gaps
    if gaps is None or not gaps.starvation_count or not gaps.window_us:
        return None
    share = gaps.starvation_us / gaps.window_us
    if share < THRESHOLDS["starvation_share_warning"]:
        return None
    listed = "; ".join(
        f"{_ms(g.length_us)} at {_ms(g.start_us)} ("
        + (f"{g.where}, " if g.where != "trace" else "")
        + f"{CAUSE_SHORT.get(g.cause, g.cause)})"
        for g in gaps.largest[:3]
        if g.length_us >= gaps.starvation_threshold_us
    )
    return Finding(
        "gpu_starvation",
        "warning",
        f"The GPU sat idle for {gaps.starvation_count} gaps of {_ms(gaps.starvation_threshold_us)} or more",
        f"{_ms(gaps.starvation_us)} in long gaps, {share:.0%} of the {_ms(gaps.window_us)} GPU window ({gaps.scope}). "
        f"Largest: {listed}.",
        "See what the host does in those gaps (CPU operators, Python, I/O, synchronizations) and move it off the "
        "critical path or overlap it with GPU work.",
        "run",
    )


def launch_bound_denoise(ctx: Context) -> Finding | None:
    gaps, launches = ctx.gaps, ctx.launches
    if gaps is None or not gaps.loop_window_us or launches is None:
        return None
    idle_share = 1 - gaps.loop_busy_us / gaps.loop_window_us
    if idle_share < THRESHOLDS["launch_bound_idle_share"]:
        return None
    idle = sum(gaps.loop_idle_by_cause.values())
    host = gaps.loop_idle_by_cause.get("host", 0.0)
    sync = gaps.loop_idle_by_cause.get("after_sync", 0.0)
    delay = f"{launches.delay_p50_us:.0f} us" if launches.delay_p50_us is not None else "n/a"
    return Finding(
        "launch_bound_denoise",
        "critical" if idle_share >= THRESHOLDS["launch_bound_idle_critical"] else "warning",
        f"The GPU is idle {idle_share:.0%} of the denoise loop",
        f"denoise work busy {_ms(gaps.loop_busy_us)} of a {_ms(gaps.loop_window_us)} GPU span; of the idle time "
        f"{host / idle if idle else 0:.0%} waits on the host to launch and {sync / idle if idle else 0:.0%} follows a "
        f"synchronization. Median kernel {launches.median_kernel_us or 0:.1f} us, "
        f"{launches.short_kernel_share:.0%} of kernels under {launches.short_kernel_threshold_us:.0f} us, median "
        f"launch-to-start {delay}.",
        "The loop is launch-bound: capture it in a CUDA graph (torch.compile(mode='reduce-overhead')), fuse small "
        "kernels (torch.compile), raise the batch size, and remove host syncs from the step.",
        "denoise",
    )


def sync_every_step(ctx: Context) -> Finding | None:
    blocking = ctx.blocking
    if blocking is None or blocking.steps < 2:
        return None
    need = THRESHOLDS["every_step_share"] * blocking.steps
    syncing = blocking.steps_with_sync >= need
    copying = blocking.steps_with_d2h >= need
    if not (syncing or copying):
        return None
    parts = []
    if copying:
        parts.append(f"a device-to-host copy in {blocking.steps_with_d2h} of {blocking.steps} steps")
    if syncing:
        per_step = f", median {_ms(blocking.sync_us_per_step or 0)} blocked per step"
        parts.append(f"a host-blocking call in {blocking.steps_with_sync} of {blocking.steps} steps{per_step}")
    return Finding(
        "sync_every_step",
        "warning",
        "The denoise loop waits for the GPU in every step",
        "Found " + " and ".join(parts) + ". Each one empties the GPU queue, so the next step starts cold.",
        "Typical causes: a scheduler reading a tensor value (.item() on a timestep or sigma), a progress "
        "callback touching latents, NaN checks. Keep timesteps on the CPU, drop per-step checks, or do them "
        "once after the loop.",
        "denoise",
    )


_MATH_SDPA = re.compile(r"_scaled_dot_product_attention_math")
_FUSED_SDPA = re.compile(
    r"_scaled_dot_product_(flash|efficient|cudnn)_attention|_flash_attention_forward|"
    r"_efficient_attention_forward|scaled_dot_product_fused"
)


def attention_math_path(ctx: Context) -> Finding | None:
    math_ops = sum(count for name, count in ctx.cpu_op_names.items() if _MATH_SDPA.search(name))
    fused_ops = sum(count for name, count in ctx.cpu_op_names.items() if _FUSED_SDPA.search(name))
    if math_ops:
        return Finding(
            "attention_math_path",
            "warning",
            f"Attention runs on the math (unfused) SDPA path {math_ops} times",
            f"{math_ops} calls of aten::_scaled_dot_product_attention_math"
            + (f" (and {fused_ops} fused SDPA calls)" if fused_ops else "")
            + ": it materializes the full attention matrix with separate GEMM and softmax kernels.",
            "Make the fused kernels eligible: half precision (flash needs fp16/bf16), head dim a multiple of 8, no "
            "unsupported mask, and check torch.backends.cuda.sdp_kernel / sdpa_kernel settings.",
            "denoise",
        )
    denoise = [row for row in ctx.stage_mix if row.stage == "denoise"]
    if ctx.gpu is None or fused_ops or not denoise:  # the kernel-name guess only where a denoise loop is known
        return None
    attention = sum(row.total_us for row in denoise if row.category == "attention")
    softmax = sum(row.total_us for row in denoise if row.category == "softmax")
    gemm = sum(row.total_us for row in denoise if row.category == "gemm")
    if attention > 0 or softmax <= 0 or gemm <= 0:
        return None
    return Finding(
        "attention_math_path",
        "warning",
        "Attention appears to run unfused (softmax + GEMM kernels, no fused attention kernel)",
        f"In the denoise stage: {_ms(softmax)} of softmax kernels next to {_ms(gemm)} of GEMMs and no flash or "
        "memory-efficient attention kernel. That is the SDPA math path or an attention processor that does not "
        "call scaled_dot_product_attention (a guess from kernel names).",
        "Use diffusers' AttnProcessor2_0 (SDPA) or a flash-attention processor, in half precision.",
        "denoise",
    )


RULES: tuple[Callable[[Context], Finding | None], ...] = (
    no_ranges,
    no_gpu,
    half_precision_on_cpu,
    skipped_events,
    low_gpu_utilization,
    launch_bound_denoise,
    gpu_starvation,
    sync_every_step,
    host_sync_calls,
    sync_memops,
    pageable_copies,
    attention_math_path,
    fp32_in_half_run,
    first_step_outlier,
    step_variance,
    vae_share,
    text_encoder_share,
    other_share,
    dominant_stage,
    dominant_category,
)


def evaluate(ctx: Context) -> list[Finding]:
    findings = [finding for rule in RULES if (finding := rule(ctx)) is not None]
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
