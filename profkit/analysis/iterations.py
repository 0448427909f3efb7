"""Iteration times of a training or serving loop profiled with ``torch.profiler.schedule``: the
``ProfilerStep#N`` ranges torch.profiler opens around each ``prof.step()`` (pure: ranges table in, numbers out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from profkit.analysis.namecodes import per_name

if TYPE_CHECKING:
    from profkit.parsers.tables import Table

PROFILER_STEP_PREFIX = "ProfilerStep#"


def profiler_step_durations_us(ranges: Table) -> list[float]:
    """Durations of the host-side ``ProfilerStep#N`` ranges, in trace order."""
    if ranges.empty:
        return []
    named = per_name(ranges["name"], lambda name: name.startswith(PROFILER_STEP_PREFIX), False, dtype=bool)
    return ranges[named & ~ranges["on_gpu"].astype(bool, copy=False)].sorted_by("ts")["dur"].tolist()
