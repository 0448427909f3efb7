"""Iteration times of a training or serving loop profiled with ``torch.profiler.schedule``: the
``ProfilerStep#N`` ranges torch.profiler opens around each ``prof.step()`` (pure: ranges table in, numbers out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PROFILER_STEP_PREFIX = "ProfilerStep#"


def profiler_step_durations_us(ranges: pd.DataFrame) -> list[float]:
    """Durations of the host-side ``ProfilerStep#N`` ranges, in trace order."""
    if ranges.empty:
        return []
    mask = ranges["name"].str.startswith(PROFILER_STEP_PREFIX, na=False) & ~ranges["on_gpu"].astype(bool)
    return [float(d) for d in ranges.loc[mask].sort_values("ts")["dur"].to_numpy()]
