"""Where the pipeline's time goes: step outliers and variance, large stages, the leading kind of work.

The share rules (denoise share, leading category) describe; they recover nothing and stay info."""

from __future__ import annotations

from profkit.analysis.findings.context import Context
from profkit.analysis.findings.model import Severity
from profkit.analysis.findings.registry import Hit, trace_rule
from profkit.analysis.findings.thresholds import THRESHOLDS


@trace_rule(
    severity=Severity.WARNING,
    scope="denoise",
    thresholds=("min_steps_step_rules", "first_step_outlier_ratio"),
    impact="step 0 minus the median step ({excess_ms:.2f} ms): warm-up, paid once per process",
    title="Step 0 is {ratio:.1f}x slower than the median step",
    evidence="step 0: {first_ms:.2f} ms; median of steps 1-{last_step}: {median_rest_ms:.2f} ms.",
    next_step="A first-step outlier is warm-up: lazy init, cuDNN/Triton autotuning or torch.compile. "
    "Capture with --warmup N so the recorded call is steady-state.",
)
def first_step_outlier(ctx: Context) -> Hit | None:
    steps = [s for s in ctx.view.steps if s.call == 0]
    if len(steps) < THRESHOLDS["min_steps_step_rules"]:
        return None
    first = steps[0].wall_us
    rest = sorted(s.wall_us for s in steps[1:])
    median_rest = rest[len(rest) // 2]
    ratio = first / median_rest if median_rest else 0.0
    if ratio < THRESHOLDS["first_step_outlier_ratio"]:
        return None
    return Hit(
        numbers={
            "ratio": ratio,
            "first_ms": first / 1000,
            "median_rest_ms": median_rest / 1000,
            "last_step": len(steps) - 1,
            "excess_ms": (first - median_rest) / 1000,
        },
        recoverable_ms=(first - median_rest) / 1000,
    )


@trace_rule(
    severity=Severity.WARNING,
    scope="denoise",
    thresholds=("min_steps_step_rules", "step_cv_warning"),
    impact="the time of steps above the median step ({excess_ms:.2f} ms)",
    title="Step times vary by {cv:.0%} (coefficient of variation)",
    evidence="min {min_ms:.2f} ms, median {median_ms:.2f} ms, max {max_ms:.2f} ms, std {std_ms:.2f} ms.",
    next_step="Steps of a denoise loop do the same work: variance means interference (other processes, "
    "thermal/clock changes, allocator growth, recompilation). Pin the machine and repeat.",
)
def step_variance(ctx: Context) -> Hit | None:
    stats = ctx.view.step_stats
    if stats is None or stats.count < THRESHOLDS["min_steps_step_rules"] or stats.cv < THRESHOLDS["step_cv_warning"]:
        return None
    excess_ms = sum(max(s.wall_us - stats.median, 0.0) for s in ctx.view.steps) / 1000
    return Hit(
        recoverable_ms=excess_ms,
        numbers={
            "cv": stats.cv,
            "min_ms": stats.min / 1000,
            "median_ms": stats.median / 1000,
            "max_ms": stats.max / 1000,
            "std_ms": stats.std / 1000,
            "excess_ms": excess_ms,
        },
    )


@trace_rule(
    severity=Severity.WARNING,
    scope="vae",
    thresholds=("vae_share_warning",),
    impact="the VAE's wall time ({vae_ms:.2f} ms): an upper bound, a tiny VAE or compiled decode keeps part of it",
    title="VAE takes {share:.0%} of the pipeline",
    evidence="{vae_ms:.2f} ms of {total_ms:.2f} ms in VAE decode/encode (threshold {threshold:.0%}).",
    next_step="Try a tiny/distilled VAE (TAESD), VAE slicing or tiling for large batches, channels_last, or "
    "compiling vae.decode.",
)
def vae_decode_large(ctx: Context) -> Hit | None:
    vae = ctx.stage("vae")
    if vae is None or vae.share < THRESHOLDS["vae_share_warning"]:
        return None
    return Hit(
        numbers={
            "share": vae.share,
            "vae_ms": vae.wall_us / 1000,
            "total_ms": ctx.view.total_us / 1000,
            "threshold": THRESHOLDS["vae_share_warning"],
        },
        recoverable_ms=vae.wall_us / 1000,
    )


@trace_rule(
    severity=Severity.WARNING,
    scope="text_encoder",
    thresholds=("text_encoder_share_warning",),
    impact="the text encoders' wall time ({encoder_ms:.2f} ms): what cached prompt embeddings recover",
    title="Text encoding takes {share:.0%} of the pipeline",
    evidence="{encoder_ms:.2f} ms over {calls} text-encoder calls.",
    next_step="Cache prompt embeddings for repeated prompts (pass prompt_embeds), or run encoders in half precision.",
)
def text_encoder_large(ctx: Context) -> Hit | None:
    stage = ctx.stage("text_encoder")
    if stage is None or stage.share < THRESHOLDS["text_encoder_share_warning"]:
        return None
    return Hit(
        numbers={"share": stage.share, "encoder_ms": stage.wall_us / 1000, "calls": stage.calls},
        recoverable_ms=stage.wall_us / 1000,
    )


@trace_rule(
    severity=Severity.WARNING,
    scope="other",
    thresholds=("other_share_warning",),
    impact="the time outside named stages ({other_ms:.2f} ms): an upper bound, some of it is needed work",
    title="{share:.0%} of the pipeline is outside named stages",
    evidence="{other_ms:.2f} ms is spent in the pipeline call but outside text encoding, denoise steps and VAE: "
    "input checks, latent preparation, image post-processing (PIL conversion).",
    next_step="Look at the CPU operators of that time; return latents or tensors (output_type='pt') when the "
    "caller does not need PIL images.",
)
def time_outside_stages(ctx: Context) -> Hit | None:
    other = ctx.stage("other")
    if other is None or not ctx.view.has_ranges or other.share < THRESHOLDS["other_share_warning"]:
        return None
    return Hit(numbers={"share": other.share, "other_ms": other.wall_us / 1000}, recoverable_ms=other.wall_us / 1000)


_DENOISE_SHARE = {
    "severity": Severity.INFO,
    "scope": "denoise",
    "thresholds": ("denoise_dominates_share",),
    "title": "The denoise loop takes {share:.0%} of the pipeline",
    "evidence": "{steps} steps, median {median_step_ms:.2f} ms per step, {denoise_ms:.2f} ms of {total_ms:.2f} ms "
    "in total.",
    "next_step": "Speed up the denoiser first: half precision, SDPA/flash attention, torch.compile, fewer steps.",
}


def _denoise(ctx: Context, dominates: bool) -> Hit | None:
    denoise = ctx.stage("denoise")
    stats = ctx.view.step_stats
    if denoise is None or not stats or (denoise.share >= THRESHOLDS["denoise_dominates_share"]) != dominates:
        return None
    return Hit(
        numbers={
            "share": denoise.share,
            "steps": stats.count,
            "median_step_ms": stats.median / 1000,
            "denoise_ms": denoise.wall_us / 1000,
            "total_ms": ctx.view.total_us / 1000,
        }
    )


@trace_rule(**_DENOISE_SHARE)
def denoise_dominates(ctx: Context) -> Hit | None:
    """The denoise loop is at least half of the pipeline."""
    return _denoise(ctx, dominates=True)


@trace_rule(**_DENOISE_SHARE)
def denoise_share(ctx: Context) -> Hit | None:
    """The denoise loop's share, when it is less than half of the pipeline."""
    return _denoise(ctx, dominates=False)


_CATEGORY_ADVICE = {
    "convolution": "Convolutions lead: use channels_last memory format and half precision (tensor cores).",
    "gemm": "GEMMs lead: use half precision/TF32 so they run on tensor cores, fuse QKV projections.",
    "attention": "Attention leads: make sure SDPA picks flash or memory-efficient kernels.",
    "normalization": "Normalization leads: fuse it with torch.compile.",
    "elementwise": "Elementwise kernels lead: fuse them with torch.compile.",
    "memcpy": "Copies lead: keep tensors on the device and avoid dtype/device round trips.",
}


@trace_rule(
    severity=Severity.INFO,
    thresholds=("dominant_category_share",),
    title="{category} is {share:.0%} of {what}",
    evidence="{count} {category} events, {total_ms:.2f} ms in total.",
    next_step="Look at the top entries of that category below.",
    variants={category: {"next_step": advice} for category, advice in _CATEGORY_ADVICE.items()},
)
def dominant_category(ctx: Context) -> Hit | None:
    breakdown = ctx.kernels or ctx.cpu_ops
    if not breakdown.categories:
        return None
    top = breakdown.categories[0]
    if top.share < THRESHOLDS["dominant_category_share"] or top.category == "other":
        return None
    return Hit(
        numbers={"share": top.share, "count": top.count, "total_ms": top.total_us / 1000},
        labels={
            "category": top.category,
            "what": "GPU kernel time" if breakdown.kind == "gpu_kernels" else "CPU operator self time",
        },
        variant=top.category if top.category in _CATEGORY_ADVICE else None,
    )
