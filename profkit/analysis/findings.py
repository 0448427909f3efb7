"""Findings: named bottlenecks with the numbers behind them, a severity and a next step.

Each rule is a function of the analysis context; its thresholds live in :data:`THRESHOLDS` so they
can be read (and tuned) in one place. A rule returns ``None`` when it does not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from profkit.analysis.operators import Breakdown, GpuTime
from profkit.analysis.pipeline_view import PipelineView
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


def _ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


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
    return Finding(
        "low_gpu_utilization",
        "warning",
        f"The GPU is busy only {utilization:.0%} of the time",
        f"busy {_ms(gpu.busy_us)} (union over {gpu.streams} streams) of {window}; "
        f"{gpu.idle_gap_count} idle gaps, the largest {_ms(gpu.largest_gap_us)}; "
        f"{gpu.short_kernel_share:.0%} of kernels are shorter than 10 us.",
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


RULES: tuple[Callable[[Context], Finding | None], ...] = (
    no_ranges,
    no_gpu,
    half_precision_on_cpu,
    skipped_events,
    low_gpu_utilization,
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
