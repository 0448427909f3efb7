"""Facts decided once and shared by rules, comparisons and captures (no prose decisions anywhere else)."""

from __future__ import annotations

from profkit.analysis.findings.thresholds import THRESHOLDS

#: The half-precision dtypes profkit captures.
HALF_PRECISION = ("fp16", "bf16")

#: The capture note for :func:`half_precision_is_slow` runs (capture metadata ``notes``).
HALF_PRECISION_ON_CPU_NOTE = (
    "{dtype} on CPU: this CPU build has no fast half-precision kernels, so {dtype} usually runs "
    "several times slower than fp32 here; GPU results differ"
)


def half_precision_is_slow(device: str | None, dtype: str | None) -> bool:
    """Half precision on a CPU: no fast kernels, so it runs slower than fp32 (``device`` is a type or ``cpu:0``)."""
    return (device or "").split(":")[0] == "cpu" and dtype in HALF_PRECISION


def speed_phrase(speedup: float | None) -> str:
    """``2.0`` -> ``"2.00x faster than"``; speedup is A time / B time, read as "B is ... A"."""
    if speedup is None:
        return "not comparable"
    if abs(speedup - 1) < THRESHOLDS["same_speed_tolerance"]:
        return "about the same speed as"
    if speedup > 1:
        return f"{speedup:.2f}x faster than"
    return f"{1 / speedup:.2f}x slower than"


def byte_size(count: float) -> str:
    """``1234567`` -> ``"1.23 MB"``."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count:.0f} B"


#: Assumed host<->device copy rate from pinned memory (GB/s): PCIe Gen4 x16 in practice (Gen5 hosts reach more).
PINNED_COPY_GB_PER_S = 25.0

#: FP32 -> TF32 GEMM throughput ratio per device class (CUDA compute capability major), from the vendors' dense
#: peak numbers (A100: 156 / 19.5 TFLOPS; H100 SXM: 495 / 67). A device class missing here has no TF32.
FP32_TO_TF32_RATIO: dict[int, float] = {8: 8.0, 9: 7.4}


_NOT_CUDA = ("AMD", "Radeon", "Instinct")  # ROCm traces report a gfx major in computeMajor


def compute_major(devices: list[dict], run_device: object = None) -> int | None:
    """The CUDA compute capability major of the traced GPU (trace device properties, else capture metadata);
    ``None`` for a ROCm device."""
    for device in devices:
        if any(word in str(device.get("name", "")) for word in _NOT_CUDA):
            return None
        if isinstance(device.get("computeMajor"), int):
            return device["computeMajor"]
    capability = getattr(run_device, "compute_capability", None)
    if capability is None and isinstance(run_device, dict):
        capability = run_device.get("compute_capability")
    try:
        return int(str(capability).split(".")[0]) if capability else None
    except ValueError:
        return None


def pageable_excess_us(copy_us: float, copied_bytes: float) -> float:
    """Copy time beyond what the same bytes take at :data:`PINNED_COPY_GB_PER_S` (never negative)."""
    return max(copy_us - copied_bytes / (PINNED_COPY_GB_PER_S * 1e3), 0.0)
