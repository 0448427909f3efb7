"""Rules of the denoise loop's GPU work: launch-bound steps, per-step syncs, unfused attention, FP32 matmuls
(in a half-precision run, or without TF32 on a GPU that has it)."""

from __future__ import annotations

import re

from profkit.analysis.findings.context import Context
from profkit.analysis.findings.facts import FP32_TO_TF32_RATIO, HALF_PRECISION, compute_major
from profkit.analysis.findings.model import Severity
from profkit.analysis.findings.registry import Hit, trace_rule
from profkit.analysis.findings.thresholds import THRESHOLDS
from profkit.analysis.groups import Groups

_SHOWN_KERNELS = 3  # kernel names listed in the evidence
_KERNEL_NAME_CHARS = 60


@trace_rule(
    severity=Severity.WARNING,
    scope="denoise",
    thresholds=("launch_bound_idle_share",),
    impact="GPU idle inside the denoise loop waiting on the host to launch ({host_idle_ms:.2f} ms): an upper bound "
    "of what CUDA graphs / torch.compile can recover",
    title="The GPU is idle {idle_share:.0%} of the denoise loop",
    evidence="denoise work busy {busy_ms:.2f} ms of a {span_ms:.2f} ms GPU span; of the idle time "
    "{host_share_of_idle:.0%} waits on the host to launch and {sync_share_of_idle:.0%} follows a synchronization. "
    "Median kernel {median_kernel_us:.1f} us, {short_kernel_share:.0%} of kernels under "
    "{short_kernel_threshold_us:.0f} us, median launch-to-start [[{launch_delay_p50_us:.0f} us||n/a]]."
    "[[ No cudaGraphLaunch in the trace: the host launches {kernels_per_step:.0f} kernels per step one by one.]]",
    next_step="The loop is launch-bound: capture it in a CUDA graph (torch.compile(mode='reduce-overhead')), fuse "
    "small kernels (torch.compile), raise the batch size, and remove host syncs from the step.",
)
def launch_bound_denoise(ctx: Context) -> Hit | None:
    gaps, launches = ctx.gaps, ctx.launches
    if gaps is None or not gaps.loop_window_us or launches is None:
        return None
    idle_share = 1 - gaps.loop_busy_us / gaps.loop_window_us
    if idle_share < THRESHOLDS["launch_bound_idle_share"]:
        return None
    idle = sum(gaps.loop_idle_by_cause.values())
    numbers = {
        "idle_share": idle_share,
        "busy_ms": gaps.loop_busy_us / 1000,
        "span_ms": gaps.loop_window_us / 1000,
        "host_share_of_idle": gaps.loop_idle_by_cause.get("host", 0.0) / idle if idle else 0.0,
        "sync_share_of_idle": gaps.loop_idle_by_cause.get("after_sync", 0.0) / idle if idle else 0.0,
        "median_kernel_us": launches.median_kernel_us or 0.0,
        "short_kernel_share": launches.short_kernel_share,
        "short_kernel_threshold_us": launches.short_kernel_threshold_us,
    }
    if launches.delay_p50_us is not None:
        numbers["launch_delay_p50_us"] = launches.delay_p50_us
    host_idle = gaps.loop_idle_by_cause.get("host", 0.0)
    numbers["host_idle_ms"] = host_idle / 1000
    graphs, steps = ctx.graphs, ctx.view.steps
    if graphs is not None and not graphs.launches and steps:
        kernels = sum(step.projection.work_items for step in steps if step.projection is not None)
        numbers["kernels_per_step"] = kernels / len(steps)
    return Hit(numbers=numbers, recoverable_ms=host_idle / 1000)


_EVERY_STEP_CAUSES = (
    "Typical causes: a scheduler reading a tensor value (.item() on a timestep or sigma), a progress callback "
    "touching latents, NaN checks. Keep timesteps on the CPU, drop per-step checks, or do them once after the loop."
)
_COPIES = "a device-to-host copy in {d2h_steps} of {steps} steps"
_SYNCS = "a host-blocking call in {sync_steps} of {steps} steps, median {sync_ms_per_step:.2f} ms blocked per step"
_COLD = ". Each one empties the GPU queue, so the next step starts cold."


@trace_rule(
    severity=Severity.WARNING,
    scope="denoise",
    thresholds=("every_step_share", "min_steps_every_step"),
    impact="host time blocked in the steps' syncs ({blocked_ms:.2f} ms), at most the GPU idle that follows syncs "
    "in the loop ({idle_after_sync_ms:.2f} ms)",
    title="The denoise loop waits for the GPU in every step",
    evidence=f"Found {_COPIES} and {_SYNCS}{_COLD}",
    next_step=_EVERY_STEP_CAUSES,
    variants={"copies": {"evidence": f"Found {_COPIES}{_COLD}"}, "syncs": {"evidence": f"Found {_SYNCS}{_COLD}"}},
)
def sync_every_step(ctx: Context) -> Hit | None:
    blocking = ctx.blocking
    if blocking is None or blocking.steps < THRESHOLDS["min_steps_every_step"]:
        return None
    need = THRESHOLDS["every_step_share"] * blocking.steps
    syncing = blocking.steps_with_sync >= need
    copying = blocking.steps_with_d2h >= need
    if not (syncing or copying):
        return None
    blocked_ms = (blocking.sync_us_per_step or 0.0) * blocking.steps / 1000
    idle_ms = (ctx.gaps.loop_idle_by_cause.get("after_sync", 0.0) if ctx.gaps else 0.0) / 1000
    return Hit(
        numbers={
            "steps": blocking.steps,
            "d2h_steps": blocking.steps_with_d2h,
            "sync_steps": blocking.steps_with_sync,
            "sync_ms_per_step": (blocking.sync_us_per_step or 0.0) / 1000,
            "blocked_ms": blocked_ms,
            "idle_after_sync_ms": idle_ms,
        },
        variant=None if syncing and copying else "copies" if copying else "syncs",
        recoverable_ms=min(blocked_ms, idle_ms),
    )


_MATH_SDPA = re.compile(r"_scaled_dot_product_attention_math")
_FUSED_SDPA = re.compile(
    r"_scaled_dot_product_(flash|efficient|cudnn)_attention|_flash_attention_forward|"
    r"_efficient_attention_forward|scaled_dot_product_fused"
)


@trace_rule(
    severity=Severity.WARNING,
    scope="denoise",
    impact="softmax kernel time in the denoise loop ({softmax_ms:.2f} ms): a lower bound, fused attention also "
    "saves the score-matrix writes of the GEMMs",
    title="Attention runs on the math (unfused) SDPA path {math_ops} times",
    evidence="{math_ops} calls of aten::_scaled_dot_product_attention_math[[ (and {fused_ops} fused SDPA calls)]]: "
    "it materializes the full attention matrix with separate GEMM and softmax kernels.",
    next_step="Make the fused kernels eligible: half precision (flash needs fp16/bf16), head dim a multiple of 8, no "
    "unsupported mask, and check torch.backends.cuda.sdp_kernel / sdpa_kernel settings.",
    variants={
        "kernel_names": {
            "title": "Attention appears to run unfused (softmax + GEMM kernels, no fused attention kernel)",
            "evidence": "In the denoise stage: {softmax_ms:.2f} ms of softmax kernels next to {gemm_ms:.2f} ms of "
            "GEMMs and no flash or memory-efficient attention kernel. That is the SDPA math path or an attention "
            "processor that does not call scaled_dot_product_attention (a guess from kernel names).",
            "next_step": "Use diffusers' AttnProcessor2_0 (SDPA) or a flash-attention processor, in half precision.",
        }
    },
)
def attention_math_path(ctx: Context) -> Hit | None:
    math_ops = sum(count for name, count in ctx.cpu_op_names.items() if _MATH_SDPA.search(name))
    fused_ops = sum(count for name, count in ctx.cpu_op_names.items() if _FUSED_SDPA.search(name))
    denoise = [row for row in ctx.stage_mix if row.stage == "denoise"]
    softmax = sum(row.total_us for row in denoise if row.category == "softmax") if ctx.gpu is not None else 0.0
    if math_ops:
        numbers = {"math_ops": math_ops, "softmax_ms": softmax / 1000}
        if fused_ops:
            numbers["fused_ops"] = fused_ops
        return Hit(numbers=numbers, recoverable_ms=softmax / 1000 if ctx.gpu is not None else None)
    if ctx.gpu is None or fused_ops or not denoise:  # the kernel-name guess only where a denoise loop is known
        return None
    attention = sum(row.total_us for row in denoise if row.category == "attention")
    gemm = sum(row.total_us for row in denoise if row.category == "gemm")
    if attention > 0 or softmax <= 0 or gemm <= 0:
        return None
    return Hit(
        numbers={"softmax_ms": softmax / 1000, "gemm_ms": gemm / 1000},
        variant="kernel_names",
        recoverable_ms=softmax / 1000,
    )


_TF32_IMPACT = (
    "FP32 GEMM/conv time ({fp32_ms:.2f} ms) x (1 - 1/{ratio:.1f}), {ratio:.1f} = the FP32->TF32 peak throughput "
    "ratio of compute capability {major}.x (vendor dense peaks; an upper bound for small GEMMs)"
)


def _fp32_matmuls(ctx: Context) -> tuple[float, int, list[str]]:
    """GPU time (us), count and names (largest first) of GEMM/conv kernels whose names say FP32 without tensor
    cores: from every kernel when the work table is there, else from the breakdown's top rows."""
    if ctx.work is not None:
        work = ctx.work
        category = work["category"]
        chosen = work[
            ((category == "gemm") | (category == "convolution"))
            & (work["precision"] == "fp32")
            & ~work["tensor_core"].astype(bool, copy=False)
        ]
        by_name = Groups(chosen["name"], chosen["dur"])
        return float(chosen["dur"].sum()), len(chosen), [str(by_name.keys[i]) for i in by_name.largest().tolist()]
    if ctx.kernels is None:
        return 0.0, 0, []
    matmul = [r for r in ctx.kernels.rows if r.category in ("gemm", "convolution")]
    rows = [r for r in matmul if r.precision == "fp32" and not r.tensor_core]
    return sum(r.total_us for r in rows), sum(r.count for r in rows), [r.name for r in rows]


def _tf32_ratio(ctx: Context) -> tuple[int | None, float | None]:
    major = compute_major(ctx.info.devices, _device(ctx.run))
    return major, FP32_TO_TF32_RATIO.get(major) if major is not None else None


def _device(run: object) -> object:
    return run.get("device") if isinstance(run, dict) else getattr(run, "device", None)


@trace_rule(
    severity=Severity.WARNING,
    thresholds=("fp32_matmul_share_in_half_run",),
    impact=_TF32_IMPACT,
    estimate=True,
    title="{share:.0%} of GPU time is FP32 GEMM/conv in a {dtype} run",
    evidence="Kernels without tensor cores whose names say FP32 (a guess from the name): {rows}.",
    next_step="Some module stays in FP32 (often the VAE, an upcast, or a norm): check the component dtypes.",
    row="{name}",
    row_sep=", ",
)
def fp32_matmul_in_half_run(ctx: Context) -> Hit | None:
    dtype = ctx.dtype
    if ctx.kernels is None or dtype not in HALF_PRECISION:
        return None
    fp32_us, _, names = _fp32_matmuls(ctx)
    share = fp32_us / ctx.kernels.total_us if ctx.kernels.total_us else 0.0
    if share < THRESHOLDS["fp32_matmul_share_in_half_run"]:
        return None
    major, ratio = _tf32_ratio(ctx)
    numbers = {"share": share, "fp32_ms": fp32_us / 1000, **({"ratio": ratio, "major": major} if ratio else {})}
    return Hit(
        numbers=numbers,
        labels={"dtype": dtype or ""},
        rows=[{"name": name[:_KERNEL_NAME_CHARS]} for name in names[:_SHOWN_KERNELS]],
        recoverable_ms=fp32_us / 1000 * (1 - 1 / ratio) if ratio else None,
    )


@trace_rule(
    severity=Severity.WARNING,
    impact=_TF32_IMPACT,
    estimate=True,
    title="{fp32_ms:.2f} ms of FP32 GEMM/conv run without tensor cores (TF32 off) on a compute capability "
    "{major}.x GPU",
    evidence="{count} kernels whose names say FP32 on the plain FP32 units (a guess from the name), "
    "{share:.0%} of GPU kernel time: {rows}.",
    next_step="Allow TF32 (torch.backends.cuda.matmul.allow_tf32 = True or torch.set_float32_matmul_precision('high'); "
    "torch.backends.cudnn.allow_tf32 = True for convolutions), or run in fp16/bf16.",
    row="{name}",
    row_sep=", ",
)
def fp32_gemm_without_tf32(ctx: Context) -> Hit | None:
    """FP32 matmuls on the FP32 units of a GPU that has TF32 tensor cores (Ampere or newer)."""
    if ctx.kernels is None or ctx.dtype in HALF_PRECISION:
        return None
    major, ratio = _tf32_ratio(ctx)
    fp32_us, count, names = _fp32_matmuls(ctx)
    if ratio is None or not fp32_us:
        return None
    return Hit(
        numbers={
            "fp32_ms": fp32_us / 1000,
            "count": count,
            "share": fp32_us / ctx.kernels.total_us if ctx.kernels.total_us else 0.0,
            "ratio": ratio,
            "major": major,
        },
        rows=[{"name": name[:_KERNEL_NAME_CHARS]} for name in names[:_SHOWN_KERNELS]],
        recoverable_ms=fp32_us / 1000 * (1 - 1 / ratio),
    )
