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
