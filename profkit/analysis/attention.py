"""Attention diagnosis per stage: which SDPA implementation ran, why it is not flash, what the fix would change.

The implementation comes from the attention kernels' names (classified by :mod:`profkit.analysis.taxonomy`:
flash, memory-efficient, cuDNN, Triton) and from the SDPA backend operators PyTorch records
(``aten::_scaled_dot_product_efficient_attention`` ...); the math path has no fused kernel, only its operator.
The reason and the fix are the documented SDPA eligibility rules: flash kernels take fp16/bf16 only, head
dimensions up to 256 and no arbitrary mask. The expected effect is an estimate (:data:`FIX_SPEEDUP`).
"""

from __future__ import annotations

import re

import msgspec
import numpy as np

from profkit.analysis.attribution import OUTSIDE, PipelineWindows, label_times
from profkit.analysis.groups import Groups
from profkit.analysis.namecodes import per_name
from profkit.parsers.columns import counts, object_column
from profkit.parsers.tables import Table, TraceTables

#: SDPA backend operator -> implementation
BACKEND_OPS: dict[str, str] = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash",
    "aten::_scaled_dot_product_efficient_attention": "memory_efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_attention_math_for_mps": "math",
}
#: kernel subcategory (taxonomy) -> implementation
KERNEL_IMPLEMENTATIONS = {"flash": "flash", "memory_efficient": "memory_efficient", "cudnn": "cudnn"}
LABELS = {
    "flash": "flash",
    "memory_efficient": "memory-efficient (CUTLASS)",
    "cudnn": "cuDNN",
    "math": "math (unfused)",
    "triton": "Triton or custom kernel",
}
#: estimated speedup of the attention kernels once the fix lets flash run (an estimate, not a measurement):
#: fp32 -> fp16/bf16 flash halves the bytes moved and uses tensor cores (5.4x per call on the H100 tiny-sd
#: 64x64 fp32/fp16 pair: fmha_cutlassF_f32 60.8 us vs flash/cuDNN 11.2 us); 2x is kept as the conservative bound.
FIX_SPEEDUP: dict[str, float] = {"fp32": 2.0, "math": 2.0, "other": 1.3}
_FP32_KERNEL = re.compile(r"_f32|float(?!16)|fp32", re.IGNORECASE)


class AttentionStage(msgspec.Struct):
    stage: str
    implementation: str  # flash | memory_efficient | cudnn | math | triton | "" (nothing recorded)
    label: str
    kernel: str  # the attention kernel with the most time ("" on the math path)
    kernel_calls: int  # calls of that kernel
    attention_us: float  # sum of all attention kernel durations in the stage
    stage_gpu_us: float  # sum of all kernel/copy durations of the stage
    share: float  # attention / stage GPU time
    dtype: str  # fp32 | fp16 | bf16 | unknown: what the attention ran in
    implementations: dict[str, float] = {}  # implementation -> kernel time (us)
    backend_ops: dict[str, int] = {}  # implementation -> SDPA backend operator calls
    reason: str = ""  # why it is not flash (empty when it is)
    fix: str = ""
    fix_speedup: float | None = None  # estimated attention speedup of the fix
    recoverable_us: float = 0.0  # attention_us * (1 - 1 / fix_speedup): an estimate


def _dtype(kernel: str, precision: str, run_dtype: str | None) -> str:
    if _FP32_KERNEL.search(kernel) or precision == "fp32":
        return "fp32"
    if precision in ("fp16", "bf16"):
        return precision
    return run_dtype or "unknown"


def _why(implementation: str, dtype: str) -> tuple[str, str, float | None]:
    """The likely reason, the fix and its estimated speedup for an implementation that is not flash."""
    if implementation in ("flash", "cudnn", "triton", ""):
        return "", "", None
    if dtype == "fp32":
        return (
            "dtype fp32: flash attention kernels take only fp16/bf16, so SDPA fell back to "
            + ("the math path" if implementation == "math" else "the memory-efficient kernel"),
            "Run the pipeline in fp16 or bf16 (torch_dtype=torch.float16): SDPA then picks flash (or cuDNN) attention",
            FIX_SPEEDUP["math" if implementation == "math" else "fp32"],
        )
    if implementation == "math":
        return (
            "the fused kernels refused the inputs (an unsupported mask, head dimension or layout) or are disabled",
            "Check torch.backends.cuda.sdp_kernel settings, drop the explicit mask, keep the head dimension a "
            "multiple of 8 and at most 256",
            FIX_SPEEDUP["math"],
        )
    return (
        "flash does not take these inputs: an explicit attention mask, or a head dimension above 256 or not a "
        "multiple of 8",
        "Use a causal flag instead of a mask where possible and a head dimension that flash supports",
        FIX_SPEEDUP["other"],
    )


def _sums(keys: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """The total of ``values`` per key, keys in sorted order (missing keys left out)."""
    groups = Groups(keys, values)
    return {str(groups.keys[i]): float(groups.total[i]) for i in groups.by_key().tolist()}


def attention_by_stage(
    tables: TraceTables, work: Table, windows: PipelineWindows | None, run_dtype: str | None = None
) -> list[AttentionStage]:
    """One row per stage that ran attention (kernels or SDPA backend operators), stages in pipeline order."""
    ops = tables.cpu_ops
    backend = ops[per_name(ops["name"], BACKEND_OPS.__contains__, False, dtype=bool)]
    op_stage = label_times(backend["ts"], windows)[0] if windows is not None else object_column(len(backend), OUTSIDE)
    op_impl = np.array([BACKEND_OPS[name] for name in backend["name"].tolist()], dtype=object)
    is_attention = work["category"] == "attention" if len(work) else np.zeros(0, dtype=bool)
    attention = work[is_attention]
    stages = list(dict.fromkeys([*attention["stage"].tolist(), *op_stage.tolist()]))
    rows = []
    for stage in stages:
        mine = attention[attention["stage"] == stage]
        impl_time = _sums(mine["subcategory"], mine["dur"])
        implementations = {KERNEL_IMPLEMENTATIONS.get(str(k), "triton"): v for k, v in impl_time.items()}
        backend_ops = {str(k): v for k, v in counts(op_impl[op_stage == stage]).items()}
        if implementations:
            implementation = max(implementations, key=implementations.__getitem__)
        elif backend_ops:
            implementation = max(backend_ops, key=backend_ops.__getitem__)
        else:
            implementation = ""
        by_name = _sums(mine["name"], mine["dur"])
        kernel = str(max(by_name, key=by_name.__getitem__)) if by_name else ""  # the first of equal totals
        precision = str(mine["precision"][mine["name"] == kernel][0]) if kernel else "unknown"
        dtype = _dtype(kernel, precision, run_dtype)
        attention_us = float(mine["dur"].sum())
        stage_gpu = float(work["dur"][work["stage"] == stage].sum()) if len(work) else 0.0
        reason, fix, speedup = _why(implementation, dtype)
        rows.append(
            AttentionStage(
                stage=str(stage) or "outside",
                implementation=implementation,
                label=LABELS.get(implementation, implementation),
                kernel=kernel,
                kernel_calls=int((mine["name"] == kernel).sum()) if kernel else 0,
                attention_us=attention_us,
                stage_gpu_us=stage_gpu,
                share=attention_us / stage_gpu if stage_gpu else 0.0,
                dtype=dtype,
                implementations=implementations,
                backend_ops=backend_ops,
                reason=reason,
                fix=fix,
                fix_speedup=speedup,
                recoverable_us=attention_us * (1 - 1 / speedup) if speedup else 0.0,
            )
        )
    return rows
